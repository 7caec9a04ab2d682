"""The ``modelcloud`` runtime as a wheel: what the hub installs into every service environment and what
an export's verification installs, with no network.

The wheel is made from the ``modelcloud`` this Python imports (its files and its distribution's
metadata), so what a service runs is what the hub and the notebook run. Its version carries the hash of
those files as a local label (``0.1.0+1a2b3c4d``): a bundle's ``modelcloud==0.1.0`` takes it, and a
changed runtime is a new file that no installer's cache confuses with the old one. Made once per hash
in the folder given.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import tempfile
import zipfile
from pathlib import Path

import modelcloud

__all__ = ["RUNTIME_NAME", "requirement", "runtime_hash", "runtime_version", "wheel"]

RUNTIME_NAME = "modelcloud"
_SKIP_SUFFIXES = (".pyc", ".pyo")
#: The folder of the runtime that holds its ``runway`` alias package, and the .pth that lists it
#: (modelcloud.compat describes both).
_RUNWAY_ALIAS = "modelcloud/runway_alias"
_RUNWAY_PTH = "modelcloud-runway-alias.pth"


def runtime_version() -> str:
    """The version of the ``modelcloud`` this Python imports (``0.1.0``)."""
    return modelcloud.__version__


def requirement() -> str:
    """The line a bundle's requirements.txt names the runtime with (``modelcloud==0.1.0``)."""
    return f"{RUNTIME_NAME}=={runtime_version()}"


def _files() -> list:
    root = Path(modelcloud.__file__).resolve().parent
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in _SKIP_SUFFIXES:
            found.append((Path("modelcloud") / path.relative_to(root)).as_posix())
    return [(name, root.parent / name) for name in found]


def runtime_hash() -> str:
    """A hash of the runtime's files (names and contents)."""
    digest = hashlib.sha256()
    for name, path in _files():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _requires() -> list:
    try:
        return importlib.metadata.requires(RUNTIME_NAME) or []
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        return ["tornado>=6.3", "pillow>=10.0", "numpy>=1.24", "pyyaml>=6.0"]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel(folder: Path) -> Path:
    """The runtime's wheel in ``folder`` (made when it is not there yet): its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    version = f"{runtime_version()}+{runtime_hash()[:12]}"
    target = folder / f"{RUNTIME_NAME}-{version}-py3-none-any.whl"
    if target.is_file():
        return target
    info = f"{RUNTIME_NAME}-{version}.dist-info"
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {RUNTIME_NAME}\n"
        f"Version: {version}\n"
        "Summary: The AlgoLink runtime SDK (made by AlgoLink from the installed modelcloud).\n"
        "Requires-Python: >=3.9\n" + "".join(f"Requires-Dist: {r}\n" for r in _requires())
    )
    wheel_file = (
        "Wheel-Version: 1.0\nGenerator: algolink_jupyter.runtime\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    records = []
    fd, tmp = tempfile.mkstemp(prefix=".runtime-", suffix=".whl", dir=folder)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, path in _files():
                data = path.read_bytes()
                zf.writestr(name, data)
                records.append(f"{name},{_record_hash(data)},{len(data)}")
            if any(name.startswith(_RUNWAY_ALIAS + "/") for name, _path in _files()):
                # `import runway` finds modelcloud's alias in the hub's environments: a path line,
                # after site-packages, so that an installed runway-python wins.
                data = (_RUNWAY_ALIAS + "\n").encode()
                zf.writestr(_RUNWAY_PTH, data)
                records.append(f"{_RUNWAY_PTH},{_record_hash(data)},{len(data)}")
            for name, text in (("METADATA", metadata), ("WHEEL", wheel_file)):
                data = text.encode()
                zf.writestr(f"{info}/{name}", data)
                records.append(f"{info}/{name},{_record_hash(data)},{len(data)}")
            records.append(f"{info}/RECORD,,")
            zf.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
