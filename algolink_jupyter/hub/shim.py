"""The keeper of one service process: it owns the process's output and outlives the hub.

The hub starts every service through this script (run by path with the hub's Python, standard library
only), in a session of its own::

    python shim.py --log run.log --status run.log.exit [--max-bytes N] [--backups N] -- ARGV...

It starts ``ARGV`` in a session and process group of its own (its pid is the one line the keeper
prints) with the output on a pipe, writes each line to the
size-capped rotating log with a time stamp, and when the process ends writes its exit status to the
status file (JSON ``{"rc": N}``, negative for a signal) and exits the same way. Because the service's
output goes to the keeper and not to the hub, a hub that stops, crashes or is restarted leaves the
service running with its log intact; the next hub finds it again by its pid file. SIGTERM and SIGINT
sent to the keeper are passed on to the service (the keeper keeps writing until the service ends).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

__all__ = ["RotatingLog", "append_line", "stamp"]


def stamp() -> str:
    """The time stamp of every log line of the hub and its services."""
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def append_line(path: Path, text: str) -> None:
    """One line appended to a log that another process (a keeper) may be writing too."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", errors="replace") as f:
        f.write(text.rstrip("\n") + "\n")


class RotatingLog:
    """A log file capped at ``max_bytes``, rotated to ``<name>.1`` ... ``<name>.<backups>``.

    Lines are appended (a log written before is kept) and flushed at once.
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
        """A line of the hub's own, set apart from the service's output."""
        self.write(f"[{stamp()}] ==> {text}")

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


def _pump(stream, log: RotatingLog) -> None:
    """The process's output into the log, line by line (over-long lines are split)."""
    for raw in iter(lambda: stream.readline(65536), b""):
        text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
        log.write(f"[{stamp()}] {text}")


def _write_status(path: Path, rc: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"rc": rc, "ended": datetime.datetime.now().isoformat()}) + "\n")
    os.replace(tmp, path)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="shim.py")
    parser.add_argument("--log", required=True)
    parser.add_argument("--status", required=True)
    parser.add_argument("--max-bytes", type=int, default=5 * 1024 * 1024)
    parser.add_argument("--backups", type=int, default=2)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command after --")
    status = Path(args.status)
    status.unlink(missing_ok=True)
    log = RotatingLog(Path(args.log), args.max_bytes, args.backups)
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as e:
        log.event(f"Cannot run {command[0]}: {e.strerror or e}.")
        _write_status(status, 127)
        return 127
    # The one line the hub reads from the keeper: the service's pid. Nothing else goes to stdout,
    # so a hub that is gone cannot break the keeper.
    print(f"started {proc.pid}", flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)

    def pass_on(signum: int, _frame: object) -> None:
        try:
            os.kill(proc.pid, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, pass_on)
    reader = threading.Thread(target=_pump, args=(proc.stdout, log), daemon=True)
    reader.start()
    rc = proc.wait()
    reader.join(2)  # what is left in the pipe (a child that kept it open is not waited for)
    _write_status(status, rc)
    log.close()
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main())
