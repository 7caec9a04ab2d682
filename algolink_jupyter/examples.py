"""Recorded examples: a command's inputs and outputs, saved from the test form, replayed by export.

Each example is one JSON file, ``<directory>/<command>/<NNN>.json``, holding
``{"command", "inputs", "outputs", "created"}``. Inputs and outputs are WIRE values, exactly what an
HTTP client sends and receives (images as data URIs, files as ``{"filename", "data"}``), so that replaying
an example against a bundle is one POST per file. The directory is relative to the working directory,
which in a kernel is the notebook's folder: the examples travel with the notebook.
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Optional, Union

#: Where examples go by default, next to the notebook.
DEFAULT_DIR = "algolink_examples"

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_FILE_RE = re.compile(r"^(\d+)\.json$")


def _check_command(command: str) -> str:
    # The name becomes a folder: the registry's own rule keeps it from escaping the directory.
    if not isinstance(command, str) or not _NAME_RE.match(command):
        raise ValueError(
            f"command name {command!r} may only hold letters, digits, '_' and '-' "
            "(it names the examples folder)"
        )
    return command


def _numbered(folder: Path) -> list:
    """``(number, path)`` of the example files in ``folder``, in order."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _FILE_RE.match(p.name))]
    return sorted(found)


def save(
    command: str,
    inputs: dict,
    outputs: dict,
    directory: Union[str, Path] = DEFAULT_DIR,
) -> Path:
    """Write one example and return its path; an existing example is never overwritten."""
    folder = Path(directory) / _check_command(command)
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "command": command,
        "inputs": inputs,
        "outputs": outputs,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"  # TypeError if not JSON
    existing = _numbered(folder)
    number = existing[-1][0] + 1 if existing else 1
    while True:
        path = folder / f"{number:03d}.json"
        try:
            with open(
                path, "x", encoding="utf-8"
            ) as f:  # "x": a concurrent save takes the next one
                f.write(text)
            return path
        except FileExistsError:
            number += 1


def load(command: Optional[str] = None, directory: Union[str, Path] = DEFAULT_DIR) -> list:
    """The saved examples of ``command`` (or of every command, by command name), oldest first."""
    root = Path(directory)
    if command is not None:
        folders = [root / _check_command(command)]
    elif root.is_dir():
        folders = sorted(p for p in root.iterdir() if p.is_dir() and _NAME_RE.match(p.name))
    else:
        folders = []
    examples = []
    for folder in folders:
        for _number, path in _numbered(folder):
            with open(path, encoding="utf-8") as f:
                examples.append(json.load(f))
    return examples
