"""The hub's front door under load or attack: a connection cap, shedding of idle connections, and no
flood of errors when file descriptors run out.

- :func:`raise_nofile` lifts the soft limit on open files to the hard one at start.
- :class:`GuardedHTTPServer` caps the connections it holds (by default three quarters of the open-file
  limit, so the database, logs and services keep theirs). At the cap, a new connection pushes out
  the connection that has waited longest for its next request's head, else the slowest one still
  sending its body, else the slowest one that has not read its answer as fast as it is written
  (for :data:`ANSWER_SHED_AFTER` seconds, below :data:`ANSWER_SHED_RATE`): a client that holds
  connections open and sends nothing (or a byte at a time), or asks for answers and reads none of
  them, cannot shut others out, while answers that are read (or that wait for their service) are
  never cut. A body that arrives slower than :data:`MIN_BODY_RATE` after its first
  :data:`BODY_GRACE` seconds is cut off, and so is an answer that the client reads slower than
  :data:`MIN_ANSWER_RATE` for :data:`ANSWER_GRACE` seconds while the hub has more of it to send.
- Tornado's line for each malformed request is logged once every ten seconds at most, with a count.
- :class:`GuardedSocket` wraps the listening socket: when ``accept()`` finds no descriptor left
  (EMFILE/ENFILE), it frees its spare descriptor, accepts the waiting connection, answers it 503 and
  closes it, so the accept loop neither spins nor writes a traceback per attempt; it logs one line
  at most every ten seconds, with the count.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from typing import Any, Optional

from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from tornado.iostream import IOStream

__all__ = ["GuardedHTTPServer", "GuardedSocket", "default_max_connections", "raise_nofile"]

log = logging.getLogger("algolink.hub")

#: Descriptors kept back from the connection cap, for the database, logs, services and the rest.
RESERVED_FDS = 128
#: A request body must arrive at this many bytes a second on average, once BODY_GRACE seconds passed.
MIN_BODY_RATE = 1024
BODY_GRACE = 10.0
#: An answer the hub has more of to send (its buffer to the client is full) must be read at this
#: many bytes a second on average, once the client has kept it waiting ANSWER_GRACE seconds.
MIN_ANSWER_RATE = 1024
ANSWER_GRACE = 10.0
#: At the connection cap, an answer the client has kept waiting this long, read slower than this,
#: may be closed for a new connection.
ANSWER_SHED_AFTER = 4.0
ANSWER_SHED_RATE = 16 * 1024
BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nRetry-After: 1\r\nContent-Length: 74\r\n\r\n"
    b'{"error": "The hub is at its limit of open connections: try again soon."}\n'
)
assert len(BUSY_ANSWER.split(b"\r\n\r\n", 1)[1]) == 74


def raise_nofile() -> int:
    """Raise the soft limit on open files to the hard limit; the limit now in force."""
    try:
        import resource
    except ImportError:  # not Unix
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def default_max_connections(nofile: int) -> int:
    return max(64, min(nofile * 3 // 4, nofile - RESERVED_FDS))


class _Throttled:
    """Log a line at most every ``every`` seconds, counting what was not logged."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.last = 0.0
        self.skipped = 0

    def __call__(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            self.skipped += 1
            return
        more = f" ({self.skipped} more since the last report)" if self.skipped else ""
        log.warning(message + more, *args)
        self.last, self.skipped = now, 0


class _ThrottledFilter(logging.Filter):
    """Lets a log line that starts with ``prefix`` through once every ``every`` seconds, with the
    count of those held back (a client that sends malformed requests in a loop fills no log)."""

    def __init__(self, prefix: str, every: float = 10.0) -> None:
        super().__init__()
        self.prefix, self.every = prefix, every
        self.last = float("-inf")
        self.skipped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.prefix):
            return True
        now = time.monotonic()
        if now - self.last < self.every:
            self.skipped += 1
            return False
        if self.skipped:
            record.msg = f"{record.msg} ({self.skipped} more since the last report)"
        self.last, self.skipped = now, 0
        return True


def throttle_malformed_requests() -> None:
    """Tornado's "Malformed HTTP message" lines, once every ten seconds at most (installed once)."""
    tornado_log = logging.getLogger("tornado.general")
    if not any(isinstance(f, _ThrottledFilter) for f in tornado_log.filters):
        tornado_log.addFilter(_ThrottledFilter("Malformed HTTP message"))


class GuardedSocket(socket.socket):
    """A listening socket whose ``accept()`` copes with running out of file descriptors."""

    spare: Optional[int] = None
    server: Optional[GuardedHTTPServer] = None
    report = _Throttled()

    @classmethod
    def wrap(cls, sock: socket.socket, server: GuardedHTTPServer) -> GuardedSocket:
        guarded = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        guarded.server = server
        guarded.spare = os.open(os.devnull, os.O_RDONLY)
        return guarded

    def accept(self) -> tuple:  # type: ignore[override]
        try:
            return super().accept()
        except OSError as e:
            if e.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise
        held = len(self.server.streams) if self.server is not None else 0
        self.report(
            "The hub ran out of file descriptors with %d connections open: the newest are "
            "answered 503 while idle ones are closed.",
            held,
        )
        if self.server is not None:
            self.server.shed(1)
        if self.spare is not None:  # one descriptor back, to take the waiting connection off
            os.close(self.spare)
            self.spare = None
            try:
                conn, _ = super().accept()
                try:
                    conn.setblocking(False)
                    conn.send(BUSY_ANSWER)
                except OSError:
                    pass
                conn.close()
            except OSError:
                pass
            try:
                self.spare = os.open(os.devnull, os.O_RDONLY)
            except OSError:
                self.spare = None
        raise BlockingIOError(errno.EAGAIN, "out of file descriptors")

    def close(self) -> None:
        if self.spare is not None:
            os.close(self.spare)
            self.spare = None
        super().close()


class GuardedHTTPServer(HTTPServer):
    """An HTTPServer that holds at most ``max_connections`` connections (see the module's text).

    The hub's connection delegate reports each connection's phase: :meth:`waiting` (for a
    request's head), :meth:`receiving` (its body, with :meth:`progress` for each piece) and
    :meth:`answering` (from then on, whether the client reads the answer is read off the stream:
    whether it has bytes it could not send yet, and how many it has sent).
    """

    def initialize(self, *args: Any, max_connections: int = 1024, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        #: stream -> [phase ("head", "body" or "answer"), since when, bytes of body so far,
        #: (answers) since when the client keeps the hub waiting or None, bytes sent by then]
        self.streams: dict[IOStream, list] = {}
        self._sweeper: Optional[PeriodicCallback] = None
        throttle_malformed_requests()

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        if self._sweeper is None:
            self._sweeper = PeriodicCallback(self.sweep, 2000)
            self._sweeper.start()
        self._prune()
        if len(self.streams) >= self.max_connections and not self.shed(1):
            _refuse(stream)
            return
        self.streams[stream] = ["head", time.monotonic(), 0, None, 0]
        super().handle_stream(stream, address)

    def waiting(self, stream: Any) -> None:
        if stream in self.streams:
            self.streams[stream] = ["head", time.monotonic(), 0, None, 0]

    def receiving(self, stream: Any) -> None:
        if stream in self.streams:
            self.streams[stream] = ["body", time.monotonic(), 0, None, 0]

    def progress(self, stream: Any, n: int) -> None:
        state = self.streams.get(stream)
        if state is not None:
            state[2] += n

    def answering(self, stream: Any) -> None:
        if stream in self.streams:
            self.streams[stream] = ["answer", time.monotonic(), 0, None, 0]

    @staticmethod
    def _kept_waiting(stream: IOStream, state: list, now: float) -> Optional[tuple]:
        """``(seconds, bytes a second)`` for which the client of an answer has kept the hub waiting
        (the hub has bytes it cannot hand to the connection yet), or None while it keeps up (or
        the answer waits for its service, not for the client)."""
        if not stream.writing():
            state[3] = None
            return None
        sent = getattr(stream, "_total_write_done_index", 0)
        if state[3] is None:
            state[3], state[4] = now, sent
            return None
        elapsed = now - state[3]
        return elapsed, (sent - state[4]) / elapsed if elapsed > 0 else 0.0

    def _slow_answers(self, now: float, after: float, rate: float) -> list:
        """Answers whose client has kept the hub waiting over ``after`` seconds, reading them
        slower than ``rate`` bytes a second; slowest first."""
        slow = []
        for stream, state in list(self.streams.items()):
            if state[0] != "answer" or stream.closed():
                continue
            waiting = self._kept_waiting(stream, state, now)
            if waiting is not None and waiting[0] > after and waiting[1] < rate:
                slow.append((waiting[1], id(stream), stream))
        return [stream for _rate, _id, stream in sorted(slow)]

    def _slow_bodies(self, now: float) -> list:
        """Connections sending a body slower than MIN_BODY_RATE past BODY_GRACE, slowest first."""
        slow = []
        for stream, (phase, since, got, *_rest) in self.streams.items():
            elapsed = now - since
            if phase == "body" and elapsed > BODY_GRACE and got / elapsed < MIN_BODY_RATE:
                slow.append((got / elapsed, id(stream), stream))
        return [stream for _rate, _id, stream in sorted(slow)]

    def sweep(self) -> None:
        """Cut off bodies that trickle in, and answers that are not read."""
        now = time.monotonic()
        slow = self._slow_bodies(now)
        if slow:
            log.info("closing %d connection(s) sending their body too slowly", len(slow))
        unread = self._slow_answers(now, ANSWER_GRACE, MIN_ANSWER_RATE)
        if unread:
            log.info("closing %d connection(s) reading their answer too slowly", len(unread))
        for stream in slow + unread:
            self.streams.pop(stream, None)
            stream.close()

    def shed(self, count: int) -> int:
        """Close up to ``count`` connections: those waiting for a request's head (the longest-waiting
        first), then the slowest ones still sending a body, then the slowest readers of answers
        that keep the hub waiting; how many were closed."""
        self._prune()
        waiting = sorted(
            (since, id(stream), stream)
            for stream, (phase, since, *_rest) in self.streams.items()
            if phase == "head"
        )
        candidates = [stream for _since, _id, stream in waiting]
        candidates += self._slow_bodies(time.monotonic())
        if len(candidates) < count:
            candidates += self._slow_answers(time.monotonic(), ANSWER_SHED_AFTER, ANSWER_SHED_RATE)
        closed = 0
        for stream in candidates[:count]:
            self.streams.pop(stream, None)
            stream.close()
            closed += 1
        return closed

    def _prune(self) -> None:
        if len(self.streams) >= self.max_connections or len(self.streams) % 64 == 0:
            for stream in [s for s in self.streams if s.closed()]:
                del self.streams[stream]

    async def close_all_connections(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
        await super().close_all_connections()


def _refuse(stream: IOStream) -> None:
    try:
        stream.write(BUSY_ANSWER).add_done_callback(lambda _f: stream.close())
    except Exception:
        stream.close()
