"""The file a serving kernel leaves in Jupyter's runtime directory so that the Jupyter server extension
can find its port and token: ``<runtime_dir>/algolink-kernel-<kernel_id>.json`` (mode 600).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

PREFIX = "algolink-kernel-"


def runtime_dir() -> Path:
    """Where announcements go: beside the kernel's connection file when it was started by a Jupyter
    server (that is the server's runtime directory, even with --ServerApp.runtime_dir), else Jupyter's
    runtime directory."""
    from jupyter_core.paths import jupyter_runtime_dir

    try:
        from ipykernel.connect import get_connection_file

        connection = Path(get_connection_file())
        if connection.name.startswith("kernel-") and connection.parent.is_dir():
            return connection.parent
    except Exception:
        pass
    return Path(jupyter_runtime_dir())


def kernel_id() -> Optional[str]:
    """The running kernel's id, from its connection file name (``kernel-<id>.json``)."""
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:
        return None
    m = re.match(r"kernel-(.+)\.json$", name)
    if m:
        return m.group(1)
    # Not started by a Jupyter server (jupyter_client's temporary connection file): use the file's name.
    return os.path.splitext(name)[0] or None


def path_for(kid: str, directory: Optional[Path] = None) -> Path:
    return (directory or runtime_dir()) / f"{PREFIX}{kid}.json"


def write(kid: str, info: dict, directory: Optional[Path] = None) -> Path:
    path = path_for(kid, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path)
    return path


def remove(kid: str, directory: Optional[Path] = None) -> None:
    try:
        path_for(kid, directory).unlink()
    except FileNotFoundError:
        pass


def read(kid: str, directory: Optional[Path] = None) -> Optional[dict]:
    """The announcement of a kernel, or None when it has none or its process is gone."""
    try:
        info = json.loads(path_for(kid, directory).read_text())
    except (OSError, ValueError):
        return None
    pid = info.get("pid")
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return info


def read_all(directory: Optional[Path] = None) -> dict:
    """Every live announcement, by kernel id."""
    d = directory or runtime_dir()
    out = {}
    for path in sorted(d.glob(f"{PREFIX}*.json")):
        kid = path.name[len(PREFIX) : -len(".json")]
        info = read(kid, d)
        if info is not None:
            out[kid] = info
    return out
