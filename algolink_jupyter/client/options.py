"""``algolink options P/S [--set name=value] [--upload name=FILE] [--version N] [--publish]``.

Without ``--set`` or ``--upload`` it shows the service's setup options (type, default, limits,
description, value). Otherwise each file is streamed to the hub (with progress, resumed where it
stopped when the connection breaks), then the values make a new version of the service, published
like any other (``--publish`` does it at once).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

from ..errors import CLIError
from .core import HubClient, HubRequestError, service_path, split_service

#: Tries of one upload (each resumes where the previous one stopped).
TRIES = 3


class _Progress:
    """A file's bytes from ``offset``, read in blocks by http.client, with a progress line."""

    def __init__(self, path: Path, offset: int, size: int, label: str) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.file.seek(offset)
        self.done, self.size, self.label = offset, size, label
        self.last = 0.0

    def read(self, n: int = -1) -> bytes:
        data = self.file.read(n if n and n > 0 else 1 << 20)
        self.done += len(data)
        now = time.monotonic()
        if now - self.last > 0.5 or self.done >= self.size:
            self.last = now
            pct = 100 * self.done / self.size if self.size else 100
            print(
                f"\r{self.label}: {self.done / 2**20:.1f} / {self.size / 2**20:.1f} MB ({pct:.0f}%)",
                end="",
                file=sys.stderr,
                flush=True,
            )
        return data

    def close(self) -> None:
        self.file.close()


def upload_file(
    client: HubClient, path: str, option: str, file: Path, version: Optional[int] = None
) -> dict:
    """Stream ``file`` to the hub for ``option``; the value the option takes."""
    if not file.is_file():
        raise CLIError(f"{file} is not a file: give --upload {option}=PATH of an existing file.")
    size = file.stat().st_size
    body: dict = {"option": option, "filename": file.name, "size": size}
    if version is not None:
        body["version"] = version
    upload = client.call("POST", f"{path}/uploads", body)
    url = f"/api/v1/uploads/{upload['id']}"
    offset = 0
    for attempt in range(1, TRIES + 1):
        reader = _Progress(file, offset, size, f"Uploading {file.name}")
        try:
            with client.open(
                "PUT",
                f"{url}?offset={offset}",
                reader,  # type: ignore[arg-type]
                "application/octet-stream",
                timeout=None,
            ) as r:
                answer = json.loads(r.read())
        except HubRequestError:
            raise
        except CLIError:
            if attempt == TRIES:
                raise
            offset = client.call("GET", url)["offset"]
            print(f"\nConnection lost: resuming at {offset} bytes.", file=sys.stderr)
            continue
        finally:
            reader.close()
        print(file=sys.stderr)
        if answer.get("complete"):
            kept = "stored" if answer["stored"] == "new" else "already stored"
            print(f"Uploaded {file.name} for {option} ({kept}, sha256 {answer['sha256'][:12]}).")
            return answer["value"]
        offset = answer["offset"]
    raise CLIError(f"The upload of {file} did not finish: run the command again.")


def _value(text: str) -> Any:
    """JSON when it parses (3, true, [1, 2]), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(items: Optional[list], flag: str) -> list:
    out = []
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CLIError(
                f"{flag} {item!r} is not NAME=VALUE: write it like {flag} threshold=0.5."
            )
        out.append((name.strip(), value))
    return out


def _limits(option: dict) -> str:
    parts = []
    for key in ("min", "max", "step", "minLength", "maxLength", "oneOf", "extensions"):
        if option.get(key) not in (None, [], 0) or (key in ("min", "max") and option.get(key) == 0):
            parts.append(f"{key}={option[key]}")
    return ", ".join(parts)


def show(model: dict, project: str, name: str) -> None:
    options = model["options"]
    if not model.get("known"):
        print(
            f"{project}/{name} version {model['version']}: its options are not known yet (still "
            "building); try again when it is built."
        )
        return
    if not options:
        print(f"{project}/{name} version {model['version']} declares no setup options.")
        return
    print(f"{project}/{name} version {model['version']}:")
    for o in options:
        value = o.get("value")
        if isinstance(value, dict) and "filename" in value:
            shown = f"{value['filename']} ({value['file'][:12]})"
        elif value is None:
            shown = "default" + (f" ({o['default']!r})" if "default" in o else "")
        else:
            shown = json.dumps(value)
        limits = _limits(o)
        print(f"  {o['name']}: {o['type']} = {shown}" + (f"  [{limits}]" if limits else ""))
        if o.get("description"):
            print(f"      {o['description']}")


def cmd_options(args: argparse.Namespace) -> int:
    client = HubClient()
    project, name = split_service(args.service)
    path = service_path(project, name)
    values: dict = {n: _value(v) for n, v in _pairs(args.set, "--set")}
    uploads = _pairs(args.upload, "--upload")
    if not values and not uploads:
        query = f"?version={args.version}" if args.version else ""
        show(client.call("GET", f"{path}/options{query}"), project, name)
        return 0
    for option, file in uploads:
        values[option] = upload_file(
            client, path, option, Path(os.path.expanduser(file)), args.version
        )
    body: dict = {"values": values, "publish": bool(args.publish)}
    if args.version:
        body["version"] = args.version
    v = client.call("PUT", f"{path}/options", body)
    if args.publish:
        print(
            f"Version {v['number']} of {project}/{name} has the new options and is publishing: "
            f"follow it with `algolink logs {project}/{name} --version {v['number']} --follow`."
        )
    else:
        print(
            f"Version {v['number']} of {project}/{name} has the new options: publish it with "
            f"`algolink publish {project}/{name} --version {v['number']}`."
        )
    return 0


def add_options_command(sub: Any) -> None:
    opt = sub.add_parser(
        "options",
        help="show or set a service's setup options, uploading files they take",
        description="Show a service's setup options, or set them: --set name=value (JSON or "
        "text) and --upload name=FILE (streamed to the hub) make a new version with those values. "
        "Talks to $ALGOLINK_HUB_URL (default http://127.0.0.1:8800) with $ALGOLINK_TOKEN.",
    )
    opt.add_argument("service", metavar="PROJECT/SERVICE")
    opt.add_argument("--set", action="append", metavar="NAME=VALUE", help="repeatable")
    opt.add_argument("--upload", action="append", metavar="NAME=FILE", help="repeatable")
    opt.add_argument("--version", type=int, help="the version to start from (default: newest)")
    opt.add_argument("--publish", action="store_true", help="publish the new version at once")
    opt.set_defaults(func=cmd_options)
