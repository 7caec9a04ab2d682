"""Service processes: start, health-check, supervise, stop and find again the entrypoints of built bundles.

Each service (a key chosen by the caller, e.g. ``project/service/3``) runs its entrypoint in its built
environment, through a keeper (:mod:`.shim`) that owns its output and writes the size-capped rotating
log, in a session and process group of its own, bound to the port it was given, as the
:class:`~.sandbox.Isolation` says (its own user, in a sandbox). :meth:`Runner.start` returns once
``GET /healthcheck`` says ``RUNNING``. From then on the runner watches it: a process that dies is
restarted with exponential backoff, until it has crashed too often within a window and is marked
failed; a process whose ``/healthcheck`` says ``SETUP_FAILED``, or that stops answering it, is
reported with its log's tail and restarted the same way.

Services outlive the hub. A pid file beside the log (``<log>.pid``) records the service's process,
its keeper, its port and key. A hub that stops (or dies) leaves them running; the next one calls
:meth:`Runner.adopt`, which takes a process back when it is the one started for that key (checked
through ``/proc``, so a reused pid is left alone), its keeper still writes its log, and it answers
``RUNNING``: no cold start. :meth:`Runner.stop` sends SIGTERM to the service's process group, then
SIGKILL after a timeout; :func:`kill_stale` does the same for a pid file nobody adopts.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import errno
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .backend import STATES
from .builder import Environment
from .bundles import BundleConfig
from .processes import (
    KEY_VARIABLE,
    Holder,
    Process,
    alive,
    entrypoint_argv,
    health,
    holds,
    is_ours,
    kill_stale,
    log_tail,
    pid_file_for,
    port_owners,
    signal_group,
    terminate,
)
from .sandbox import Identity, Isolation, clean_environment, tmp_env, venv_base
from .shim import RotatingLog, append_line, stamp

__all__ = [
    "STATES",
    "RotatingLog",
    "Runner",
    "StartError",
    "free_port",
    "kill_stale",
    "pid_file_for",
]

log = logging.getLogger(__name__)

SHIM = Path(__file__).resolve().with_name("shim.py")


class StartError(RuntimeError):
    """A service that did not become healthy; the message says why and ends with its log's tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (another program may still take it later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def local_gpus() -> list[str]:
    """The NVIDIA GPU devices of this machine (``/dev/nvidia0``, ...)."""
    return sorted(str(p) for p in Path("/dev").glob("nvidia[0-9]*"))


def _connect_host(bind_host: str) -> str:
    return "127.0.0.1" if bind_host in ("", "0.0.0.0", "::", "*") else bind_host


def _port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Tornado binds
        try:
            s.bind((host, port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


def _describe_exit(rc: Optional[int]) -> str:
    if rc is None:
        return "could not be started"
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"


def service_argv(
    config: BundleConfig,
    env: Environment,
    bundle_dir: Path,
    isolation: Optional[Isolation],
    who: Optional[Identity],
    read_only: Iterable[Path] = (),
    writable: Iterable[Path] = (),
    tmp: Optional[Path] = None,
) -> list:
    """The command that runs a version's entrypoint in ``env``, in the sandbox ``isolation`` makes
    (as ``who``, seeing its environment, ``read_only``, and ``bundle_dir`` and ``writable``
    writable); a StartError when the entrypoint's program is nowhere."""
    argv = entrypoint_argv(config.entrypoint, env.bin_dir)
    if "/" not in argv[0]:  # not found on the environment's PATH nor the hub's
        raise StartError(
            f"The entrypoint's program `{argv[0]}` is neither in the service's environment nor "
            "on PATH: fix entrypoint: in algolink.yml, or install it with a build step."
        )
    if isolation is None:
        return argv
    base = venv_base(env.path)
    return isolation.command(
        argv,
        who=who,
        cwd=bundle_dir,
        read_only=[env.path, *([base] if base else []), *read_only],
        writable=[bundle_dir, *writable],
        tmp=tmp,
    )


def service_environment(
    env: Environment,
    bundle_dir: Path,
    tmp: Optional[Path],
    who: Optional[Identity],
    extra: dict,
) -> dict:
    """The variables a version's process starts with: a clean environment, its own ``env`` first
    on PATH, its working copy as HOME, ``tmp`` as its temporary folder, then ``extra``."""
    process_env = clean_environment(
        {
            "PATH": str(env.bin_dir) + os.pathsep + os.environ.get("PATH", os.defpath),
            "VIRTUAL_ENV": str(env.path),
            "PYTHONUNBUFFERED": "1",
            "HOME": str(bundle_dir),
            **tmp_env(tmp),
            **extra,
        }
    )
    if who is not None:
        process_env.update(USER=who.name, LOGNAME=who.name)
    return process_env


@dataclass
class _Service:
    key: str
    env: Environment
    bundle_dir: Path
    config: BundleConfig
    port: int
    host: str
    extra_env: dict[str, str]
    health_timeout: float
    log_path: Path
    pid_file: Path
    who: Optional[Identity] = None
    read_only: tuple = ()
    writable: tuple = ()
    tmp: Optional[Path] = None
    state: str = "starting"
    proc: Optional[Process] = None
    supervisor: Optional[asyncio.Task] = None
    stopping: bool = False
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    crashes: collections.deque = field(default_factory=collections.deque)
    restarts: int = 0
    #: Where the process holds its listening socket (found once it answers); None: not known.
    listener: Optional[Holder] = None
    #: The process no longer holds its port (until it is started again): nothing is sent there.
    port_lost: bool = False

    @property
    def connect_host(self) -> str:
        return _connect_host(self.host)

    def event(self, text: str) -> None:
        """A line of the runner's own in the service's log (the keeper writes the rest)."""
        append_line(self.log_path, f"[{stamp()}] ==> {text}")

    def tail_text(self, n: int = 15) -> str:
        return log_tail(self.log_path, n)


class Runner:
    """The local backend (:class:`~.backend.Backend`): starts, supervises, adopts and stops service
    processes on the hub's machine; reports each change of state to ``on_state``.

    ``on_state(key, state, message)`` is called with state ``starting``, ``online``, ``restarting``
    (message: why), ``failed`` (message: why, with the log's tail) or ``stopped``. A process that dies
    on its own is restarted after ``backoff_initial`` seconds, doubling up to ``backoff_max``; the
    ``max_crashes``-th crash within ``crash_window`` seconds marks it failed. While it runs,
    ``/healthcheck`` is asked every ``health_interval`` seconds: ``SETUP_FAILED``, or no answer within
    ``health_check_timeout`` ``hung_checks`` times in a row, counts as a crash (the process is killed and restarted). Logs
    rotate at ``log_max_bytes`` with ``log_backups`` older files kept. ``isolation`` says how
    bundle code runs (none: as the hub). All methods run on the hub's event loop.
    """

    name = "local"

    def __init__(
        self,
        *,
        on_state: Optional[Callable[[str, str, Optional[str]], None]] = None,
        isolation: Optional[Isolation] = None,
        max_crashes: int = 5,
        crash_window: float = 120.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        health_interval: float = 5.0,
        health_check_timeout: float = 5.0,
        hung_checks: int = 3,
        log_max_bytes: int = 5 * 1024 * 1024,
        log_backups: int = 2,
    ) -> None:
        self.on_state = on_state
        self.isolation = isolation
        self.max_crashes = max_crashes
        self.crash_window = crash_window
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.health_interval = health_interval
        self.health_check_timeout = health_check_timeout
        self.hung_checks = hung_checks
        self.log_max_bytes = log_max_bytes
        self.log_backups = log_backups
        self._services: dict[str, _Service] = {}

    # -- queries -----------------------------------------------------------------------------------

    def url(self, key: str) -> Optional[str]:
        """``http://127.0.0.1:<port>`` of the service while it is online, else None."""
        svc = self._services.get(key)
        if svc is None or svc.state != "online":
            return None
        host = svc.connect_host
        return f"http://[{host}]:{svc.port}" if ":" in host else f"http://{host}:{svc.port}"

    def pick(self, key: str) -> Optional[tuple[str, int]]:
        svc = self._services.get(key)
        if svc is None or svc.state != "online":
            return None
        return svc.connect_host, svc.port

    def another(self, key: str, failed: tuple[str, int]) -> Optional[tuple[str, int]]:
        return None  # one process: nowhere else to send a request

    def replicas(self, key: str) -> list[dict]:
        svc = self._services.get(key)
        if svc is None:
            return []
        pid = self.pid(key)
        url = f"http://{svc.connect_host}:{svc.port}"
        return [{"id": "local", "state": svc.state, "node": "local", "pid": pid, "url": url}]

    def pid(self, key: str) -> Optional[int]:
        """The pid of the service's current process, or None when none is running."""
        svc = self._services.get(key)
        if svc is None or svc.proc is None or svc.proc.returncode is not None:
            return None
        return svc.proc.pid

    def state(self, key: str) -> Optional[str]:
        """The service's state (one of :data:`STATES`), or None for a key this runner does not know."""
        svc = self._services.get(key)
        return svc.state if svc is not None else None

    def keys(self) -> list[str]:
        return list(self._services)

    def ports(self) -> set:
        """The ports the services this runner knows listen on."""
        return {svc.port for svc in self._services.values()}

    async def owns_port(self, key: str) -> bool:
        """Whether the service's own process still listens on its port: checked before /serve
        opens a new connection to it, so that a program that took the port in the moment between
        the process's end and the runner noticing it gets nothing. One ``readlink`` while the
        process holds the socket it was found with; a look through /proc when it does not (a
        server whose listening process changed), after which a port that is lost stays lost
        until the service is started again."""
        svc = self._services.get(key)
        if svc is None or svc.state != "online" or svc.port_lost or svc.proc is None:
            return False
        if svc.listener is None or holds(svc.listener):
            return True  # None: this system cannot tell (no /proc), as before
        intruder, holder = await asyncio.to_thread(port_owners, svc.port, svc.proc.pid)
        if intruder is not None or holder is None:
            svc.port_lost = True
            return False
        svc.listener = holder
        return True

    # -- starting ----------------------------------------------------------------------------------

    async def start(
        self,
        key: str,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        port: int,
        log_path: Path,
        *,
        extra_env: Optional[dict[str, str]] = None,
        health_timeout: float = 60,
        who: Optional[Identity] = None,
        read_only: Iterable[Path] = (),
        writable: Iterable[Path] = (),
        tmp: Optional[Path] = None,
    ) -> None:
        """Start the service and return once ``GET /healthcheck`` answers ``RUNNING``.

        The entrypoint runs in ``env`` with ``bundle_dir`` (the version's working copy) as working
        directory, as ``who``, seeing ``read_only`` and ``writable`` paths and ``tmp`` as /tmp when
        sandboxed, with a clean environment plus ``ALGOLINK_PORT``, ``ALGOLINK_HOST=127.0.0.1`` and
        ``extra_env`` (which may override them). A key that is already running is stopped first, and
        so is a stale process recorded in the pid file beside ``log_path`` by an earlier hub.
        ``SETUP_FAILED``, the process exiting, the port being taken or ``health_timeout`` seconds
        without ``RUNNING`` raise :class:`StartError` (the process is stopped, ``failed`` is
        reported).
        """
        if key in self._services:
            await self.stop(key)
        pid_file = pid_file_for(log_path)
        if await asyncio.to_thread(kill_stale, pid_file):
            log.warning("stopped a stale process of %s left by an earlier hub", key)
        svc = self._service(
            key, env, bundle_dir, config, port, log_path, extra_env, health_timeout, who
        )
        svc.read_only, svc.writable, svc.tmp = tuple(read_only), tuple(writable), tmp
        self._services[key] = svc
        self._notify(svc, "starting", None)
        try:
            self._apply_scaling(svc)
            if _port_in_use(svc.host, svc.port):
                raise StartError(
                    f"Port {svc.port} on {svc.host} is already in use by another program: give the "
                    "service another port, or stop that program."
                )
            await self._spawn(svc)
            await self._wait_healthy(svc)
        except BaseException as e:
            error = e
            if isinstance(e, Exception) and not isinstance(e, StartError):
                error = StartError(
                    f"The service's entrypoint `{config.entrypoint}` could not be started: {e}."
                )
            message = str(error) if isinstance(error, StartError) else "The start was cancelled."
            svc.event(f"Start failed: {message.splitlines()[0]}")
            await self._shutdown(svc, timeout=5)
            if self._services.get(key) is svc:
                del self._services[key]
                svc.state = "failed"
                self._notify(svc, "failed", message)
            if error is e:
                raise
            raise error from e
        svc.state = "online"
        svc.event(f"Online at http://{svc.connect_host}:{svc.port} (pid {svc.proc.pid})")
        self._notify(svc, "online", None)
        svc.supervisor = asyncio.ensure_future(self._supervise(svc))

    def _apply_scaling(self, svc: _Service) -> None:
        """What of ``algolink.yml``'s scaling settings one local process can honour: ``gpus``
        (the machine's GPUs stay visible; none asked for by ``gpus: 0`` hides them, and a GPU asked
        for on a machine without one is refused). The rest is said in the log, as ignored."""
        scaling = svc.config.scaling
        ignored = {k: v for k, v in scaling.to_dict().items() if k != "gpus"}
        if scaling.replicas == 1:
            ignored.pop("replicas", None)
        if ignored:
            said = ", ".join(f"{k}: {v}" for k, v in ignored.items())
            svc.event(
                f"algolink.yml asks for {said}: the local backend ignores it (one process per "
                "version; the hub's --backend ray runs replicas with these settings)."
            )
        if scaling.gpus is None:
            return
        if scaling.gpus == 0:
            svc.extra_env.setdefault("CUDA_VISIBLE_DEVICES", "")
            return
        if not local_gpus():
            raise StartError(
                f"algolink.yml asks for gpus: {scaling.gpus:g}, and this machine has no GPU: "
                "remove gpus: (or set it to 0) to run on the CPU, or run the hub with --backend "
                "ray on a cluster that has GPUs."
            )

    def _service(
        self,
        key: str,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        port: int,
        log_path: Path,
        extra_env: Optional[dict],
        health_timeout: float,
        who: Optional[Identity],
    ) -> _Service:
        extra = {k: str(v) for k, v in (extra_env or {}).items()}
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        return _Service(
            key=key,
            env=env,
            bundle_dir=Path(bundle_dir),
            config=config,
            port=int(port),
            host=extra.get("ALGOLINK_HOST", "127.0.0.1"),
            extra_env=extra,
            health_timeout=health_timeout,
            log_path=Path(log_path),
            pid_file=pid_file_for(log_path),
            who=who,
        )

    async def adopt(
        self,
        key: str,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        log_path: Path,
        *,
        extra_env: Optional[dict[str, str]] = None,
        health_timeout: float = 60,
        who: Optional[Identity] = None,
        read_only: Iterable[Path] = (),
        writable: Iterable[Path] = (),
        tmp: Optional[Path] = None,
    ) -> bool:
        """Take back a service an earlier hub started and left running; True when it was taken.

        Only a process recorded in the pid file beside ``log_path`` for this ``key``, whose keeper
        still runs and which answers ``RUNNING`` now, is taken; it is then supervised as if this
        runner had started it (reported ``online``). Otherwise nothing changes (the caller starts
        it anew, which stops what is left of the old one).
        """
        pid_file = pid_file_for(log_path)
        try:
            record = json.loads(pid_file.read_text())
            pid, shim, port = int(record["pid"]), int(record["shim"]), int(record["port"])
            if record["key"] != key:
                return False
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if not (alive(pid) and alive(shim) and is_ours(pid, key) and is_ours(shim, key)):
            return False
        svc = self._service(
            key, env, bundle_dir, config, port, log_path, extra_env, health_timeout, who
        )
        if await health(svc.connect_host, port) != "RUNNING":
            return False
        intruder, holder = await asyncio.to_thread(port_owners, port, pid)
        if intruder is not None:
            return False  # another program holds its port: not the service any more
        svc.listener = holder
        svc.read_only, svc.writable, svc.tmp = tuple(read_only), tuple(writable), tmp
        status = Path(str(log_path) + ".exit")
        svc.proc = Process(shim, pid, status)
        svc.state = "online"
        self._services[key] = svc
        svc.event(f"Taken back by a new hub (pid {pid}, port {port}): serving on")
        self._notify(svc, "online", None)
        svc.supervisor = asyncio.ensure_future(self._supervise(svc))
        return True

    async def _spawn(self, svc: _Service) -> None:
        svc.listener, svc.port_lost = None, False
        argv = service_argv(
            svc.config,
            svc.env,
            svc.bundle_dir,
            self.isolation,
            svc.who,
            svc.read_only,
            svc.writable,
            svc.tmp,
        )
        status = Path(str(svc.log_path) + ".exit")
        argv = [
            sys.executable,
            "-I",
            str(SHIM),
            "--log",
            str(svc.log_path),
            "--status",
            str(status),
            "--max-bytes",
            str(self.log_max_bytes),
            "--backups",
            str(self.log_backups),
            "--",
            *argv,
        ]
        process_env = service_environment(
            svc.env,
            svc.bundle_dir,
            svc.tmp,
            svc.who,
            {
                "ALGOLINK_PORT": str(svc.port),
                "ALGOLINK_HOST": "127.0.0.1",
                # A bundle that installs Runway's own runway-python reads these.
                "RW_PORT": str(svc.port),
                "RW_HOST": "127.0.0.1",
                **svc.extra_env,
                KEY_VARIABLE: svc.key,
            },
        )
        svc.event(f"Starting `{svc.config.entrypoint}` on port {svc.port} in {svc.bundle_dir}")
        with open(svc.log_path, "ab") as errors:  # the keeper's own complaints, if any
            child = await asyncio.create_subprocess_exec(
                *argv,
                cwd=str(svc.bundle_dir),
                env=process_env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=errors,
                start_new_session=True,
            )
        assert child.stdout is not None
        try:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
        except asyncio.TimeoutError:
            line = b""
        words = line.decode("ascii", "replace").split()
        pid = int(words[1]) if len(words) == 2 and words[0] == "started" else None
        svc.proc = Process(child.pid, pid or child.pid, status, child)
        if pid is None:
            await svc.proc.wait()
            raise StartError(
                f"The service could not be started; its log ends with:\n{svc.tail_text()}"
            )
        _write_pid_file(svc)
        if svc.stopping:
            await self._terminate(svc, 5)

    async def _wait_healthy(self, svc: _Service) -> None:
        proc = svc.proc
        assert proc is not None
        deadline = time.monotonic() + svc.health_timeout
        while True:
            if proc.returncode is not None:
                raise StartError(
                    f"The service {_describe_exit(proc.returncode)} before it was ready; its log "
                    f"ends with:\n{svc.tail_text()}"
                )
            status = await health(svc.connect_host, svc.port)
            if status == "RUNNING":
                intruder, svc.listener = await asyncio.to_thread(port_owners, svc.port, proc.pid)
                if intruder is not None:
                    await self._terminate(svc, 5)
                    raise StartError(
                        f"Port {svc.port} is held by another program (pid {intruder}), which "
                        "answered in the service's place: the service was not started; stop that "
                        "program, or publish the service on another port."
                    )
                return
            if status == "SETUP_FAILED":
                await self._terminate(svc, 5)
                raise StartError(
                    f"The service's setup failed (GET /healthcheck says SETUP_FAILED); its log "
                    f"ends with:\n{svc.tail_text()}"
                )
            if time.monotonic() > deadline:
                await self._terminate(svc, 5)
                raise StartError(
                    f"The service was not ready within {svc.health_timeout:g} s (GET /healthcheck "
                    f"on port {svc.port} never said RUNNING); its log ends with:\n{svc.tail_text()}"
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.1)

    # -- supervising -------------------------------------------------------------------------------

    async def _watch(self, svc: _Service, proc: Process) -> Optional[str]:
        """Until the process exits (None) or its health says it must go (why, as a sentence)."""
        misses = 0
        while True:
            try:
                await asyncio.wait_for(proc.wait(), self.health_interval)
                return None
            except asyncio.TimeoutError:
                pass
            if svc.stopping:
                return None
            status = await health(
                svc.connect_host, svc.port, timeout=max(2.0, self.health_interval)
            )
            if proc.returncode is not None or svc.stopping:
                return None
            if status == "SETUP_FAILED":
                return "Its setup failed (GET /healthcheck says SETUP_FAILED)"
            if status is None:
                misses += 1
                if misses >= self.hung_checks:
                    return (
                        f"It stopped answering GET /healthcheck ({misses} checks in a row "
                        f"without an answer within {self.health_check_timeout:g} s)"
                    )
            else:
                misses = 0

    async def _supervise(self, svc: _Service) -> None:
        try:
            while not svc.stopping:
                proc = svc.proc
                why = None
                if proc is not None:
                    unhealthy = await self._watch(svc, proc)
                    if svc.stopping:
                        return
                    if unhealthy is not None:
                        svc.event(f"{unhealthy}: stopping it.")
                        await self._terminate(svc, 5)
                        why = unhealthy
                    rc = await proc.wait()
                else:
                    rc = None
                svc.port_lost = True  # gone: no new connection to its port until it is back
                if svc.stopping:
                    return
                if proc is not None:
                    signal_group(proc.pid, signal.SIGKILL)  # what it left behind
                now = time.monotonic()
                svc.crashes.append(now)
                while svc.crashes and svc.crashes[0] < now - self.crash_window:
                    svc.crashes.popleft()
                why = why or f"The process {_describe_exit(rc)}"
                if len(svc.crashes) >= self.max_crashes:
                    message = (
                        f"{why}: {len(svc.crashes)} crashes within {self.crash_window:g} s, so it "
                        f"is no longer restarted; fix it and publish again. Its log ends "
                        f"with:\n{svc.tail_text()}"
                    )
                    svc.event(message.splitlines()[0])
                    svc.state = "failed"
                    svc.proc = None
                    svc.pid_file.unlink(missing_ok=True)
                    self._notify(svc, "failed", message)
                    return
                delay = min(self.backoff_initial * 2 ** (len(svc.crashes) - 1), self.backoff_max)
                message = f"{why}; restarting in {delay:g} s."
                svc.event(message)
                svc.state = "restarting"
                self._notify(svc, "restarting", f"{message} Its log ends with:\n{svc.tail_text()}")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(svc.stop_event.wait(), delay)
                if svc.stopping:
                    return
                svc.restarts += 1
                try:
                    await self._spawn(svc)
                    await self._wait_healthy(svc)
                except StartError as e:
                    svc.event(f"Restart failed: {str(e).splitlines()[0]}")
                    continue  # the process is gone: counted as the next crash
                except OSError as e:
                    svc.event(f"Restart failed: the entrypoint could not be started: {e}")
                    svc.proc = None
                    continue
                if svc.stopping:
                    return
                svc.state = "online"
                svc.event(f"Online again (pid {svc.proc.pid}, restart {svc.restarts})")
                self._notify(svc, "online", None)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let supervision die silently
            log.exception("supervising %s failed", svc.key)
            svc.state = "failed"
            self._notify(svc, "failed", "The hub stopped supervising this service after an error.")

    # -- stopping ----------------------------------------------------------------------------------

    async def stop(self, key: str, timeout: float = 10) -> None:
        """Stop the service: SIGTERM to its process group, SIGKILL after ``timeout`` seconds.

        Reports ``stopped``. A key that is not running (never started, stopped, failed) is forgotten
        quietly.
        """
        svc = self._services.pop(key, None)
        if svc is None:
            return
        was = svc.state
        await self._shutdown(svc, timeout)
        svc.state = "stopped"
        svc.event("Stopped.")
        if was != "failed":
            self._notify(svc, "stopped", None)

    async def _terminate(self, svc: _Service, timeout: float) -> None:
        """SIGTERM the service's group, SIGKILL after ``timeout``; then until its keeper is gone
        (it ends once the service has)."""
        if svc.proc is not None:
            await terminate(svc.proc, timeout)  # type: ignore[arg-type]

    async def _shutdown(self, svc: _Service, timeout: float) -> None:
        svc.stopping = True
        svc.stop_event.set()
        await self._terminate(svc, timeout)
        current = asyncio.current_task()
        if svc.supervisor is not None and svc.supervisor is not current:
            try:
                await asyncio.wait_for(asyncio.shield(svc.supervisor), 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                svc.supervisor.cancel()
        if svc.proc is not None and svc.proc.returncode is None:  # spawned during the shutdown
            await self._terminate(svc, timeout)
        svc.pid_file.unlink(missing_ok=True)

    async def prune(self) -> None:
        """Nothing to do: the stale processes of an earlier hub go by their pid files (restore)."""

    async def stop_all(self, timeout: float = 10) -> None:
        """Stop every service at once."""
        await asyncio.gather(*(self.stop(key, timeout) for key in list(self._services)))

    async def detach_all(self) -> None:
        """Stop watching every service but leave it running (the hub stops; the next one adopts)."""
        for svc in list(self._services.values()):
            svc.stopping = True
            svc.stop_event.set()
            if svc.supervisor is not None:
                svc.supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await svc.supervisor
            svc.event("The hub stopped; the service keeps running for the next hub.")
        self._services.clear()

    def _notify(self, svc: _Service, state: str, message: Optional[str]) -> None:
        if self.on_state is None:
            return
        try:
            self.on_state(svc.key, state, message)
        except Exception:
            log.exception("on_state(%r, %r) failed", svc.key, state)


# --------------------------------------------------------------------------------------------------
# Health and pid files


def _write_pid_file(svc: _Service) -> None:
    assert svc.proc is not None
    record = {
        "key": svc.key,
        "pid": svc.proc.pid,
        "pgid": svc.proc.pid,
        "shim": svc.proc.shim_pid,
        "port": svc.port,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "hub_pid": os.getpid(),
    }
    tmp = svc.pid_file.with_name(svc.pid_file.name + ".tmp")
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, svc.pid_file)
