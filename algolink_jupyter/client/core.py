"""The hub's HTTP client: settings, requests, and the steps the commands and the notebook share.

Only the standard library: it talks to ``$ALGOLINK_HUB_URL`` (default ``http://127.0.0.1:8800``) with
``$ALGOLINK_TOKEN`` (or the user's config file), and imports nothing of the hub's server side.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

from ..errors import CLIError

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


def print_table(rows: list) -> None:
    """Rows of text, the first a header, in columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


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
