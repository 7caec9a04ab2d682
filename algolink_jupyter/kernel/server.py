"""The in-kernel server: the modelcloud HTTP protocol on Tornado, in its own thread with its own event loop.

The kernel's own loop is blocked while a cell runs, so the server cannot live there. It binds 127.0.0.1 by
default, requires a token, and serves the kernel's registry: the very model object the notebook built.
Starting it again is a no-op (or a move to the newly asked port): it never leaks a port or a thread.
Whatever a request prints goes to the server's log, not into the cell that happens to be running.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import sys
import threading
import time
from typing import Any, Optional

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from modelcloud import Registry
from modelcloud.server import ModelServer, ServerStats, describe_listen_error

from . import announce

THREAD_PREFIX = "algolink-"
#: While serving, the GIL is handed over at least this often (Python's default is 5 ms). A request needs
#: the GIL a few times; with a pure-Python loop running in a cell, each hand-over waits up to this long.
SWITCH_INTERVAL = 0.001


class ServingError(RuntimeError):
    """The server could not start; the message says why and what to do."""


class _ThreadRouter(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: the server's threads write to its log, all others through."""

    def __init__(self, original: Any, sink: Any):
        self.original = original
        self._sink = sink
        self._partial = threading.local()

    def write(self, s: str) -> int:
        if threading.current_thread().name.startswith(THREAD_PREFIX):
            buf = getattr(self._partial, "buf", "") + s
            *lines, rest = buf.split("\n")
            for line in lines:
                self._sink(line)
            self._partial.buf = rest
            return len(s)
        return self.original.write(s)

    def flush(self) -> None:
        if not threading.current_thread().name.startswith(THREAD_PREFIX):
            self.original.flush()

    def writable(self) -> bool:
        return True

    def __getattr__(
        self, name: str
    ) -> Any:  # set_parent, encoding, fileno... of the kernel's stream
        return getattr(self.original, name)


class KernelServer:
    def __init__(self, registry: Registry):
        self.registry = registry
        self.token = secrets.token_urlsafe(24)
        self.stats = ServerStats()
        self.host: Optional[str] = None
        self.port: Optional[int] = None
        self.kernel_id = announce.kernel_id()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._modelserver: Optional[ModelServer] = None
        self._routers: list = []
        self._saved_switch_interval: Optional[float] = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> Optional[str]:
        return f"http://{self.host}:{self.port}" if self.running else None

    def info(self) -> Optional[dict]:
        if not self.running:
            return None
        return {"url": self.url, "token": self.token, "commands": sorted(self.registry.commands)}

    # -- start and stop ----------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> dict:
        """Serve (idempotent): a second call with the same or no port keeps the running server."""
        with self._lock:
            if self.running:
                if host == self.host and port in (0, self.port):
                    self._announce()
                    return self.info()
                self._stop_locked()
            ready = threading.Event()
            failure: list = []
            thread = threading.Thread(
                target=self._serve,
                args=(host, port, ready, failure),
                name=THREAD_PREFIX + "server",
                daemon=True,
            )
            thread.start()
            ready.wait(30)
            if failure:
                thread.join(5)
                raise ServingError(failure[0])
            self._thread = thread
            if sys.getswitchinterval() > SWITCH_INTERVAL:
                self._saved_switch_interval = sys.getswitchinterval()
                sys.setswitchinterval(SWITCH_INTERVAL)
            self._route_output()
            self._announce()
            return self.info()

    def _serve(self, host: str, port: int, ready: threading.Event, failure: list) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        modelserver = ModelServer(
            self.registry, token=self.token, thread_name_prefix=THREAD_PREFIX + "worker"
        )
        modelserver.stats = self.stats
        try:
            http = HTTPServer(modelserver.make_app(), max_body_size=modelserver.max_body_size)
            sockets = bind_sockets(port, host)
        except OSError as e:
            failure.append(describe_listen_error(e, host, port).replace("ALGOLINK_PORT", "--port"))
            loop.close()
            ready.set()
            return
        http.add_sockets(sockets)
        self.host, self.port = host, sockets[0].getsockname()[1]
        self._loop, self._modelserver = loop, modelserver
        self.stats.note(f"serving at http://{self.host}:{self.port}")
        ready.set()
        try:
            loop.run_forever()
        finally:
            http.stop()
            try:
                loop.run_until_complete(asyncio.wait_for(http.close_all_connections(), 5))
            except Exception:
                pass
            modelserver.shutdown()
            loop.close()

    def stop(self) -> bool:
        """Stop serving; True if it was running."""
        with self._lock:
            return self._stop_locked()

    def _stop_locked(self) -> bool:
        if not self.running:
            return False
        loop, thread = self._loop, self._thread
        assert loop is not None and thread is not None
        modelserver = self._modelserver
        # Let requests already in hand finish (briefly), then stop the loop.
        deadline = time.monotonic() + 10
        while modelserver is not None and modelserver.pending and time.monotonic() < deadline:
            time.sleep(0.02)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        self._thread = None
        self._loop = None
        if self.kernel_id:
            announce.remove(self.kernel_id)
        self._unroute_output()
        if self._saved_switch_interval is not None and sys.getswitchinterval() == SWITCH_INTERVAL:
            sys.setswitchinterval(self._saved_switch_interval)
        self._saved_switch_interval = None
        self.stats.note("stopped")
        return True

    # -- announce and output -----------------------------------------------------------------------------
    def _announce(self) -> None:
        if not self.kernel_id:
            return
        import os

        announce.write(
            self.kernel_id,
            {
                "kernel_id": self.kernel_id,
                "pid": os.getpid(),
                "url": self.url,
                "port": self.port,
                "token": self.token,
                "commands": sorted(self.registry.commands),
                "max_body_size": self._modelserver.max_body_size if self._modelserver else None,
            },
        )

    def refresh(self) -> None:
        """Re-announce after the commands changed."""
        if self.running:
            self._announce()

    def _route_output(self) -> None:
        if self._routers:
            return
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, _ThreadRouter):
                continue
            router = _ThreadRouter(stream, lambda line, n=name: self.stats.note(f"[{n}] {line}"))
            setattr(sys, name, router)
            self._routers.append((name, router))

    def _unroute_output(self) -> None:
        for name, router in self._routers:
            if getattr(sys, name) is router:
                setattr(sys, name, router.original)
        self._routers = []
