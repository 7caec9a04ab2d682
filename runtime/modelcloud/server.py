"""The model server: the HTTP protocol of CONTRACT section 3 on Tornado.

Requests are parsed on the I/O loop; a command (with its input decoding and output encoding) runs on a
worker thread, so ``/healthcheck`` and ``/meta`` answer while a long command runs. By default one request
at a time reaches the model (safe for a GPU) and the rest wait in a bounded queue. A command that keeps
being fast runs on the loop itself while the model is idle (``ModelServer.can_run_inline``; a request to
it that finds the model busy waits for it to be idle, ``ModelServer.wait_turn``), and a plain
small JSON POST to it is answered by :class:`FastCommand` without a RequestHandler. Every error is JSON
``{"error", "field"}``; nothing a client sends can stop the server.
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import hmac
import json
import logging
import secrets
import threading
import time
import weakref
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import tornado.httputil
import tornado.iostream
import tornado.routing
import tornado.web
import tornado.websocket
from tornado.log import app_log

from .batching import Batcher
from .data_types import DEFAULT_MAX_PIXELS, DecodeContext, UploadedFile
from .errors import InputError, ModelCloudError, NotReady, PayloadTooLarge, UnsupportedEncoding
from .jobs import DEFAULT_JOBS_KEEP, DEFAULT_JOBS_TTL, JobStore
from .model import RUNNING, Registry
from .openapi import openapi_document
from .streaming import Canceled, RunEvents, run_with_events

log = logging.getLogger("modelcloud.server")
access_log = logging.getLogger("tornado.access")

DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_QUEUE = 256
#: A command whose last FAST_STREAK runs each took under FAST_SECONDS runs on the I/O loop while the model
#: is idle; one slower run sends it back to the worker thread. The loop is then blocked at most once,
#: for that one run, and a long command never starves /healthcheck.
FAST_SECONDS = 0.002
FAST_STREAK = 16
#: How long a request to such a command waits for the busy model to become idle, so as to run on the loop
#: then (ModelServer.wait_turn), before it queues for the worker thread after all.
TURN_WAIT_SECONDS = 0.25
#: Decoding a batched command's inputs, or encoding its outputs, runs on the I/O loop while it keeps taking
#: less than this (a thread hand-over costs more), and on the codec threads otherwise.
INLINE_CODEC_SECONDS = 0.001
#: Threads that decode inputs and encode outputs of batched commands, in parallel.
CODEC_THREADS = 4
#: Bodies larger than this are gzipped when the client accepts it (a no-op answer is not worth it).
GZIP_MIN_SIZE = 1024
#: How much of a body over the limit is still read (and dropped) so that the 413 reaches the client.
DRAIN_ALLOWANCE = 64 * 1024 * 1024

#: A command's route; POST bodies up to SMALL_BODY bytes (by Content-Length) are read whole by Tornado.
COMMAND_PATH = r"/(?!meta$|healthcheck$|setup$|ws$|jobs$)([A-Za-z0-9_-]+)"
SMALL_BODY = 64 * 1024
#: An SSE stream with nothing to say for this long sends a comment line, so that proxies keep it open.
SSE_KEEPALIVE = 15.0
#: WebSocket pings: a client that does not answer is taken as gone (its runs are canceled).
WS_PING_INTERVAL = 20.0

#: Inputs whose multipart form fields are taken as text as they are; other fields are read as JSON.
_TEXT_FIELDS = {"text", "category", "image", "file", "directory", "segmentation"}
#: Content types whose bodies are forms; every other body is read as JSON.
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
JSON_TYPE = "application/json; charset=UTF-8"
#: What Tornado's RequestHandler sends as ``Server`` (the fast path sends the same headers).
SERVER_HEADER = f"TornadoServer/{tornado.version}"
#: json.dumps(..., allow_nan=False) builds an encoder per call; one, reused, writes the same bytes.
JSON_ENCODE = json.JSONEncoder(allow_nan=False).encode
#: The answer to a request whose handling failed in a way nobody foresaw (a bug: the log has it).
INTERNAL_ERROR_MESSAGE = "Internal server error; the server keeps running."
INTERNAL_ERROR = json.dumps({"error": INTERNAL_ERROR_MESSAGE}).encode()


class ServerStats:
    """Counters and a log of recent errors, which the notebook's ``%algolink status`` shows."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.last_error: Optional[str] = None
        self.log: collections.deque = collections.deque(maxlen=500)
        self.lock = threading.Lock()

    def record(self, error: Optional[str] = None, detail: Optional[str] = None) -> None:
        with self.lock:
            self.requests += 1
            if error is not None:
                self.errors += 1
                self.last_error = error
                self.note(error + ("\n" + detail if detail else ""))

    def note(self, text: str) -> None:
        self.log.append((time.time(), text))


class ModelServer:
    """The server's settings and its worker pool, shared by every handler of one application."""

    def __init__(
        self,
        registry: Registry,
        *,
        debug: bool = False,
        token: Optional[str] = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        concurrency: int = 1,
        max_queue: int = DEFAULT_MAX_QUEUE,
        cors_origin: str = "*",
        thread_name_prefix: str = "modelcloud",
        inline_fast: bool = True,
        behind_hub: bool = False,
        jobs_keep: int = DEFAULT_JOBS_KEEP,
        jobs_ttl: float = DEFAULT_JOBS_TTL,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.registry = registry
        self.debug = debug
        self.token = token
        self.max_body_size = max_body_size
        self.max_pixels = max_pixels
        self.max_queue = max_queue
        self.cors_origin = cors_origin
        self.executor = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix=thread_name_prefix
        )
        self.pending = 0
        #: Requests to fast commands waiting for the model to be idle (ModelServer.wait_turn): futures
        #: resolved True when it is, False when they waited long enough.
        self.turns: collections.deque = collections.deque()
        self.inline_fast = inline_fast
        #: Run by an AlgoLink hub: no ``POST /setup`` (setup options change through the hub, as new
        #: versions), and the OpenAPI document lists what clients reach through the hub.
        self.behind_hub = behind_hub
        self.stats = ServerStats()
        #: Command requests being answered now (``ongoing`` in /healthcheck: what a Ray replica
        #: reports to Serve's autoscaler).
        self.ongoing = 0
        #: Async jobs (``Prefer: respond-async``): finished ones kept ``jobs_ttl`` s, at most ``jobs_keep``.
        self.jobs = JobStore(jobs_keep, jobs_ttl)
        self.thread_name_prefix = thread_name_prefix
        self._codecs: Optional[ThreadPoolExecutor] = None
        #: name -> (the Command it serves, its Batcher): a re-declared command gets a new batcher.
        self.batchers: dict = {}
        #: name -> running mean of (decode seconds, encode seconds) per request of a batched command.
        self.codec_times: dict = {}
        #: Requests to batched commands being answered by FastCommand.
        self.answering: set = set()

    @property
    def codecs(self) -> ThreadPoolExecutor:
        if self._codecs is None:
            self._codecs = ThreadPoolExecutor(
                max_workers=CODEC_THREADS, thread_name_prefix=self.thread_name_prefix + "-codec"
            )
        return self._codecs

    def batcher(self, cmd: Any) -> Batcher:
        held = self.batchers.get(cmd.name)
        if held is not None and held[0] is cmd:
            return held[1]
        registry = self.registry

        def timed(batch: list) -> list:
            start = time.perf_counter()
            try:
                return registry.run_batch(cmd, batch)
            finally:
                fast = time.perf_counter() - start < FAST_SECONDS
                cmd.fast_runs = cmd.fast_runs + 1 if fast else 0

        async def run(batch: list) -> list:
            # A batch that keeps being fast runs on the loop while the model is idle, as a fast
            # unbatched command does: a lone client pays no thread hand-overs for batching.
            if self.can_run_inline(cmd):
                return timed(batch)
            return await self.submit(timed, batch)

        def encode(result: Any, formats: Optional[dict]) -> Any:
            return self.codec(cmd.name, 1, registry.serialize_outputs, cmd, result, formats)

        batcher = Batcher(cmd.name, cmd.batch, run, encode)
        self.batchers[cmd.name] = (cmd, batcher)
        return batcher

    def codec(self, name: str, which: int, fn: Any, *args: Any) -> Any:
        """Run a decode (``which`` 0) or encode (1) of a batched command: on the loop while it stays
        cheap (its result, at once), else on the codec threads, so that neither the loop nor the
        model's thread does it (an asyncio.Future of its result)."""
        times = self.codec_times.setdefault(name, [0.0, 0.0])
        start = time.perf_counter()
        if times[which] < INLINE_CODEC_SECONDS:
            result = fn(*args)
            times[which] = 0.9 * times[which] + 0.1 * (time.perf_counter() - start)
            return result

        def done(_future: Any) -> None:
            times[which] = 0.9 * times[which] + 0.1 * (time.perf_counter() - start)

        future = asyncio.get_running_loop().run_in_executor(self.codecs, fn, *args)
        future.add_done_callback(done)
        return future

    async def run_batched(
        self,
        cmd: Any,
        raw: Any,
        gone: Any,
        formats: Optional[dict],
        timed: Optional[Any],
    ) -> Optional[dict]:
        """One request to a batched command: decode its inputs (a bad one fails here, alone), then join
        the command's batch; its encoded outputs, or None when the client went away (``gone()``)."""
        batcher = self.batcher(cmd)
        if len(batcher.queue) >= self.max_queue:
            raise NotReady(
                f"The model is busy with {len(batcher.queue)} waiting requests; retry in a moment."
            )
        ctx = DecodeContext(max_pixels=self.max_pixels)
        try:
            inputs = self.codec(cmd.name, 0, self.registry.parse_inputs, cmd, raw, ctx)
            if isinstance(inputs, asyncio.Future):
                inputs = await inputs
            if gone():
                return None
            return await batcher.submit(inputs, gone, formats, timed)
        finally:
            ctx.cleanup()

    def make_app(self, **settings: Any) -> tornado.web.Application:
        settings.setdefault("log_function", log_request)
        return ModelApplication(
            [
                # Commands first: they are the hot path (a command may not take a reserved name).
                tornado.routing.Rule(
                    SmallBody(COMMAND_PATH, min(SMALL_BODY, self.max_body_size)),
                    SmallCommandHandler,
                ),
                (COMMAND_PATH, CommandHandler),
                (r"/", RootHandler),
                (r"/meta", MetaHandler),
                (r"/ws", SocketHandler),
                (r"/jobs/([A-Za-z0-9_-]{1,64})", JobHandler),
                (r"/healthcheck", HealthHandler),
                (r"/openapi\.json", OpenAPIHandler),
                *([] if self.behind_hub else [(r"/setup", SetupHandler)]),
            ],
            default_handler_class=NotFoundHandler,
            modelserver=self,
            **{
                "websocket_ping_interval": WS_PING_INTERVAL,
                "websocket_max_message_size": self.max_body_size,
                **settings,
            },
        )

    def can_run_inline(self, cmd: Any) -> bool:
        """Whether ``cmd`` may run on the I/O loop itself: it has been fast every time lately and the
        model is idle. Saves the two thread hand-overs a worker costs (about half of a no-op request)."""
        return self.inline_fast and self.pending == 0 and cmd.fast_runs >= FAST_STREAK

    def can_answer_alone(self, cmd: Any, clients: int) -> bool:
        """Whether a request to batched ``cmd`` is answered at once, on the loop, as a batch of one
        (FastCommand.answer): its client is the only one connected (so no other request can join its
        batch), nothing is queued for the command, the model is idle and the command's batches, with
        their decoding and encoding, have been fast lately. That is what the batcher would do with it,
        without its queue, future and task (a lone client's request costs what an unbatched one does)."""
        if clients != 1 or not self.can_run_inline(cmd):
            return False
        times = self.codec_times.get(cmd.name)
        if times is None or max(times) >= INLINE_CODEC_SECONDS:
            return False
        return not self.batcher(cmd).queue

    def start(self, fn: Any, *args: Any) -> asyncio.Future:
        """Queue ``fn`` for a worker now (refused at once when the queue is full); its future."""
        if self.pending >= self.max_queue:
            raise NotReady(
                f"The model is busy with {self.pending} waiting requests; retry in a moment."
            )
        self.pending += 1
        future = asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        future.add_done_callback(self._release)
        return future

    def _release(self, _future: Any) -> None:
        self.pending -= 1
        if not self.pending:
            turns = self.turns
            while turns:
                turn = turns.popleft()
                if not turn.done():
                    turn.set_result(True)

    async def wait_turn(self, cmd: Any) -> bool:
        """A request to a fast command that finds the model busy waits (at most TURN_WAIT_SECONDS) for
        the requests queued before it to be done, and then runs on the loop (True), rather than join
        the worker's queue (False: it is not fast, or the model stayed busy). Without this, a fast
        command under steady load never ran on the loop again once one run had been slow: every
        request found the worker busy and queued for it, and each run, holding the GIL against the
        loop's parsing, took twice as long (the no-op digits classify: 1,100 req/s fell to 730)."""
        if not self.inline_fast or cmd.fast_runs < FAST_STREAK:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TURN_WAIT_SECONDS
        while self.pending:
            if self.pending + len(self.turns) >= self.max_queue:
                raise NotReady(
                    f"The model is busy with {self.pending + len(self.turns)} waiting requests; "
                    "retry in a moment."
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            turn = loop.create_future()
            self.turns.append(turn)
            timer = loop.call_later(remaining, self._give_up, turn)
            try:
                if not await turn:
                    return False
            finally:
                timer.cancel()
        return self.can_run_inline(cmd)  # still fast, now that the model is idle

    def _give_up(self, turn: asyncio.Future) -> None:
        if not turn.done():
            turn.set_result(False)
            self.turns.remove(turn)

    async def submit(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on a worker, refusing at once when the queue is full."""
        return await self.start(fn, *args)

    def start_run(
        self, cmd: Any, raw: Any, events: RunEvents, formats: Optional[dict] = None
    ) -> asyncio.Future:
        """Run ``cmd`` on a worker with its events (``started``, one ``output`` per yield, then
        ``succeeded``, ``failed`` or ``canceled``) sent to ``events``."""
        return self.start(
            run_with_events,
            lambda on_event, is_canceled: self._execute(
                cmd, raw, events, on_event, is_canceled, formats
            ),
            events,
        )

    def _execute(
        self,
        cmd: Any,
        raw: Any,
        events: RunEvents,
        on_event: Any,
        is_canceled: Any,
        formats: Optional[dict] = None,
    ) -> dict:
        """On a worker: decode the inputs, say ``started``, call and follow the command."""
        if is_canceled():
            raise Canceled(f"The run of {cmd.name!r} was canceled before it started.")
        ctx = DecodeContext(max_pixels=self.max_pixels)
        try:
            self.registry.check_ready()
            inputs = self.registry.parse_inputs(cmd, raw, ctx)
            events.emit("started")
            return self.registry.call(cmd, inputs, on_event, is_canceled, formats)
        finally:
            ctx.cleanup()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self._codecs is not None:
            self._codecs.shutdown(wait=False, cancel_futures=True)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log line, written only when its logger takes it: Tornado's own formats the line
    for every request first, which is a measurable share of a no-op request's cost."""
    log_access(handler.get_status(), handler.request)


def log_access(status: int, request: Any) -> None:
    """The access log line of one answered request (``log_request``'s, for the fast path too)."""
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if not access_log.isEnabledFor(level):
        return
    access_log.log(
        level,
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        request.uri,
        request.remote_ip,
        1000.0 * request.request_time(),
    )


def error_body(server: ModelServer, e: ModelCloudError) -> dict:
    """A ModelCloudError's JSON answer: its traceback only when the server is in debug mode."""
    body = e.to_json()
    if not server.debug:
        body.pop("traceback", None)
    return body


def record_error(server: ModelServer, method: str, path: str, e: ModelCloudError) -> None:
    """Count a request answered with ``e`` (the status log keeps it; a 5xx is logged too)."""
    server.stats.record(f"{method} {path}: {e.status} {e.message}", getattr(e, "traceback", None))
    if e.status >= 500:
        log.warning("%s %s: %s", method, path, e.message)


def parse_json_body(body: bytes) -> Any:
    """A JSON request body ({} when it is empty or blank)."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InputError(
            'The body is not valid JSON: send a JSON object such as {"name": value} '
            "(or multipart/form-data)."
        ) from None


def timing_header(queue: float, model: float) -> str:
    """``Server-Timing``: how long the request waited for the model and how long the model took (ms)."""
    return f"queue;dur={queue * 1e3:.3f}, model;dur={model * 1e3:.3f}"


#: What a 401 asks for (RFC 9110, 11.6.1): the server's token, as ``Authorization: token <token>``,
#: ``Authorization: Bearer <token>`` or ``?token=<token>``.
CHALLENGE = 'Bearer realm="modelcloud"'


def check_token(handler: tornado.web.RequestHandler) -> None:
    """401 unless the request carries the server's token (when it has one)."""
    token = handler.settings["modelserver"].token
    if token and handler.request.method != "OPTIONS":
        given = handler.get_query_argument("token", None)
        auth = handler.request.headers.get("Authorization", "")
        if auth[:6].lower() == "token " or auth[:7].lower() == "bearer ":
            given = auth.split(None, 1)[1].strip()
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise tornado.web.HTTPError(
                401, reason="Unauthorized", log_message="missing or wrong token"
            )


def forwarded_prefix(request: Any) -> str:
    """The path the server is reached under (a hub's ``/serve/P/S``), or ''."""
    prefix = request.headers.get("X-Forwarded-Prefix", "").rstrip("/")
    return prefix if prefix.startswith("/") else ""


class BaseHandler(tornado.web.RequestHandler):
    """CORS, the token check, JSON in and JSON errors out."""

    @property
    def modelserver(self) -> ModelServer:
        return self.settings["modelserver"]

    def set_default_headers(self) -> None:
        self.set_header("Access-Control-Allow-Origin", self.settings["modelserver"].cors_origin)

    def options(self, *args: Any) -> None:
        """The CORS preflight."""
        self.set_header(
            "Access-Control-Allow-Headers",
            "Content-Type, Content-Encoding, Authorization, Accept, Prefer, X-Runway-Output-Format",
        )
        self.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
        self.set_header("Access-Control-Expose-Headers", "Location, Preference-Applied")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    def prepare(self) -> None:
        check_token(self)

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        data = JSON_ENCODE(body).encode()
        if len(data) >= GZIP_MIN_SIZE:
            self.set_header("Vary", "Accept-Encoding")
            if "gzip" in self.request.headers.get("Accept-Encoding", ""):
                data = gzip.compress(data, compresslevel=6)
                self.set_header("Content-Encoding", "gzip")
        self.finish(data)

    def send_model_error(self, e: ModelCloudError) -> None:
        body = error_body(self.modelserver, e)
        record_error(self.modelserver, self.request.method, self.request.path, e)
        if e.status == 503:
            self.set_header("Retry-After", "1")
        self.write_json(body, e.status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ModelCloudError):
            body = error_body(self.modelserver, exc)
        elif status_code == 401:
            self.set_header("WWW-Authenticate", CHALLENGE)
            body = {
                "error": "A token is required: send 'Authorization: token <token>' or add ?token=<token>."
            }
        elif status_code == 405:
            self.set_header("Allow", ", ".join([*self._allowed(), "OPTIONS"]))
            body = {
                "error": f"{self.request.method} is not allowed on {self.request.path}: "
                f"use {self._allowed_methods()}."
            }
        elif status_code == 404:
            body = {"error": f"Nothing at {self.request.path}: see GET /meta for the commands."}
        elif status_code < 500:
            body = {"error": f"Bad request: {self._reason}."}
        else:
            body = {"error": INTERNAL_ERROR_MESSAGE}
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps(body))

    #: Set by BodyHandler once a body went over the limit (and its 413 was sent).
    _too_large = False

    @property
    def body(self) -> bytes:
        return self.request.body

    def check_body(self) -> None:
        """Raise InputError for a body that could not be decoded (BodyHandler's gzip); a body Tornado
        read whole (SmallBody: never a Content-Encoding) needs nothing."""

    def parse_body(self, types: dict) -> Any:
        """The request's values: a JSON object, or a multipart / urlencoded form."""
        self.check_body()
        body = self.body
        ctype = self.request.headers.get("Content-Type", "")
        base = ctype.split(";", 1)[0].strip().lower()
        if base == "application/x-www-form-urlencoded" and body.lstrip()[:1] in (b"{", b"["):
            base = "application/json"  # curl -d '{...}' labels JSON as a form
        if base in FORM_TYPES:
            args: dict = {}
            files: dict = {}
            try:
                tornado.httputil.parse_body_arguments(ctype, body, args, files)
            except Exception:
                raise InputError(
                    "The multipart body could not be parsed: send multipart/form-data with a boundary."
                ) from None
            if not args and not files and body.strip():
                raise InputError(
                    "The form body could not be parsed: check the Content-Type boundary and the parts."
                )
            raw: dict = {}
            for name, values in args.items():
                try:
                    value = values[-1].decode("utf-8")
                except UnicodeDecodeError:
                    raise InputError(f"Field {name!r} is not UTF-8 text.", field=name) from None
                t = types.get(name)
                if t is not None and t.type_name not in _TEXT_FIELDS:
                    try:
                        value = json.loads(value)
                    except (ValueError, RecursionError):
                        pass
                raw[name] = value
            for name, parts in files.items():
                part = parts[-1]
                raw[name] = UploadedFile(part.filename or name, part.body, part.content_type)
            return raw
        return parse_json_body(body)

    def _allowed(self) -> list:
        return [
            m
            for m in ("GET", "POST", "DELETE")
            if getattr(type(self), m.lower()) is not getattr(tornado.web.RequestHandler, m.lower())
        ]

    def _allowed_methods(self) -> str:
        return " or ".join(self._allowed()) or "another path"

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, (tornado.web.HTTPError, ModelCloudError)):
            return
        super().log_exception(typ, value, tb)


@tornado.web.stream_request_body
class BodyHandler(BaseHandler):
    """A POST route whose body is bounded by ``max_body_size``: 413 as soon as it is exceeded."""

    def prepare(self) -> None:
        super().prepare()
        self._chunks: list = []
        self._size = 0
        self._too_large = False
        self._bad_encoding: Optional[str] = None
        self._inflater: Any = None
        self._raw_size = 0
        limit = self.modelserver.max_body_size
        encoding = self.request.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            # Decompressed as it arrives; the limit applies to the decompressed size (a gzip bomb is a 413).
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding not in ("", "identity") and self.request.method == "POST":
            self._bad_encoding = encoding
        if self.request.method == "POST":
            # Past our limit, the rest of the body is read and dropped (up to DRAIN_ALLOWANCE more) so
            # that the client, still sending, gets our 413 rather than a reset connection.
            self.request.connection.set_max_body_size(limit + DRAIN_ALLOWANCE)
            length = self.request.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limit:
                self._reject_too_large()

    def _reject_too_large(self) -> None:
        limit = self.modelserver.max_body_size
        self._too_large = True
        self._chunks = []
        self.modelserver.stats.record("body too large")
        self.set_header("Connection", "close")
        self.write_json(
            PayloadTooLarge(
                f"The body is over the limit of {limit:,} bytes"
                f"{' once decompressed' if self._inflater is not None else ''}: send a smaller file "
                "or raise ALGOLINK_MAX_BODY_SIZE."
            ).to_json(),
            413,
        )

    def data_received(self, chunk: bytes) -> None:
        if self._too_large or self._bad_encoding:
            return
        if self._inflater is not None:
            self._raw_size += len(chunk)
            self._inflate(chunk)
            return
        self._size += len(chunk)
        if self._size > self.modelserver.max_body_size:
            self._reject_too_large()
            return
        self._chunks.append(chunk)

    def _inflate(self, chunk: bytes) -> None:
        """Decompress a gzip chunk, never holding more than the limit (plus one byte) of its output."""
        limit = self.modelserver.max_body_size
        data = chunk
        while data:
            if self._inflater.eof:  # another gzip member follows (`cat a.gz b.gz` is one stream)
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                out = self._inflater.decompress(data, limit - self._size + 1)
            except zlib.error:
                self._bad_encoding = "gzip-damaged"
                self._chunks = []
                return
            self._size += len(out)
            if self._size > limit:
                self._reject_too_large()
                return
            self._chunks.append(out)
            # Not at the end of a member: all input was used (else the output hit the cap above).
            data = (
                self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
            )

    def check_body(self) -> None:
        """Raise InputError for a body that could not be decoded (a Content-Encoding other than gzip,
        damaged or truncated gzip data)."""
        if self._bad_encoding == "gzip-damaged" or (
            self._inflater is not None and self._raw_size and not self._inflater.eof
        ):
            raise InputError(
                "The body is not valid gzip data (Content-Encoding: gzip): send the whole gzip stream."
            )
        if self._bad_encoding:
            raise UnsupportedEncoding(
                f"Content-Encoding {self._bad_encoding!r} is not supported: send the body as it is, "
                "or gzip it (Content-Encoding: gzip)."
            )

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)


class MetaHandler(BaseHandler):
    def get(self) -> None:
        self.write_json(self.modelserver.registry.manifest())


class HealthHandler(BaseHandler):
    def get(self) -> None:
        server = self.modelserver
        self.write_json({"status": server.registry.status, "ongoing": server.ongoing})


class OpenAPIHandler(BaseHandler):
    def get(self) -> None:
        server = self.modelserver
        prefix = self.request.headers.get("X-Forwarded-Prefix", "")
        self.write_json(
            openapi_document(
                server.registry,
                server_url=prefix + "/" if prefix.startswith("/") else "/",
                clients_only=server.behind_hub,
            )
        )


class SetupHandler(BodyHandler):
    async def post(self) -> None:
        if self._too_large:
            return
        server = self.modelserver
        try:
            options = self.parse_body(server.registry.options)
            await server.submit(server.registry.run_setup, options, False)
        except ModelCloudError as e:
            self.send_model_error(e)
            return
        server.stats.record()
        self.write_json({"success": True})


class CommandRoute:
    """``GET`` and ``POST /<command>``, for the two handlers below (a mixin of a BaseHandler)."""

    def get(self, name: str) -> None:
        try:
            cmd = self.modelserver.registry.get_command(name)
        except ModelCloudError as e:
            self.send_model_error(e)
            return
        self.write_json(cmd.to_dict())

    def prepare(self) -> None:
        super().prepare()  # type: ignore[misc]
        if self.request.method == "POST":  # requests in progress, for /healthcheck's "ongoing"
            self.modelserver.ongoing += 1
            self._counted = True

    def on_finish(self) -> None:
        self._uncount()

    def _uncount(self) -> None:
        if getattr(self, "_counted", False):
            self._counted = False
            self.modelserver.ongoing -= 1

    def on_connection_close(self) -> None:
        self._uncount()
        self._gone = True
        events = getattr(self, "_events", None)
        if events is not None:
            events.cancel()  # the client went away: its generator stops at its next yield

    async def post(self, name: str) -> None:
        if self._too_large:
            return
        server = self.modelserver
        registry = server.registry
        self._gone = False
        self._began, self._timing = time.perf_counter(), None
        try:
            cmd = registry.get_command(name)
            registry.check_ready()
            raw = self.parse_body(cmd.inputs)
            formats = registry.check_output_formats(cmd, self.output_formats())
            if "respond-async" in self.request.headers.get("Prefer", "").lower():
                return self._submit_job(cmd, raw, formats)
            if "text/event-stream" in self.request.headers.get("Accept", "").lower():
                return await self._stream(cmd, raw, formats)
            if cmd.batch is not None:
                result = await self._run_batched(cmd, raw, formats)
            elif server.can_run_inline(cmd) or await server.wait_turn(cmd):
                result = self._run(cmd, raw, formats)
            else:
                result = await server.submit(self._run, cmd, raw, formats)
        except ModelCloudError as e:
            self.server_timing()
            self.send_model_error(e)
            return
        if result is None:  # the client went away while it waited
            return
        server.stats.record()
        self.server_timing()
        self.write_json(result)

    async def _run_batched(self, cmd: Any, raw: Any, formats: dict) -> Optional[dict]:
        return await self.modelserver.run_batched(cmd, raw, lambda: self._gone, formats, self.timed)

    def output_formats(self) -> dict:
        """``X-Runway-Output-Format: output=PNG;other=JPEG`` (Runway's header), as a dict."""
        header = self.request.headers.get("X-Runway-Output-Format", "")
        formats = {}
        for item in header.split(";"):
            item = item.strip()
            if not item:
                continue
            name, sep, fmt = item.partition("=")
            if not sep or not name.strip() or not fmt.strip():
                raise InputError(
                    f"X-Runway-Output-Format must be output=FORMAT pairs separated by ';', like "
                    f"image=PNG; got {item[:40]!r}."
                )
            formats[name.strip()] = fmt.strip()
        return formats

    def server_timing(self) -> None:
        """``Server-Timing: queue;dur=..., model;dur=...`` (ms): how long the request waited for the
        model and how long the model took (what the hub's metrics tell apart from the network)."""
        if self._timing is not None:
            self.set_header("Server-Timing", timing_header(*self._timing))

    def timed(self, queue: float, model: float) -> None:
        """The request waited ``queue`` s for the model, which then took ``model`` s."""
        self._timing = (queue, model)

    def _run(self, cmd: Any, raw: Any, formats: Optional[dict] = None) -> Optional[dict]:
        """On a worker thread (or the loop, when fast): decode the inputs, call, encode the outputs.
        A command that yields is followed to its end (its last outputs are the answer), and stops
        at its next yield if the client goes away."""
        if self._gone:
            return None
        server = self.modelserver
        ctx = DecodeContext(max_pixels=server.max_pixels)
        start = time.perf_counter()
        try:
            server.registry.check_ready()
            inputs = server.registry.parse_inputs(cmd, raw, ctx)
            return server.registry.call(cmd, inputs, None, lambda: self._gone, formats)
        finally:
            ctx.cleanup()
            took = time.perf_counter() - start
            self._timing = (start - self._began, took)
            fast = took < FAST_SECONDS
            cmd.fast_runs = cmd.fast_runs + 1 if fast else 0

    def _submit_job(self, cmd: Any, raw: Any, formats: Optional[dict] = None) -> None:
        """``Prefer: respond-async``: 202 with the job, its URL in ``Location``."""
        server = self.modelserver
        job = server.jobs.create(cmd.name)
        try:
            server.start_run(cmd, raw, job.events, formats)
        except ModelCloudError:
            server.jobs.remove(job.id)
            raise
        job.task = asyncio.ensure_future(server.jobs.follow(job))
        server.stats.record()
        prefix = forwarded_prefix(self.request)
        self.set_header("Location", f"{prefix}/jobs/{job.id}")
        self.set_header("Preference-Applied", "respond-async")
        self.write_json(job.to_json(prefix), 202)

    async def _stream(self, cmd: Any, raw: Any, formats: Optional[dict] = None) -> None:
        """``Accept: text/event-stream``: one Server-Sent Event per yield, flushed as it happens.
        Inputs that do not pass are a plain JSON error with its status, before any event."""
        server = self.modelserver
        events = self._events = RunEvents()
        server.start_run(cmd, raw, events, formats)
        kind, data = await events.next()
        if kind == "failed":
            self.send_model_error(data)
            return
        if kind == "canceled" or self._gone:
            return
        self.set_status(200)
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        count = 0
        ended = False
        try:
            await self.flush()
            while not ended:
                item = await events.next(SSE_KEEPALIVE)
                if item is None:
                    self.write(": keep-alive\n\n")
                    await self.flush()
                    continue
                # Every event already here goes out in one flush (a fast generator is not held
                # back by a write per yield); each is sent as soon as the loop sees it.
                for kind, data in [item, *events.drain()]:
                    if kind == "output":
                        name, body = ("output" if "outputs" in data else "progress"), data
                    elif kind == "succeeded":
                        name, body = "succeeded", {"outputs": data}
                    elif kind == "failed":
                        name, body = "failed", error_body(self.modelserver, data)
                    else:
                        return  # canceled: the client is gone
                    count += 1
                    self.write(f"event: {name}\nid: {count}\ndata: {json.dumps(body)}\n\n")
                    if kind != "output":
                        error = None if kind == "succeeded" else body["error"]
                        server.stats.record(error and f"POST {self.request.path}: {error}")
                        ended = True
                        break
                await self.flush()
        except tornado.iostream.StreamClosedError:
            events.cancel()
            return
        if not self._gone:
            self.finish()


class JobHandler(BaseHandler):
    """``GET /jobs/{id}``: the job's status, progress, outputs and error; ``DELETE`` cancels it (a
    finished one is forgotten)."""

    def _job(self, job_id: str) -> Any:
        store = self.modelserver.jobs
        job = store.get(job_id)
        if job is None:
            self.write_json(
                {
                    "error": f"There is no job {job_id!r} here: finished jobs are kept "
                    f"{store.ttl:g} s (at most {store.keep} of them), so it may have expired; "
                    "submit the command again."
                },
                404,
            )
        return job

    def get(self, job_id: str) -> None:
        job = self._job(job_id)
        if job is not None:
            self.write_json(job.to_json(forwarded_prefix(self.request)))

    def delete(self, job_id: str) -> None:
        job = self._job(job_id)
        if job is None:
            return
        if job.finished:
            self.modelserver.jobs.remove(job.id)
        else:
            job.cancel()
        self.write_json(job.to_json(forwarded_prefix(self.request)))


class SocketHandler(tornado.websocket.WebSocketHandler):
    """Runway's WebSocket protocol. The client sends ``{"type": "submit", "command", "inputData",
    "id"?}`` and ``{"type": "cancel", "id"}``; the server answers per run ``started``, ``output``
    (``outputData`` and/or ``progress``), then ``succeeded`` (``outputData``, ``timeElapsed`` in ms),
    ``failed`` (``error``, ``field``) or ``cancelled``. Runs of one socket run one after another on
    the workers as HTTP requests do; closing the socket cancels them."""

    @property
    def modelserver(self) -> ModelServer:
        return self.settings["modelserver"]

    # Before the handshake it is an HTTP route like the others: JSON errors, CORS, the same token.
    set_default_headers = BaseHandler.set_default_headers
    options = BaseHandler.options
    write_error = BaseHandler.write_error
    log_exception = BaseHandler.log_exception
    _allowed = BaseHandler._allowed
    _allowed_methods = BaseHandler._allowed_methods

    def prepare(self) -> None:
        check_token(self)

    def check_origin(self, origin: str) -> bool:
        allowed = self.modelserver.cors_origin
        return allowed == "*" or origin == allowed or super().check_origin(origin)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            self.not_upgraded()
            return
        await super().get(*args, **kwargs)

    def not_upgraded(self) -> None:
        self.set_status(400)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(
            json.dumps(
                {
                    "error": f"{self.request.path} is a WebSocket: open it with a WebSocket client "
                    "(GET with 'Upgrade: websocket')."
                }
            )
        )

    def open(self, *args: Any) -> None:
        self.runs: dict = {}

    def send(self, kind: str, run_id: Any, **body: Any) -> Any:
        """Send a message; its write (await it to wait for a slow client), or None when closed."""
        try:
            return self.write_message(json.dumps({"type": kind, "id": run_id, **body}))
        except tornado.websocket.WebSocketClosedError:
            return None

    def on_message(self, message: Any) -> None:
        try:
            msg = json.loads(message)
        except (ValueError, RecursionError, UnicodeDecodeError):
            msg = None
        if not isinstance(msg, dict) or msg.get("type") not in ("submit", "cancel"):
            self.send(
                "failed",
                msg.get("id") if isinstance(msg, dict) else None,
                error='Messages are JSON objects with "type" "submit" (with "command" and '
                '"inputData") or "cancel" (with "id").',
            )
            return
        run_id = msg.get("id")
        if msg["type"] == "cancel":
            events = self.runs.get(run_id)
            if events is None:
                self.send(
                    "failed", run_id, error=f"There is no run {run_id!r} on this socket to cancel."
                )
            else:
                events.cancel()
            return
        if run_id is None:
            run_id = secrets.token_hex(8)
        if run_id in self.runs:
            self.send(
                "failed",
                run_id,
                error=f"A run with id {run_id!r} is already running: give each submit its own id.",
            )
            return
        server = self.modelserver
        try:
            cmd = server.registry.get_command(str(msg.get("command")))
            server.registry.check_ready()
            raw = msg.get("inputData", {})
            if raw is None:
                raw = {}
            events = RunEvents()
            server.start_run(cmd, raw, events)
        except ModelCloudError as e:
            self.send("failed", run_id, **error_body(self.modelserver, e))
            return
        self.runs[run_id] = events
        self.send("started", run_id)
        asyncio.ensure_future(self._relay(run_id, events))

    async def _relay(self, run_id: Any, events: RunEvents) -> None:
        started = time.perf_counter()
        try:
            while True:
                kind, data = await events.next()
                if kind == "output":
                    if events.is_canceled():
                        continue
                    body = {}
                    if "outputs" in data:
                        body["outputData"] = data["outputs"]
                    if "progress" in data:
                        body["progress"] = data["progress"]
                    sent = self.send("output", run_id, **body)
                    if sent is not None:
                        try:
                            await sent  # a slow client holds its run back, not the memory
                        except tornado.websocket.WebSocketClosedError:
                            events.cancel()
                elif kind == "started":
                    continue
                elif kind == "succeeded" and not events.is_canceled():
                    elapsed = int((time.perf_counter() - started) * 1000)
                    self.send("succeeded", run_id, outputData=data, timeElapsed=elapsed)
                    self.modelserver.stats.record()
                    return
                elif kind == "failed" and not events.is_canceled():
                    self.send("failed", run_id, **error_body(self.modelserver, data))
                    self.modelserver.stats.record(f"WebSocket {run_id}: {data.message}")
                    return
                else:
                    self.send("cancelled", run_id)
                    return
        finally:
            self.runs.pop(run_id, None)

    def on_close(self) -> None:
        for events in list(getattr(self, "runs", {}).values()):
            events.cancel()


class RootHandler(SocketHandler):
    """``GET /``: the manifest (as ``/meta``), or Runway's WebSocket when the request upgrades."""

    def not_upgraded(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(self.modelserver.registry.manifest(), allow_nan=False))


class CommandHandler(CommandRoute, BodyHandler):
    """A command, its body streamed in and bounded as it arrives (any size, any Content-Type)."""


class SmallCommandHandler(CommandRoute, BaseHandler):
    """A command whose JSON body is small and announced by Content-Length: Tornado reads it whole before
    the handler runs, which saves the two event-loop turns a streamed body costs (a measurable share of
    a no-op request)."""


class SmallBody(tornado.routing.PathMatches):
    """Matches a POST of at most ``limit`` bytes, by Content-Length, neither multipart (Tornado would
    parse a whole multipart body itself before our parser does) nor encoded (gzip is BodyHandler's)."""

    def __init__(self, path_pattern: str, limit: int):
        super().__init__(path_pattern)
        self.limit = limit

    def match(self, request: Any) -> Optional[dict]:
        if request.method != "POST":
            return None
        headers = request.headers
        length = headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > self.limit:
            return None
        if "multipart" in headers.get("Content-Type", "") or "Content-Encoding" in headers:
            return None
        return super().match(request)


class ModelApplication(tornado.web.Application):
    """The server's Tornado application: what SmallBody routes to SmallCommandHandler is offered to
    FastCommand first, which answers the common request itself and hands the others to the handler."""

    def __init__(self, *args: Any, **settings: Any):
        super().__init__(*args, **settings)
        #: The fast path is the handler's answer only with our access log and no XSRF or origin checks.
        self.fast_path = (
            self.settings.get("log_function") is log_request
            and not self.settings.get("xsrf_cookies")
            and not self.settings.get("cross_origin_protection")
        )
        #: The client connections that have sent a request and are still open (a closed one leaves the
        #: set when it is freed): one means a lone client, whose requests no other can join in a batch.
        self.clients: weakref.WeakSet = weakref.WeakSet()

    def start_request(self, server_conn: object, request_conn: Any) -> Any:
        self.clients.add(server_conn)
        return super().start_request(server_conn, request_conn)

    def get_handler_delegate(
        self,
        request: Any,
        target_class: Any,
        target_kwargs: Optional[dict] = None,
        path_args: Optional[list] = None,
        path_kwargs: Optional[dict] = None,
    ) -> Any:
        if target_class is SmallCommandHandler and self.fast_path and path_args:
            return FastCommand(self, request, (target_class, target_kwargs, path_args, path_kwargs))
        return super().get_handler_delegate(
            request, target_class, target_kwargs, path_args, path_kwargs
        )


class FastCommand(tornado.httputil.HTTPMessageDelegate):
    """A small JSON POST to a command that runs on the I/O loop (see ModelServer.can_run_inline), or
    to a batched command, answered without a RequestHandler: no handler object, one write (and for a
    command on the loop, no task and no extra loop turn). It answers as SmallCommandHandler would (same
    status, headers and body, access log and stats); any request it is not sure of (another header
    that changes the answer, a form, a token to check in the query, a command not fast lately or not
    ready) goes to that handler."""

    def __init__(self, application: ModelApplication, request: Any, route: tuple):
        self.application = application
        self.request = request
        self.route = route  # what Application.get_handler_delegate would be given
        self.chunks: list = []
        self.start_line: Any = None
        self.gone = False  # the client went away before its answer
        self.timing: Optional[tuple] = None  # (queue seconds, model seconds) of a batched request

    def headers_received(self, start_line: Any, headers: Any) -> None:
        self.start_line = start_line

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def on_connection_close(self) -> None:
        self.chunks = []
        self.gone = True

    def finish(self) -> None:
        body = b"".join(self.chunks)
        server: ModelServer = self.application.settings["modelserver"]
        cmd = self.command(server)
        if cmd is None:
            self.hand_over(body)
        elif cmd.batch is not None and not server.can_answer_alone(
            cmd, len(self.application.clients)
        ):
            # The connection waits for this answer before it reads the client's next request.
            task = asyncio.ensure_future(self.answer_batched(server, cmd, body))
            server.answering.add(task)  # asyncio keeps only weak references to tasks
            task.add_done_callback(server.answering.discard)
        else:
            self.answer(server, cmd, body)

    def hand_over(self, body: bytes) -> None:
        """Let SmallCommandHandler answer, as if this delegate had never been asked."""
        request = self.request
        delegate = tornado.web.Application.get_handler_delegate(
            self.application, request, *self.route
        )
        delegate.headers_received(self.start_line, request.headers)
        if body:
            delegate.data_received(body)
        delegate.finish()

    def command(self, server: ModelServer) -> Any:
        """The command this request runs on the fast path, or None for the handler's path."""
        if not server.inline_fast:
            return None
        headers = self.request.headers
        if "Prefer" in headers or "X-Runway-Output-Format" in headers:
            return None
        if "text/event-stream" in headers.get("Accept", "").lower():
            return None
        if "form" in headers.get("Content-Type", "").lower():
            return None  # a form (Tornado parses some of them itself): the handler's
        if server.token and not self.authorized(server.token):
            return None
        registry = server.registry
        if registry.status != RUNNING:
            return None
        cmd = registry.commands.get(self.route[2][0].decode())
        if cmd is None:
            return None
        if cmd.batch is None and not server.can_run_inline(cmd):
            return None  # a batched command's requests are gathered whatever the model is doing
        return cmd

    def authorized(self, token: str) -> bool:
        """The right token in the Authorization header (check_token's other cases are the handler's)."""
        auth = self.request.headers.get("Authorization", "")
        if auth[:6].lower() != "token " and auth[:7].lower() != "bearer ":
            return False
        given = auth.split(None, 1)[1:]
        return bool(given) and hmac.compare_digest(given[0].strip().encode(), token.encode())

    def answer(self, server: ModelServer, cmd: Any, body: bytes) -> None:
        """CommandRoute.post and _run for this request, inline (for a batched command, as a batch of
        one: see ModelServer.can_answer_alone)."""
        began = time.perf_counter()
        registry = server.registry
        timing: Optional[tuple] = None
        status, retry = 200, False
        try:
            try:
                raw = parse_json_body(body)
                ctx = DecodeContext(max_pixels=server.max_pixels)
                start = time.perf_counter()
                try:
                    inputs = registry.parse_inputs(cmd, raw, ctx)
                    answer = registry.call(cmd, inputs, None, _never, None)
                finally:
                    ctx.cleanup()
                    took = time.perf_counter() - start
                    timing = (start - began, took)
                    cmd.fast_runs = cmd.fast_runs + 1 if took < FAST_SECONDS else 0
                    if cmd.batch is not None:
                        server.batcher(cmd).ran_alone(took)
                server.stats.record()
            except ModelCloudError as e:
                status, retry, answer = self.failed(server, e)
            data = JSON_ENCODE(answer).encode()
        except Exception:  # what Tornado makes of an exception that escapes a handler
            self.log_uncaught()
            status, retry, timing, data = 500, False, None, INTERNAL_ERROR
        self.respond(server, status, data, timing, retry)

    async def answer_batched(self, server: ModelServer, cmd: Any, body: bytes) -> None:
        """CommandRoute.post for a request to a batched command: decoded, gathered into the command's
        next batch, answered once that batch has run."""
        server.ongoing += 1  # requests in progress, for /healthcheck's "ongoing"
        status, retry = 200, False
        try:
            try:
                raw = parse_json_body(body)
                answer = await server.run_batched(cmd, raw, self.is_gone, None, self.timed)
                if answer is None:
                    return  # the client went away while it waited
                server.stats.record()
            except ModelCloudError as e:
                status, retry, answer = self.failed(server, e)
            data = JSON_ENCODE(answer).encode()
        except Exception:
            self.log_uncaught()
            status, retry, self.timing, data = 500, False, None, INTERNAL_ERROR
        finally:
            server.ongoing -= 1
        if self.gone:
            return
        self.respond(server, status, data, self.timing, retry)

    def failed(self, server: ModelServer, e: ModelCloudError) -> tuple:
        """``(status, retry, body)`` of a request that failed with ``e``, counted in the metrics."""
        request = self.request
        record_error(server, request.method, request.path, e)
        return e.status, e.status == 503, error_body(server, e)

    def is_gone(self) -> bool:
        return self.gone

    def timed(self, queue: float, model: float) -> None:
        """The request waited ``queue`` s for its batch to start, which then took ``model`` s."""
        self.timing = (queue, model)

    def log_uncaught(self) -> None:
        """What Tornado logs of an exception that escapes a handler (RequestHandler.log_exception)."""
        request = self.request
        app_log.error(
            "Uncaught exception %s %s (%s)\n%r",
            request.method,
            request.uri,
            request.remote_ip,
            request,
            exc_info=True,
        )

    def respond(
        self,
        server: ModelServer,
        status: int,
        data: bytes,
        timing: Optional[tuple],
        retry: bool = False,
    ) -> None:
        """Write the answer as BaseHandler.write_json does: the same headers in the same order."""
        request = self.request
        headers = tornado.httputil.HTTPHeaders()
        headers["Server"] = SERVER_HEADER
        headers["Content-Type"] = JSON_TYPE
        headers["Date"] = http_date()
        headers["Access-Control-Allow-Origin"] = server.cors_origin
        if timing is not None:
            headers["Server-Timing"] = timing_header(*timing)
        if retry:
            headers["Retry-After"] = "1"
        if len(data) >= GZIP_MIN_SIZE:
            headers["Vary"] = "Accept-Encoding"
            if "gzip" in request.headers.get("Accept-Encoding", ""):
                data = gzip.compress(data, compresslevel=6)
                headers["Content-Encoding"] = "gzip"
        headers["Content-Length"] = str(len(data))
        reason = tornado.httputil.responses.get(status, "Unknown")
        connection = request.connection
        connection.write_headers(
            tornado.httputil.ResponseStartLine("", status, reason), headers, data
        )
        connection.finish()
        log_access(status, request)


def _never() -> bool:
    return False


#: (second, its HTTP date): Tornado formats the Date header afresh for every answer.
_date: tuple = (0, "")


def http_date() -> str:
    """The Date header's value for now (the same text as Tornado's, made once a second)."""
    global _date
    now = time.time()
    second = int(now)
    if _date[0] != second:
        _date = (second, tornado.httputil.format_timestamp(now))
    return _date[1]


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404)


def describe_listen_error(e: OSError, host: str, port: int) -> str:
    if e.errno in (98, 48, 10048):
        return (
            f"Port {port} on {host} is already in use: stop the other server or choose another port "
            "(ALGOLINK_PORT)."
        )
    if e.errno in (99, 49, -2, -3, -5):
        return f"Cannot listen on {host!r}: it is not an address of this machine (ALGOLINK_HOST)."
    if e.errno == 13:
        return f"No permission to listen on port {port}: choose a port above 1023 (ALGOLINK_PORT)."
    return f"Cannot listen on {host}:{port}: {e}"
