"""A version's container image, written as an OCI archive without a daemon.

The image's layers, bottom first, each a plain (uncompressed, deterministic) tar kept in a cache by
key, so a rebuild writes only what changed:

1. **os**: a Debian root made by ``debootstrap --variant=minbase`` with the shared libraries the
   Python needs (found with ``ldd`` and ``dpkg -S``), ``ca-certificates`` and ``libgomp1``, and the
   image's user (``algolink``, uid 10001). Keyed by the Debian suite and the packages. With
   ``--base IMAGE`` the layers of that image (fetched with ``skopeo``) take its place.
2. **python**: the interpreter the environment was made from, at the same path (the environment's
   ``bin/python`` points at it): its prefix less ``site-packages`` and the test suite. Debian's own
   ``/usr/bin/python3.X`` comes with the os layer instead.
3. **cuda** (when ``cuda:`` is set and the environment does not carry NVIDIA's libraries already):
   the CUDA runtime, cuBLAS and cuDNN wheels from PyPI in ``/opt/algolink/cuda`` (see
   :data:`CUDA_WHEELS`), on ``LD_LIBRARY_PATH``.
4. **dependencies**: the locked environment the hub built and verified, as it is, at its path.
5. **models**: the files of ``models/`` (a code change does not re-ship the weights).
6. **app**: the rest of the bundle (less :data:`..dockerfile.IGNORED`) in ``/srv/algolink/app``,
   after its build steps ran, owned by the image's user.

The archive holds an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``) and Docker's
``manifest.json`` beside it, as ``docker save`` writes since Docker 25: ``docker load`` (every version),
``podman load`` and ``skopeo`` (``oci-archive:``) read it.

The cache (:class:`LayerCache`) keeps within ``$ALGOLINK_IMAGE_CACHE_BUDGET`` (:func:`cache_budget`):
after each build, what was used least recently goes first, never what that build used.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import budget
from .. import dockerfile as df
from ..budget import size_words
from .builder import COMPLETE_MARKER
from .pythons import version_tuple

__all__ = [
    "CUDA_WHEELS",
    "ImageError",
    "ImageResult",
    "ImageSpec",
    "Layer",
    "LayerCache",
    "LayerFile",
    "build_image",
    "cache_budget",
    "cache_root",
    "cuda_wheels",
    "push",
]

FORMAT = 1
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
#: A file of models/ this large or larger goes into the models layer (every one, by default).
MODEL_FILE_BYTES = 0
ALWAYS_PACKAGES = ("ca-certificates", "libgomp1")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CUDA_DIR = "/opt/algolink/cuda"
#: ``cuda:`` in algolink.yml (its major.minor) -> the wheels from PyPI the cuda layer installs.
CUDA_WHEELS = {
    "11.7": [
        "nvidia-cuda-runtime-cu11==11.7.*",
        "nvidia-cublas-cu11==11.10.*",
        "nvidia-cudnn-cu11",
    ],
    "11.8": [
        "nvidia-cuda-runtime-cu11==11.8.*",
        "nvidia-cublas-cu11==11.11.*",
        "nvidia-cudnn-cu11",
    ],
    **{
        f"12.{m}": [
            f"nvidia-cuda-runtime-cu12==12.{m}.*",
            f"nvidia-cublas-cu12==12.{m}.*",
            "nvidia-cudnn-cu12",
        ]
        for m in range(0, 10)
    },
    **{
        f"13.{m}": [f"nvidia-cuda-runtime==13.{m}.*", "nvidia-cublas", "nvidia-cudnn-cu13"]
        for m in range(0, 3)
    },
}
Log = Callable[[str], None]


class ImageError(RuntimeError):
    """The image cannot be built; the message says why and what to do."""


def cache_root() -> Path:
    """Where layers are kept between builds: ``$ALGOLINK_IMAGE_CACHE``, else
    ``$XDG_CACHE_HOME/algolink/images`` (``~/.cache/algolink/images``)."""
    if os.environ.get("ALGOLINK_IMAGE_CACHE"):
        return Path(os.environ["ALGOLINK_IMAGE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "algolink" / "images"


def cuda_wheels(cuda: str) -> list:
    """The PyPI wheels for ``cuda:`` (``"12.1"``, ``"12"``), or an ImageError naming those there are."""
    parts = version_tuple(str(cuda))
    key = ".".join(map(str, parts[:2])) if len(parts) >= 2 else None
    if len(parts) == 1:  # "12": the newest minor of that major
        minors = [k for k in CUDA_WHEELS if k.split(".")[0] == str(parts[0])]
        key = max(minors, key=version_tuple) if minors else None
    if key not in CUDA_WHEELS:
        raise ImageError(
            f"cuda: {cuda} has no runtime libraries on PyPI (NVIDIA publishes wheels for CUDA 11.7, "
            "11.8, 12.x and 13.x): set cuda: in algolink.yml to one of them, or give a base image "
            f"that has CUDA {cuda} with --base (such as nvidia/cuda:<version>-runtime-ubuntu22.04)."
        )
    return list(CUDA_WHEELS[key])


# --------------------------------------------------------------------------------------------------
# Layers


@dataclass
class Layer:
    """One layer: its blob (a file in the cache), digests, and what it holds."""

    what: str
    digest: str  # sha256:... of the blob
    diff_id: str  # sha256:... of the uncompressed tar
    size: int
    path: Path
    media_type: str = LAYER_TAR
    reused: bool = False


class _Hashing(io.RawIOBase):
    def __init__(self, f: Any):
        self.f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.f.write(b)
        self.sha.update(b)
        self.size += len(b)
        return len(b)


@dataclass
class LayerFile:
    """A file of a layer: its path in the image, the file on this machine (None: a folder made for
    the layer), and the owner/mode it gets (None: as on disk)."""

    arcname: str
    source: Optional[Path]
    uid: Optional[int] = None
    mode: Optional[int] = None


#: The layer cache's budget when ``$ALGOLINK_IMAGE_CACHE_BUDGET`` is not set.
DEFAULT_CACHE_BUDGET = 10 * 2**30
BUDGET_VAR = "ALGOLINK_IMAGE_CACHE_BUDGET"


def cache_budget() -> Optional[int]:
    """The layer cache's budget in bytes: ``$ALGOLINK_IMAGE_CACHE_BUDGET`` (such as ``10G``; ``0``:
    only what the last build used; ``none``: no limit), else 10 GiB; an ImageError when it is not
    a size."""
    try:
        return budget.budget_from_env(BUDGET_VAR, DEFAULT_CACHE_BUDGET)
    except budget.SizeError as e:
        raise ImageError(str(e)) from None


def _touch(path: Path) -> None:
    """Mark ``path`` used now (its modification time: what the cache's budget goes by)."""
    with contextlib.suppress(OSError):
        os.utime(path)


class LayerCache:
    """Layers by key (``keys/<sha256 of the key>.json`` names a blob of ``blobs/sha256/``; a key whose
    blob is gone is a miss), the environments ``algolink image`` builds for bundle folders
    (``envs/``) and the base images of ``--base`` (``bases/``).

    A file's modification time is its last use: a hit touches the key and its blob, a build touches
    its environment's ``.algolink-complete`` and its base's ``index.json``. :meth:`prune` removes
    what was used least recently until the cache fits a budget. Builds hold a shared lock on the
    cache's ``lock`` file (:meth:`building`), and :meth:`prune` runs only when it can take it alone,
    so it never removes a layer another build is writing or about to put in its archive.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.keys = self.root / "keys"
        self.envs = self.root / "envs"
        self.bases = self.root / "bases"
        for d in (self.blobs, self.keys, self.root / "tmp"):
            d.mkdir(parents=True, exist_ok=True)

    def _key_file(self, key: str) -> Path:
        return self.keys / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def lookup(self, key: str) -> Optional[Layer]:
        """The layer kept under ``key`` (marked used now), or None."""
        path = self._key_file(key)
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        blob = self.blobs / info["digest"].split(":", 1)[1]
        if not blob.is_file() or blob.stat().st_size != info["size"]:
            return None
        _touch(path)
        _touch(blob)
        return Layer(
            info["what"],
            info["digest"],
            info["diff_id"],
            info["size"],
            blob,
            info.get("media_type", LAYER_TAR),
            reused=True,
        )

    def remember(self, key: str, layer: Layer) -> None:
        path = self._key_file(key)
        info = {
            "what": layer.what,
            "digest": layer.digest,
            "diff_id": layer.diff_id,
            "size": layer.size,
            "media_type": layer.media_type,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, path)

    def building(self) -> Any:
        """A shared lock on the cache for one build (waits while a :meth:`prune` runs)."""
        return budget.locked(self.root / "lock", shared=True)

    def keys_by_blob(self) -> dict:
        """The key files, by the blob (its sha256) each names."""
        named: dict = {}
        for key_file in _children(self.keys):
            if key_file.suffix != ".json":
                continue
            try:
                digest = json.loads(key_file.read_text())["digest"].split(":", 1)[1]
            except (OSError, ValueError, KeyError, AttributeError, IndexError):
                continue
            named.setdefault(digest, []).append(key_file)
        return named

    def candidates(self, named: Optional[dict] = None) -> list:
        """What :meth:`prune` may remove: blobs (with the keys naming them: ``named``, else
        :meth:`keys_by_blob`), complete environments of ``envs/`` (unless a build holds their lock)
        and, last of all, ``bases/``."""
        if named is None:
            named = self.keys_by_blob()
        found = []
        for blob in _children(self.blobs):
            try:
                st = blob.stat()
            except OSError:
                continue

            def remove(blob: Path = blob) -> bool:
                for key_file in named.pop(blob.name, []):  # the keys first: no hit on a lost blob
                    with contextlib.suppress(FileNotFoundError):
                        key_file.unlink()
                with contextlib.suppress(FileNotFoundError):
                    blob.unlink()
                return True

            size = st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
            found.append(budget.Candidate(_name(blob), st.st_mtime, size, remove, 0, "layer"))
        for env in _children(self.envs):
            marker = env / COMPLETE_MARKER
            if env.name.startswith(".") or not env.is_dir() or not marker.is_file():
                continue  # .wheels, a build's scratch, an environment being built

            def remove_env(env: Path = env) -> bool:
                with budget.unless_busy(self.envs / f"{env.name}.lock") as free:
                    if free:
                        budget.remove_tree(env)
                    return free

            used = _mtime(marker)
            size = budget.tree_size(env)
            found.append(budget.Candidate(_name(env), used, size, remove_env, 0, "environment"))
        for base in _children(self.bases):
            if base.name.startswith(".") or not base.is_dir():
                continue

            def remove_base(base: Path = base) -> bool:
                budget.remove_tree(base)
                return True

            used = _mtime(base / "index.json")
            size = budget.tree_size(base)
            found.append(budget.Candidate(_name(base), used, size, remove_base, 1, "base image"))
        return found

    def prune(self, limit: int, keep: Iterable[Path] = ()) -> Optional[list]:
        """Remove what was used least recently until the cache takes ``limit`` bytes or less (its
        layers and environments first, its base images last), never what ``keep`` names (the blobs,
        environment and base a build used); also keys whose blob is gone. The removed
        :class:`..budget.Candidate` s; None when another build runs (it prunes when it ends)."""
        with budget.unless_busy(self.root / "lock") as alone:
            if not alone:
                return None
            named = self.keys_by_blob()
            blobs = {p.name for p in _children(self.blobs)}
            for digest in [d for d in named if d not in blobs]:  # keys of blobs removed by hand
                for key_file in named.pop(digest):
                    with contextlib.suppress(FileNotFoundError):
                        key_file.unlink()
            return budget.evict(self.candidates(named), limit, {_name(Path(p)) for p in keep})

    def write_layer(self, what: str, entries: Iterable[LayerFile]) -> Layer:
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as raw:
                hashing = _Hashing(raw)
                with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    _write_entries(tar, entries)
            digest = "sha256:" + hashing.sha.hexdigest()
            blob = self.blobs / digest.split(":", 1)[1]
            os.replace(tmp_name, blob)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        return Layer(what, digest, digest, hashing.size, blob)


def _children(folder: Path) -> list:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _name(path: Path) -> str:
    return os.path.realpath(path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _write_entries(tar: tarfile.TarFile, entries: Iterable[LayerFile]) -> None:
    seen: set = set()
    for e in entries:
        name = e.arcname.strip("/")
        if not name or name in seen:
            continue
        seen.add(name)
        if e.source is None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = e.mode if e.mode is not None else 0o755
            info.uid = info.gid = e.uid or 0
            info.mtime = 0
            tar.addfile(info)
            continue
        st = os.lstat(e.source)
        info = tar.gettarinfo(str(e.source), name)
        if info is None or info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
            continue  # sockets and devices: the container runtime makes /dev
        info.uname = info.gname = ""
        if e.uid is not None:
            info.uid = info.gid = e.uid
        if e.mode is not None:
            info.mode = e.mode
        if info.isreg():
            with open(e.source, "rb") as f:
                tar.addfile(info, f)
        else:
            if info.islnk():  # a hard link to a file not written yet is written whole
                info.type = tarfile.REGTYPE
                info.size = st.st_size
                info.linkname = ""
                with open(e.source, "rb") as f:
                    tar.addfile(info, f)
                continue
            tar.addfile(info)


def _parents(path: str, uid: int = 0) -> list:
    """Folder entries for each folder above ``path`` (0755: the image's user passes through)."""
    parts = Path(path.strip("/")).parts
    return [LayerFile("/".join(parts[:i]), None, uid, 0o755) for i in range(1, len(parts))]


def _tree(
    root: Path,
    arcroot: str,
    *,
    uid: Optional[int] = None,
    skip: Optional[Callable[[str], bool]] = None,
) -> Iterable[LayerFile]:
    """Every file and folder under ``root`` (sorted, symlinks kept as links), as ``arcroot/...``."""
    root = Path(root)
    yield LayerFile(arcroot, root, uid)
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        rel_folder = "" if rel_folder == "." else rel_folder
        keep = []
        for d in sorted(dirs):
            rel = f"{rel_folder}/{d}" if rel_folder else d
            if skip and skip(rel):
                continue
            keep.append(d)
            if os.path.islink(os.path.join(folder, d)):
                yield LayerFile(f"{arcroot}/{rel}", Path(folder) / d, uid)
        dirs[:] = [d for d in keep if not os.path.islink(os.path.join(folder, d))]
        for d in dirs:
            rel = f"{rel_folder}/{d}" if rel_folder else d
            yield LayerFile(f"{arcroot}/{rel}", Path(folder) / d, uid)
        for name in sorted(files):
            rel = f"{rel_folder}/{name}" if rel_folder else name
            if skip and skip(rel):
                continue
            yield LayerFile(f"{arcroot}/{rel}", Path(folder) / name, uid)


def _ordered(entries: Iterable[LayerFile]) -> list:
    items = list(entries)
    items.sort(key=lambda e: e.arcname.strip("/").split("/"))
    return items


# --------------------------------------------------------------------------------------------------
# What the image is made of


@dataclass
class ImageSpec:
    """What to build an image of: a built environment and the bundle's working copy (after its build
    steps), with its configuration and metadata."""

    env_path: Path
    env_key: str
    app_dir: Path
    python: str
    cuda: Optional[str]
    entrypoint: str
    port: Optional[int]
    name: str  # the image's name and tag, e.g. algolink/demo-digits:v1
    labels: dict = field(default_factory=dict)
    base: Optional[str] = None  # --base IMAGE
    output: Optional[Path] = None
    uv: Optional[str] = None  # uv, for the cuda layer


@dataclass
class ImageResult:
    archive: Path
    digest: str  # sha256 of the manifest: the image's digest
    config_digest: str
    layers: list
    config: dict
    seconds: float
    size: int


def _python_of(env_path: Path) -> tuple[Path, str]:
    """The Python installation an environment was made from, and its version."""
    cfg: dict = {}
    with contextlib.suppress(OSError):
        for line in (env_path / "pyvenv.cfg").read_text().splitlines():
            k, _, v = line.partition("=")
            cfg[k.strip()] = v.strip()
    exe = Path(os.path.realpath(env_path / "bin" / "python"))
    if not exe.is_file():
        raise ImageError(
            f"The environment {env_path} has no Python (its bin/python leads nowhere): build the "
            "version again."
        )
    version = cfg.get("version_info") or cfg.get("version") or ""
    if not version:
        out = subprocess.run(
            [str(exe), "-c", "import platform;print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        version = out.stdout.strip()
    return exe.parent.parent, version


def _elf_files(prefix: Path) -> list:
    found = []
    for pattern in ("bin/python3*", "lib/libpython*.so*", "lib/python3*/lib-dynload/*.so"):
        found += [
            p
            for p in prefix.glob(pattern)
            if p.is_file() and not p.is_symlink() and not p.name.startswith("_tkinter")
        ]
    return sorted(found)


def _needed_packages(prefix: Path, log: Log) -> list:
    """The Debian packages holding the shared libraries the Python at ``prefix`` loads."""
    libs: set = set()
    for path in _elf_files(prefix):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=30)
            for m in re.finditer(r"=>\s+(/\S+)", out.stdout):
                lib = m.group(1)
                if not lib.startswith(str(prefix)):
                    libs.add(lib)
    if not libs:
        return []
    if not shutil.which("dpkg"):
        log(
            "Note: no dpkg here to name the packages of the Python's libraries: the common ones go in."
        )
        return [
            "libssl3",
            "libffi8",
            "libsqlite3-0",
            "libbz2-1.0",
            "liblzma5",
            "zlib1g",
            "libreadline8",
            "libncursesw6",
            "libexpat1",
            "libuuid1",
            "libgdbm6",
        ]
    packages: set = set()
    for lib in sorted(libs):
        candidates = {lib, os.path.realpath(lib)}
        if lib.startswith("/lib/"):
            candidates.add("/usr" + lib)
        if lib.startswith("/usr/lib/"):
            candidates.add(lib[4:])
        out = subprocess.run(
            ["dpkg", "-S", *sorted(candidates)], capture_output=True, text=True, timeout=60
        )
        for line in out.stdout.splitlines():
            pkg = line.split(":", 1)[0].strip()
            if pkg and " " not in pkg and "," not in pkg:
                packages.add(pkg)
    return sorted(packages - {"libc6"})


def _debian_suite() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME=") and line.split("=", 1)[1].strip('"'):
                return line.split("=", 1)[1].strip('"')
    return "bookworm"


def _debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (else deb.debian.org)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                line = line.strip()
                m = re.match(r"^URIs:\s*(\S+)", line) or re.match(
                    r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", line
                )
                if m and "security" not in m.group(1) and m.group(1).startswith("http"):
                    return m.group(1)
    return DEFAULT_MIRROR


def _run(argv: list, log: Log, timeout: float, what: str) -> None:
    log(f"$ {' '.join(argv)}")
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    tail: list = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-8:]
        log(f"    {line}")
        if time.monotonic() > deadline:
            proc.kill()
            break
    try:
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    if rc != 0:
        raise ImageError(f"{what} failed (exit status {rc}): " + " / ".join(tail[-3:]))


class _Builder:
    def __init__(self, spec: ImageSpec, cache: LayerCache, log: Log):
        self.spec = spec
        self.cache = cache
        self.log = log

    def cached(self, key: str, what: str, make: Callable[[], Iterable[LayerFile]]) -> Layer:
        found = self.cache.lookup(key)
        if found is not None:
            self.log(f"==> Layer {what}: reused ({size_words(found.size)}, {found.digest[:19]})")
            return found
        t0 = time.monotonic()
        self.log(f"==> Layer {what}: writing it")
        layer = self.cache.write_layer(what, make())
        self.cache.remember(key, layer)
        self.log(
            f"    {size_words(layer.size)} in {time.monotonic() - t0:.1f} s ({layer.digest[:19]})"
        )
        return layer

    # -- 1. the operating system

    def os_layer(self, prefix: Path, version: str) -> tuple[Layer, bool]:
        """The Debian root; True when it holds the Python itself (Debian's own python3.X)."""
        debian_python = str(prefix) == "/usr"
        packages = set(ALWAYS_PACKAGES) | set(_needed_packages(prefix, self.log))
        if debian_python:
            major_minor = ".".join(version.split(".")[:2])
            packages.add(f"python{major_minor}")
        suite, mirror = _debian_suite(), _debian_mirror()
        key = json.dumps(
            {"layer": "os", "format": FORMAT, "suite": suite, "packages": sorted(packages)}
        )
        what = f"os (Debian {suite} minbase + {', '.join(sorted(packages))})"

        def make() -> Iterable[LayerFile]:
            if not shutil.which("debootstrap"):
                raise ImageError(
                    "debootstrap is not installed, and the image's Debian base is made with it: "
                    "install it (apt-get install debootstrap) or give a base image with --base."
                )
            if os.geteuid() != 0:
                raise ImageError(
                    "The image's Debian base is made with debootstrap, which needs root: run "
                    "`algolink image` as root once (the base is then cached in "
                    f"{self.cache.root}), or give a base image with --base."
                )
            root = Path(tempfile.mkdtemp(dir=self.cache.root / "tmp", prefix="rootfs-"))
            self._root = root
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(sorted(packages))}",
                    suite,
                    str(root),
                    mirror,
                ],
                self.log,
                1800,
                "debootstrap (the image's Debian base)",
            )
            if debian_python:
                want = version
                out = subprocess.run(
                    ["chroot", str(root), f"/usr/bin/python{'.'.join(want.split('.')[:2])}", "-V"],
                    capture_output=True,
                    text=True,
                )
                got = out.stdout.split()[-1] if out.stdout.split() else "?"
                if got != want:
                    raise ImageError(
                        f"Debian {suite}'s Python is {got}, not {want} as the environment's: "
                        "build the environment with a Python of uv or pyenv, which the image copies."
                    )
            for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "dev", "proc", "sys", "run"):
                folder = root / sub
                if folder.is_dir():
                    for child in folder.iterdir():
                        if child.is_dir() and not child.is_symlink():
                            shutil.rmtree(child, ignore_errors=True)
                        else:
                            with contextlib.suppress(OSError):
                                child.unlink()
            with open(root / "etc" / "passwd", "a") as f:
                f.write(f"{df.USER}:x:{df.UID}:{df.UID}::/home/{df.USER}:/usr/sbin/nologin\n")
            with open(root / "etc" / "group", "a") as f:
                f.write(f"{df.USER}:x:{df.UID}:\n")
            with open(root / "etc" / "shadow", "a") as f:
                f.write(f"{df.USER}:!:19000::::::\n")
            home = root / "home" / df.USER
            home.mkdir(parents=True, exist_ok=True)
            os.chown(home, df.UID, df.UID)
            os.chmod(home, 0o750)
            for path in (root / "var" / "log").rglob("*"):
                if path.is_file():
                    path.write_bytes(b"")
            return _ordered(_tree(root, ""))

        self._root = None
        try:
            layer = self.cached(key, what, make)
        finally:
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
        return layer, debian_python

    # -- 2. the Python

    def python_layer(self, prefix: Path, version: str) -> Layer:
        exe = prefix / "bin"
        sig = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in _elf_files(prefix))
        key = json.dumps(
            {
                "layer": "python",
                "format": FORMAT,
                "prefix": str(prefix),
                "version": version,
                "files": sig,
            }
        )
        mm = ".".join(version.split(".")[:2])
        lib = f"lib/python{mm}"

        def skip(rel: str) -> bool:
            if rel.startswith(f"{lib}/site-packages/") or rel.startswith(f"{lib}/test"):
                return True
            if rel.startswith(f"{lib}/config-") and rel.endswith(".a"):
                return True
            if rel.startswith(f"{lib}/lib-dynload/_tkinter"):
                return True  # Tk needs X11's libraries, which the image leaves out
            return rel in (f"{lib}/idlelib", f"{lib}/tkinter", f"{lib}/turtledemo")

        del exe
        arc = str(prefix).strip("/")
        return self.cached(
            key,
            f"python ({version} from {prefix})",
            lambda: [*_parents(arc + "/x"), *_ordered(_tree(prefix, arc, skip=skip))],
        )

    # -- 3. CUDA

    def cuda_layer(self, env_python: Path) -> Optional[Layer]:
        cuda = self.spec.cuda
        if not cuda:
            return None
        have = list(self.spec.env_path.glob("lib/python*/site-packages/nvidia/cuda_runtime"))
        if have:
            self.log(
                f"==> cuda: {cuda}: the environment carries NVIDIA's CUDA runtime already "
                "(its requirements install it): no CUDA layer."
            )
            return None
        wheels = cuda_wheels(cuda)
        key = json.dumps({"layer": "cuda", "format": FORMAT, "wheels": wheels})

        def make() -> Iterable[LayerFile]:
            target = Path(tempfile.mkdtemp(dir=self.cache.root / "tmp", prefix="cuda-"))
            self._root = target
            uv = self.spec.uv or shutil.which("uv") or "uv"
            _run(
                [
                    uv,
                    "pip",
                    "install",
                    "--python",
                    str(env_python),
                    "--target",
                    str(target),
                    *wheels,
                ],
                self.log,
                1800,
                f"Installing CUDA {cuda}'s runtime libraries",
            )
            arc = CUDA_DIR.strip("/")
            return [*_parents(arc + "/x"), *_ordered(_tree(target, arc))]

        self._root = None
        try:
            return self.cached(key, f"cuda ({cuda}: {', '.join(wheels)})", make)
        finally:
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)

    # -- 4-6. dependencies, models, app

    def deps_layer(self) -> Layer:
        env = self.spec.env_path
        try:  # the marker's content says when it was built (its time is its last use)
            built = hashlib.sha256((env / COMPLETE_MARKER).read_bytes()).hexdigest()
        except OSError:
            built = ""
        key = json.dumps(
            {
                "layer": "deps",
                "format": FORMAT,
                "env": str(env),
                "key": self.spec.env_key,
                "built": built,
            }
        )
        arc = str(env).strip("/")
        return self.cached(
            key,
            f"dependencies (environment {self.spec.env_key})",
            lambda: [*_parents(arc + "/x"), *_ordered(_tree(env, arc))],
        )

    def app_files(self) -> tuple[list, list]:
        """(big model files, the rest): relative paths of the bundle's files the image holds."""
        big, rest = [], []
        app = self.spec.app_dir
        for entry in _tree(app, "", skip=df.ignored):
            rel = entry.arcname.strip("/")
            if not rel:
                continue
            path = entry.source
            assert path is not None
            if (
                rel.startswith("models/")
                and path.is_file()
                and not path.is_symlink()
                and path.stat().st_size >= MODEL_FILE_BYTES
            ):
                big.append(rel)
            else:
                rest.append(rel)
        return big, rest

    def models_layer(self, big: list) -> Optional[Layer]:
        if not big:
            return None
        app = self.spec.app_dir
        arc = df.APP_DIR.strip("/")
        sig = [(rel, (app / rel).stat().st_size, (app / rel).stat().st_mtime_ns) for rel in big]
        digest = hashlib.sha256(json.dumps(sig).encode()).hexdigest()
        # Names, sizes and modification times: a copy of the bundle (copies keep the times) reuses
        # the layer; a retrained model (a new time) writes it again.
        key = json.dumps({"layer": "models", "format": FORMAT, "files": digest})

        def make() -> list:
            entries = [*_parents(arc + "/x"), LayerFile(arc, None, df.UID, 0o755)]
            folders = sorted({str(Path(rel).parent) for rel in big})
            for folder in folders:
                parts = Path(folder).parts
                for i in range(1, len(parts) + 1):
                    entries.append(LayerFile(f"{arc}/{'/'.join(parts[:i])}", None, df.UID, 0o755))
            entries += [LayerFile(f"{arc}/{rel}", app / rel, df.UID) for rel in big]
            return _ordered(entries)

        return self.cached(key, f"models ({len(big)} file(s) of models/)", make)

    def app_layer(self, rest: list) -> Layer:
        app = self.spec.app_dir
        arc = df.APP_DIR.strip("/")
        entries = [*_parents(arc + "/x"), LayerFile(arc, None, df.UID, 0o755)]
        entries += [LayerFile(f"{arc}/{rel}", app / rel, df.UID) for rel in rest]
        self.log("==> Layer app (the bundle): writing it")
        layer = self.cache.write_layer("app (the bundle)", _ordered(entries))
        self.log(f"    {size_words(layer.size)} ({layer.digest[:19]})")
        return layer


# --------------------------------------------------------------------------------------------------
# --base IMAGE


def _base_folder(cache: LayerCache, image: str) -> Path:
    return cache.bases / re.sub(r"[^A-Za-z0-9_.-]+", "_", image)


def _base_layers(image: str, cache: LayerCache, log: Log) -> tuple[list, dict]:
    """The layers and config of a registry's image (fetched once with skopeo into the cache)."""
    skopeo = shutil.which("skopeo")
    if not skopeo:
        raise ImageError(
            f"--base {image} needs skopeo to fetch it: install it (apt-get install skopeo), or "
            "leave --base out to build the Debian base here."
        )
    layout = _base_folder(cache, image)
    safe = layout.name
    if not (layout / "index.json").is_file():
        layout.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=layout.parent, prefix=f".{safe}-"))
        try:
            ref = (
                image
                if "://" in image or image.startswith(("docker:", "oci"))
                else f"docker://{image}"
            )
            _run(
                [skopeo, "copy", "--override-os", "linux", ref, f"oci:{tmp}:base"],
                log,
                1800,
                f"Fetching the base image {image}",
            )
            os.replace(tmp, layout)
        except ImageError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ImageError(
                f"The base image {image} could not be fetched ({e}): check its name and that this "
                "machine reaches the registry, or leave --base out."
            ) from None
    else:
        log(f"==> Base image {image}: reused from {layout}")
        _touch(layout / "index.json")
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_text())
    config_digest = manifest["config"]["digest"].split(":", 1)[1]
    config = json.loads((layout / "blobs" / "sha256" / config_digest).read_text())
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    layers = []
    for desc, diff_id in zip(manifest["layers"], diff_ids):
        blob = layout / "blobs" / "sha256" / desc["digest"].split(":", 1)[1]
        layers.append(_plain_layer(f"base ({image})", blob, desc, diff_id, cache))
    return layers, config


def _plain_layer(what: str, blob: Path, desc: dict, diff_id: str, cache: LayerCache) -> Layer:
    """A base image's layer as a plain tar (Docker's manifest.json wants the tars its config's
    ``diff_ids`` name), decompressed once into the cache."""
    media = desc.get("mediaType", LAYER_TAR)
    if not media.endswith("gzip"):
        if "zstd" in media:
            raise ImageError(
                f"The base image's layer {desc['digest'][:19]} is zstd-compressed, which this "
                "build cannot unpack: give a base image with gzip or plain layers."
            )
        return Layer(what, desc["digest"], diff_id, desc["size"], blob, LAYER_TAR, reused=True)
    found = cache.lookup(f"plain:{diff_id}")
    if found is not None:
        return found
    fd, tmp_name = tempfile.mkstemp(dir=cache.root / "tmp", suffix=".tar")
    try:
        with os.fdopen(fd, "wb") as raw, gzip.open(blob, "rb") as src:
            hashing = _Hashing(raw)
            shutil.copyfileobj(src, hashing, 1 << 20)
        digest = "sha256:" + hashing.sha.hexdigest()
        if digest != diff_id:
            raise ImageError(
                f"The base image's layer {desc['digest'][:19]} does not unpack to what its config "
                "says: fetch the base image again (delete it from the image cache's bases/)."
            )
        target = cache.blobs / digest.split(":", 1)[1]
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    layer = Layer(what, digest, digest, hashing.size, target, LAYER_TAR, reused=True)
    cache.remember(f"plain:{diff_id}", layer)
    return layer


# --------------------------------------------------------------------------------------------------
# The whole image


def build_image(
    spec: ImageSpec, *, cache: Optional[Path] = None, log: Optional[Log] = None
) -> ImageResult:
    """Build ``spec``'s image into ``spec.output`` (an OCI archive); layers come from the cache when
    their key is there. ``log`` gets one line at a time. Then the cache is kept within its budget
    (:func:`cache_budget`): what was used least recently goes, never what this image was made of."""
    t0 = time.monotonic()
    say = log or (lambda line: None)
    limit = cache_budget()
    store = LayerCache(cache or cache_root())
    with store.building():
        output, digest, config_digest, size, layers, config = _build(spec, store, say)
    seconds = time.monotonic() - t0
    reused = sum(1 for layer in layers if layer.reused)
    say(
        f"Image {spec.name} built in {seconds:.1f} s: {digest} ({size_words(size)}, "
        f"{len(layers)} layers, {reused} reused) in {output}"
    )
    if limit is not None:
        keep = [layer.path for layer in layers] + [spec.env_path]
        if spec.base:
            keep.append(_base_folder(store, spec.base))
        removed = store.prune(limit, keep)
        if removed:
            say(
                f"Image cache {store.root}: removed {budget.describe(removed)}, used least "
                f"recently, to keep it within {budget.size_text(limit)} (${BUDGET_VAR})."
            )
    return ImageResult(output, digest, config_digest, layers, config, seconds, size)


def _build(spec: ImageSpec, store: LayerCache, say: Log) -> tuple:
    b = _Builder(spec, store, say)
    prefix, version = _python_of(spec.env_path)
    if version and not version.startswith(str(spec.python)):
        say(f"Note: algolink.yml asks for Python {spec.python}; the environment has {version}.")
    if _name(spec.env_path).startswith(_name(store.envs) + os.sep):
        _touch(spec.env_path / COMPLETE_MARKER)  # an environment of the cache's: used now
    layers: list = []
    base_env: list = []
    if spec.base:
        layers, base_config = _base_layers(spec.base, store, say)
        base_env = list(base_config.get("config", {}).get("Env") or [])
        debian_python = False
        if str(prefix) == "/usr":
            raise ImageError(
                f"The environment was made from this machine's {prefix}/bin/python, which a --base "
                "image cannot be trusted to have at the same version: build it with a Python of uv "
                "or pyenv, or leave --base out."
            )
    else:
        os_layer, debian_python = b.os_layer(prefix, version)
        layers.append(os_layer)
    if not debian_python:
        layers.append(b.python_layer(prefix, version))
    cuda = b.cuda_layer(spec.env_path / "bin" / "python")
    if cuda is not None:
        layers.append(cuda)
    layers.append(b.deps_layer())
    big, rest = b.app_files()
    models = b.models_layer(big)
    if models is not None:
        layers.append(models)
    layers.append(b.app_layer(rest))
    config = image_config(spec, layers, base_env, cuda is not None)
    output = Path(spec.output or f"{spec.name.split('/')[-1].replace(':', '-')}.tar")
    say(f"==> Writing the archive {output}")
    digest, config_digest, size = _write_archive(output, spec.name, layers, config, store)
    return output, digest, config_digest, size, layers, config


def image_config(spec: ImageSpec, layers: list, base_env: list, cuda: bool) -> dict:
    port = spec.port or df.DEFAULT_PORT
    env_bin = f"{spec.env_path}/bin"
    path = f"{env_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env = {e.split("=", 1)[0]: e.split("=", 1)[1] for e in base_env if "=" in e}
    if "PATH" in env:
        path = f"{env_bin}:{env['PATH']}"
    env.update(
        {
            "PATH": path,
            "VIRTUAL_ENV": str(spec.env_path),
            "PYTHONUNBUFFERED": "1",
            "ALGOLINK_HOST": "0.0.0.0",
            "ALGOLINK_PORT": str(port),
            "HOME": f"/home/{df.USER}",
        }
    )
    if cuda:
        libs = ":".join(
            f"{CUDA_DIR}/nvidia/{name}/lib" for name in ("cuda_runtime", "cublas", "cudnn")
        )
        env["LD_LIBRARY_PATH"] = libs + (
            ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else ""
        )
        env.setdefault("NVIDIA_VISIBLE_DEVICES", "all")
        env.setdefault("NVIDIA_DRIVER_CAPABILITIES", "compute,utility")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": spec.name.split("/")[-1].split(":")[0],
        "org.opencontainers.image.created": now,
        **spec.labels,
        "io.algolink.python": str(spec.python),
        "io.algolink.cuda": str(spec.cuda or ""),
        "io.algolink.env-key": spec.env_key,
        "io.algolink.entrypoint": spec.entrypoint,
    }
    sec = 1_000_000_000
    return {
        "created": now,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{df.UID}:{df.UID}",
            "Env": [f"{k}={v}" for k, v in env.items()],
            "Entrypoint": df.entrypoint_argv(spec.entrypoint),
            "WorkingDir": df.APP_DIR,
            "ExposedPorts": {f"{port}/tcp": {}},
            "Labels": {k: str(v) for k, v in labels.items()},
            "StopSignal": "SIGTERM",
            "Healthcheck": {
                "Test": df.healthcheck_argv(),
                "Interval": df.HEALTH_INTERVAL * sec,
                "Timeout": df.HEALTH_TIMEOUT * sec,
                "StartPeriod": df.HEALTH_START * sec,
                "Retries": df.HEALTH_RETRIES,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": now, "created_by": f"algolink image: {layer.what}"} for layer in layers
        ],
    }


def _write_archive(output: Path, name: str, layers: list, config: dict, store: LayerCache) -> tuple:
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config_bytes)},
        "layers": [
            {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
            for layer in layers
        ],
        "annotations": {"org.opencontainers.image.ref.name": name},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    repo, _, tag = name.rpartition(":")
    full = name if "/" in repo and "." in repo.split("/")[0] else f"docker.io/{name}"
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [
            {
                "mediaType": MANIFEST_TYPE,
                "digest": digest,
                "size": len(manifest_bytes),
                "annotations": {
                    "io.containerd.image.name": full,
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    docker = [
        {
            "Config": f"blobs/sha256/{config_digest.split(':', 1)[1]}",
            "RepoTags": [name],
            "Layers": [f"blobs/sha256/{layer.digest.split(':', 1)[1]}" for layer in layers],
        }
    ]
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.part")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:

            def add_bytes(arcname: str, data: bytes) -> None:
                info = tarfile.TarInfo(arcname)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))

            for folder in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(folder)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            written: set = set()
            for layer in layers:
                hexd = layer.digest.split(":", 1)[1]
                if hexd in written:
                    continue
                written.add(hexd)
                info = tarfile.TarInfo(f"blobs/sha256/{hexd}")
                info.size = layer.size
                info.mode = 0o644
                with open(layer.path, "rb") as f:
                    tar.addfile(info, f)
            add_bytes(f"blobs/sha256/{config_digest.split(':', 1)[1]}", config_bytes)
            add_bytes(f"blobs/sha256/{digest.split(':', 1)[1]}", manifest_bytes)
            add_bytes("index.json", json.dumps(index, indent=1).encode())
            add_bytes("manifest.json", json.dumps(docker, indent=1).encode())
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return digest, config_digest, output.stat().st_size


def push(archive: Path, destination: str, log: Optional[Log] = None) -> None:
    """Push an archive to a registry (``REGISTRY/NAME:TAG``) with skopeo (a registry on this
    machine's loopback, ``localhost:5000/...``, over plain HTTP, as registries there usually are)."""
    skopeo = shutil.which("skopeo")
    if not skopeo:
        raise ImageError(
            f"--push {destination} needs skopeo: install it (apt-get install skopeo), or push "
            f"{archive} with `docker load` and `docker push`."
        )
    dest = destination if destination.startswith("docker://") else f"docker://{destination}"
    host = dest[len("docker://") :].split("/", 1)[0].rsplit(":", 1)[0]
    plain = ["--dest-tls-verify=false"] if host in ("localhost", "127.0.0.1", "[::1]") else []
    _run(
        [skopeo, "copy", *plain, f"oci-archive:{archive}", dest],
        log or (lambda line: None),
        3600,
        f"Pushing the image to {destination}",
    )


# --------------------------------------------------------------------------------------------------
# A bundle folder on this machine


def image_name(text: str) -> str:
    """A valid image reference from a service's or folder's name (``algolink/demo-digits``)."""
    clean = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._") or "bundle"
    return clean


def local_spec(
    bundle_dir: Path,
    work: Path,
    log: Log,
    *,
    output: Optional[Path] = None,
    tag: Optional[str] = None,
    base: Optional[str] = None,
    cache: Optional[Path] = None,
) -> ImageSpec:
    """Build the environment of a bundle folder (in the image cache's ``envs/``, reused by key as on
    the hub) with its build steps run in ``work``, a copy of the bundle; the spec of its image."""
    import asyncio

    from .builder import Builder, BuildError
    from .bundles import BundleError, read_config

    bundle_dir = Path(bundle_dir).resolve()
    try:
        config = read_config(bundle_dir)
    except BundleError as e:
        raise ImageError(str(e)) from None
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(
        bundle_dir,
        work,
        symlinks=True,
        ignore=lambda folder, names: [
            n for n in names if df.ignored(os.path.relpath(os.path.join(folder, n), bundle_dir))
        ],
    )
    builder = Builder((cache or cache_root()) / "envs")
    build_log = work.parent / "build.log"
    log(f"==> Building the environment of {bundle_dir} (build log: {build_log})")
    try:
        env = asyncio.run(builder.build(work, config, build_log))
        manifest = asyncio.run(builder.read_manifest(env, work))
    except BuildError as e:
        raise ImageError(f"The bundle's environment could not be built: {e}") from None
    meta = manifest.get("metadata") if isinstance(manifest.get("metadata"), dict) else {}
    name = tag or f"algolink/{image_name(bundle_dir.name)}:latest"
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return ImageSpec(
        env_path=env.path,
        env_key=env.key,
        app_dir=work,
        python=config.python,
        cuda=config.cuda,
        entrypoint=config.entrypoint,
        port=config.port,
        name=name,
        labels=manifest_labels(meta, manifest),
        base=base,
        output=output,
        uv=builder.uv,
    )


def manifest_labels(meta: dict, manifest: dict, **extra: Any) -> dict:
    """OCI labels with a service's metadata (its manifest) and AlgoLink's own."""
    labels = {}
    if meta.get("tagline"):
        labels["org.opencontainers.image.description"] = str(meta["tagline"])[:500]
    if meta.get("license"):
        labels["org.opencontainers.image.licenses"] = str(meta["license"])[:200]
    if meta.get("name"):
        labels["io.algolink.service.name"] = str(meta["name"])[:200]
    if manifest.get("sdkVersion"):
        labels["io.algolink.sdk-version"] = str(manifest["sdkVersion"])
    commands = [c.get("name") for c in manifest.get("commands") or [] if isinstance(c, dict)]
    if commands:
        labels["io.algolink.commands"] = ",".join(str(c) for c in commands if c)
    labels.update({k: str(v) for k, v in extra.items() if v is not None})
    return labels
