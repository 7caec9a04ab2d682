"""``/serve/{project}/{service}[/v{N} | /@{alias}]/{command}``: requests forwarded to a version's process.

Without ``v{N}`` or ``@{alias}`` a request goes to the version online now; with one, to that version,
whose process is started for the request when it does not run (:meth:`Publisher.warm_up`: the request
waits, then gets 503 with ``Retry-After`` past the hub's cold-start time).

This is the hub's hot path, so it is served below ``tornado.web``: :class:`HubServer` hands requests
for ``/serve/`` to a :class:`ServeRequest` and everything else to the application. The route comes
from the publisher's in-memory table, never from the database. The request goes to the service over
a pool of keep-alive connections (:class:`UpstreamPool`), written as one block, and the answer comes
back as it arrives: the head with the first bytes of the body in one write, then the rest, each piece
read from the service only once the last one is sent (a slow client holds the service back instead
of filling the hub's memory). Only the framing of the answer is parsed (``Content-Length`` or
chunked); its bytes pass through unchanged.

Why not ``AsyncHTTPClient`` in a ``RequestHandler``: libcurl's or the simple client's machinery plus
a handler cost the hub more than a millisecond a request on a small machine; this costs a fraction.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import ssl
import tempfile
import time
from collections.abc import Awaitable
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from tornado import httputil
from tornado.iostream import IOStream, StreamClosedError
from tornado.log import app_log
from tornado.tcpclient import TCPClient

from .access import CHALLENGE, Refused
from .devmode import HOP_HEADER, DevServerError, not_answering, target_address
from .publisher import ColdStartError

#: Headers that belong to one connection, not to the request or answer they travel with.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Not sent on to a service: hop-by-hop ones, the hub's token, the browser's cookies (the hub's
#: session among them), and what is set here again.
DROP_REQUEST = HOP_BY_HOP | {
    "authorization",
    "host",
    "content-length",
    "expect",
    "cookie",
    "cookie2",
    "x-algolink-hop",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-prefix",
    "x-forwarded-host",
    "forwarded",
}

MAX_HEAD = 65536
CHUNK = 65536
_VERSIONED = re.compile(r"^/v(\d{1,9})(/.*)$")
_ALIASED = re.compile(r"^/@([A-Za-z0-9_-]{1,64})(/.*)$")


class NotTheService(Exception):
    """The program listening on a service's port is not the service (it died, and another took the
    port before the hub noticed): nothing is sent to it."""


class UpstreamPool:
    """Keep-alive HTTP/1.1 connections to the services, reused request after request.

    A development server's ``https://`` URL is spoken to over TLS (the machine's CAs, or
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``, and its host name checked), never in clear: its connections
    are pooled apart from plain ones."""

    def __init__(self, max_idle: int = 64) -> None:
        self.max_idle = max_idle
        self._idle: dict[tuple, collections.deque] = collections.defaultdict(collections.deque)
        self._tcp = TCPClient()
        self._tls: Optional[ssl.SSLContext] = None

    def tls_context(self) -> ssl.SSLContext:
        if self._tls is None:  # honours SSL_CERT_FILE and SSL_CERT_DIR, as the hub's other clients
            self._tls = ssl.create_default_context()
        return self._tls

    async def _connect(
        self,
        address: tuple[str, int],
        tls_host: Optional[str] = None,
        verify: Optional[Callable[[], Awaitable[bool]]] = None,
    ) -> tuple[IOStream, bool]:
        idle = self._idle.get((*address, tls_host))
        while idle:
            stream = idle.pop()
            if not stream.closed():
                return stream, True
        stream = await self._tcp.connect(*address)
        if tls_host is not None:  # to the address checked, with the URL's host name checked
            stream = await stream.start_tls(
                False, ssl_options=self.tls_context(), server_hostname=tls_host
            )
        if verify is not None and not await verify():
            stream.close()  # a new connection, to a port the service no longer holds
            raise NotTheService()
        stream.set_nodelay(True)
        return stream, False

    async def exchange(
        self,
        address: tuple[str, int],
        head: bytes,
        serve: ServeRequest,
        *,
        tls_host: Optional[str] = None,
        verify: Optional[Callable[[], Awaitable[bool]]] = None,
    ) -> None:
        """Send ``head`` and the request's body (``serve.body``), and let ``serve`` relay the answer.
        Raises StreamClosedError or OSError when the service cannot be reached or breaks off its
        answer, :class:`BadAnswer` when it answers out of the protocol, :class:`NotTheService`
        when ``verify`` says a new connection did not reach the service (a pooled one is not
        checked again: it was the service's when it was opened). ``tls_host``: speak TLS, checking
        that the server is that host."""
        for attempt in (1, 2):
            stream, reused = await self._connect(address, tls_host, verify)
            serve.upstream = stream
            try:
                await serve.send_request(stream, head)
                keep = await serve.relay(stream)
            except StreamClosedError:
                stream.close()
                if reused and attempt == 1 and not serve.started and not serve.gone:
                    continue  # the service had closed this idle connection: once more, afresh
                raise
            except BaseException:
                stream.close()  # out of step with the service: never used again
                raise
            finally:
                serve.upstream = None
            idle = self._idle[(*address, tls_host)]
            if keep and not stream.closed() and len(idle) < self.max_idle:
                idle.append(stream)
            else:
                stream.close()
            return

    def forget(self, url: Optional[str]) -> None:
        """Close the idle connections to a service that stopped."""
        if url:
            address = address_of(url)
            for key in [k for k in self._idle if k[:2] == address]:
                for stream in self._idle.pop(key, ()):
                    stream.close()

    def close(self) -> None:
        for idle in self._idle.values():
            for stream in idle:
                stream.close()
        self._idle.clear()
        self._tcp.close()


def address_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def digits(text: str) -> bool:
    """Whether ``text`` is a number as HTTP writes one: ASCII digits only (``str.isdigit`` also takes
    ``²`` and other digits that ``int`` refuses or reads differently)."""
    return text.isascii() and text.isdigit()


#: The largest request body /serve forwards (the model server's own default limit). A body is kept in
#: memory up to SPOOL_IN_MEMORY bytes and spooled to a temporary file beyond that; all the bodies
#: being received at once may take SPOOL_BUDGET bytes of disk (the hub's --spool-budget), and a
#: request past it is a 503; a body whose client goes away gives its share back at once.
MAX_SERVE_BODY = 64 * 1024 * 1024
SPOOL_IN_MEMORY = 256 * 1024
SPOOL_BUDGET = 4 * 1024**3
#: Requests forwarded to one service at once; more are answered 503 (the service's own queue is
#: the model server's business; this bounds what the hub holds for it).
MAX_INFLIGHT = 512
_STATUS = re.compile(r"^HTTP/1\.([01]) ([1-5]\d\d)(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CHUNK_SIZE = re.compile(rb"^([0-9a-fA-F]{1,15})(;[^\r\n]*)?\r\n$")


class BadAnswer(Exception):
    """A service's answer that is not HTTP/1.1 as it must be; the message says what was wrong."""


def parse_head(raw: bytes) -> tuple:
    """``(version, code, reason, [(name, value)])`` of a service's answer head (ending in a blank
    line), parsed strictly: every line ends in CRLF, names are tokens, values hold no control
    character (a bare CR or LF among them would start a header the hub never checked), no folded
    lines. Anything else is a :class:`BadAnswer`."""
    lines = raw.decode("latin1")[:-4].split("\r\n")
    m = _STATUS.match(lines[0])
    if not m:
        raise BadAnswer(f"a malformed status line {lines[0][:60]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise BadAnswer(f"a malformed header line {line[:60]!r}")
        value = value.strip(" \t")
        if _BAD_VALUE.search(value):
            raise BadAnswer(f"a control character in the header {name!r}")
        headers.append((name, value))
    return f"HTTP/1.{m.group(1)}", int(m.group(2)), m.group(3) or "", headers


def framing(headers: list) -> tuple:
    """``(content_length, chunked)`` of an answer, or a :class:`BadAnswer` for framing a proxy must
    not guess at: a length that is not a number, two different lengths, a length with chunking, a
    transfer coding other than chunked."""
    lengths = {v for n, v in headers if n.lower() == "content-length"}
    codings = [v.lower() for n, v in headers if n.lower() == "transfer-encoding"]
    if any(not digits(v) for v in lengths) or len(lengths) > 1:
        raise BadAnswer(f"a bad Content-Length {sorted(lengths)}")
    if codings:
        if lengths:
            raise BadAnswer("both Content-Length and Transfer-Encoding")
        if [c.strip() for c in ",".join(codings).split(",")] != ["chunked"]:
            raise BadAnswer(f"a Transfer-Encoding other than chunked ({', '.join(codings)})")
        return None, True
    return (int(next(iter(lengths))) if lengths else None), False


#: Not relayed back to the client: cookies are the hub's business, never a service's.
#: Nor ``Clear-Site-Data``: on the hub's own origin it would clear the hub's session and storage.
DROP_ANSWER = HOP_BY_HOP | {
    "set-cookie",
    "set-cookie2",
    "access-control-allow-credentials",
    "clear-site-data",
}
#: Added to every answer under /serve: a service's page is a sandbox with an origin of its own (it
#: cannot read the hub's pages or act on them with the signed-in user's session), and its types are
#: taken as declared.
SERVE_HEADERS = (
    "Content-Security-Policy: sandbox\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
)
#: What a client may call besides the commands (GET/HEAD; OPTIONS for CORS).
PUBLIC_PATHS = frozenset({"", "meta", "openapi.json"})
#: A service's async jobs (``GET`` status, ``DELETE`` cancel) and its WebSocket (``ws``, or Runway's
#: ``/``): reachable with the same token checks as its commands.
_JOB_PATH = re.compile(r"^jobs/[A-Za-z0-9_-]{1,64}$")
WEBSOCKET_PATHS = frozenset({"", "ws"})
#: How many hubs a request may pass through (each adds its id to the hop header).
MAX_HOPS = 4


class _Refused(Exception):
    def __init__(self, status: int, message: str, retry_after: Optional[int] = None, **head: str):
        super().__init__(message)
        self.status, self.message, self.retry_after, self.head = status, message, retry_after, head


class ServeRequest(httputil.HTTPMessageDelegate):
    """One ``/serve`` request: route, token and what may be called, all decided on the request's
    head before a byte of its body is read; then the relay to the service and back."""

    def __init__(self, hub: Any, connection: Any) -> None:
        self.hub = hub
        self.connection = connection
        self.body: Any = None  # a SpooledTemporaryFile once the body begins
        self.size = 0  # bytes of the request body seen
        self.budgeted = 0  # bytes of it counted against SPOOL_BUDGET
        self.started = False  # the service's answer has begun
        self.refused = False  # answered already (the body is read and dropped)
        self.plan: Optional[dict] = None
        self.upstream: Optional[IOStream] = None  # the service's connection while forwarding
        self.gone = False  # the client went away
        self.forwarding = False  # finish() handed the request to forward(), which releases it
        self.upgrade = False  # a WebSocket handshake (tunnelled once the service switches)
        self.tunnelled = False  # the connection was handed to a WebSocket tunnel
        self.head_sent: Optional[asyncio.Event] = None  # set when the answer's head is sent
        # What the meter (metrics.py, None with --no-metrics) reads when the request ends.
        self.meter = getattr(hub, "meter", None)
        self.began_at = time.perf_counter()
        self.first_at = 0.0  # when the answer's head was sent
        self.status = 0
        self.sent = 0  # bytes of the answer sent
        self.timing: Optional[str] = None  # the service's Server-Timing header
        self.measured: Optional[tuple] = None  # (project, service, route) once the route is known
        self.caller: Any = None
        self.tee: Any = None  # the answer's first bytes, for a service that records them
        self.ended = False
        # Told when the client goes away while the service answers (as a RequestHandler is).
        connection.set_close_callback(self.on_connection_close)

    # --- the request, as Tornado's HTTP/1 server reads it -----------------------------------------

    async def headers_received(  # type: ignore[override]
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.start_line, self.headers = start_line, headers
        self.upgrade = start_line.method == "GET" and is_websocket(headers)
        try:
            self.plan = await self.decide()
        except _Refused as e:
            self.refused = True
            if e.status == 401:
                e.head.setdefault("WWW-Authenticate", CHALLENGE)
            # Answered before the body was read: Tornado reads the rest and drops it, then closes
            # the connection; the client must not send another request on it.
            self.error(e.status, e.message, e.retry_after, Connection="close", **e.head)

    def data_received(self, chunk: bytes) -> None:
        if self.refused:
            return
        self.size += len(chunk)
        if self.size > MAX_SERVE_BODY:
            self.release()
            self.refused = True
            self.error(413, _too_large(), Connection="close")
            return
        if self.body is None:
            self.body = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by release()
                SPOOL_IN_MEMORY, dir=self.hub.data / "tmp"
            )
        if self.size > SPOOL_IN_MEMORY:  # on disk from here on: counted against the budget
            spooled = self.hub.publisher.spooled
            if spooled[0] + len(chunk) > getattr(self.hub, "spool_budget", SPOOL_BUDGET):
                self.release()
                self.refused = True
                self.error(
                    503,
                    "The hub is receiving too many large bodies at once: send it again in a "
                    "moment.",
                    5,
                    Connection="close",
                )
                return
            spooled[0] += len(chunk)
            self.budgeted += len(chunk)
        self.body.write(chunk)

    def release(self) -> None:
        """Give back the body's file and its share of the budget."""
        if self.budgeted:
            self.hub.publisher.spooled[0] -= self.budgeted
            self.budgeted = 0
        if self.body is not None:
            self.body.close()
            self.body = None

    def on_connection_close(self) -> None:
        """The client went away: so does the request to the service (and its body: its file and
        its share of the spool budget, at once, unless forward() has it and gives it back itself
        when it ends)."""
        self.gone = True
        if self.upstream is not None:
            self.upstream.close()
        if not self.forwarding:
            self.end_measure()
            self.release()

    def finish(self) -> None:
        if self.refused or self.plan is None or self.gone:
            self.release()
            return
        self.forwarding = True
        asyncio.ensure_future(self.forward()).add_done_callback(self._done)

    def _done(self, task: asyncio.Future) -> None:
        if not task.cancelled() and task.exception() is not None:
            app_log.error("/serve failed", exc_info=task.exception())
            if not self.started:
                self.error(500, "The hub failed to forward this request; its log says why.")
            else:
                self.connection.close()
        self.end_measure()
        self.release()

    # --- measuring (metrics.py) ---------------------------------------------------------------------

    def write(self, data: bytes) -> Any:
        """Send bytes of the answer to the client: counted, and caught for the request log."""
        self.sent += len(data)
        if self.tee is not None:
            self.tee.feed(data)
        return self.connection.write(data)

    def answered(self, code: int, headers: list) -> None:
        """The service's answer head, about to be sent: its status, the first byte's time and the
        model server's Server-Timing (queue and model time)."""
        self.status = code
        self.first_at = time.perf_counter()
        if self.meter is not None:
            for name, value in headers:
                if name.lower() == "server-timing":
                    self.timing = value

    def end_measure(self) -> None:
        """The request ended (a streamed answer: with its last byte): the meter counts it, once."""
        if self.meter is not None and not self.ended:
            self.ended = True
            try:
                self.meter.done(self)
            except Exception:
                app_log.exception("measuring a /serve request failed")

    # --- answers of the hub's own ------------------------------------------------------------------

    def error(
        self, status: int, message: str, retry_after: Optional[int] = None, **head: str
    ) -> None:
        body = json.dumps({"error": message}).encode()
        extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in head.items())
        head_text = (
            f"HTTP/1.1 {status} {httputil.responses.get(status, 'Error')}\r\n"
            "Content-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            + SERVE_HEADERS
            + (f"Retry-After: {retry_after}\r\n" if retry_after else "")
            + extra
            + "\r\n"
        )
        self.status, self.first_at = status, time.perf_counter()
        self.write(head_text.encode("latin1") + body)
        self.connection.finish()
        self.end_measure()

    # --- deciding ----------------------------------------------------------------------------------

    async def decide(self) -> dict:
        """Where this request goes, or a :class:`_Refused` that says why it goes nowhere."""
        hub = self.hub
        hops = [h.strip() for h in self.headers.get_list(HOP_HEADER) for h in h.split(",")]
        if hub.hop_id in hops or len(hops) >= MAX_HOPS:
            raise _Refused(
                400,
                "This request came back to the hub it passed through: a development service's URL "
                "leads to the hub itself. Connect the development service to your own model server.",
            )
        raw_path, _, query = self.start_line.path.partition("?")
        if hub.serve_origin and not self._on_serve_origin():
            raise _Refused(
                421,
                f"/serve is answered at {hub.serve_origin} on this hub: send the request there.",
                Location=hub.serve_origin.rstrip("/") + self.start_line.path,
            )
        parts = raw_path.split("/", 4)  # '', 'serve', project, service, rest
        if len(parts) < 4 or not parts[2] or not parts[3]:
            raise _Refused(404, "Use /serve/{project}/{service}/{command}.")
        project, service = parts[2], parts[3]
        path = "/" + (parts[4] if len(parts) > 4 else "")
        api = alias = None
        m = _VERSIONED.match(path) or (_VERSIONED.match(path + "/") if path != "/" else None)
        a = _ALIASED.match(path) or (_ALIASED.match(path + "/") if path != "/" else None)
        if m:
            api, path = int(m.group(1)), m.group(2)
        elif a:
            alias, path = a.group(1), a.group(2)
        name = f"{project}/{service}"
        if path[1:] not in WEBSOCKET_PATHS:
            self.upgrade = False  # a handshake elsewhere goes on as a plain request
        route = hub.publisher.routes.get((project, service))
        if route is None:
            raise _Refused(404, f"There is no service {name} on this hub.")
        self.measured = (project, service, route)
        if not route.public:
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() not in ("token", "bearer") or not token.strip():
                raise _Refused(
                    401,
                    f"{name} is not public: send 'Authorization: token <token>' with the request.",
                )
            ip = getattr(self.connection.context, "remote_ip", "") or ""
            try:
                caller = hub.gate.from_token(token.strip(), ip)
            except Refused as e:
                raise _Refused(e.status, e.message) from None
            self.caller = caller
            if not caller.may("invoke", route.project_id, route.service_id):
                if caller.role(route.project_id) is None:
                    raise _Refused(404, f"There is no service {name} on this hub.")
                if "invoke" not in caller.scopes:
                    why = "needs a token with the 'invoke' scope"
                else:
                    why = (
                        "is not allowed to this token: it is limited to another project or service"
                    )
                raise _Refused(403, f"Calling {name} {why}.")
        length = self.headers.get("Content-Length", "")
        if digits(length) and int(length) > MAX_SERVE_BODY:
            raise _Refused(413, _too_large())
        if route.dev and (api is not None or alias is not None):
            raise _Refused(
                404,
                f"{name} is in development mode and has no API versions: use /serve/{name}/ "
                "without /v{N} or /@{alias}.",
            )
        target = self.pinned_target(route, name, api, alias)
        if target is not None and target.key == route.key and route.url is not None:
            target = None  # the version online now: served as such
        if target is None:
            if route.url is None:
                if route.status == "starting":
                    raise _Refused(503, f"{name} is starting: try again in a moment.", 2)
                raise _Refused(
                    503, f"{name} is not online (its status is {route.status}): publish it first."
                )
            self.check_callable(route.commands, name, path)
        else:
            if route.status == "offline":
                raise _Refused(
                    503,
                    f"{name} was taken offline (下线): its versions answer again once it is "
                    "published.",
                )
            self.check_callable(target.commands, name, path)
        key = target.key if target is not None else route.key
        if key is not None and hub.publisher.inflight[key] >= MAX_INFLIGHT:
            raise _Refused(
                503,
                f"{name} is answering {MAX_INFLIGHT} requests already: try again in a moment.",
                1,
            )
        if route.dev:
            try:
                address = await target_address(hub, route.url)
            except DevServerError as e:
                raise _Refused(502, str(e)) from None
            prefix = urlsplit(route.url).path.rstrip("/")
            return {
                "route": route,
                "name": name,
                "address": address,
                "path": prefix + path,
                "query": query,
                "prefix": f"/serve/{name}",
                "command": path[1:],
                "key": None,
                "target": None,
            }
        if api is not None:
            prefix = f"/serve/{name}/v{api}"
        elif alias is not None:
            prefix = f"/serve/{name}/@{alias}"
        else:
            prefix = f"/serve/{name}"
        if self.start_line.method == "POST" and wants_async(self.headers):
            # A job lives in the process that runs it: its URL names that version, so that it is
            # found there after another version goes online (or the alias moves).
            number = target.api_version if target is not None else route.api_version
            if number:
                prefix = f"/serve/{name}/v{number}"
        return {
            "route": route,
            "name": name,
            "address": self.address_of(key, route.url) if target is None else None,
            "path": path,
            "query": query,
            "prefix": prefix,
            "command": path[1:],
            "key": key,
            "target": target,
        }

    def pinned_target(
        self, route: Any, name: str, api: Optional[int], alias: Optional[str]
    ) -> Optional[Any]:
        """The version ``/v{api}`` or ``/@{alias}`` names (None for neither), or a 404 that says
        which ones there are."""
        if api is None and alias is None:
            return None
        online = (
            f"the online one is v{route.api_version}" if route.api_version else "none is online"
        )
        have = ", ".join(f"v{n}" for n in sorted(route.by_api)) or "none yet"
        if api is not None:
            number = route.by_api.get(api)
            if number is None:
                if 0 < api <= route.last_api_version:
                    reason = f"v{api} of {name} was deleted"
                else:
                    reason = f"{name} has no API version v{api}"
                raise _Refused(404, f"{reason}; its API versions are {have} ({online}).")
        else:
            number = route.aliases.get(alias)
            if number is None:
                names = ", ".join(f"@{a}" for a in sorted(route.aliases)) or "none"
                raise _Refused(
                    404, f"{name} has no alias @{alias}: its aliases are {names} ({online})."
                )
        target = route.targets.get(number)
        if target is None:
            raise _Refused(
                503,
                f"Version {number} of {name} has not been built yet: try again once it is.",
                5,
            )
        return target

    def check_callable(self, commands: frozenset, name: str, path: str) -> None:
        """What a client may reach: the commands (of the version it reaches), ``meta`` and
        ``openapi.json``; never ``/setup``, ``/healthcheck`` or anything else the process answers."""
        method = self.start_line.method
        rest = path[1:]
        if _JOB_PATH.match(rest):
            if method in ("GET", "HEAD", "DELETE", "OPTIONS"):
                return
            raise _Refused(
                405,
                f"{method} is not allowed on /serve/{name}/{rest}: use GET (its status) or DELETE "
                "(cancel it).",
                Allow="GET, HEAD, DELETE",
            )
        if rest == "ws":
            if method in ("GET", "OPTIONS") and self.upgrade:
                return
            raise _Refused(
                400,
                f"/serve/{name}/ws is a WebSocket: open it with a WebSocket client (GET with "
                "'Upgrade: websocket').",
            )
        if rest in PUBLIC_PATHS:
            if method in ("GET", "HEAD", "OPTIONS"):
                return
            raise _Refused(
                405, f"{method} is not allowed on /serve/{name}/{rest}: use GET.", Allow="GET, HEAD"
            )
        if rest in commands:
            if method in ("GET", "HEAD", "POST", "OPTIONS"):
                return
            raise _Refused(
                405,
                f"{method} is not allowed on /serve/{name}/{rest}: use POST (GET gives its spec).",
                Allow="GET, HEAD, POST",
            )
        listed = ", ".join(sorted(commands)) or "none yet"
        if rest == "setup":
            raise _Refused(
                404,
                f"/serve/{name}/setup is not open to clients: a service's setup options change "
                f"through the hub (PUT /api/v1/projects/{name.replace('/', '/services/')}/options), "
                "as a new version.",
            )
        raise _Refused(
            404,
            f"{name} has no command {rest!r}: its commands are {listed} (GET /serve/{name}/meta "
            "describes them).",
        )

    def _on_serve_origin(self) -> bool:
        host = (self.headers.get("Host") or "").lower()
        wanted = urlsplit(self.hub.serve_origin)
        default = 443 if wanted.scheme == "https" else 80
        want = f"{wanted.hostname}:{wanted.port or default}".lower()
        if ":" not in host.rsplit("]", 1)[-1]:
            host = f"{host}:{default}"
        return host == want

    # --- forwarding -------------------------------------------------------------------------------

    async def forward(self) -> None:
        plan = self.plan
        assert plan is not None
        route, name, address = plan["route"], plan["name"], plan["address"]
        key, publisher = plan["key"], self.hub.publisher
        if self.meter is not None:
            self.tee = self.meter.tee_for(self)
        if key is not None:
            publisher.inflight[key] += 1
        try:
            if plan["target"] is not None:  # a pinned version: started for this request if need be
                try:
                    url = await publisher.warm_up(route, plan["target"])
                except ColdStartError as e:
                    if self.gone:
                        return
                    return self.error(503, f"{name}: {e}", e.retry_after)
                if self.gone:
                    return
                address = self.address_of(key, url)
            await self._forward(route, name, address)
        finally:
            if key is not None:
                publisher.inflight[key] -= 1
                publisher.last_used[key] = time.monotonic()

    def address_of(self, key: Optional[str], url: str) -> tuple:
        """Where this request goes: the backend's choice among the version's replicas (one for a
        local process), else the URL's address."""
        if key is not None:
            picked = self.hub.runner.pick(key)
            if picked is not None:
                return picked
        return address_of(url)

    async def _forward(self, route: Any, name: str, address: tuple) -> None:
        plan = self.plan
        assert plan is not None
        method = self.start_line.method
        context = self.connection.context
        query = plan["query"]
        dev = urlsplit(route.url) if route.dev else None
        tls_host = dev.hostname if dev is not None and dev.scheme == "https" else None
        lines = [
            f"{method} {plan['path']}{'?' + query if query else ''} HTTP/1.1",
            f"Host: {dev.netloc.rpartition('@')[2] if tls_host else f'{address[0]}:{address[1]}'}",
        ]
        lines += [f"{k}: {v}" for k, v in self.headers.get_all() if k.lower() not in DROP_REQUEST]
        if self.size or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {self.size}")
        if self.upgrade:  # hop-by-hop, so dropped above: asked of the service again
            lines += ["Connection: Upgrade", "Upgrade: websocket"]
        hops = ", ".join([*self.headers.get_list(HOP_HEADER), self.hub.hop_id])
        lines.append(f"{HOP_HEADER}: {hops}")
        if route.dev:
            if route.dev_token:  # the token the developer's server needs: the caller never sees it
                lines.append(f"Authorization: token {route.dev_token}")
            lines.append(f"X-Forwarded-Prefix: {plan['prefix']}")
        else:
            lines += [
                f"X-Forwarded-For: {getattr(context, 'remote_ip', '') or ''}",
                f"X-Forwarded-Proto: {getattr(context, 'protocol', 'http')}",
                f"X-Forwarded-Prefix: {plan['prefix']}",
            ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin1")
        key, runner = plan["key"], getattr(self.hub, "runner", None)
        verify = None
        if not route.dev and key is not None and hasattr(runner, "owns_port"):

            async def verify() -> bool:
                return await runner.owns_port(key)

        try:
            while True:
                exchange = self.hub.upstreams.exchange(
                    address, head, self, tls_host=tls_host, verify=verify
                )
                try:
                    if self.upgrade or is_event_stream(self.headers):
                        await self.until_started(exchange, self.hub.serve_timeout)
                    else:
                        await asyncio.wait_for(exchange, self.hub.serve_timeout)
                except (StreamClosedError, OSError, NotTheService):
                    # A replica that refused the connection or broke off before answering (killed,
                    # restarting): the request goes once more, to another replica when there is one.
                    other = None
                    if (
                        key is not None
                        and runner is not None
                        and not self.started
                        and not self.gone
                    ):
                        other = runner.another(key, address)
                    if other is None:
                        raise
                    address = other
                    continue
                break
        except (StreamClosedError, OSError, BadAnswer, NotTheService, asyncio.TimeoutError) as e:
            if self.gone:
                return  # the client left: nothing to answer
            if not self.started:
                if isinstance(e, NotTheService):
                    return self.error(503, f"{name} is restarting: try again in a moment.", 2)
                if isinstance(e, asyncio.TimeoutError):
                    return self.error(
                        504,
                        f"{name} did not answer within {self.hub.serve_timeout:g} s (the hub's "
                        "--serve-timeout): try again, or with less.",
                    )
                if isinstance(e, BadAnswer):
                    app_log.warning("%s answered out of the protocol: %s", name, e)
                    return self.error(502, f"{name} answered out of the protocol ({e}).")
                if route.dev:
                    return self.error(502, not_answering(route.url))
                return self.error(502, f"{name} did not answer ({e or 'connection closed'}).")
            self.connection.close()  # it broke off mid-answer: so do we
            return
        if not self.tunnelled:
            self.connection.finish()

    async def until_started(self, exchange: Awaitable[None], timeout: float) -> None:
        """A stream (Server-Sent Events, a WebSocket) runs as long as it streams: the hub's
        --serve-timeout bounds only the wait for its answer to begin."""
        self.head_sent = asyncio.Event()
        task = asyncio.ensure_future(exchange)
        began = asyncio.ensure_future(self.head_sent.wait())
        try:
            await asyncio.wait({task, began}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            began.cancel()
        if not task.done() and not self.head_sent.is_set():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            raise asyncio.TimeoutError()
        await task

    def began(self) -> None:
        self.started = True
        if self.head_sent is not None:
            self.head_sent.set()

    async def tunnel(self, upstream: IOStream, reason: str, headers: list) -> None:
        """The service switched to the WebSocket protocol: its 101 goes to the client, then the
        bytes flow both ways unchanged until either side closes."""
        head = [f"HTTP/1.1 101 {reason or 'Switching Protocols'}"]
        head += [f"{n}: {v}" for n, v in headers if n.lower() not in DROP_ANSWER]
        head += ["Connection: Upgrade", "Upgrade: websocket"]
        client = self.connection.detach()  # no more HTTP on this connection
        self.tunnelled = True
        self.began()
        await client.write(_head(head))

        async def pump(source: IOStream, sink: IOStream) -> None:
            try:
                while True:
                    await sink.write(await source.read_bytes(CHUNK, partial=True))
            except StreamClosedError:
                pass
            finally:
                source.close()
                sink.close()

        await asyncio.gather(pump(client, upstream), pump(upstream, client))

    async def send_request(self, stream: IOStream, head: bytes) -> None:
        """The head, then the body from memory or its spool file, a block at a time."""
        body = self.body
        if body is None:
            stream.write(head)
            return
        body.seek(0)
        first = body.read(CHUNK)
        await stream.write(head + first)
        while True:
            block = body.read(CHUNK)
            if not block:
                return
            await stream.write(block)

    async def relay(self, stream: IOStream) -> bool:
        """Read the service's answer from ``stream`` and send it on; True when ``stream`` can be
        used again."""
        interim = False
        for _ in range(8):
            raw = await stream.read_until(b"\r\n\r\n", max_bytes=MAX_HEAD)
            version, code, reason, headers = parse_head(raw)
            if code == 101 and self.upgrade:
                await self.tunnel(stream, reason, headers)
                return False
            if not 100 <= code < 200:
                break  # a 1xx answer is followed by the real one
            interim = True
        else:
            raise BadAnswer("more than 8 interim answers")
        self.answered(code, headers)
        length, chunked = framing(headers)
        keep = (
            version == "HTTP/1.1"
            and not interim  # rare, and easy to get out of step with: never reused after one
            and not any(n.lower() == "connection" and "close" in v.lower() for n, v in headers)
        )
        head = [f"HTTP/1.1 {code} {reason or httputil.responses.get(code, '')}".rstrip()]
        head += [f"{n}: {v}" for n, v in headers if n.lower() not in DROP_ANSWER]
        head.append(SERVE_HEADERS.rstrip("\r\n"))
        self.began()
        send = self.write
        if self.start_line.method == "HEAD" or code in (204, 304):
            # No body by the protocol, whatever the head says; a service that sends one anyway
            # would have it read as the answer to the next request on this connection (another
            # client's): such a connection is never used again. (HEAD, 204 and 304 are rare.)
            send(_head(head))
            return False
        if length is not None and not chunked:
            first = await stream.read_bytes(length, partial=True) if length else b""
            remaining = length - len(first)
            sent = send(_head(head) + first)
            while remaining:
                await sent
                chunk = await stream.read_bytes(min(remaining, CHUNK), partial=True)
                remaining -= len(chunk)
                sent = send(chunk)
            return keep and _drained(stream)
        rechunk = chunked and self.start_line.version == "HTTP/1.1"
        if rechunk:
            head.append("Transfer-Encoding: chunked")
        else:  # the body ends when the connection does
            head.append("Connection: close")
        await send(_head(head))
        if chunked:
            while True:
                size_line = _CHUNK_SIZE.match(await stream.read_until(b"\r\n", max_bytes=1024))
                if size_line is None:
                    raise BadAnswer("a malformed chunk")
                size = int(size_line.group(1), 16)
                if size == 0:
                    while await stream.read_until(b"\r\n", max_bytes=MAX_HEAD) != b"\r\n":
                        pass  # trailers
                    break
                # A block at a time, each read only once the last one is sent (as with a length):
                # a chunk of any size costs the hub CHUNK bytes, not the chunk.
                remaining = size
                prefix = b"%x\r\n" % size if rechunk else b""
                while remaining:
                    data = await stream.read_bytes(min(remaining, CHUNK), partial=True)
                    remaining -= len(data)
                    await send(prefix + data)
                    prefix = b""
                if await stream.read_bytes(2) != b"\r\n":
                    raise BadAnswer("a chunk longer than it said")
                if rechunk:
                    send(b"\r\n")
            if rechunk:
                send(b"0\r\n\r\n")
            else:
                self.close_after()
            return keep and _drained(stream)
        try:  # no framing: the service's body runs until it closes the connection
            while True:
                await send(await stream.read_bytes(CHUNK, partial=True))
        except StreamClosedError:
            pass
        self.close_after()
        return False

    def close_after(self) -> None:
        """This answer ends with the connection (it had no framing the client could follow)."""
        asyncio.get_running_loop().call_soon(self.connection.close)


def is_websocket(headers: httputil.HTTPHeaders) -> bool:
    """Whether a request asks to switch to the WebSocket protocol."""
    return headers.get("Upgrade", "").strip().lower() == "websocket" and "upgrade" in (
        headers.get("Connection", "").lower()
    )


def is_event_stream(headers: httputil.HTTPHeaders) -> bool:
    """Whether a request asks for Server-Sent Events (an answer that streams)."""
    return "text/event-stream" in headers.get("Accept", "").lower()


def wants_async(headers: httputil.HTTPHeaders) -> bool:
    """Whether a request asks for an async job (``Prefer: respond-async``)."""
    return "respond-async" in headers.get("Prefer", "").lower()


def _drained(stream: IOStream) -> bool:
    """Whether the service sent nothing past the end of its answer (bytes it sent beyond would be
    read as the answer to the next request on this connection: it is not used again)."""
    return not getattr(stream, "_read_buffer_size", 0)


def _too_large() -> str:
    return (
        f"The body is over the limit of {MAX_SERVE_BODY:,} bytes for /serve: send a smaller file."
    )


def _head(lines: list) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin1")


class HubServer(httputil.HTTPServerConnectionDelegate):
    """The hub's HTTP entry: ``/serve/...`` to :class:`ServeRequest`, the rest to the Tornado
    application."""

    def __init__(self, hub: Any, app: Any) -> None:
        self.hub = hub
        self.app = app

    def start_request(self, server_conn: object, request_conn: Any) -> httputil.HTTPMessageDelegate:
        server = getattr(self.hub, "http_server", None)
        if server is not None and hasattr(server, "waiting"):
            server.waiting(getattr(request_conn, "stream", None))  # waits for a request's head
        return _Dispatch(self, server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


class _Dispatch(httputil.HTTPMessageDelegate):
    def __init__(self, server: HubServer, server_conn: object, request_conn: Any) -> None:
        self.server, self.server_conn, self.request_conn = server, server_conn, request_conn
        self.target: Optional[httputil.HTTPMessageDelegate] = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Optional[Awaitable[None]]:
        assert isinstance(start_line, httputil.RequestStartLine)
        server = getattr(self.server.hub, "http_server", None)
        if server is not None and hasattr(server, "receiving"):
            server.receiving(getattr(self.request_conn, "stream", None))
        if start_line.path.startswith("/serve/"):
            self.target = ServeRequest(self.server.hub, self.request_conn)
        else:
            self.target = self.server.app.start_request(self.server_conn, self.request_conn)
        return self.target.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Optional[Awaitable[None]]:
        assert self.target is not None
        server = getattr(self.server.hub, "http_server", None)
        if server is not None and hasattr(server, "progress"):
            server.progress(getattr(self.request_conn, "stream", None), len(chunk))
        return self.target.data_received(chunk)

    def finish(self) -> None:
        assert self.target is not None
        server = getattr(self.server.hub, "http_server", None)
        if server is not None and hasattr(server, "answering"):
            server.answering(getattr(self.request_conn, "stream", None))
        self.target.finish()

    def on_connection_close(self) -> None:
        if self.target is not None:
            self.target.on_connection_close()
