"""Processes the hub runs: the argv of an entrypoint, stopping a process group for good, and what the
runner knows of a service process (its keeper, its pid file, its health) apart from supervising it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Optional

__all__ = [
    "KEY_VARIABLE",
    "Process",
    "alive",
    "entrypoint_argv",
    "health",
    "holds",
    "is_ours",
    "kill_stale",
    "log_tail",
    "pid_file_for",
    "port_intruder",
    "port_owners",
    "read_lines",
    "signal_group",
    "terminate",
    "wait_for_exit",
]

#: The variable that marks a process as the one the runner started for a key (checked before a kill).
KEY_VARIABLE = "ALGOLINK_RUNNER_KEY"

_SHELL_CHARS = re.compile(r"[|&;<>()$`\\\"'*?\[\]#~{}\n]")


def entrypoint_argv(entrypoint: str, bin_dir: Path) -> list[str]:
    """The argv that runs an entrypoint in ``env``: the command itself, or ``/bin/sh -c`` for shell syntax.

    A plain command (``python cloud_model.py --flag``) is run directly, its program looked up on the
    environment's PATH, so that signals reach the service itself; one with pipes, ``&&``, variables or
    quotes goes through the shell.
    """
    if _SHELL_CHARS.search(entrypoint):
        return ["/bin/sh", "-c", entrypoint]
    argv = shlex.split(entrypoint)
    if not argv:
        raise ValueError("The entrypoint is empty: set entrypoint: in algolink.yml.")
    if "=" in argv[0]:  # VAR=value command ...: the shell's syntax
        return ["/bin/sh", "-c", entrypoint]
    if "/" not in argv[0]:
        path = str(bin_dir) + os.pathsep + os.environ.get("PATH", os.defpath)
        argv[0] = shutil.which(argv[0], path=path) or argv[0]
    return argv


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when it no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


async def terminate(proc: asyncio.subprocess.Process, timeout: float = 10.0) -> Optional[int]:
    """SIGTERM the process's group (it was started in a session of its own), SIGKILL after ``timeout``.

    Whatever is left of the group after the leader exited is killed too. Returns the exit status.
    """
    if proc.returncode is None:
        signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    signal_group(proc.pid, signal.SIGKILL)  # children that outlived the leader
    return proc.returncode


async def read_lines(stream: asyncio.StreamReader):
    """Lines of a process's output as they come (decoded leniently; over-long lines are split)."""
    buf = b""
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        buf += chunk
        while True:
            cut = buf.find(b"\n")
            if cut < 0:
                if len(buf) > 65536:
                    yield buf.decode("utf-8", "replace")
                    buf = b""
                break
            line, buf = buf[:cut], buf[cut + 1 :]
            yield line.rstrip(b"\r").decode("utf-8", "replace")
    if buf:
        yield buf.rstrip(b"\r").decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------------
# Service processes: their keepers, pid files and health


class Process:
    """A service's keeper (:mod:`.shim`) and the service's own pid, whether this runner started it
    or adopted it from an earlier hub. ``wait()`` returns the service's exit status (negative for a
    signal), as the keeper recorded it."""

    def __init__(self, shim_pid: int, pid: int, status_file: Path, child: Any = None) -> None:
        self.shim_pid = shim_pid
        self.pid = pid
        self.status_file = status_file
        self.child = child  # the asyncio Process of a keeper this runner started
        self.returncode: Optional[int] = None
        self._done: Optional[asyncio.Future] = None

    async def wait(self) -> int:
        if self.returncode is None:
            if self._done is None:
                self._done = asyncio.ensure_future(self._wait())
            await asyncio.shield(self._done)
        assert self.returncode is not None
        return self.returncode

    async def _wait(self) -> None:
        if self.child is not None:
            shim_rc = await self.child.wait()
        else:
            shim_rc = None
            await wait_for_exit(self.shim_pid)
        try:
            rc = int(json.loads(self.status_file.read_text())["rc"])
        except (OSError, ValueError, KeyError, TypeError):
            if shim_rc is None:
                rc = -signal.SIGKILL
            else:  # the keeper itself was killed: so was the service, with it
                rc = shim_rc if shim_rc <= 0 else -signal.SIGKILL
        self.returncode = rc


async def wait_for_exit(pid: int) -> None:
    """Until ``pid`` (not a child of this process) has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd: look every 0.2 s
        while alive(pid):
            await asyncio.sleep(0.2)
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def pid_file_for(log_path: Path) -> Path:
    """Where the runner records the process of the service that logs to ``log_path``."""
    log_path = Path(log_path)
    return log_path.with_name(log_path.name + ".pid")


def log_tail(path: Path, n: int = 15) -> str:
    """The service's last ``n`` lines of output in its log (not the hub's own ``==>`` lines), without
    their time stamps."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 65536))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        data = ""
    lines = []
    for line in data.splitlines():
        if line.startswith("[") and "] " in line[:24]:
            line = line.split("] ", 1)[1]
        if line.strip() and not line.startswith("==> "):
            lines.append(line)
    return "\n".join(lines[-n:]) if lines else "(the service printed nothing)"


async def health(host: str, port: int, timeout: float = 2.0) -> Optional[str]:
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


def is_ours(pid: int, key: str) -> bool:
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


def alive(pid: int) -> bool:
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

    Used when a hub left a service running that nobody takes back: the process is checked to be the
    one started for the recorded key (its environment names the key), then its group gets SIGTERM
    and, after ``timeout`` seconds, SIGKILL; so does its keeper. The pid file is removed.
    """
    pid_file = Path(pid_file)
    try:
        record = json.loads(pid_file.read_text())
        pid, pgid, key = int(record["pid"]), int(record.get("pgid", record["pid"])), record["key"]
        shim = int(record.get("shim") or 0)
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        pid_file.unlink(missing_ok=True)
        return False
    found = False
    if pid > 0 and alive(pid) and is_ours(pid, str(key)):
        found = True
        signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 2
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    if shim > 0 and alive(shim) and is_ours(shim, str(key)):
        found = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(shim, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return found


def _listening_inodes(port: int) -> set:
    """The inodes of the sockets listening on TCP ``port`` (IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    return inodes


#: Where a listening socket is held: ``(pid, fd, "socket:[inode]")``.
Holder = tuple[int, int, str]


def port_owners(port: int, pgid: int) -> tuple[Optional[int], Optional[Holder]]:
    """Who listens on ``port``: ``(intruder, holder)``, the pid of a process outside the process
    group ``pgid`` that does (else None), and where a process of the group holds the listening
    socket (else None). Read from /proc (``(None, None)`` on other systems).

    A service that answers /healthcheck on its port may not be the service: another program can
    take the port while it restarts."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return None, None
    holder: Optional[Holder] = None
    for entry in os.scandir("/proc"):
        if not (entry.name.isascii() and entry.name.isdigit()):
            continue
        try:
            fds = os.scandir(f"/proc/{entry.name}/fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    link = os.readlink(fd.path)
                    if link in wanted:
                        pid = int(entry.name)
                        if os.getpgid(pid) != pgid:
                            return pid, None
                        if holder is None:
                            holder = (pid, int(fd.name), link)
                        break
                except (OSError, ValueError):
                    continue
    return None, holder


def port_intruder(port: int, pgid: int) -> Optional[int]:
    """A process outside the process group ``pgid`` that listens on ``port`` (its pid), else None
    (see :func:`port_owners`)."""
    return port_owners(port, pgid)[0]


def holds(holder: Holder) -> bool:
    """Whether the process still holds that listening socket (one ``readlink``, a few microseconds:
    while it does, the port is bound to it and no other program can take it)."""
    pid, fd, link = holder
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}") == link
    except OSError:
        return False
