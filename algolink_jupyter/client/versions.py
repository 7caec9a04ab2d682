"""``algolink push``, ``versions``, ``rollback``, ``alias`` and ``delete``: a service's versions from
the command line.

``algolink push [DIR] PROJECT/SERVICE [--publish]`` is one command for the whole loop: it registers
the bundle folder as a new service (its project and group made when missing) or uploads it as the
next version of the service that exists, follows the build, and with ``--publish`` publishes it and
says where it is online.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Optional

from ..errors import CLIError
from .core import (
    SETTLED,
    HubClient,
    HubRequestError,
    ensure_project_group,
    multipart,
    pack_folder,
    print_table,
    service_path,
    split_service,
)


def _follow_status(client: HubClient, path: str, number: int, start: float, stop: Any) -> None:
    """Print each change of the version's status while the log streams."""
    last = None
    while not stop.is_set():
        try:
            service = client.call("GET", path)
        except CLIError:
            service = None
        version = next(
            (v for v in (service or {}).get("versions", []) if v["number"] == number), None
        )
        if version is not None and version["status"] != last:
            last = version["status"]
            print(f"==> {last} ({time.monotonic() - start:.1f} s)", file=sys.stderr, flush=True)
        stop.wait(0.5)


def publish_and_follow(
    client: HubClient, project: str, name: str, number: Optional[int], verb: str = "Publishing"
) -> int:
    """上线 version ``number`` (None: the one online last, else the newest), print its log until it
    is online, and say where; a :class:`CLIError` when it failed."""
    path = service_path(project, name)
    start = time.monotonic()
    body = {} if number is None else {"version": number}
    service = client.call("POST", f"{path}/publish", body)
    number = service["publishing"]
    print(f"{verb} {project}/{name} version {number}...", flush=True)
    stop = threading.Event()
    watcher = threading.Thread(
        target=_follow_status, args=(client, path, number, start, stop), daemon=True
    )
    watcher.start()
    try:
        for line in client.stream(f"{path}/versions/{number}/logs?follow=1&until=online"):
            sys.stdout.write(line.decode("utf-8", "replace"))
            sys.stdout.flush()
        deadline = time.monotonic() + 30  # the log ended: the status settles at the same moment
        while True:
            service = client.call("GET", path)
            version = next(v for v in service["versions"] if v["number"] == number)
            if version["status"] in SETTLED or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        watcher.join(2)
    elapsed = time.monotonic() - start
    if version["status"] == "online":
        print(
            f"{project}/{name} version {number} is online as {version['api_version']} "
            f"({elapsed:.1f} s): {service['urls']['serve']} (pinned: {version['url']})"
        )
        return 0
    raise CLIError(
        f"{project}/{name} version {number} is {version['status']}: "
        f"{version.get('error') or service.get('message') or 'see the log above'}"
    )


def _bundle(folder: str) -> tuple[bytes, str, Path]:
    path = Path(folder).expanduser()
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".zip")):
        return path.read_bytes(), path.name, path
    if not path.is_dir():
        raise CLIError(
            f"{folder} is not a folder: give the bundle folder (the one with cloud_model.py)."
        )
    if not any((path / n).is_file() for n in ("cloud_model.py", "runway_model.py")):
        raise CLIError(
            f"{path.resolve()} has no cloud_model.py: give the bundle folder (export a notebook "
            "with `algolink export NOTEBOOK -o DIR`), or a .tar.gz or .zip of one."
        )
    return pack_folder(path), f"{path.resolve().name}.tar.gz", path


def _follow_build(client: HubClient, project: str, name: str, number: int) -> dict:
    """Print the version's build log until the build ends; the version's JSON then."""
    path = service_path(project, name)
    for line in client.stream(f"{path}/versions/{number}/logs?follow=1"):
        sys.stdout.write(line.decode("utf-8", "replace"))
        sys.stdout.flush()
    return client.call("GET", f"{path}/versions/{number}")


def cmd_push(args: argparse.Namespace) -> int:
    if args.service is None:  # `algolink push P/S`: the bundle is the current folder
        args.dir, args.service = ".", args.dir
    project, name = split_service(args.service)
    data, filename, _ = _bundle(args.dir)
    client = HubClient()
    path = service_path(project, name)
    try:
        client.call("GET", path)
        exists = True
    except HubRequestError as e:
        if e.status != 404:
            raise
        exists = False
    fields: dict = {}
    if args.metadata:
        fields["metadata"] = args.metadata
    files = [("bundle", filename, data)]
    for image in args.image or []:
        files.append(("images", Path(image).name, Path(image).read_bytes()))
    print(f"Uploading {filename} ({len(data) / 1024:.0f} KB) to {client.url}...", flush=True)
    if exists:
        body, content_type = multipart(fields, files)
        with client.open("POST", f"{path}/versions", body, content_type) as r:
            number = json.loads(r.read())["number"]
        print(f"Version {number} of {project}/{name} is uploaded; building it:", flush=True)
    else:
        ensure_project_group(client, project, args.group)
        fields.update({"name": name, "group": args.group})
        if args.public:
            fields["public"] = "true"
        body, content_type = multipart(fields, files)
        quoted = urllib.parse.quote(project)
        with client.open("POST", f"/api/v1/projects/{quoted}/services", body, content_type):
            pass
        number = 1
        print(f"Registered {project}/{name} (version 1) in group {args.group}; building it:")
    version = _follow_build(client, project, name, number)
    if version.get("manifest") is None:
        raise CLIError(
            f"The build of {project}/{name} version {number} failed: "
            f"{(version.get('error') or 'see the log above').splitlines()[0]}"
        )
    if not args.publish:
        print(
            f"Version {number} of {project}/{name} is built. Publish it with "
            f"`algolink publish {project}/{name} --version {number}`."
        )
        return 0
    return publish_and_follow(client, project, name, number)


def cmd_versions(args: argparse.Namespace) -> int:
    client = HubClient()
    project, name = split_service(args.service)
    s = client.call("GET", service_path(project, name))
    if s.get("mode") == "development":
        print(f"{project}/{name} is in development mode: it has no versions.")
        return 0
    rows = [("VERSION", "STATUS", "API", "ALIASES", "PROCESS", "CREATED", "PUBLISHED")]
    for v in s["versions"]:
        current = " *" if v["number"] == s["published_version"] and s["status"] == "online" else ""
        rows.append(
            (
                f"{v['number']}{current}",
                v["status"],
                v["api_version"] or "-",
                ",".join("@" + a for a in v["aliases"]) or "-",
                v.get("process") or "-",
                v["created"] or "-",
                v["published_at"] or "-",
            )
        )
    print_table(rows)
    for v in s["versions"]:
        if v["url"]:
            print(f"  {v['api_version']}: {v['url']}")
    for a in s.get("aliases") or []:
        print(f"  @{a['name']}: {a['url']} (version {a['version']})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    project, name = split_service(args.service)
    return publish_and_follow(HubClient(), project, name, args.version, "Rolling back to")


def cmd_alias(args: argparse.Namespace) -> int:
    client = HubClient()
    project, name = split_service(args.service)
    path = f"{service_path(project, name)}/aliases/{urllib.parse.quote(args.name)}"
    if args.delete:
        client.call("DELETE", path)
        print(f"Deleted the alias @{args.name} of {project}/{name}.")
        return 0
    if args.version is None:
        raise CLIError(
            f"Give the version @{args.name} names: algolink alias {args.service} {args.name} N."
        )
    alias = client.call("PUT", path, {"version": args.version})
    print(f"@{alias['name']} names version {alias['version']}: {alias['url']}")
    return 0


def _confirm(what: str, typed: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CLIError(f"Deleting {what} needs a confirmation: add --yes to delete without asking.")
    answer = input(f"Delete {what}? Type {typed} to confirm: ").strip()
    if answer != typed:
        raise CLIError("Nothing was deleted (the name typed did not match).")


def cmd_delete(args: argparse.Namespace) -> int:
    client = HubClient()
    target = args.target
    project, _, rest = target.partition("/")
    if not project:
        raise CLIError(
            f"{target!r} names nothing: give PROJECT, PROJECT/SERVICE, "
            "PROJECT/SERVICE/N or PROJECT/SERVICE@ALIAS."
        )
    quoted = urllib.parse.quote(project)
    if args.group:
        if rest:
            raise CLIError("--group deletes a group of a project: give the project alone.")
        _confirm(f"the group {args.group} of {project}", args.group, args.yes)
        client.call("DELETE", f"/api/v1/projects/{quoted}/groups/{urllib.parse.quote(args.group)}")
        print(f"Deleted the group {args.group} of {project}.")
        return 0
    if not rest:
        _confirm(f"the project {project} with all its services", project, args.yes)
        answer = client.call("DELETE", f"/api/v1/projects/{quoted}")
        gone = ", ".join(answer.get("services") or []) or "no services"
        print(f"Deleted the project {project} ({gone}).")
        return 0
    service, at, alias = rest.partition("@")
    service, _, number = service.partition("/")
    path = service_path(project, service)
    if at:
        client.call("DELETE", f"{path}/aliases/{urllib.parse.quote(alias)}")
        print(f"Deleted the alias @{alias} of {project}/{service}.")
        return 0
    if number:
        if not (number.isascii() and number.isdigit()):
            raise CLIError(
                f"{number!r} is not a version number: give PROJECT/SERVICE/N, N = 1, 2, ..."
            )
        _confirm(f"version {number} of {project}/{service}", number, args.yes)
        client.call("DELETE", f"{path}/versions/{number}")
        print(f"Deleted version {number} of {project}/{service}.")
        return 0
    _confirm(f"{project}/{service} with all its versions", f"{project}/{service}", args.yes)
    client.call("DELETE", path)
    print(f"Deleted {project}/{service}: its processes are stopped and its files removed.")
    return 0


def add_version_commands(sub: Any, env_note: str) -> None:
    """``push``, ``versions``, ``rollback``, ``alias`` and ``delete``."""
    push = sub.add_parser(
        "push",
        help="upload a bundle as a new service or its next version, build it (and publish it)",
        description="Register the bundle folder as PROJECT/SERVICE, or upload it as the next "
        "version when the service exists; follow the build; with --publish, publish it and say "
        "where it is online. " + env_note,
    )
    push.add_argument(
        "dir",
        metavar="DIR",
        nargs="?",
        default=".",
        help="the bundle folder, .tar.gz or .zip (default: the current folder)",
    )
    push.add_argument("service", metavar="PROJECT/SERVICE", nargs="?")
    push.add_argument(
        "--group",
        default="default",
        help="the group of a new service (default: default; made when missing)",
    )
    push.add_argument("--publish", action="store_true", help="publish (上线) it once built")
    push.add_argument("--metadata", help="JSON metadata that wins over the bundle's meta()")
    push.add_argument("--image", action="append", help="a gallery image (repeatable)")
    push.add_argument(
        "--public", action="store_true", help="a new service: serve it without a token"
    )
    push.set_defaults(func=cmd_push)

    versions = sub.add_parser(
        "versions", help="list a service's versions, API versions and aliases", description=env_note
    )
    versions.add_argument("service", metavar="PROJECT/SERVICE")
    versions.set_defaults(func=cmd_versions)

    rollback = sub.add_parser(
        "rollback",
        help="publish an earlier version again",
        description="Publish version N again (上线) and follow it until it is online; a later 上线 "
        "without a version keeps it. " + env_note,
    )
    rollback.add_argument("service", metavar="PROJECT/SERVICE")
    rollback.add_argument("version", type=int, metavar="N", help="the version number")
    rollback.set_defaults(func=cmd_rollback)

    alias = sub.add_parser(
        "alias",
        help="name a version (stable, canary): /serve/P/S/@NAME/",
        description="Point the alias NAME at version N, or remove it with --delete. " + env_note,
    )
    alias.add_argument("service", metavar="PROJECT/SERVICE")
    alias.add_argument("name", metavar="NAME")
    alias.add_argument("version", type=int, metavar="N", nargs="?")
    alias.add_argument("--delete", action="store_true", help="remove the alias")
    alias.set_defaults(func=cmd_alias)

    delete = sub.add_parser(
        "delete",
        help="delete a project, a service, a version or an alias",
        description="PROJECT (with its groups and services), PROJECT/SERVICE (its processes are "
        "stopped first), PROJECT/SERVICE/N (a version that is not online), PROJECT/SERVICE@ALIAS, "
        "or an empty group with PROJECT --group G. Asks for the name unless --yes. " + env_note,
    )
    delete.add_argument("target", metavar="TARGET")
    delete.add_argument("--group", metavar="G", help="delete the (empty) group G of PROJECT")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask")
    delete.set_defaults(func=cmd_delete)
