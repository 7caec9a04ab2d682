"""Bundle -> isolated Python environment, built with uv, with its build log streamed as it is written.

An environment is identified by a key: a hash of the requested Python, ``requirements.txt``, the build
steps and the ``modelcloud`` runtime it carries. Bundles with the same key share one environment,
built once under ``<envs_root>/<key>/`` and marked complete only when its build succeeded; a lock file
per key makes concurrent builds of the same key wait for each other instead of corrupting it.

Every environment gets the ``modelcloud`` runtime the hub runs itself, installed from a wheel made of
it (:mod:`algolink_jupyter.runtime`, kept in :attr:`Builder.wheels`, which every install also finds
links in: a bundle's ``modelcloud==X`` is taken from there, with no network), unless the bundle vendors
its own ``modelcloud/`` (an export of an older AlgoLink). Build steps run with the bundle as working directory and the environment's
``bin/`` first on PATH, where ``pip`` is uv's pip bound to the environment. Every install honours the
machine's pip configuration (index URLs, find-links, constraints, trusted hosts: pip's config files and
``PIP_*`` variables), translated to uv's ``UV_*`` variables. uv never downloads a Python here: the
requested version must be on the machine, and a build that asks for another lists those that are.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import errno
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .. import runtime
from .bundles import BundleConfig, read_config
from .pipconfig import pip_config, uv_settings
from .processes import entrypoint_argv, read_lines, signal_group, terminate
from .pythons import (
    PythonInstall,
    own_python,
    pyenv_pythons,
    uv_pythons,
    version_matches,
    version_tuple,
)
from .sandbox import (
    Identity,
    Isolation,
    clean_environment,
    kill_user,
    python_prefix,
    tmp_env,
    venv_base,
)
from .shim import stamp

__all__ = [
    "BuildError",
    "Builder",
    "Environment",
    "MODELCLOUD_REQUIREMENTS",
    "PythonInstall",
    "entrypoint_argv",
    "pip_config",
    "read_manifest",
    "runway_note",
    "uv_settings",
]

#: What the modelcloud runtime imports (contract section 1), installed into every environment.
MODELCLOUD_REQUIREMENTS = ("tornado>=6.3", "pillow>=10.0", "numpy>=1.24", "pyyaml>=6.0")
#: The oldest Python the modelcloud runtime runs on (a bundle that vendors its own may go lower).
MIN_PYTHON = (3, 9)
COMPLETE_MARKER = ".algolink-complete"
#: The most a build log holds, and the most a manifest read may print.
MAX_BUILD_LOG = 32 << 20
MAX_MANIFEST_OUTPUT = 16 << 20
_KEY_FORMAT = 1
_INSTALL_STEP = re.compile(r"^\s*(pip3?|python3?(\.\d+)?\s+-m\s+pip|uv\s+pip)\s+install\b")
_PYTHON_M_PIP = re.compile(r"(^|[;&|(]\s*)python3?(\.\d+)?\s+-m\s+pip\b")


class BuildError(RuntimeError):
    """A build that failed; the message says why (with the tail of the log) and what to do."""


@dataclass(frozen=True)
class Environment:
    """A built environment: its key, its folder, its Python executable and its ``bin/`` folder."""

    key: str
    path: Path
    python: Path
    bin_dir: Path

    @classmethod
    def at(cls, key: str, path: Path) -> Environment:
        path = Path(path)
        return cls(key=key, path=path, python=path / "bin" / "python", bin_dir=path / "bin")

    def process_env(
        self, extra: Optional[dict[str, str]] = None, *, build: bool = False
    ) -> dict[str, str]:
        """The environment variables of a process that runs in this environment.

        Only what :func:`~.sandbox.clean_environment` lets through of the hub's own (no hub setting,
        token or secret; the installers' settings too for a ``build``), with ``bin/`` first on PATH,
        ``VIRTUAL_ENV`` set, output unbuffered, then ``extra``.
        """
        return clean_environment(
            {
                "PATH": str(self.bin_dir) + os.pathsep + os.environ.get("PATH", os.defpath),
                "VIRTUAL_ENV": str(self.path),
                "PYTHONUNBUFFERED": "1",
                **(extra or {}),
            },
            build=build,
        )

    @property
    def complete(self) -> bool:
        return (self.path / COMPLETE_MARKER).is_file()


_PIP_SHIM = '''\
#!{python}
"""pip for this AlgoLink environment: uv's pip interface, bound to this environment.

Written by the AlgoLink hub's builder. It is fast, and it honours the hub's pip configuration, which
the builder passes on as UV_* variables. Options of pip that uv does not know are dropped.
"""
import os
import sys

UV = {uv!r}
ENV = {env!r}
INSTALL_FLAGS = {flags!r}
DROP = {{"--no-cache-dir", "--disable-pip-version-check", "--no-warn-script-location",
        "--no-input", "--no-color", "-y", "--yes", "--user"}}
DROP_VALUE = {{"--progress-bar", "--root-user-action", "--cache-dir", "--retries"}}

args = []
rest = iter(sys.argv[1:])
for arg in rest:
    if arg in DROP or arg.split("=", 1)[0] in DROP_VALUE and "=" in arg:
        continue
    if arg in DROP_VALUE:
        next(rest, None)
        continue
    args.append(arg)
if args and args[0] in ("install", "sync"):
    args[1:1] = INSTALL_FLAGS
os.environ["VIRTUAL_ENV"] = ENV
os.environ.pop("PYTHONHOME", None)
os.execv(UV, [UV, "pip", *args])
'''


def _tail(lines: Any, n: int = 8, width: int = 2000) -> str:
    text = "\n".join(line for line in list(lines)[-n:] if line.strip()).strip()
    return text[-width:]


class _BuildLog:
    """The build log: each line stamped with the wall-clock time and flushed as soon as it is written,
    up to :data:`MAX_BUILD_LOG` bytes (a build that prints more has the rest left out, said once)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.start = time.monotonic()
        self.tail: collections.deque[str] = collections.deque(maxlen=60)
        self.size = 0

    def line(self, text: str) -> None:
        now = stamp()
        data = f"[{now}] {text[:4000]}\n"
        self.size += len(data)
        if self.size > MAX_BUILD_LOG:
            if self.size - len(data) <= MAX_BUILD_LOG:
                self.file.write(
                    f"[{now}] ==> The build printed more than {MAX_BUILD_LOG >> 20} MB: the rest "
                    "is left out of this log.\n"
                )
                self.file.flush()
            return
        self.file.write(data)
        self.file.flush()

    def header(self, text: str) -> None:
        self.line(f"==> {text}")

    def output(self, text: str) -> None:
        self.tail.append(text)
        self.line(f"    {text}")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def close(self) -> None:
        self.file.close()


# --------------------------------------------------------------------------------------------------
# The builder


def _find_uv() -> Optional[str]:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    for candidate in (Path(sys.executable).parent / "uv", Path(sys.prefix) / "bin" / "uv"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("uv")


@dataclass
class _Build:
    """An environment being built in the sandbox: as whom, in which scratch folder, with which
    Python, and uv's cache for it (a copy of the shared cache that only this build writes)."""

    who: Optional[Identity]
    scratch: Path
    python: Optional[Path] = None
    cache: Optional[Path] = None


class Builder:
    """Builds and caches the environments of bundles under ``envs_root``.

    ``uv`` is the uv executable (default: the one of the ``uv`` package, else ``uv`` on PATH).
    ``build_timeout`` bounds one whole build, in seconds.
    """

    def __init__(
        self,
        envs_root: Path,
        *,
        uv: Optional[str] = None,
        build_timeout: float = 1800.0,
        isolation: Optional[Isolation] = None,
        cache_dir: Optional[Path] = None,
        wheels: Optional[Path] = None,
    ) -> None:
        self.envs_root = Path(envs_root)
        #: Where the modelcloud runtime's wheel is made (and found by builds: a bundle's
        #: ``modelcloud==X`` installs from here, with no network).
        self.wheels = Path(wheels) if wheels else self.envs_root / ".wheels"
        self._uv = uv
        self.build_timeout = build_timeout
        #: How bundle code runs (see sandbox.py); None: as the hub, in the bundle's folder.
        self.isolation = isolation
        #: uv's cache for builds made as the build user (machine-wide, so builds share downloads).
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._runtime_hash: Optional[str] = None
        self._pythons: Optional[list[PythonInstall]] = None
        self._pythons_at = 0.0

    # -- configuration -------------------------------------------------------------------------

    @property
    def uv(self) -> str:
        if self._uv is None:
            self._uv = _find_uv()
        if not self._uv:
            raise BuildError(
                "uv is not installed: install it beside the hub (pip install uv) or pass its path "
                "as Builder(uv=...)."
            )
        return self._uv

    def runtime_hash(self) -> str:
        """The hash of the ``modelcloud`` runtime the hub installs into environments."""
        if self._runtime_hash is None:
            self._runtime_hash = runtime.runtime_hash()
        return self._runtime_hash

    def runtime_wheel(self) -> Path:
        """The runtime's wheel (made in :attr:`wheels` when it is not there yet)."""
        path = runtime.wheel(self.wheels)
        os.chmod(self.wheels, 0o755)
        return path

    def env_key(self, config: BundleConfig, bundle_dir: Path) -> str:
        """The key of the environment a bundle needs: ``py<version>-<hash>``.

        The hash covers the requested Python (and CUDA), the bytes of ``requirements.txt``, the build
        steps, and the modelcloud runtime (this hub's copy, or "vendored"). Bundles with the same key
        share one environment.
        """
        bundle_dir = Path(bundle_dir)
        req = bundle_dir / "requirements.txt"
        parts = {
            "format": _KEY_FORMAT,
            "python": config.python,
            "cuda": config.cuda,
            "build_steps": list(config.build_steps),
            "requirements": hashlib.sha256(req.read_bytes()).hexdigest() if req.is_file() else None,
            "runtime": "vendored" if _vendors_modelcloud(bundle_dir) else self.runtime_hash(),
            "runtime_requirements": list(MODELCLOUD_REQUIREMENTS),
        }
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        return f"py{config.python}-{digest[:20]}"

    def available_pythons(self, refresh: bool = False) -> list[PythonInstall]:
        """The Pythons on this machine, one per version, oldest first (cached; ``refresh`` looks again).

        The hub's own interpreter, pyenv's versions, and those ``uv python list --only-installed``
        finds (on PATH and uv-managed). Nothing is ever downloaded.
        """
        stale = time.monotonic() - self._pythons_at > 30  # a refresh at most every 30 s
        if self._pythons is None or (refresh and stale):
            env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
            found: dict[str, PythonInstall] = {}
            own = own_python()
            for p in ([own] if own else []) + pyenv_pythons(env) + uv_pythons(self.uv, env):
                found.setdefault(p.version, p)
            self._pythons = sorted(found.values(), key=lambda p: p.version_tuple)
            self._pythons_at = time.monotonic()
        return self._pythons

    def find_python(self, request: str, *, vendored: bool = False) -> PythonInstall:
        """The interpreter for ``request`` ("3.11" or "3.11.7"), or a BuildError listing the others."""
        own = own_python()
        if own and version_matches(request, own.version):
            return own
        for refresh in (False, True):
            matching = [
                p for p in self.available_pythons(refresh) if version_matches(request, p.version)
            ]
            if matching:
                return matching[-1]
        usable = [
            p.version
            for p in self.available_pythons()
            if vendored or p.version_tuple[:2] >= MIN_PYTHON
        ]
        listed = ", ".join(usable) if usable else "none"
        raise BuildError(
            f"Python {request} is not available on this hub (it never downloads one): the Pythons "
            f"it can build with are {listed}; set python: in algolink.yml to one of them."
        )

    # -- building ------------------------------------------------------------------------------

    async def build(
        self,
        bundle_dir: Path,
        config: BundleConfig,
        log_path: Path,
        *,
        who: Optional[Identity] = None,
        tmp: Optional[Path] = None,
    ) -> Environment:
        """Build (or reuse) the environment ``bundle_dir`` needs; the log streams to ``log_path``.

        An environment already built with the same key is reused at once; its build steps that are
        not package installs (``python train.py --if-missing``, say) are run again, because their
        work may live in the bundle folder rather than in the environment. Otherwise: a venv for
        the requested Python (uv, never downloading one), the modelcloud runtime, then each build
        step. A failure removes the half-built environment and raises :class:`BuildError` with the
        tail of the log; the log's last line says how the build ended and how long it took.

        With :attr:`isolation`, the environment is built in a sandbox as the build user (as root, a
        user made for this build alone, removed with all its processes when it ends), from a
        scratch copy of the bundle, and then given to root; the steps that are not package installs
        run again as ``who`` (the service's user) in ``bundle_dir`` (the version's working copy,
        ``tmp`` its /tmp) with the environment read-only, so what they make is the version's.
        """
        bundle_dir = Path(bundle_dir).resolve()
        log = _BuildLog(Path(log_path))
        key = self.env_key(config, bundle_dir)
        env = Environment.at(key, self.envs_root / key)
        log.header(f"Building the environment of {bundle_dir} (key {key})")
        for warning in config.warnings:
            log.line(f"Warning: {warning}")
        try:
            try:
                await self._build_locked(env, bundle_dir, config, log, who, tmp)
            except asyncio.CancelledError:
                log.line(f"Build cancelled after {log.elapsed:.1f} s.")
                raise
            except BuildError as e:
                log.line(f"Build failed after {log.elapsed:.1f} s: {str(e).splitlines()[0]}")
                raise
            except Exception as e:
                log.line(f"Build failed after {log.elapsed:.1f} s: {e}")
                raise BuildError(f"The build failed unexpectedly: {e}") from e
            log.line(f"Build succeeded in {log.elapsed:.1f} s: environment {key} is ready.")
            return env
        finally:
            log.close()

    async def _build_locked(
        self,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        log: _BuildLog,
        who: Optional[Identity],
        tmp: Optional[Path],
    ) -> None:
        deadline = time.monotonic() + self.build_timeout
        bundle_steps = [s for s in config.build_steps if not _INSTALL_STEP.match(s)]
        if env.complete and not bundle_steps:  # the fast path: nothing to wait for or to run
            log.header(f"Reusing environment {env.key}, built before")
            return
        self.envs_root.mkdir(parents=True, exist_ok=True)
        async with _FileLock(self.envs_root / f"{env.key}.lock", log):
            if env.complete:
                log.header(f"Reusing environment {env.key}, built before")
            else:
                if env.path.exists():
                    log.header("Removing an incomplete environment left by an earlier build")
                    await asyncio.to_thread(shutil.rmtree, env.path, True)
                try:
                    await self._create(env, bundle_dir, config, log, deadline)
                except BaseException:
                    await asyncio.shield(asyncio.to_thread(shutil.rmtree, env.path, True))
                    raise
                if self.isolation is None:
                    return  # every step ran in bundle_dir already
            for i, step in enumerate(bundle_steps, 1):
                log.header(f"Bundle step {i}/{len(bundle_steps)} (run for every bundle): {step}")
                await self._run_step(
                    env, bundle_dir, step, i, len(bundle_steps), log, deadline, who=who, tmp=tmp
                )

    async def _create(
        self,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        log: _BuildLog,
        deadline: float,
    ) -> None:
        if self.isolation is None:
            return await self._create_in(env, bundle_dir, config, log, deadline)
        scratch = self.envs_root / f".build-{env.key}"
        await asyncio.to_thread(shutil.rmtree, scratch, True)
        builder = await asyncio.to_thread(self.isolation.new_build_user)
        try:
            scratch.mkdir(parents=True)
            (scratch / "tmp").mkdir()
            self.isolation.own(scratch, builder, 0o711)
            self.isolation.own(scratch / "tmp", builder, 0o700)
            await asyncio.to_thread(working_copy_for, bundle_dir, scratch / "bundle", builder)
            env.path.mkdir(parents=True)
            self.isolation.own(env.path, builder, 0o755)
            build = _Build(builder, scratch)
            await self._create_in(env, scratch / "bundle", config, log, deadline, build)
            if builder is not None:  # nothing of the build runs while its environment is handed on
                await asyncio.to_thread(kill_user, builder)
            await asyncio.to_thread(self.isolation.hand_to_root, env.path)
        finally:
            await asyncio.shield(self._end_build(scratch, builder))

    async def _end_build(self, scratch: Path, builder: Optional[Identity]) -> None:
        """The build's processes, scratch folder and user, gone."""
        assert self.isolation is not None
        if builder is not None:
            await asyncio.to_thread(kill_user, builder)
        await asyncio.to_thread(shutil.rmtree, scratch, True)
        await asyncio.to_thread(self.isolation.end_build_user, builder)

    async def _create_in(
        self,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        log: _BuildLog,
        deadline: float,
        build: Optional[_Build] = None,
    ) -> None:
        uv = self.uv
        vendored = _vendors_modelcloud(bundle_dir)
        if config.cuda:
            log.line(
                f"Note: the bundle asks for CUDA {config.cuda}; packages are installed as "
                "requirements.txt pins them (the hub adds no CUDA index)."
            )
        want = version_tuple(config.python)
        if not vendored and want[:2] < MIN_PYTHON:
            usable = [p.version for p in self.available_pythons() if p.version_tuple >= MIN_PYTHON]
            raise BuildError(
                f"Python {config.python} is too old for the modelcloud runtime, which needs "
                f"{'.'.join(map(str, MIN_PYTHON))} or newer: the Pythons this hub can build with are "
                f"{', '.join(usable) or 'none'}; set python: in algolink.yml to one of them."
            )
        python = await asyncio.to_thread(self.find_python, config.python, vendored=vendored)
        uv_env, install_flags = self._uv_settings()
        if build is not None:
            build.python = python.path
            if self.isolation is not None and self.isolation.users:
                await self._prefetch(build, bundle_dir, vendored, uv_env, install_flags, log)
        cache_env = _private_cache_env(build)
        base_env = {**env.process_env(build=True), **uv_env, **(cache_env or self._cache_env())}
        base_env.update(tmp_env(build.scratch / "tmp" if build is not None else None))
        run = functools.partial(
            self._run, cwd=bundle_dir, env=base_env, log=log, deadline=deadline, build=build
        )
        log.header(f"Creating a virtual environment with Python {python.version} ({python.path})")
        rc = await run(
            [uv, "venv", "--no-python-downloads", "--allow-existing"]
            + ["--python", str(python.path), str(env.path)]
        )
        if rc != 0:
            raise BuildError(
                f"uv could not create a Python {config.python} environment (exit status {rc}): "
                f"{_tail(log.tail, 4)}"
            )
        _write_pip_shim(env, uv, install_flags)
        if vendored:
            log.header("The bundle vendors its own modelcloud/: the hub's runtime is not installed")
        else:
            wheel = await asyncio.to_thread(self.runtime_wheel)
            log.header(f"Installing the modelcloud runtime ({wheel.name}) and what it needs")
            rc = await run(
                [uv, "pip", "install", "--python", str(env.python), *install_flags, str(wheel)]
            )
            if rc != 0:
                raise BuildError(
                    f"The modelcloud runtime could not be installed (exit status {rc}): "
                    f"{_tail(log.tail)}"
                )
        note = runway_note(bundle_dir, config.build_steps)
        if note:
            log.line(note)
        steps = list(config.build_steps)
        for i, step in enumerate(steps, 1):
            log.header(f"Build step {i}/{len(steps)}: {step}")
            await self._run_step(env, bundle_dir, step, i, len(steps), log, deadline, build=build)
        marker = {
            "key": env.key,
            "python": python.version,
            "python_path": str(python.path),
            "build_steps": steps,
            "vendored_modelcloud": vendored,
            "built": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        tmp = env.path / f"{COMPLETE_MARKER}.tmp"
        tmp.write_text(json.dumps(marker, indent=1) + "\n")
        os.replace(tmp, env.path / COMPLETE_MARKER)

    async def _run_step(
        self,
        env: Environment,
        bundle_dir: Path,
        step: str,
        index: int,
        count: int,
        log: _BuildLog,
        deadline: float,
        *,
        build: Optional[_Build] = None,
        who: Optional[Identity] = None,
        tmp: Optional[Path] = None,
    ) -> None:
        """One build step in ``bundle_dir``: while the environment is being built (``build``, as the
        build user, the environment writable), else as ``who`` with the environment read-only."""
        building = build is not None or self.isolation is None
        uv_env, _flags = self._uv_settings()
        command = _PYTHON_M_PIP.sub(lambda m: m.group(1) + "pip", step)
        cache_env = _private_cache_env(build)
        extra = {**uv_env, **(cache_env or self._cache_env())} if building else {}
        extra.update(tmp_env(build.scratch / "tmp" if build is not None else tmp))
        rc = await self._run(
            ["/bin/sh", "-c", command],
            cwd=bundle_dir,
            env=env.process_env(extra, build=building),
            log=log,
            deadline=deadline,
            build=build,
            who=who,
            read_only=[] if building else [env.path],
            tmp=tmp,
        )
        if rc != 0:
            raise BuildError(
                f"Build step {index} of {count} (`{step}`) failed with exit status {rc}; "
                f"fix it and publish again. The log ends with:\n{_tail(log.tail)}"
            )

    def _uv_settings(self) -> tuple[dict, list]:
        """The machine's pip settings for uv, with the runtime's wheel folder among the find-links
        (so a bundle's ``modelcloud==X`` is taken from it)."""
        uv_env, flags = uv_settings()
        links = uv_env.get("UV_FIND_LINKS") or os.environ.get("UV_FIND_LINKS") or ""
        uv_env["UV_FIND_LINKS"] = ",".join(p for p in (links, str(self.wheels)) if p)
        return uv_env, flags

    def _cache_env(self) -> dict[str, str]:
        """Where uv keeps its downloads for a build: the build user's cache when there is one."""
        cache = self._build_cache()
        return {"UV_CACHE_DIR": str(cache)} if cache is not None else {}

    def _build_cache(self) -> Optional[Path]:
        """The shared download cache: the cache user's (as root: see :meth:`_prefetch`), else the
        hub user's own."""
        if self.isolation is None:
            return None
        if self.isolation.users:
            cache = self.cache_dir or Path("/var/cache/algolink-build/uv")
            cache.mkdir(parents=True, exist_ok=True)
            owner = self.isolation.cache_user()
            if os.stat(cache).st_uid != (owner.uid if owner else 0):  # made by an older hub
                for folder, dirs, files in os.walk(cache):
                    for name in [*dirs, *files]:
                        with contextlib.suppress(OSError):
                            os.lchown(os.path.join(folder, name), owner.uid, owner.gid)
            self.isolation.own(cache, owner, 0o755)
            return cache
        return self.cache_dir or _uv_cache_dir()

    async def _prefetch(
        self,
        build: _Build,
        bundle_dir: Path,
        vendored: bool,
        uv_env: dict,
        install_flags: list,
        log: _BuildLog,
    ) -> None:
        """The shared cache, kept out of bundle code's reach (as root).

        What the environment will install (the runtime's wheel and requirements.txt) is fetched into
        the shared cache first, as the cache user, with ``--no-build``: uv runs no package's code,
        so nothing a bundle ships can change what the cache holds. The build then gets a copy of the
        cache of its own (hard links to files it may read but not change) and writes only there.
        A requirement that has no wheel is built by the build itself, in its own copy."""
        assert self.isolation is not None
        shared = self._build_cache()
        assert shared is not None
        fetcher = self.isolation.cache_user()
        target = self.envs_root / f".prefetch-{build.scratch.name}"
        await asyncio.to_thread(shutil.rmtree, target, True)
        target.mkdir(parents=True)
        self.isolation.own(target, fetcher, 0o700)
        wanted = [] if vendored else [str(await asyncio.to_thread(self.runtime_wheel))]
        requirements = bundle_dir / "requirements.txt"
        if requirements.is_file():
            wanted += ["-r", str(requirements)]
        try:
            if wanted:
                argv = [self.uv, "pip", "install", "--no-build", "--python", str(build.python)]
                argv += ["--target", str(target / "site"), *install_flags, *wanted]
                argv = self.isolation.command(
                    argv,
                    who=fetcher,
                    cwd=bundle_dir,
                    read_only=[
                        Path(os.path.realpath(self.uv)).parent,
                        self.wheels,
                        bundle_dir,
                        python_prefix(Path(build.python or sys.executable)),
                    ],
                    writable=[shared, target],
                    tmp=target,
                )
                env = clean_environment({**uv_env, "UV_CACHE_DIR": str(shared)}, build=True)
                env.update(tmp_env(target))
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=str(bundle_dir),
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
                out, _ = await proc.communicate()
                if proc.returncode != 0:
                    said = out.decode("utf-8", "replace").strip().splitlines()[-3:]
                    log.line(
                        "Note: some requirements could not be fetched ahead without running their "
                        "code ("
                        + " / ".join(line.strip() for line in said)[-300:]
                        + "): the build "
                        "gets them itself, in a package cache of its own."
                    )
        finally:
            await asyncio.to_thread(shutil.rmtree, target, True)
        build.cache = build.scratch / "uv-cache"
        await asyncio.to_thread(clone_cache, shared, build.cache, build.who)

    async def _run(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        log: _BuildLog,
        deadline: float,
        build: Optional[_Build] = None,
        who: Optional[Identity] = None,
        read_only: list = (),  # type: ignore[assignment]
        tmp: Optional[Path] = None,
    ) -> int:
        """Run one command of the build, its output into the log as it comes; its exit status.

        With :attr:`isolation` it runs sandboxed: while an environment is being built (``build``), as
        the build user (the environment and the scratch copy writable), else as ``who`` in ``cwd``."""
        log.tail.clear()
        if self.isolation is not None:
            argv = self._sandboxed(argv, cwd, env, build, who, list(read_only), tmp)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(cwd),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )

        async def pump() -> None:
            assert proc.stdout is not None
            async for line in read_lines(proc.stdout):
                log.output(line)

        pumping = asyncio.ensure_future(pump())
        try:
            remaining = deadline - time.monotonic()
            try:
                await asyncio.wait_for(proc.wait(), max(remaining, 0.01))
            except asyncio.TimeoutError:
                await terminate(proc, 5)
                raise BuildError(
                    f"The build took longer than {self.build_timeout:.0f} s and was stopped: "
                    "make its steps faster, or raise the hub's build timeout."
                ) from None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(pumping), 5)  # the last lines
        finally:
            if proc.returncode is None:
                await asyncio.shield(terminate(proc, 5))
            signal_group(proc.pid, signal.SIGKILL)  # what the step left running in the background
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
        return proc.returncode if proc.returncode is not None else -1

    def _sandboxed(
        self,
        argv: list,
        cwd: Path,
        env: dict,
        build: Optional[_Build],
        who: Optional[Identity],
        read_only: list,
        tmp: Optional[Path],
    ) -> list:
        assert self.isolation is not None
        tools = [Path(os.path.realpath(self.uv)).parent, self.wheels]
        if build is not None and build.python is not None:
            tools.append(python_prefix(Path(build.python)))
        for path in read_only:
            base = venv_base(path)
            if base is not None:
                tools.append(base)
        if build is not None:  # building the environment, as the build user
            cache = env.get("UV_CACHE_DIR")
            writable = [Path(env["VIRTUAL_ENV"]), build.scratch, *([Path(cache)] if cache else [])]
            return self.isolation.command(
                argv,
                who=build.who,
                cwd=cwd,
                read_only=tools,
                writable=writable,
                tmp=build.scratch / "tmp",
            )
        return self.isolation.command(
            argv, who=who, cwd=cwd, read_only=[*tools, *read_only], writable=[cwd], tmp=tmp
        )

    async def read_manifest(
        self,
        env: Environment,
        bundle_dir: Path,
        timeout: float = 60.0,
        *,
        who: Optional[Identity] = None,
        tmp: Optional[Path] = None,
    ) -> dict[str, Any]:
        """The bundle's manifest: see :func:`read_manifest` (sandboxed as ``who`` with
        :attr:`isolation`)."""
        wrap = None
        if self.isolation is not None:
            base = venv_base(env.path)
            isolation = self.isolation

            def wrap(argv: list) -> list:
                return isolation.command(
                    argv,
                    who=who,
                    cwd=bundle_dir,
                    read_only=[env.path, *([base] if base else [])],
                    writable=[bundle_dir],
                    tmp=tmp,
                )

        return await read_manifest(env, bundle_dir, timeout, wrap=wrap, extra_env=tmp_env(tmp))


def _vendors_modelcloud(bundle_dir: Path) -> bool:
    return (Path(bundle_dir) / "modelcloud" / "__init__.py").is_file()


def _uv_cache_dir() -> Path:
    """uv's own default cache folder for the hub's user."""
    if os.environ.get("UV_CACHE_DIR"):
        return Path(os.environ["UV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "uv"


def _private_cache_env(build: Optional[_Build]) -> dict:
    """uv's settings for a build with a cache of its own: the files it links there are not the
    build user's, so the environment takes copies of them (hard links would need the owner)."""
    if build is None or build.cache is None:
        return {}
    return {"UV_CACHE_DIR": str(build.cache), "UV_LINK_MODE": "copy"}


#: Files of uv's cache that uv itself opens to write (markers and locks).
_CACHE_OWN_FILES = frozenset({".git", ".gitignore", "CACHEDIR.TAG", ".lock"})


def clone_cache(shared: Path, target: Path, who: Optional[Identity]) -> None:
    """A copy of uv's shared cache for one build: its folders ``who``'s, its files hard links to the
    shared ones (which ``who`` may read, not change); a file others may write (a lock) is made anew,
    empty, instead of linked."""
    for folder, _dirs, files in os.walk(shared):
        dest = target / Path(folder).relative_to(shared)
        dest.mkdir(parents=True, exist_ok=True)
        if who is not None:
            os.chown(dest, who.uid, who.gid)
        os.chmod(dest, 0o755)
        for name in files:
            src, dst = os.path.join(folder, name), dest / name
            try:
                st = os.lstat(src)
                if os.path.islink(src) or st.st_mode & 0o002 or name in _CACHE_OWN_FILES:
                    # the cache's own bookkeeping (uv opens these to write): a copy of its own
                    if not os.path.islink(src) and st.st_size < (1 << 20):
                        shutil.copyfile(src, dst)
                    else:
                        dst.touch()
                    if who is not None:
                        os.chown(dst, who.uid, who.gid)
                    continue
                os.link(src, dst)
            except OSError:
                continue  # a file uv may fetch again


def working_copy_for(bundle_dir: Path, target: Path, who: Optional[Identity]) -> None:
    """A copy of the bundle for a build (owned by ``who``, never linked: the build may write)."""
    shutil.copytree(bundle_dir, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if who is not None:  # readable by the cache user too (it fetches what requirements.txt names)
        for folder, dirs, files in os.walk(target):
            for name in [*dirs, *files]:
                path = os.path.join(folder, name)
                os.lchown(path, who.uid, who.gid)
                if not os.path.islink(path):
                    os.chmod(path, os.stat(path).st_mode | (0o755 if name in dirs else 0o644))
        os.chown(target, who.uid, who.gid)
        os.chmod(target, 0o755)


#: Runway's SDK on PyPI (``runway-python``) named in a requirement or a build step.
_RUNWAY_PYTHON = re.compile(r"(^|[\s;&|])runway[-_.]python\b", re.IGNORECASE | re.MULTILINE)
#: A bare ``runway`` requirement: on PyPI that is another project (a deployment tool) with a
#: ``runway`` module of its own.
_RUNWAY_BARE = re.compile(r"^\s*runway\s*(?:[<>=!~;\[@]|$)", re.IGNORECASE | re.MULTILINE)


def runway_note(bundle_dir: Path, steps: Any) -> Optional[str]:
    """The build log's note when the bundle installs a package that provides ``runway`` itself
    (Runway's SDK, or PyPI's unrelated ``runway``), which then replaces the hub's alias; else None."""
    req = bundle_dir / "requirements.txt"
    try:
        text = req.read_text(errors="replace") if req.is_file() else ""
    except OSError:
        text = ""
    if _RUNWAY_BARE.search(text):
        return (
            "Note: requirements.txt names `runway`, which on PyPI is another project (a deployment "
            "tool) whose `runway` module replaces the one the hub provides; leave it out: the hub "
            "provides `runway` (modelcloud's Runway API)."
        )
    if _RUNWAY_PYTHON.search(text + "\n" + "\n".join(str(s) for s in steps or ())):
        return (
            "Note: the bundle installs runway-python (Runway's own SDK): it replaces the `runway` "
            "the hub provides (modelcloud's, with AlgoLink's checks); leave it out to use the hub's."
        )
    return None


def _write_pip_shim(env: Environment, uv: str, install_flags: list[str]) -> None:
    text = _PIP_SHIM.format(python=env.python, uv=uv, env=str(env.path), flags=install_flags)
    for name in ("pip", "pip3"):
        path = env.bin_dir / name
        path.unlink(missing_ok=True)  # never written through a link someone left there
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)


class _FileLock:
    """An exclusive ``flock`` on a file, awaited without blocking the event loop.

    flock locks belong to the open file, so two builds in one process exclude each other as two
    processes do; the kernel drops the lock if the hub dies.
    """

    def __init__(self, path: Path, log: _BuildLog):
        self.path = path
        self.log = log
        self.fd = -1

    async def __aenter__(self) -> _FileLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        waited = False
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(self.fd)
                    raise
            if not waited:
                self.log.header("Waiting for another build of the same environment to finish")
                waited = True
            try:
                await asyncio.sleep(0.1)
            except BaseException:
                os.close(self.fd)
                raise

    async def __aexit__(self, *exc: Any) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


# --------------------------------------------------------------------------------------------------
# The manifest


async def read_manifest(
    env: Environment,
    bundle_dir: Path,
    timeout: float = 60.0,
    *,
    wrap: Any = None,
    extra_env: Optional[dict] = None,
) -> dict[str, Any]:
    """Run the bundle's entrypoint in ``env`` with ``ALGOLINK_META=1`` and return the manifest it prints.

    The entrypoint imports the model code and prints the manifest as JSON without setting the model
    up. A non-zero exit, no JSON on stdout, or more than ``timeout`` seconds is a :class:`BuildError`
    whose message ends with the tail of stderr.
    """
    bundle_dir = Path(bundle_dir)
    entrypoint = read_config(bundle_dir).entrypoint
    argv = entrypoint_argv(entrypoint, env.bin_dir)
    if wrap is not None:  # in the sandbox, as the service's user
        argv = wrap(argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(bundle_dir),
            env=env.process_env({"ALGOLINK_META": "1", **(extra_env or {})}),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:
        raise BuildError(f"The entrypoint `{entrypoint}` cannot be started: {e}.") from None
    try:
        (out,), (err,), _rc = await asyncio.wait_for(
            asyncio.gather(_capped(proc.stdout), _capped(proc.stderr), proc.wait()), timeout
        )
    except asyncio.TimeoutError:
        await terminate(proc, 2)
        raise BuildError(
            f"`{entrypoint}` with ALGOLINK_META=1 printed no manifest within {timeout:g} s: load "
            "models in the setup function, not when cloud_model.py is imported."
        ) from None
    except _TooMuch:
        await terminate(proc, 2)
        raise BuildError(
            f"`{entrypoint}` with ALGOLINK_META=1 printed more than {MAX_MANIFEST_OUTPUT >> 20} MB: "
            "it must print the manifest only; print nothing when cloud_model.py is imported."
        ) from None
    finally:
        if proc.returncode is None:
            await asyncio.shield(terminate(proc, 2))
        signal_group(proc.pid, signal.SIGKILL)
    stderr = _tail(err.decode("utf-8", "replace").splitlines(), 12)
    if proc.returncode != 0:
        raise BuildError(
            f"`{entrypoint}` with ALGOLINK_META=1 exited with status {proc.returncode} instead of "
            f"printing the manifest; fix the error it reports:\n{stderr}"
        )
    text = out.decode("utf-8", "replace")
    manifest = _last_json_object(text)
    if manifest is None:
        raise BuildError(
            f"`{entrypoint}` with ALGOLINK_META=1 printed no manifest: make sure cloud_model.py "
            "ends with `if __name__ == '__main__': modelcloud.run()`."
            + (f"\n{stderr}" if stderr else "")
        )
    return manifest


class _TooMuch(Exception):
    pass


async def _capped(stream: Any) -> tuple:
    """All a pipe gives, up to MAX_MANIFEST_OUTPUT bytes (_TooMuch past it)."""
    data = bytearray()
    while True:
        block = await stream.read(65536)
        if not block:
            return (bytes(data),)
        data += block
        if len(data) > MAX_MANIFEST_OUTPUT:
            raise _TooMuch


def _last_json_object(text: str) -> Optional[dict[str, Any]]:
    """The JSON object a process printed: its whole output, or its last line that is one."""
    with contextlib.suppress(ValueError):
        value = json.loads(text)
        if isinstance(value, dict):
            return value
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
    return None
