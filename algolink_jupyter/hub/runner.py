"""Service processes: start, health-check, supervise and stop the entrypoints of built bundles.

Each service (a key chosen by the caller, e.g. ``project/service/3``) runs its entrypoint in its built
environment, in a session and process group of its own, bound to ``127.0.0.1`` on the port it was
given. Its output goes to a size-capped rotating log. :meth:`Runner.start` returns once
``GET /healthcheck`` says ``RUNNING``; from then on a process that dies is restarted with exponential
backoff, until it has crashed too often within a window and is marked failed.

Processes do not outlive the hub unexpectedly:

- :meth:`Runner.stop` and :meth:`Runner.stop_all` send SIGTERM to the whole process group, then
  SIGKILL after a timeout, so whatever the service started goes too.
- On Linux each service is started through a small launcher that sets ``PR_SET_PDEATHSIG``: if the hub
  dies, even by SIGKILL, the kernel sends SIGTERM to the service process (its own children are not
  covered; they share its process group, see the next point).
- A pid file beside the log (``<log>.pid``) records the process and its group. The next hub does not
  re-adopt processes; when it starts the same key again it first stops a process still recorded
  there (after checking through ``/proc`` that the process is the one started for that key, so a
  reused pid is left alone). :func:`kill_stale` does the same for any pid file.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .builder import Environment, entrypoint_argv, read_lines, signal_group, terminate
from .bundles import BundleConfig

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

#: The states reported to ``on_state``.
STATES = ("starting", "online", "restarting", "failed", "stopped")
#: The variable that marks a process as the one this runner started for a key (checked before a kill).
KEY_VARIABLE = "ALGOLINK_RUNNER_KEY"

# Run by the hub's own Python in the child: die with the hub (PR_SET_PDEATHSIG = 1), then exec the
# service. If the hub died between fork and prctl, the parent is no longer the hub: give up at once.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
    "try:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "except OSError as e:\n"
    "    sys.exit(f'Cannot run {sys.argv[2]}: {e.strerror}.')\n"
)


class StartError(RuntimeError):
    """A service that did not become healthy; the message says why and ends with its log's tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (another program may still take it later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def pid_file_for(log_path: Path) -> Path:
    """Where the runner records the process of the service that logs to ``log_path``."""
    log_path = Path(log_path)
    return log_path.with_name(log_path.name + ".pid")


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


def _stamp() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _describe_exit(rc: Optional[int]) -> str:
    if rc is None:
        return "could not be started"
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"


class RotatingLog:
    """A log file capped at ``max_bytes``, rotated to ``<name>.1`` ... ``<name>.<backups>``.

    Lines are appended (a log written before, such as the build log, is kept) and flushed at once.
    """

    def __init__(self, path: Path, max_bytes: int = 5 * 1024 * 1024, backups: int = 2):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._size = self._file.tell()

    def write(self, line: str) -> None:
        if self._file.closed:
            return
        data = line.rstrip("\n") + "\n"
        size = len(data.encode("utf-8", "replace"))
        if self._size and self._size + size > self.max_bytes:
            self._rotate()
        self._file.write(data)
        self._file.flush()
        self._size += size

    def event(self, text: str) -> None:
        """A line of the runner's own, set apart from the service's output."""
        self.write(f"[{_stamp()}] ==> {text}")

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.backups, 0, -1):
            src = self.path if i == 1 else self.path.with_name(f"{self.path.name}.{i - 1}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i}"))
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        self._file = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        self._file.close()


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
    log: RotatingLog
    pid_file: Path
    state: str = "starting"
    proc: Optional[asyncio.subprocess.Process] = None
    pump: Optional[asyncio.Task] = None
    supervisor: Optional[asyncio.Task] = None
    stopping: bool = False
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    crashes: collections.deque = field(default_factory=collections.deque)
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=40))
    restarts: int = 0

    @property
    def connect_host(self) -> str:
        return _connect_host(self.host)

    def tail_text(self, n: int = 15) -> str:
        lines = [line for line in list(self.tail)[-n:] if line.strip()]
        return "\n".join(lines) if lines else "(the service printed nothing)"


class Runner:
    """Starts, supervises and stops service processes; reports each change of state to ``on_state``.

    ``on_state(key, state, message)`` is called with state ``starting``, ``online``, ``restarting``
    (message: why), ``failed`` (message: why, with the log's tail) or ``stopped``. A process that dies
    on its own is restarted after ``backoff_initial`` seconds, doubling up to ``backoff_max``; the
    ``max_crashes``-th crash within ``crash_window`` seconds marks it failed. Logs rotate at
    ``log_max_bytes`` with ``log_backups`` older files kept. All methods run on the hub's event loop.
    """

    def __init__(
        self,
        *,
        on_state: Optional[Callable[[str, str, Optional[str]], None]] = None,
        max_crashes: int = 5,
        crash_window: float = 120.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        log_max_bytes: int = 5 * 1024 * 1024,
        log_backups: int = 2,
    ) -> None:
        self.on_state = on_state
        self.max_crashes = max_crashes
        self.crash_window = crash_window
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
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
    ) -> None:
        """Start the service and return once ``GET /healthcheck`` answers ``RUNNING``.

        The entrypoint runs in ``env`` with the bundle as working directory and ``ALGOLINK_PORT``,
        ``ALGOLINK_HOST=127.0.0.1`` and ``extra_env`` (which may override them) in its environment.
        A key that is already running is stopped first, and so is a stale process recorded in the
        pid file beside ``log_path`` by an earlier hub. ``SETUP_FAILED``, the process exiting, the
        port being taken or ``health_timeout`` seconds without ``RUNNING`` raise :class:`StartError`
        (the process is stopped, ``failed`` is reported).
        """
        if key in self._services:
            await self.stop(key)
        pid_file = pid_file_for(log_path)
        if await asyncio.to_thread(kill_stale, pid_file):
            log.warning("stopped a stale process of %s left by an earlier hub", key)
        extra = {k: str(v) for k, v in (extra_env or {}).items()}
        host = extra.get("ALGOLINK_HOST", "127.0.0.1")
        svc = _Service(
            key=key,
            env=env,
            bundle_dir=Path(bundle_dir),
            config=config,
            port=int(port),
            host=host,
            extra_env=extra,
            health_timeout=health_timeout,
            log=RotatingLog(log_path, self.log_max_bytes, self.log_backups),
            pid_file=pid_file,
        )
        self._services[key] = svc
        self._notify(svc, "starting", None)
        try:
            if _port_in_use(host, svc.port):
                raise StartError(
                    f"Port {svc.port} on {host} is already in use by another program: give the "
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
            svc.log.event(f"Start failed: {message.splitlines()[0]}")
            await self._shutdown(svc, timeout=5)
            if self._services.get(key) is svc:
                del self._services[key]
                svc.state = "failed"
                self._notify(svc, "failed", message)
            svc.log.close()
            if error is e:
                raise
            raise error from e
        svc.state = "online"
        svc.log.event(f"Online at http://{svc.connect_host}:{svc.port} (pid {svc.proc.pid})")
        self._notify(svc, "online", None)
        svc.supervisor = asyncio.ensure_future(self._supervise(svc))

    async def _spawn(self, svc: _Service) -> None:
        argv = entrypoint_argv(svc.config.entrypoint, svc.env)
        if "/" not in argv[0]:  # not found on the environment's PATH nor the hub's
            raise StartError(
                f"The entrypoint's program `{argv[0]}` is neither in the service's environment nor "
                "on PATH: fix entrypoint: in algolink.yml, or install it with a build step."
            )
        if sys.platform.startswith("linux"):
            argv = [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *argv]
        process_env = svc.env.process_env(
            {
                "ALGOLINK_PORT": str(svc.port),
                "ALGOLINK_HOST": "127.0.0.1",
                **svc.extra_env,
                KEY_VARIABLE: svc.key,
            }
        )
        svc.tail.clear()
        svc.log.event(f"Starting `{svc.config.entrypoint}` on port {svc.port} in {svc.bundle_dir}")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(svc.bundle_dir),
            env=process_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        svc.proc = proc
        svc.pump = asyncio.ensure_future(self._pump(svc, proc))
        _write_pid_file(svc)
        if svc.stopping:
            await terminate(proc, 5)

    async def _pump(self, svc: _Service, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in read_lines(proc.stdout):
            svc.tail.append(line)
            svc.log.write(f"[{_stamp()}] {line}")

    async def _wait_healthy(self, svc: _Service) -> None:
        proc = svc.proc
        assert proc is not None
        deadline = time.monotonic() + svc.health_timeout
        while True:
            if proc.returncode is not None:
                await self._drain(svc)
                raise StartError(
                    f"The service {_describe_exit(proc.returncode)} before it was ready; its log "
                    f"ends with:\n{svc.tail_text()}"
                )
            status = await _health(svc.connect_host, svc.port)
            if status == "RUNNING":
                return
            if status == "SETUP_FAILED":
                await terminate(proc, 5)
                await self._drain(svc)
                raise StartError(
                    f"The service's setup failed (GET /healthcheck says SETUP_FAILED); its log "
                    f"ends with:\n{svc.tail_text()}"
                )
            if time.monotonic() > deadline:
                await terminate(proc, 5)
                await self._drain(svc)
                raise StartError(
                    f"The service was not ready within {svc.health_timeout:g} s (GET /healthcheck "
                    f"on port {svc.port} never said RUNNING); its log ends with:\n{svc.tail_text()}"
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), 0.1)

    async def _drain(self, svc: _Service) -> None:
        """Let the output pump take the last lines of a process that exited."""
        if svc.pump is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(svc.pump), 2)

    # -- supervising -------------------------------------------------------------------------------

    async def _supervise(self, svc: _Service) -> None:
        try:
            while not svc.stopping:
                proc = svc.proc
                rc = await proc.wait() if proc is not None else None
                if svc.stopping:
                    return
                await self._drain(svc)
                if proc is not None:
                    signal_group(proc.pid, signal.SIGKILL)  # what it left behind
                now = time.monotonic()
                svc.crashes.append(now)
                while svc.crashes and svc.crashes[0] < now - self.crash_window:
                    svc.crashes.popleft()
                why = f"The process {_describe_exit(rc)}"
                if len(svc.crashes) >= self.max_crashes:
                    message = (
                        f"{why}: {len(svc.crashes)} crashes within {self.crash_window:g} s, so it "
                        f"is no longer restarted; fix it and publish again. Its log ends "
                        f"with:\n{svc.tail_text()}"
                    )
                    svc.log.event(message.splitlines()[0])
                    svc.state = "failed"
                    svc.proc = None
                    svc.pid_file.unlink(missing_ok=True)
                    svc.log.close()
                    self._notify(svc, "failed", message)
                    return
                delay = min(self.backoff_initial * 2 ** (len(svc.crashes) - 1), self.backoff_max)
                message = f"{why}; restarting in {delay:g} s."
                svc.log.event(message)
                svc.state = "restarting"
                self._notify(svc, "restarting", message)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(svc.stop_event.wait(), delay)
                if svc.stopping:
                    return
                svc.restarts += 1
                try:
                    await self._spawn(svc)
                    await self._wait_healthy(svc)
                except StartError as e:
                    svc.log.event(f"Restart failed: {str(e).splitlines()[0]}")
                    continue  # the process is gone: counted as the next crash
                except OSError as e:
                    svc.log.event(f"Restart failed: the entrypoint could not be started: {e}")
                    svc.proc = None
                    continue
                if svc.stopping:
                    return
                svc.state = "online"
                svc.log.event(f"Online again (pid {svc.proc.pid}, restart {svc.restarts})")
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
        svc.log.event("Stopped.")
        svc.log.close()
        if was != "failed":
            self._notify(svc, "stopped", None)

    async def _shutdown(self, svc: _Service, timeout: float) -> None:
        svc.stopping = True
        svc.stop_event.set()
        if svc.proc is not None:
            await terminate(svc.proc, timeout)
        await self._drain(svc)
        if svc.pump is not None and not svc.pump.done():
            svc.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await svc.pump
        current = asyncio.current_task()
        if svc.supervisor is not None and svc.supervisor is not current:
            try:
                await asyncio.wait_for(asyncio.shield(svc.supervisor), 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                svc.supervisor.cancel()
        if svc.proc is not None and svc.proc.returncode is None:  # spawned during the shutdown
            await terminate(svc.proc, timeout)
        svc.pid_file.unlink(missing_ok=True)

    async def stop_all(self, timeout: float = 10) -> None:
        """Stop every service at once (the hub's shut-down)."""
        await asyncio.gather(*(self.stop(key, timeout) for key in list(self._services)))

    def _notify(self, svc: _Service, state: str, message: Optional[str]) -> None:
        if self.on_state is None:
            return
        try:
            self.on_state(svc.key, state, message)
        except Exception:
            log.exception("on_state(%r, %r) failed", svc.key, state)


# --------------------------------------------------------------------------------------------------
# Health and pid files


async def _health(host: str, port: int, timeout: float = 2.0) -> Optional[str]:
    """The ``status`` of ``GET /healthcheck``, or None when the server does not answer (yet)."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(
            f"GET /healthcheck HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        data = b""
        while len(data) < 65536:  # the server closes the connection after its answer
            more = await asyncio.wait_for(reader.read(65536), timeout)
            if not more:
                break
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
            return None
        status = json.loads(body.decode("utf-8", "replace")).get("status")
        return status if isinstance(status, str) else None
    except (OSError, asyncio.TimeoutError, ValueError, AttributeError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _write_pid_file(svc: _Service) -> None:
    assert svc.proc is not None
    record = {
        "key": svc.key,
        "pid": svc.proc.pid,
        "pgid": svc.proc.pid,
        "port": svc.port,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "hub_pid": os.getpid(),
    }
    tmp = svc.pid_file.with_name(svc.pid_file.name + ".tmp")
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, svc.pid_file)


def _is_ours(pid: int, key: str) -> bool:
    """True when ``pid`` is alive and is a process this runner started for ``key``."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        # No /proc (not Linux) or not readable: trust a live process that leads its own group.
        try:
            return os.getpgid(pid) == pid
        except OSError:
            return False
    return f"{KEY_VARIABLE}={key}".encode() in environ.split(b"\0")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def kill_stale(pid_file: Path, timeout: float = 5.0) -> bool:
    """Stop the process recorded in ``pid_file`` if it still runs; True when there was one.

    Used when a hub that was killed left a service running: the process is checked to be the one
    started for the recorded key (its environment names the key), then its group gets SIGTERM and,
    after ``timeout`` seconds, SIGKILL. The pid file is removed.
    """
    pid_file = Path(pid_file)
    try:
        record = json.loads(pid_file.read_text())
        pid, pgid, key = int(record["pid"]), int(record.get("pgid", record["pid"])), record["key"]
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        pid_file.unlink(missing_ok=True)
        return False
    found = False
    if pid > 0 and _alive(pid) and _is_ours(pid, str(key)):
        found = True
        signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 2
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return found
