"""``algolink predict TARGET command -i name=value -i photo=@x.png [-o out/]``: one call from the terminal,
through a hub (``PROJECT/SERVICE``), to a model server's URL, or to a local bundle folder (started on a
free loopback port for the call, as ``algolink serve`` would, and stopped after it), with
:class:`.calls.Client`."""

from __future__ import annotations

import argparse
import contextlib
import json
import mimetypes
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from ..errors import CLIError
from .calls import FILE_TYPES, Client, data_uri_bytes, declared

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def parse_input(name: str, text: str, kind: dict) -> Any:
    """A ``-i name=value`` value as its declared type wants it: ``@path`` is a file (its content for
    a file type, else its text), numbers and booleans as such, lists and objects as JSON."""
    type_name = kind.get("type")
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        if not path.exists():
            raise CLIError(f"-i {name}=@{text[1:]}: there is no file {text[1:]!r}.")
        if type_name in FILE_TYPES:
            return str(path)
        text = path.read_text(encoding="utf-8")
        if type_name in ("text", "category"):
            return text
        text = text.strip()
    if type_name in FILE_TYPES or type_name in ("text", "category"):
        return text
    if type_name == "boolean":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise CLIError(f"-i {name}={text}: {name} is a boolean; give true or false.")
    try:
        value = json.loads(text)
    except ValueError:
        if type_name == "any":
            return text
        raise CLIError(
            f"-i {name}={text}: {name} is a {type_name}; give it as JSON "
            + ("(a number)." if type_name == "number" else "(such as [1, 2, 3]).")
        ) from None
    return value


def save_outputs(spec: dict, outputs: dict, folder: Path) -> dict:
    """The outputs with each file-typed value (image, segmentation, file, directory; in arrays too)
    written under ``folder`` and replaced by its path."""
    types = declared(spec, "outputs")

    def save(kind: dict, value: Any, stem: str) -> Any:
        type_name = kind.get("type")
        if type_name == "array" and isinstance(value, list):
            item = kind.get("itemType") or {}
            return [save(item, v, f"{stem}-{i}") for i, v in enumerate(value)]
        if type_name not in FILE_TYPES or not isinstance(value, str):
            return value
        data, mime = data_uri_bytes(value)
        ext = ".zip" if type_name == "directory" else mimetypes.guess_extension(mime or "") or ""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}{ext}"
        path.write_bytes(data)
        return os.fspath(path)

    return {name: save(types.get(name) or {}, v, name) for name, v in outputs.items()}


def progress_line(progress: float, width: int = 30) -> str:
    """``[#########.....]  40%``: a command's progress as the terminal shows it."""
    done = round(max(0.0, min(1.0, progress)) * width)
    return f"[{'#' * done}{'.' * (width - done)}] {progress * 100:3.0f}%"


def run_with_progress(client: Client, names: tuple, inputs: dict) -> Any:
    """A command that yields, followed as it runs: its progress on stderr (one line redrawn on a
    terminal, a line per change otherwise), its final outputs returned."""
    err = sys.stderr
    tty = err.isatty()
    shown = None
    outputs: Any = None
    for event in client.stream_raw(*names, **inputs):
        if event.outputs is not None:
            outputs = event.outputs
        if event.progress is not None and event.progress != shown:
            shown = event.progress
            if tty:
                err.write("\r" + progress_line(shown))
            else:
                err.write(progress_line(shown) + "\n")
            err.flush()
    if tty and shown is not None:
        err.write("\n")
        err.flush()
    return outputs


def local_bundle(target: str) -> Optional[Path]:
    """The ``cloud_model.py`` of a TARGET that is a local bundle folder or that file, else None (a
    service's name or a URL). A folder without a cloud_model.py is an error, said as such."""
    if "://" in target:
        return None
    path = Path(target).expanduser()
    if path.is_dir():
        entry = path / "cloud_model.py"
        if not entry.is_file() and (path / "runway_model.py").is_file():
            entry = path / "runway_model.py"  # a Runway model's folder, served as it is
        if not entry.is_file():
            raise CLIError(
                f"{target} is a folder without a cloud_model.py: give a bundle folder (as "
                "`algolink export` writes it), a cloud_model.py, PROJECT/SERVICE or a URL."
            )
        return entry.resolve()
    if path.is_file() and path.suffix == ".py":
        return path.resolve()
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _last_line(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""


@contextlib.contextmanager
def served_bundle(entry: Path, timeout: float = 120) -> Iterator[str]:
    """Serve the bundle of ``entry`` (``algolink serve``, on a free loopback port) while the block runs;
    yields its URL. Its output goes to a log file, named in the error when it does not start, removed
    once it stopped after a good run."""
    port = free_port()
    fd, log_name = tempfile.mkstemp(prefix="algolink-predict-", suffix=".log")
    log = Path(log_name)
    command = [sys.executable, "-m", "algolink_jupyter.cli", "serve", str(entry)]
    command += ["--port", str(port), "--host", "127.0.0.1"]
    with os.fdopen(fd, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    url = f"http://127.0.0.1:{port}"
    keep_log = True
    try:
        started = time.monotonic()
        deadline = started + timeout
        said = False
        while True:
            if not said and time.monotonic() - started > 2:  # a slow setup: say what is happening
                print(
                    f"algolink: starting the bundle {entry.parent} on {url} (its setup runs "
                    "first; it is stopped after the call)...",
                    file=sys.stderr,
                    flush=True,
                )
                said = True
            code = process.poll()
            if code is not None:
                raise CLIError(
                    f"The bundle {entry.parent} did not start (its server exited with code {code}: "
                    f"{_last_line(log) or 'no output'}); see {log}, or run `algolink serve "
                    f"{entry.parent}` to watch it start."
                )
            try:
                with urllib.request.urlopen(f"{url}/healthcheck", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise CLIError(
                    f"The bundle {entry.parent} did not answer within {timeout:g} s "
                    f"({_last_line(log) or 'no output yet'}): give it longer with "
                    f"--start-timeout, or see {log}."
                )
            time.sleep(0.1)
        keep_log = False  # it started: its log is named nowhere, so it goes with it
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if not keep_log:
            log.unlink(missing_ok=True)


def cmd_predict(args: argparse.Namespace) -> int:
    entry = local_bundle(args.target)
    if entry is None:
        return predict(args, args.target)
    with served_bundle(entry, args.start_timeout) as url:
        return predict(args, url)


def predict(args: argparse.Namespace, target: str) -> int:
    if "://" in target:
        client = Client(url=target, token=args.token)
        names: tuple = (args.command,)
    else:
        client = Client(token=args.token)
        names = (target, args.command)
    spec = client.spec(*names)
    types = declared(spec, "inputs")
    inputs: dict = {}
    for item in args.input or []:
        name, eq, text = item.partition("=")
        if not eq or not name:
            raise CLIError(f"-i {item}: give each input as name=value (a file as name=@path).")
        if name not in types:
            known = ", ".join(types) or "none"
            raise CLIError(f"{args.command!r} has no input {name!r}; its inputs are: {known}.")
        inputs[name] = parse_input(name, text, types[name])
    if spec.get("streams"):
        outputs = run_with_progress(client, names, inputs)
    else:
        outputs = client.run_raw(*names, **inputs)
    if isinstance(outputs, dict):
        outputs = save_outputs(spec, outputs, Path(args.output).expanduser())
    print(json.dumps(outputs, indent=2, ensure_ascii=False))
    return 0


def add_predict_command(sub: Any) -> None:
    p = sub.add_parser(
        "predict",
        help="run a command of a service (or of a model server) once and print its outputs",
        description="Run one command: TARGET is PROJECT/SERVICE on the hub ($ALGOLINK_HUB_URL with "
        "$ALGOLINK_TOKEN, else the config `algolink login` writes) or the URL of a model server "
        "(python cloud_model.py), or a local bundle folder (or its cloud_model.py), which is "
        "served on a free loopback port for the call and stopped after it. Prints the outputs as "
        "JSON; image and file outputs are written to files under -o and their paths printed in "
        "their place. File inputs over 1 MiB are sent as multipart/form-data streamed from disk.",
    )
    p.add_argument(
        "target",
        metavar="TARGET",
        help="PROJECT/SERVICE (pinned: P/S/v2, P/S@alias), a model server's URL, or a local "
        "bundle folder",
    )
    p.add_argument("command", help="the command to run")
    p.add_argument(
        "-i",
        "--input",
        action="append",
        metavar="NAME=VALUE",
        help="an input (repeatable): name=value, a file as name=@path; lists as JSON",
    )
    p.add_argument(
        "-o",
        "--output",
        default=".",
        metavar="FOLDER",
        help="where image and file outputs are written (default: the current folder)",
    )
    p.add_argument("--token", help="the token (default: $ALGOLINK_TOKEN or the config file)")
    p.add_argument(
        "--start-timeout",
        type=float,
        default=120,
        metavar="SECONDS",
        help="how long a local bundle folder may take to start serving (default: 120)",
    )
    p.set_defaults(func=cmd_predict)
