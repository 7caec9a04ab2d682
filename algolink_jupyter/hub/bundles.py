"""Bundles as the hub receives them: unpacked safely, hashed, stored by content, and configured.

A bundle (contract section 5) is a folder with ``cloud_model.py``, usually ``requirements.txt`` and
``algolink.yml``. The hub gets it as an uploaded archive; :func:`unpack_archive` extracts it without
trusting the archive (no absolute paths, no ``..``, no links or devices, limits on files and bytes
counted as they are written), :func:`bundle_root` finds the folder that holds ``cloud_model.py``,
:func:`store` copies it to ``<store_root>/<sha256>/`` where it never changes again, and
:func:`read_config` reads its ``algolink.yml`` with the defaults filled in.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional

from modelcloud.archives import zip_entry_count

__all__ = [
    "BundleConfig",
    "BundleError",
    "bundle_files",
    "bundle_hash",
    "bundle_root",
    "read_config",
    "store",
    "unpack_archive",
]

#: Names that are never part of a bundle's content: byte-code caches that running it writes, and the
#: litter of macOS archivers. They are left out of the hash and of the stored copy.
IGNORED_NAMES = frozenset({"__pycache__", "__MACOSX", ".DS_Store"})
IGNORED_SUFFIXES = (".pyc", ".pyo")

CONFIG_NAME = "algolink.yml"
ENTRY_NAME = "cloud_model.py"
#: A model written for Runway, laid out as Runway had it: the entry file when there is no cloud_model.py
#: (served by ``python runway_model.py``; ``runway`` is modelcloud's alias in the hub's environments).
RUNWAY_ENTRY_NAME = "runway_model.py"


def entry_name(folder: Path) -> Optional[str]:
    """The bundle's entry file in ``folder``: ``cloud_model.py``, else ``runway_model.py``, else None."""
    for name in (ENTRY_NAME, RUNWAY_ENTRY_NAME):
        if (Path(folder) / name).is_file():
            return name
    return None


_CHUNK = 1 << 16
#: The deepest folder and the longest path a bundle may hold (well within what file systems take).
MAX_DEPTH = 32
MAX_PATH = 1024
_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
_CUDA = re.compile(r"^\d+(\.\d+){0,2}$")


class BundleError(ValueError):
    """A bundle or archive the hub cannot take; the message says why and what to do. ``key`` and
    ``params`` name the sentence for the web pages' translations (``ERRORS[key]`` in the hub's i18n)."""

    def __init__(self, message: str, key: Optional[str] = None, **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


# --------------------------------------------------------------------------------------------------
# Unpacking


def unpack_archive(archive: Path, dest: Path, *, max_bytes: int, max_files: int) -> None:
    """Extract a .tar.gz, .tgz, .tar or .zip ``archive`` into ``dest``, which must not exist yet.

    The format is recognised from the content, not the name. Refused, with a :class:`BundleError`:
    absolute paths, ``..`` components, symbolic and hard links, devices and FIFOs, an entry listed
    twice, more than ``max_files`` entries, and more than ``max_bytes`` bytes of content, counted as
    they are decompressed (the sizes the archive declares are not trusted). Extraction happens in a
    temporary folder beside ``dest`` that is renamed into place at the end, so a failure leaves
    nothing behind. Files keep only their executable bit (0o755 or 0o644).
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise BundleError(f"{dest} already exists: unpack the bundle into a new folder.")
    if not archive.is_file():
        raise BundleError(f"{archive} does not exist: upload the bundle as a .tar.gz or .zip file.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpack-", dir=dest.parent))
    try:
        limits = _Limits(max_bytes=max_bytes, max_files=max_files)
        with open(archive, "rb") as f:
            magic = f.read(4)
        try:
            if (
                magic[:2] == b"PK"
            ):  # a zip starts with a local header (or is empty); a tar never does
                _unpack_zip(archive, tmp, limits)
            else:
                _unpack_tar(archive, tmp, limits)
        except OSError as e:  # what the file system refused (a name, a path): said, not a 500
            raise BundleError(
                f"The archive cannot be unpacked here ({e.strerror or e}): pack the bundle again "
                "with ordinary file names."
            ) from None
        if limits.files == 0:
            raise BundleError(
                "The archive is empty: pack the bundle folder with its cloud_model.py."
            )
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass
class _Limits:
    max_bytes: int
    max_files: int
    files: int = 0
    bytes: int = 0

    def add_entry(self) -> None:
        self.files += 1
        if self.files > self.max_files:
            raise BundleError(
                f"The archive has more than {self.max_files} files: leave out what the service "
                "does not need (caches, data sets) or ask the hub's administrator to raise the limit."
            )

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise BundleError(
                f"The archive unpacks to more than {_human(self.max_bytes)}: leave out what the "
                "service does not need or ask the hub's administrator to raise the limit."
            )


def _human(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def _safe_relpath(name: str) -> Optional[str]:
    """The entry's path relative to the bundle, or None for the root itself; refuses escapes."""
    if "\x00" in name:
        raise BundleError(f"The archive entry {name!r} has a NUL character in its name: repack it.")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise BundleError(
            f"The archive entry {name!r} has an absolute path: pack the bundle with paths relative "
            "to its folder (e.g. tar -czf bundle.tar.gz -C bundle .)."
        )
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BundleError(
            f"The archive entry {name!r} points outside the bundle with '..': pack the bundle "
            "with paths inside its folder."
        )
    rel = "/".join(parts)
    if len(parts) > MAX_DEPTH or len(rel) > MAX_PATH or any(len(p) > 255 for p in parts):
        shown = rel if len(rel) <= 80 else rel[:60] + "..." + rel[-17:]
        raise BundleError(
            f"The archive entry {shown!r} is {len(parts)} folders deep and {len(rel)} characters "
            f"long: bundles hold paths of at most {MAX_DEPTH} folders and {MAX_PATH} characters; "
            "pack the bundle again with shorter paths."
        )
    return rel or None


def _write_member(
    src: IO[bytes], target: Path, rel: str, executable: bool, limits: _Limits
) -> None:
    _make_dir(target.parent, rel)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise BundleError(
            f"The archive lists {rel!r} twice: pack the bundle folder again."
        ) from None
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            limits.add_bytes(len(chunk))
            out.write(chunk)
    os.chmod(target, 0o755 if executable else 0o644)


def _make_dir(target: Path, rel: str) -> None:
    try:
        target.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BundleError(
            f"The archive puts {rel!r} inside something that is a file: pack the bundle folder again."
        ) from None


def _unpack_tar(archive: Path, dest: Path, limits: _Limits) -> None:
    try:
        tf = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BundleError(
            f"{archive.name} is not a .tar.gz, .tgz, .tar or .zip archive ({e}): upload one of those.",
            "not_archive",
        ) from None
    with tf:
        try:
            # First the headers, one at a time, with nothing written: the entries and the sizes
            # they declare must fit, so a bomb is refused before its first byte reaches the disk.
            declared = _Limits(max_bytes=limits.max_bytes, max_files=limits.max_files)
            for member in tf:
                declared.add_entry()
                _safe_relpath(member.name)
                declared.add_bytes(member.size if member.isreg() else 0)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise BundleError(
                f"{archive.name} is damaged or truncated ({e}): pack and upload it again."
            ) from None
    try:
        tf = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError) as e:  # pragma: no cover - it opened just now
        raise BundleError(f"{archive.name} cannot be read again ({e}).") from None
    with tf:
        try:
            for member in tf:  # streamed: headers are read one at a time, never all at once
                limits.add_entry()
                rel = _safe_relpath(member.name)
                if member.issym() or member.islnk():
                    raise BundleError(
                        f"The archive entry {member.name!r} is a link: bundles may hold only "
                        "regular files and folders; replace the link by the file itself."
                    )
                if not (member.isreg() or member.isdir()):
                    raise BundleError(
                        f"The archive entry {member.name!r} is a device or FIFO: bundles may hold "
                        "only regular files and folders."
                    )
                if rel is None:
                    continue
                target = dest / rel
                if member.isdir():
                    _make_dir(target, rel)
                    continue
                src = tf.extractfile(member)
                if src is None:  # pragma: no cover - isreg() members always have content
                    continue
                with src:
                    _write_member(src, target, rel, bool(member.mode & 0o111), limits)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise BundleError(
                f"{archive.name} is damaged or truncated ({e}): pack and upload it again."
            ) from None


def _unpack_zip(archive: Path, dest: Path, limits: _Limits) -> None:
    with open(archive, "rb") as f:
        count = zip_entry_count(f)
    if count is not None and count > limits.max_files:  # before zipfile reads every entry
        limits.files = count - 1
        limits.add_entry()
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise BundleError(
            f"{archive.name} is not a readable .zip archive ({e}): pack it again."
        ) from None
    with zf:
        declared = _Limits(max_bytes=limits.max_bytes, max_files=limits.max_files)
        for info in zf.infolist():  # the sizes the archive declares, before a byte is written
            declared.add_entry()
            declared.add_bytes(info.file_size)
        try:
            for info in zf.infolist():
                limits.add_entry()
                rel = _safe_relpath(info.filename)
                mode = (info.external_attr >> 16) & 0xFFFF
                kind = stat.S_IFMT(mode)
                if kind == stat.S_IFLNK:
                    raise BundleError(
                        f"The archive entry {info.filename!r} is a link: bundles may hold only "
                        "regular files and folders; replace the link by the file itself."
                    )
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise BundleError(
                        f"The archive entry {info.filename!r} is a device or FIFO: bundles may "
                        "hold only regular files and folders."
                    )
                if rel is None:
                    continue
                target = dest / rel
                if info.is_dir() or kind == stat.S_IFDIR:
                    _make_dir(target, rel)
                    continue
                with zf.open(info) as src:
                    _write_member(src, target, rel, bool(mode & 0o111), limits)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as e:
            raise BundleError(
                f"{archive.name} is damaged ({e}): pack and upload it again."
            ) from None
        except RuntimeError as e:  # encrypted entries
            raise BundleError(
                f"{archive.name} cannot be read ({e}): upload an archive without a password."
            ) from None


def bundle_root(folder: Path) -> Path:
    """The folder that holds ``cloud_model.py``: ``folder`` itself, or its one top-level subfolder.

    Archives are often packed with the bundle's own folder inside (``bundle/cloud_model.py``); both
    layouts are accepted. Anything else is a :class:`BundleError`.
    """
    folder = Path(folder)
    if entry_name(folder):
        return folder
    children = [c for c in folder.iterdir() if c.name not in IGNORED_NAMES]
    if len(children) == 1 and children[0].is_dir() and entry_name(children[0]):
        return children[0]
    raise BundleError(
        f"The bundle has no {ENTRY_NAME} at its top: put the service's {ENTRY_NAME} (or a Runway "
        f"model's {RUNWAY_ENTRY_NAME}) at the top of the bundle folder (or in its only subfolder) "
        "and pack it again.",
        "no_entry",
    )


# --------------------------------------------------------------------------------------------------
# Hashing and storing


def bundle_files(folder: Path) -> list[tuple[str, Path]]:
    """``(relative posix path, path)`` of every file of a bundle, sorted by relative path.

    ``__pycache__``, ``*.pyc``, ``__MACOSX`` and ``.DS_Store`` are left out; a symbolic link or a
    special file is a :class:`BundleError` (a stored bundle holds only plain files).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"{folder} is not a folder: give the bundle's folder.")
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        for d in list(dirs):
            p = root_path / d
            if d in IGNORED_NAMES:
                dirs.remove(d)
            elif p.is_symlink():
                raise BundleError(
                    f"{p.relative_to(folder)} is a link: a bundle may hold only plain files and "
                    "folders; copy what it points to instead."
                )
        for f in files:
            if f in IGNORED_NAMES or f.endswith(IGNORED_SUFFIXES):
                continue
            p = root_path / f
            st = p.lstat()
            if not stat.S_ISREG(st.st_mode):
                raise BundleError(
                    f"{p.relative_to(folder)} is a link or special file: a bundle may hold only "
                    "plain files and folders; copy what it points to instead."
                )
            found.append((p.relative_to(folder).as_posix(), p))
    found.sort(key=lambda item: item[0])
    return found


def _hash_files(files: list[tuple[str, Path]], copy_to: Optional[Path] = None) -> str:
    h = hashlib.sha256()
    for rel, path in files:
        with open(path, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + str(size).encode() + b"\0")
            out = None
            if copy_to is not None:
                target = copy_to / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                out = open(target, "wb")  # noqa: SIM115 - closed below
            try:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
                    if out is not None:
                        out.write(chunk)
            finally:
                if out is not None:
                    out.close()
                    os.chmod(target, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)
        h.update(b"\0")
    return h.hexdigest()


def bundle_hash(folder: Path) -> str:
    """The bundle's sha256 (64 hex digits) over its sorted relative paths, sizes and contents.

    Stable across machines and copies: timestamps, permissions and the files :func:`bundle_files`
    leaves out (byte-code caches) do not change it.
    """
    return _hash_files(bundle_files(folder))


def store(folder: Path, store_root: Path) -> tuple[str, Path]:
    """Copy a bundle into ``store_root/<hash>/`` and return ``(hash, path)``.

    Idempotent: a bundle already stored is not copied again. The copy is made in a temporary folder
    in ``store_root`` and renamed into place, so a stored bundle is always complete; two hubs or tasks
    storing the same bundle at once both end with the same folder. If the source changes while it is
    copied, the copy is discarded and a :class:`BundleError` says so.
    """
    folder, store_root = Path(folder), Path(store_root)
    files = bundle_files(folder)
    digest = _hash_files(files)
    final = store_root / digest
    if final.is_dir():
        return digest, final
    store_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{digest[:12]}-", dir=store_root))
    try:
        copied = _hash_files(files, copy_to=tmp)
        if copied != digest:
            raise BundleError(
                f"{folder} changed while it was being stored: store it again once it is complete."
            )
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # stored meanwhile by someone else
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return digest, final


# --------------------------------------------------------------------------------------------------
# algolink.yml


def hub_python() -> str:
    """The hub's own Python as ``major.minor``: the default for bundles that name none."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass
class Scaling:
    """What ``algolink.yml`` asks of the machines that run a version: ``replicas`` (a number, or
    ``autoscaling``: ``min``, ``max``, ``target`` requests in progress per replica,
    ``upscale_delay`` and ``downscale_delay`` in seconds), ``gpus`` and ``cpus`` per replica
    (fractions allowed), ``memory`` per replica in bytes and ``max_ongoing_requests`` per replica.
    None: not asked (the backend's default)."""

    replicas: Optional[int] = None
    autoscaling: Optional[dict] = None
    gpus: Optional[float] = None
    cpus: Optional[float] = None
    memory: Optional[int] = None
    max_ongoing_requests: Optional[int] = None
    #: ``replica: in_process``: on Ray, the bundle's code runs in the replica's own process.
    in_process: bool = False

    def to_dict(self) -> dict[str, Any]:
        replicas: Any = self.replicas
        if self.autoscaling is not None:
            replicas = dict(self.autoscaling)
        found = {
            "replicas": replicas,
            "gpus": self.gpus,
            "cpus": self.cpus,
            "memory": self.memory,
            "max_ongoing_requests": self.max_ongoing_requests,
            "replica": "in_process" if self.in_process else None,
        }
        return {k: v for k, v in found.items() if v is not None}


@dataclass
class BundleConfig:
    """A bundle's build and run configuration (``algolink.yml`` with the defaults filled in).

    ``warnings`` lists what was accepted but deserves a look (a ``python: 3.1`` read as 3.10, keys the
    hub does not know); the builder writes them into the build log.
    """

    python: str
    cuda: Optional[str] = None
    entrypoint: str = "python cloud_model.py"
    build_steps: list[str] = field(default_factory=list)
    port: Optional[int] = None
    #: How it runs on a cluster (``replicas``, ``gpus``, ``cpus``, ``memory``,
    #: ``max_ongoing_requests``): see :class:`Scaling`.
    scaling: Scaling = field(default_factory=Scaling)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "cuda": self.cuda,
            "entrypoint": self.entrypoint,
            "build_steps": list(self.build_steps),
            "port": self.port,
            **self.scaling.to_dict(),
        }


SCALING_KEYS = ("replicas", "gpus", "cpus", "memory", "max_ongoing_requests", "replica")
AUTOSCALING_KEYS = ("min", "max", "target", "upscale_delay", "downscale_delay")
_KNOWN_KEYS = ("python", "cuda", "entrypoint", "build_steps", "port", *SCALING_KEYS)
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)


def _number(name: str, value: Any, *, whole: bool = False, low: float = 0, example: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BundleError(
            f"{CONFIG_NAME}: {name} must be a number such as {example}, got {value!r}."
        )
    if whole and value != int(value):
        raise BundleError(
            f"{CONFIG_NAME}: {name} must be a whole number such as {example}, got {value!r}."
        )
    if value < low:
        raise BundleError(
            f"{CONFIG_NAME}: {name} must be at least {low:g} (such as {example}), got {value!r}."
        )
    return int(value) if whole else float(value)


def _memory(value: Any) -> int:
    """Bytes from ``2GiB``, ``512M``, ``1.5G`` or a number of bytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(_number("memory", value, low=1, example="'2GiB'"))
    m = _MEMORY.match(value) if isinstance(value, str) else None
    if m is None:
        raise BundleError(
            f"{CONFIG_NAME}: memory must be a size such as '2GiB', '512MiB' or '1.5G', "
            f"got {value!r}."
        )
    unit = (m.group(2) or "").upper().rstrip("B")
    base = 1024 if unit.endswith("I") else 1000
    power = " KMGT".index(unit[:1]) if unit else 0
    size = int(float(m.group(1)) * base**power)
    if size < 1:
        raise BundleError(f"{CONFIG_NAME}: memory must be more than 0 bytes, got {value!r}.")
    return size


def read_scaling(data: dict) -> Scaling:
    """The scaling settings of an ``algolink.yml`` mapping; a :class:`BundleError` names a bad one."""
    scaling = Scaling()
    replicas = data.get("replicas")
    if isinstance(replicas, dict):
        unknown = sorted(str(k) for k in replicas if k not in AUTOSCALING_KEYS)
        if unknown:
            raise BundleError(
                f"{CONFIG_NAME}: replicas: has no setting {', '.join(unknown)}; autoscaling takes "
                f"{', '.join(AUTOSCALING_KEYS)} (e.g. replicas: {{min: 1, max: 4, target: 2}})."
            )
        low = _number("replicas: min", replicas.get("min", 1), whole=True, example="1")
        high = _number(
            "replicas: max", replicas.get("max", max(low, 1)), whole=True, low=1, example="4"
        )
        if high < low:
            raise BundleError(
                f"{CONFIG_NAME}: replicas: max ({high}) must be at least min ({low})."
            )
        auto = {"min": low, "max": high}
        for key, example in (("target", "2"), ("upscale_delay", "30"), ("downscale_delay", "600")):
            if replicas.get(key) is not None:
                auto[key] = _number(f"replicas: {key}", replicas[key], example=example)
        if auto.get("target") == 0:
            raise BundleError(f"{CONFIG_NAME}: replicas: target must be more than 0.")
        scaling.autoscaling = auto
    elif replicas is not None:
        scaling.replicas = _number("replicas", replicas, whole=True, low=1, example="2")
    if data.get("gpus") is not None:
        scaling.gpus = _number("gpus", data["gpus"], example="1 or 0.5")
    if data.get("cpus") is not None:
        scaling.cpus = _number("cpus", data["cpus"], example="2 or 0.5")
    if data.get("memory") is not None:
        scaling.memory = _memory(data["memory"])
    if data.get("max_ongoing_requests") is not None:
        scaling.max_ongoing_requests = _number(
            "max_ongoing_requests", data["max_ongoing_requests"], whole=True, low=1, example="16"
        )
    if data.get("replica") is not None:
        if data["replica"] not in ("child", "in_process"):
            raise BundleError(
                f"{CONFIG_NAME}: replica must be child (the default: the bundle's server as a "
                f"process of its own) or in_process, got {data['replica']!r}."
            )
        scaling.in_process = data["replica"] == "in_process"
    return scaling


def _version_field(name: str, value: Any, pattern: re.Pattern, example: str, warnings: list) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BundleError(
            f"{CONFIG_NAME}: {name} must be a version in quotes such as {example!r}, got {value!r}."
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BundleError(f"{CONFIG_NAME}: {name} must be a version such as {example!r}.")
        text = repr(value)
        if name == "python" and text == "3.1":
            # YAML reads an unquoted 3.10 as the number 3.1; nobody builds for Python 3.1.
            warnings.append(
                f'{CONFIG_NAME}: python: 3.1 was read by YAML as the number 3.1 and taken as "3.10"; '
                'write python: "3.10" (in quotes) to say so exactly.'
            )
            text = "3.10"
        elif name == "python":
            warnings.append(
                f"{CONFIG_NAME}: python: {text} is a number in YAML; it was taken as "
                f'"{text}", but quote it ("{text}") so that versions like 3.10 stay exact.'
            )
    else:
        text = str(value).strip()
    if not pattern.match(text):
        raise BundleError(
            f"{CONFIG_NAME}: {name} must be a version such as {example!r}, got {value!r}."
        )
    return text


def read_config(bundle_dir: Path) -> BundleConfig:
    """The bundle's configuration: its ``algolink.yml`` (optional) over the defaults.

    Defaults: ``python`` the hub's own ``major.minor``, ``cuda`` None, ``entrypoint``
    ``python cloud_model.py`` (``python runway_model.py`` for a Runway model's folder), ``build_steps`` ``["pip install -r requirements.txt"]`` when the bundle
    has a requirements.txt (else none), ``port`` None. ``python`` may be a number (``3.11``); an
    unquoted ``3.10``, which YAML reads as 3.1, is taken as "3.10" with a warning. A missing
    ``cloud_model.py``, invalid YAML or a field of the wrong type is a :class:`BundleError` that names
    the field.
    """
    import yaml

    bundle_dir = Path(bundle_dir)
    entry = entry_name(bundle_dir)
    if entry is None:
        raise BundleError(
            f"The bundle has no {ENTRY_NAME}: add the service's {ENTRY_NAME} at the top of the "
            "bundle folder."
        )
    has_requirements = (bundle_dir / "requirements.txt").is_file()
    config = BundleConfig(
        python=hub_python(),
        entrypoint=f"python {entry}",
        build_steps=["pip install -r requirements.txt"] if has_requirements else [],
    )
    path = bundle_dir / CONFIG_NAME
    if not path.is_file():
        return config
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BundleError(f"{CONFIG_NAME} is not UTF-8 text: save it as UTF-8.") from None
    except yaml.YAMLError as e:
        where = ""
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise BundleError(
            f"{CONFIG_NAME} is not valid YAML ({problem}{where}): fix it, or remove it to use "
            "the defaults."
        ) from None
    if data is None:
        return config
    if not isinstance(data, dict):
        raise BundleError(
            f"{CONFIG_NAME} must be a mapping of settings (python:, entrypoint:, build_steps:, ...), "
            f"not a {type(data).__name__}."
        )
    warnings = config.warnings
    unknown = sorted(str(k) for k in data if k not in _KNOWN_KEYS)
    if unknown:
        warnings.append(
            f"{CONFIG_NAME}: ignored unknown setting(s) {', '.join(unknown)}; "
            f"the known ones are {', '.join(_KNOWN_KEYS)}."
        )
    if data.get("python") is not None:
        config.python = _version_field("python", data["python"], _VERSION, "3.11", warnings)
    if data.get("cuda") is not None:
        config.cuda = _version_field("cuda", data["cuda"], _CUDA, "12.4", warnings)
    if "entrypoint" in data:
        entry = data["entrypoint"]
        if not isinstance(entry, str) or not entry.strip():
            raise BundleError(
                f"{CONFIG_NAME}: entrypoint must be a command line such as "
                f"'python cloud_model.py', got {entry!r}."
            )
        config.entrypoint = entry.strip()
    if "build_steps" in data:
        steps = data["build_steps"]
        if steps is None:
            steps = []
        if not isinstance(steps, list) or not all(isinstance(s, str) and s.strip() for s in steps):
            raise BundleError(
                f"{CONFIG_NAME}: build_steps must be a list of shell commands, e.g. "
                f"['pip install -r requirements.txt'], got {steps!r}."
            )
        config.build_steps = [s.strip() for s in steps]
    if data.get("port") is not None:
        port = data["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise BundleError(
                f"{CONFIG_NAME}: port must be a whole number between 1 and 65535, got {port!r}."
            )
        config.port = port
    config.scaling = read_scaling(data)
    return config
