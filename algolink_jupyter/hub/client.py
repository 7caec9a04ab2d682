"""The client side of the hub for the ``algolink`` command: register, publish, logs, status, hub.

Only the standard library: the commands talk to ``$ALGOLINK_HUB_URL`` (default
``http://127.0.0.1:8800``) with ``$ALGOLINK_TOKEN``, and start nothing of the hub's server side.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

from algolink_jupyter.cli import CLIError
from algolink_jupyter.hub.settings import add_arguments as add_hub_arguments

DEFAULT_URL = "http://127.0.0.1:8800"
#: Left out when a bundle folder is packed for upload.
SKIP = {"__pycache__", ".git", ".venv", "venv", ".ipynb_checkpoints", ".mypy_cache", ".DS_Store"}
SETTLED = ("online", "failed", "offline")


def config_path() -> Path:
    """The user's AlgoLink config: ``$ALGOLINK_CONFIG``, else ``$XDG_CONFIG_HOME/algolink/config.json``,
    else ``~/.config/algolink/config.json``."""
    explicit = os.environ.get("ALGOLINK_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "algolink" / "config.json"


def load_config() -> dict:
    """``{"hub_url": ..., "token": ...}`` from the config file; ``{}`` when there is none.

    A file that is not a JSON object is a :class:`CLIError` that names it, not a silent default.
    """
    path = config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise CLIError(f"Cannot read the AlgoLink config {path} ({e}): fix or remove it.") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as e:
        raise CLIError(
            f"The AlgoLink config {path} is not valid JSON ({e}): write it as "
            '{"hub_url": "http://127.0.0.1:8800", "token": "..."}.'
        ) from None
    if not isinstance(data, dict):
        raise CLIError(
            f'The AlgoLink config {path} must be a JSON object like {{"hub_url": "...", "token": "..."}}.'
        )
    return data


def hub_settings() -> tuple[Optional[str], Optional[str], str]:
    """``(url, token, where)``: each from the environment (``ALGOLINK_HUB_URL``, ``ALGOLINK_TOKEN``)
    when set, else from the user's config file; ``where`` says which, for messages."""
    url, token = os.environ.get("ALGOLINK_HUB_URL"), os.environ.get("ALGOLINK_TOKEN")
    where = "the environment"
    if not url or not token:
        config = load_config()
        if not url and config.get("hub_url"):
            url, where = str(config["hub_url"]), str(config_path())
        if not token and config.get("token"):
            token = str(config["token"])
    return url or None, token or None, where


class HubClient:
    """JSON over HTTP to one hub, errors turned into :class:`CLIError` sentences.

    The hub's URL and token come from the arguments, else the environment (``ALGOLINK_HUB_URL``,
    ``ALGOLINK_TOKEN``), else the user's config file (:func:`config_path`).
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None) -> None:
        if url is None or token is None:
            found_url, found_token, _ = hub_settings()
            url = url or found_url
            token = token if token is not None else found_token
        self.url = (url or DEFAULT_URL).rstrip("/")
        self.token = token

    def open(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
        timeout: Optional[float] = 120,
    ) -> Any:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if self.token:
            request.add_header("Authorization", f"token {self.token}")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                message = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode(errors="replace").strip() or e.reason
            if e.code == 401 and not self.token:
                message += " (set ALGOLINK_TOKEN)"
            raise HubRequestError(e.code, message) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise CLIError(
                f"Cannot reach the hub at {self.url} ({reason}): start it with `algolink hub`, or "
                "set ALGOLINK_HUB_URL to its address."
            ) from None

    def call(self, method: str, path: str, data: Any = None) -> Any:
        body = None if data is None else json.dumps(data).encode()
        with self.open(method, path, body, "application/json" if body else None) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def stream(self, path: str) -> Iterator[bytes]:
        """The lines of a streamed answer as they come."""
        with self.open("GET", path, timeout=None) as response:
            yield from response


class HubRequestError(CLIError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def split_service(text: str) -> tuple[str, str]:
    project, _, service = text.partition("/")
    if not project or not service or "/" in service:
        raise CLIError(f"{text!r} is not PROJECT/SERVICE: name a service as project/service.")
    return project, service


def service_path(project: str, service: str) -> str:
    return f"/api/v1/projects/{urllib.parse.quote(project)}/services/{urllib.parse.quote(service)}"


def pack_folder(folder: Path) -> bytes:
    """A bundle folder as a .tar.gz in memory, paths relative to the folder, caches left out."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in SKIP)
            for name in sorted(files):
                if name in SKIP or name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(root) / name
                if path.is_symlink():
                    raise CLIError(
                        f"{path} is a link: a bundle holds plain files only; copy what it points to."
                    )
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buf.getvalue()


def multipart(fields: dict, files: list) -> tuple[bytes, str]:
    """``multipart/form-data`` from text fields and ``(field, filename, bytes)`` files."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(str(value).encode() + b"\r\n")
    for name, filename, data in files:
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


# --- commands -------------------------------------------------------------------------------------


def ensure_project_group(
    client: HubClient, project: str, group: str, say: Callable[[str], Any] = print
) -> None:
    """Create the project and the group when the hub has not got them yet (``say`` tells which)."""
    quoted = urllib.parse.quote(project)
    try:
        client.call("GET", f"/api/v1/projects/{quoted}")
    except HubRequestError as e:
        if e.status != 404:
            raise
        client.call("POST", "/api/v1/projects", {"name": project})
        say(f"Created project {project}.")
    try:
        client.call("GET", f"/api/v1/projects/{quoted}/groups/{urllib.parse.quote(group)}")
    except HubRequestError as e:
        if e.status != 404:
            raise
        client.call("POST", f"/api/v1/projects/{quoted}/groups", {"name": group})
        say(f"Created group {group} in {project}.")


def register_dev(
    client: HubClient,
    project: str,
    group: str,
    name: str,
    url: str,
    token: Optional[str] = None,
    public: bool = False,
    say: Callable[[str], Any] = print,
) -> dict:
    """Register (or reconnect) a development-mode service backed by the model server at ``url``;
    the service's JSON. The project and group are created when missing."""
    ensure_project_group(client, project, group, say)
    body: dict = {"name": name, "group": group, "dev_url": url}
    if token:
        body["dev_token"] = token
    if public:
        body["public"] = "true"
    return client.call("POST", f"/api/v1/projects/{urllib.parse.quote(project)}/services", body)


def service_page_url(client: HubClient, service: dict) -> str:
    """The hub's page of ``service`` (its JSON)."""
    project, name = urllib.parse.quote(service["project"]), urllib.parse.quote(service["name"])
    return f"{client.url}/projects/{project}/services/{name}"


def dev_service_lines(client: HubClient, service: dict) -> list:
    """What to print once a development service is connected: its page and its /serve URL."""
    project, name = service["project"], service["name"]
    page = service_page_url(client, service)
    commands = ", ".join(c["name"] for c in (service.get("manifest") or {}).get("commands", []))
    return [
        f"Connected {project}/{name} in development mode to {service['dev_url']} "
        f"(commands: {commands or 'none yet'}).",
        f"Service page: {page}",
        f"Serve URL: {service['urls']['serve']}<command>",
    ]


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
        if not (bundle / "cloud_model.py").is_file():
            raise CLIError(f"{bundle} has no cloud_model.py: give a bundle folder or archive.")
        data, filename = pack_folder(bundle), f"{bundle.resolve().name}.tar.gz"
    elif bundle.is_file():
        data, filename = bundle.read_bytes(), bundle.name
    else:
        raise CLIError(f"{args.bundle} does not exist: give a bundle folder, .tar.gz or .zip.")
    project = urllib.parse.quote(args.project)
    ensure_project_group(client, args.project, args.group)
    fields: dict = {"name": args.name, "group": args.group}
    if args.port is not None:
        fields["port"] = args.port
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
        f"Registered {args.project}/{service['name']} (version 1, port {service['port']}): "
        f"publish it with `algolink publish {args.project}/{service['name']}`."
    )
    return 0


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


def cmd_publish(args: argparse.Namespace) -> int:
    client = HubClient()
    project, name = split_service(args.service)
    path = service_path(project, name)
    start = time.monotonic()
    body = {} if args.version is None else {"version": args.version}
    service = client.call("POST", f"{path}/publish", body)
    number = service["publishing"]
    print(f"Publishing {project}/{name} version {number}...", flush=True)
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
            f"({elapsed:.1f} s): {service['urls']['serve']}"
        )
        return 0
    raise CLIError(
        f"{project}/{name} version {number} is {version['status']}: "
        f"{version.get('error') or service.get('message') or 'see the log above'}"
    )


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
        print(f"  group {s['group']}, port {s['port']}, {'public' if s['public'] else 'token'}")
        if s["urls"]["api"]:
            print(f"  serving {s['api_version']} at {s['urls']['serve']}")
        for v in s["versions"]:
            api = v["api_version"] or "-"
            line = f"  version {v['number']}: {v['status']:<10} {api:<4} {v['created']}"
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
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_hub(args: argparse.Namespace) -> int:
    from algolink_jupyter.hub.app import run_from_args

    return run_from_args(args)


def add_commands(sub: Any) -> None:
    """The hub's subcommands of ``algolink``."""
    hub = sub.add_parser(
        "hub",
        help="run the AlgoLink hub",
        description="Run the AlgoLink hub: the REST API under /api/v1, /serve, and the service "
        "processes. SQLite in the data folder unless --db names PostgreSQL.",
    )
    add_hub_arguments(hub)
    hub.set_defaults(func=cmd_hub)

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
    reg.add_argument("--port", type=int, help="the service's port (default: a free one)")
    reg.add_argument("--metadata", help="JSON metadata that wins over the bundle's meta()")
    reg.add_argument("--image", action="append", help="a gallery image (repeatable)")
    reg.add_argument("--public", action="store_true", help="serve it without a token")
    reg.set_defaults(func=cmd_register)

    pub = sub.add_parser(
        "publish",
        help="publish (上线) a service version and follow its build",
        description="Build, start and health-check a version (the newest by default), following "
        "its log until it is online or failed. " + env_note,
    )
    pub.add_argument("service", metavar="PROJECT/SERVICE")
    pub.add_argument("--version", type=int, help="the version number (default: the newest)")
    pub.set_defaults(func=cmd_publish)

    logs = sub.add_parser("logs", help="show a service's build and run log", description=env_note)
    logs.add_argument("service", metavar="PROJECT/SERVICE")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing as it grows")
    logs.add_argument("--version", type=int, help="a version number (default: the published one)")
    logs.set_defaults(func=cmd_logs)

    status = sub.add_parser("status", help="show services and their status", description=env_note)
    status.add_argument("service", nargs="?", metavar="PROJECT/SERVICE")
    status.set_defaults(func=cmd_status)

    from .client_options import add_options_command

    add_options_command(sub)  # options P/S --set name=value --upload name=FILE
