"""The model server: the HTTP protocol of CONTRACT section 3 on Tornado.

Requests are parsed on the I/O loop; a command (with its input decoding and output encoding) runs on a
worker thread, so ``/healthcheck`` and ``/meta`` answer while a long command runs. By default one request
at a time reaches the model (safe for a GPU) and the rest wait in a bounded queue. Every error is JSON
``{"error", "field"}``; nothing a client sends can stop the server.
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import hmac
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import tornado.httputil
import tornado.web

from .data_types import DEFAULT_MAX_PIXELS, DecodeContext, UploadedFile
from .errors import InputError, ModelCloudError, NotReady, PayloadTooLarge
from .model import Registry
from .openapi import openapi_document

log = logging.getLogger("modelcloud.server")

DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_QUEUE = 256
#: A command whose last FAST_STREAK runs each took under FAST_SECONDS runs on the I/O loop while the model
#: is idle; one slower run sends it back to the worker thread. The loop is then blocked at most once,
#: for that one run, and a long command never starves /healthcheck.
FAST_SECONDS = 0.002
FAST_STREAK = 16
#: Bodies larger than this are gzipped when the client accepts it (a no-op answer is not worth it).
GZIP_MIN_SIZE = 1024
#: How much of a body over the limit is still read (and dropped) so that the 413 reaches the client.
DRAIN_ALLOWANCE = 64 * 1024 * 1024

#: Inputs whose multipart form fields are taken as text as they are; other fields are read as JSON.
_TEXT_FIELDS = {"text", "category", "image", "file", "directory", "segmentation"}


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
        self.inline_fast = inline_fast
        #: Run by an AlgoLink hub: no ``POST /setup`` (setup options change through the hub, as new
        #: versions), and the OpenAPI document lists what clients reach through the hub.
        self.behind_hub = behind_hub
        self.stats = ServerStats()

    def make_app(self, **settings: Any) -> tornado.web.Application:
        return tornado.web.Application(
            [
                # Commands first: they are the hot path (a command may not take a reserved name).
                (r"/(?!meta$|healthcheck$|setup$)([A-Za-z0-9_-]+)", CommandHandler),
                (r"/", MetaHandler),
                (r"/meta", MetaHandler),
                (r"/healthcheck", HealthHandler),
                (r"/openapi\.json", OpenAPIHandler),
                *([] if self.behind_hub else [(r"/setup", SetupHandler)]),
            ],
            default_handler_class=NotFoundHandler,
            modelserver=self,
            **settings,
        )

    def can_run_inline(self, cmd: Any) -> bool:
        """Whether ``cmd`` may run on the I/O loop itself: it has been fast every time lately and the
        model is idle. Saves the two thread hand-overs a worker costs (about half of a no-op request)."""
        return self.inline_fast and self.pending == 0 and cmd.fast_runs >= FAST_STREAK

    async def submit(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on a worker, refusing at once when the queue is full."""
        if self.pending >= self.max_queue:
            raise NotReady(
                f"The model is busy with {self.pending} waiting requests; retry in a moment."
            )
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            self.pending -= 1

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class BaseHandler(tornado.web.RequestHandler):
    """CORS, the token check, JSON in and JSON errors out."""

    @property
    def modelserver(self) -> ModelServer:
        return self.settings["modelserver"]

    def set_default_headers(self) -> None:
        self.set_header("Access-Control-Allow-Origin", self.settings["modelserver"].cors_origin)

    def options(self, *args: Any) -> None:
        """The CORS preflight."""
        self.set_header("Access-Control-Allow-Headers", "Content-Type, Authorization")
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    def prepare(self) -> None:
        token = self.modelserver.token
        if token and self.request.method != "OPTIONS":
            given = self.get_query_argument("token", None)
            auth = self.request.headers.get("Authorization", "")
            if auth[:6].lower() == "token " or auth[:7].lower() == "bearer ":
                given = auth.split(None, 1)[1].strip()
            if not given or not hmac.compare_digest(given.encode(), token.encode()):
                self.set_header("WWW-Authenticate", "token")
                raise tornado.web.HTTPError(
                    401, reason="Unauthorized", log_message="missing or wrong token"
                )

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        data = json.dumps(body, allow_nan=False).encode()
        if len(data) >= GZIP_MIN_SIZE:
            self.set_header("Vary", "Accept-Encoding")
            if "gzip" in self.request.headers.get("Accept-Encoding", ""):
                data = gzip.compress(data, compresslevel=6)
                self.set_header("Content-Encoding", "gzip")
        self.finish(data)

    def send_model_error(self, e: ModelCloudError) -> None:
        body = e.to_json()
        if not self.modelserver.debug:
            body.pop("traceback", None)
        self.modelserver.stats.record(
            f"{self.request.method} {self.request.path}: {e.status} {e.message}",
            getattr(e, "traceback", None),
        )
        if e.status >= 500:
            log.warning("%s %s: %s", self.request.method, self.request.path, e.message)
        if e.status == 503:
            self.set_header("Retry-After", "1")
        self.write_json(body, e.status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ModelCloudError):
            body = exc.to_json()
            if not self.modelserver.debug:
                body.pop("traceback", None)
        elif status_code == 401:
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
            body = {"error": "Internal server error; the server keeps running."}
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))

    def _allowed(self) -> list:
        return [
            m
            for m in ("GET", "POST")
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
        limit = self.modelserver.max_body_size
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
                f"The body is over the limit of {limit:,} bytes: send a smaller file "
                "or raise ALGOLINK_MAX_BODY_SIZE."
            ).to_json(),
            413,
        )

    def data_received(self, chunk: bytes) -> None:
        if self._too_large:
            return
        self._size += len(chunk)
        if self._size > self.modelserver.max_body_size:
            self._reject_too_large()
            return
        self._chunks.append(chunk)

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)

    def parse_body(self, types: dict) -> Any:
        """The request's values: a JSON object, or a multipart / urlencoded form."""
        body = self.body
        ctype = self.request.headers.get("Content-Type", "")
        base = ctype.split(";", 1)[0].strip().lower()
        if base == "application/x-www-form-urlencoded" and body.lstrip()[:1] in (b"{", b"["):
            base = "application/json"  # curl -d '{...}' labels JSON as a form
        if base in ("multipart/form-data", "application/x-www-form-urlencoded"):
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
        if not body.strip():
            return {}
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise InputError(
                'The body is not valid JSON: send a JSON object such as {"name": value} '
                "(or multipart/form-data)."
            ) from None


class MetaHandler(BaseHandler):
    def get(self) -> None:
        self.write_json(self.modelserver.registry.manifest())


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.write_json({"status": self.modelserver.registry.status})


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


class CommandHandler(BodyHandler):
    def get(self, name: str) -> None:
        try:
            cmd = self.modelserver.registry.get_command(name)
        except ModelCloudError as e:
            self.send_model_error(e)
            return
        self.write_json(cmd.to_dict())

    def on_connection_close(self) -> None:
        self._gone = True

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
            if server.can_run_inline(cmd):
                result = self._run(cmd, raw)
            else:
                result = await server.submit(self._run, cmd, raw)
        except ModelCloudError as e:
            self.server_timing()
            self.send_model_error(e)
            return
        if result is None:  # the client went away while it waited
            return
        server.stats.record()
        self.server_timing()
        self.write_json(result)

    def server_timing(self) -> None:
        """``Server-Timing: queue;dur=..., model;dur=...`` (ms): how long the request waited for the
        model and how long the model took (what the hub's metrics tell apart from the network)."""
        if self._timing is not None:
            queue, model = self._timing
            self.set_header(
                "Server-Timing", f"queue;dur={queue * 1e3:.3f}, model;dur={model * 1e3:.3f}"
            )

    def _run(self, cmd: Any, raw: Any) -> Optional[dict]:
        """On a worker thread (or the loop, when fast): decode the inputs, call, encode the outputs."""
        if self._gone:
            return None
        server = self.modelserver
        ctx = DecodeContext(max_pixels=server.max_pixels)
        start = time.perf_counter()
        try:
            server.registry.check_ready()
            inputs = server.registry.parse_inputs(cmd, raw, ctx)
            return server.registry.call(cmd, inputs)
        finally:
            ctx.cleanup()
            took = time.perf_counter() - start
            self._timing = (start - self._began, took)
            fast = took < FAST_SECONDS
            cmd.fast_runs = cmd.fast_runs + 1 if fast else 0


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
