"""``algolink register``, ``publish``, ``logs``, ``status`` and ``options``: the hub's client commands
(``push``, ``versions``, ``rollback``, ``alias`` and ``delete`` are in :mod:`.versions`)."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from ..errors import CLIError
from .account import add_account_commands
from .core import (
    HubClient,
    dev_service_lines,
    ensure_project_group,
    multipart,
    pack_folder,
    print_table,
    register_dev,
    service_path,
    split_service,
)
from .options import add_options_command
from .predict import add_predict_command
from .versions import add_version_commands, publish_and_follow


def cmd_register(args: argparse.Namespace) -> int:
    client = HubClient()
    if args.dev:
        if args.bundle:
            raise CLIError(
                f"Give either a bundle ({args.bundle}) or --dev URL, not both: --dev connects a "
                "running model server instead of uploading a bundle."
            )
        service = register_dev(
            client, args.project, args.group, args.name, args.dev, args.dev_token, args.public
        )
        print("\n".join(dev_service_lines(client, service)))
        return 0
    if not args.bundle:
        raise CLIError(
            "Give the bundle to register (a folder, .tar.gz or .zip), or --dev URL to connect a "
            "running model server in development mode."
        )
    bundle = Path(args.bundle).expanduser()
    if bundle.is_dir():
        if not any((bundle / n).is_file() for n in ("cloud_model.py", "runway_model.py")):
            raise CLIError(f"{bundle} has no cloud_model.py: give a bundle folder or archive.")
        data, filename = pack_folder(bundle), f"{bundle.resolve().name}.tar.gz"
    elif bundle.is_file():
        data, filename = bundle.read_bytes(), bundle.name
    else:
        raise CLIError(f"{args.bundle} does not exist: give a bundle folder, .tar.gz or .zip.")
    project = urllib.parse.quote(args.project)
    ensure_project_group(client, args.project, args.group)
    fields: dict = {"name": args.name, "group": args.group}
    if args.metadata:
        fields["metadata"] = args.metadata
    if args.public:
        fields["public"] = "true"
    files = [("bundle", filename, data)]
    for image in args.image or []:
        files.append(("images", Path(image).name, Path(image).read_bytes()))
    body, content_type = multipart(fields, files)
    print(f"Uploading {filename} ({len(data) / 1024:.0f} KB)...")
    with client.open("POST", f"/api/v1/projects/{project}/services", body, content_type) as r:
        service = json.loads(r.read())
    print(
        f"Registered {args.project}/{service['name']} (version 1): publish it with "
        f"`algolink publish {args.project}/{service['name']}`."
    )
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    project, name = split_service(args.service)
    return publish_and_follow(HubClient(), project, name, args.version)


def cmd_logs(args: argparse.Namespace) -> int:
    client = HubClient()
    project, name = split_service(args.service)
    path = service_path(project, name)
    target = f"{path}/versions/{args.version}/logs" if args.version else f"{path}/logs"
    if args.follow:
        for line in client.stream(target + "?follow=1"):
            sys.stdout.write(line.decode("utf-8", "replace"))
            sys.stdout.flush()
        return 0
    with client.open("GET", target) as response:
        sys.stdout.write(response.read().decode("utf-8", "replace"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    client = HubClient()
    if args.service:
        project, name = split_service(args.service)
        s = client.call("GET", service_path(project, name))
        print(f"{project}/{name}: {s['status']}" + (f" ({s['message']})" if s["message"] else ""))
        if s.get("mode") == "development":
            state = "answering" if s["reachable"] else "NOT answering"
            print(f"  development mode: served by {s['dev_url']} ({state})")
            access = "public" if s["public"] else "token"
            print(f"  group {s['group']}, {access}, at {s['urls']['serve']}")
            if s.get("dev_message"):
                print(f"  {s['dev_message']}")
            return 0
        print(f"  group {s['group']}, {'public' if s['public'] else 'token'}")
        if s["urls"]["api"]:
            print(f"  serving {s['api_version']} at {s['urls']['serve']}")
        for v in s["versions"]:
            api = v["api_version"] or "-"
            line = f"  version {v['number']}: {v['status']:<10} {api:<4} {v['created']}"
            if v.get("process"):
                line += f"  process {v['process']}"
            print(line + (f"  {v['error'].splitlines()[0]}" if v["error"] else ""))
        return 0
    rows = [("SERVICE", "GROUP", "STATUS", "VERSION", "API")]
    for p in client.call("GET", "/api/v1/projects"):
        for s in client.call("GET", f"/api/v1/projects/{urllib.parse.quote(p['name'])}/services"):
            rows.append(
                (
                    f"{p['name']}/{s['name']}",
                    s["group"],
                    s["status"],
                    str(s["published_version"] or "-"),
                    s["api_version"] or "-",
                )
            )
    if len(rows) == 1:
        print(f"No services on {client.url} yet: register one with `algolink register`.")
        return 0
    print_table(rows)
    return 0


def add_commands(sub: Any) -> None:
    """The subcommands of ``algolink`` that talk to a hub: register, publish, logs, status, options."""
    env_note = "Talks to $ALGOLINK_HUB_URL (default http://127.0.0.1:8800) with $ALGOLINK_TOKEN."
    reg = sub.add_parser(
        "register",
        help="register a bundle as a service on the hub",
        description="Upload a bundle folder (or .tar.gz/.zip) as version 1 of a new service, or "
        "with --dev URL connect a running model server in development mode (again: reconnect); "
        "the project and group are created when missing. " + env_note,
    )
    reg.add_argument("bundle", nargs="?", help="a bundle folder, .tar.gz or .zip")
    reg.add_argument(
        "--dev",
        metavar="URL",
        help="development mode: connect the model server running at URL instead of a bundle",
    )
    reg.add_argument("--dev-token", metavar="TOKEN", help="the token the --dev server needs")
    reg.add_argument("--project", required=True)
    reg.add_argument("--group", required=True)
    reg.add_argument("--name", required=True, help="the service's name")
    reg.add_argument("--metadata", help="JSON metadata that wins over the bundle's meta()")
    reg.add_argument("--image", action="append", help="a gallery image (repeatable)")
    reg.add_argument("--public", action="store_true", help="serve it without a token")
    reg.set_defaults(func=cmd_register)

    pub = sub.add_parser(
        "publish",
        help="publish (上线) a service version and follow its build",
        description="Build, start and health-check a version (by default the newest uploaded "
        "since the last publish, else the one online last: a rollback stays a rollback), following "
        "its log until it is online or failed. " + env_note,
    )
    pub.add_argument("service", metavar="PROJECT/SERVICE")
    pub.add_argument(
        "--version",
        type=int,
        help="the version number (default: the newest uploaded since the last publish, else the "
        "one online last)",
    )
    pub.set_defaults(func=cmd_publish)

    logs = sub.add_parser("logs", help="show a service's build and run log", description=env_note)
    logs.add_argument("service", metavar="PROJECT/SERVICE")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing as it grows")
    logs.add_argument("--version", type=int, help="a version number (default: the published one)")
    logs.set_defaults(func=cmd_logs)

    status = sub.add_parser("status", help="show services and their status", description=env_note)
    status.add_argument("service", nargs="?", metavar="PROJECT/SERVICE")
    status.set_defaults(func=cmd_status)

    add_options_command(sub)  # options P/S --set name=value --upload name=FILE
    add_version_commands(sub, env_note)  # push, versions, rollback, alias, delete
    add_account_commands(sub)  # login, logout, whoami
    add_predict_command(sub)  # predict P/S command -i name=value
