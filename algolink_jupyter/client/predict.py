"""``algolink predict TARGET command -i name=value -i photo=@x.png [-o out/]``: one call from the terminal,
through a hub (``PROJECT/SERVICE``) or to a model server's URL, with :class:`.calls.Client`."""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
from pathlib import Path
from typing import Any

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


def cmd_predict(args: argparse.Namespace) -> int:
    target = args.target
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
        "(python cloud_model.py). Prints the outputs as JSON; image and file outputs are written "
        "to files under -o and their paths printed in their place.",
    )
    p.add_argument(
        "target",
        metavar="TARGET",
        help="PROJECT/SERVICE (pinned: P/S/v2, P/S@alias), or a model server's URL",
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
    p.set_defaults(func=cmd_predict)
