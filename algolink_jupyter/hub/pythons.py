"""The Pythons on this machine a build may use: the hub's own, pyenv's, and those uv finds (never
downloaded)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = [
    "PythonInstall",
    "own_python",
    "pyenv_pythons",
    "uv_pythons",
    "version_matches",
    "version_tuple",
]


@dataclass(frozen=True)
class PythonInstall:
    """A Python interpreter on this machine that uv can build an environment with."""

    version: str  # e.g. "3.11.7"
    path: Path

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return version_tuple(self.version)


def version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for p in text.split("."):
        m = re.match(r"\d+", p)
        if not m:
            break
        parts.append(int(m.group()))
    return tuple(parts)


def own_python() -> Optional[PythonInstall]:
    """The Python the hub runs on (its base interpreter when the hub runs in a virtualenv)."""
    major, minor, micro = sys.version_info[:3]
    candidates = [
        getattr(sys, "_base_executable", None),
        os.path.join(sys.base_prefix, "bin", f"python{major}.{minor}"),
        sys.executable,
    ]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return PythonInstall(f"{major}.{minor}.{micro}", Path(c))
    return None


def pyenv_pythons(environ: dict[str, str]) -> list[PythonInstall]:
    """CPython versions installed by pyenv (its shims only run the selected one, so uv misses them)."""
    root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = []
    if root.is_dir():
        for d in root.iterdir():
            if not re.match(r"^\d+\.\d+(\.\d+)?$", d.name):
                continue
            major_minor = ".".join(d.name.split(".")[:2])
            exe = d / "bin" / f"python{major_minor}"
            if exe.is_file() and os.access(exe, os.X_OK):
                found.append(PythonInstall(d.name, exe))
    return found


def uv_pythons(uv: str, env: dict[str, str]) -> list[PythonInstall]:
    try:
        out = subprocess.run(
            [uv, "python", "list", "--only-installed", "--output-format", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        entries = json.loads(out.stdout or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    found = []
    for e in entries:
        if not isinstance(e, dict) or e.get("implementation", "cpython") != "cpython":
            continue
        version, path = e.get("version"), e.get("path")
        if isinstance(version, str) and isinstance(path, str) and "/shims/" not in path:
            found.append(PythonInstall(version, Path(path)))
    return found


def version_matches(request: str, version: str) -> bool:
    want = version_tuple(request)
    return version_tuple(version)[: len(want)] == want
