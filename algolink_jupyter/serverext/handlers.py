"""The extension's handlers: the live endpoints, and the proxy to a kernel's model server.

Both sit behind Jupyter's authentication (a Jupyter token or login cookie, XSRF-checked like every Jupyter
API) and its authorizer (resource "kernels": "read" to look, "execute" to run a command). The kernel's own
token is read from its announcement file on every request and only ever sent to the kernel's server on
127.0.0.1: no response carries it, nor the kernel's port.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, Optional

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError, SimpleAsyncHTTPClient

from modelcloud.server import DEFAULT_MAX_BODY_SIZE, DRAIN_ALLOWANCE

from ..kernel import announce
from .base import AUTH_RESOURCE, AlgoLinkHandler, kernel_address, not_serving_message
from .curl import AccessHandler, ExamplesHandler
from .hub import HubServicesHandler

CONNECT_TIMEOUT = 10.0
#: A command may run long (a model on a GPU): the proxy waits as long as this for the answer.
REQUEST_TIMEOUT = 600.0
#: The largest answer the proxy takes from a kernel's server.
MAX_RESPONSE_SIZE = 512 * 1024 * 1024

#: Headers that concern one connection only (RFC 9110 section 7.6.1), never forwarded either way.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
#: Request headers that belong to the client's conversation with Jupyter: its credentials (cookie,
#: Jupyter token, XSRF token), its host and origin, and what the proxy sets itself.
REQUEST_DROP = frozenset(
    {
        "host",
        "authorization",
        "cookie",
        "x-xsrftoken",
        "x-csrftoken",
        "origin",
        "referer",
        "content-length",
        "accept-encoding",
        "expect",
    }
)
#: Response headers of the kernel's server that Jupyter sets for itself (CORS, security, cookies) or
#: that no longer hold once the body has been read (length, encoding).
RESPONSE_DROP = frozenset(
    {
        "content-length",
        "content-encoding",
        "content-type",
        "server",
        "date",
        "set-cookie",
        "www-authenticate",
        "content-security-policy",
        "x-frame-options",
    }
)

#: The model server's requests never carry a body with these methods.
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def _hop_by_hop(headers: Any) -> set:
    """The hop-by-hop headers of a message: the standard ones and those its Connection header names."""
    names = set(HOP_BY_HOP)
    for value in headers.get_list("Connection"):
        names.update(part.strip().lower() for part in value.split(",") if part.strip())
    return names


class EndpointsHandler(AlgoLinkHandler):
    """``GET <base_url>algolink/api/endpoints``: the kernels of this server that serve, and their commands."""

    @web.authenticated
    @authorized(action="read", resource=AUTH_RESOURCE)
    async def get(self) -> None:
        running = self.running_kernel_ids()
        live = announce.read_all(self.runtime_dir)
        notebooks = await self.notebook_paths()
        endpoints = []
        for kid in sorted(live):
            info = live[kid]
            if kid not in running or kernel_address(info) is None:
                continue
            commands = info.get("commands")
            endpoints.append(
                {
                    "kernel_id": kid,
                    "commands": [str(c) for c in commands] if isinstance(commands, list) else [],
                    "url": url_path_join(self.base_url, "algolink", "kernels", kid) + "/",
                    "notebook": notebooks.get(kid),
                }
            )
        self.finish(json.dumps(endpoints))


@web.stream_request_body
class KernelProxyHandler(AlgoLinkHandler):
    """``<base_url>algolink/kernels/<kernel_id>/<path>``: forwarded to the kernel's model server."""

    _info: Optional[dict] = None
    _too_large = False

    async def prepare(self) -> None:  # type: ignore[override]
        self._chunks: list = []
        self._size = 0
        await super().prepare()
        if self._finished:
            return
        self._info = self.announcement(self.path_kwargs.get("kernel_id") or "")
        if self.request.method in _NO_BODY_METHODS:
            return
        limit = self._body_limit()
        cap = self.settings.get("algolink_connection_body_cap")
        # Past the limit, the rest of the body is read and dropped (up to DRAIN_ALLOWANCE more) so that
        # a client still sending gets the 413 rather than a reset connection.
        drain = limit + DRAIN_ALLOWANCE
        self.request.connection.set_max_body_size(min(drain, cap) if cap else drain)
        length = self.request.headers.get("Content-Length", "")
        if length.isascii() and length.isdigit() and int(length) > limit:
            self._reject_too_large()

    def _body_limit(self) -> int:
        limit = (self._info or {}).get("max_body_size")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            return limit
        return DEFAULT_MAX_BODY_SIZE

    def _reject_too_large(self) -> None:
        self._too_large = True
        self._chunks = []
        self.set_header("Connection", "close")
        self.write_json_error(
            413,
            f"The body is over the limit of {self._body_limit():,} bytes: send a smaller file.",
        )

    def data_received(self, chunk: bytes) -> None:
        if self._too_large:
            return
        self._size += len(chunk)
        if self._size > self._body_limit():
            self._reject_too_large()
            return
        self._chunks.append(chunk)

    # -- the methods: each one authenticated and authorized, then forwarded ------------------------------
    @web.authenticated
    @authorized(action="read", resource=AUTH_RESOURCE)
    async def get(self, kernel_id: str, path: Optional[str] = None) -> None:
        await self.forward(kernel_id, path)

    @web.authenticated
    @authorized(action="read", resource=AUTH_RESOURCE)
    async def head(self, kernel_id: str, path: Optional[str] = None) -> None:
        await self.forward(kernel_id, path)

    @web.authenticated
    @authorized(action="read", resource=AUTH_RESOURCE)
    async def options(self, kernel_id: str, path: Optional[str] = None) -> None:  # type: ignore[override]
        await self.forward(kernel_id, path)

    @web.authenticated
    @authorized(action="execute", resource=AUTH_RESOURCE)
    async def post(self, kernel_id: str, path: Optional[str] = None) -> None:
        await self.forward(kernel_id, path)

    @web.authenticated
    @authorized(action="execute", resource=AUTH_RESOURCE)
    async def put(self, kernel_id: str, path: Optional[str] = None) -> None:
        await self.forward(kernel_id, path)

    @web.authenticated
    @authorized(action="execute", resource=AUTH_RESOURCE)
    async def patch(self, kernel_id: str, path: Optional[str] = None) -> None:
        await self.forward(kernel_id, path)

    @web.authenticated
    @authorized(action="execute", resource=AUTH_RESOURCE)
    async def delete(self, kernel_id: str, path: Optional[str] = None) -> None:
        await self.forward(kernel_id, path)

    # -- forwarding ----------------------------------------------------------------------------------------
    def _target_url(self, host: str, port: int, path: Optional[str]) -> str:
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        quoted = urllib.parse.quote(path or "", safe="/:@!$&'()*+,;=-._~")
        # Jupyter's own token (?token=) stays here; every other query argument goes on.
        query = [
            (name, value.decode("utf-8", "replace"))
            for name, values in self.request.query_arguments.items()
            if name != "token"
            for value in values
        ]
        url = f"http://{netloc}/{quoted.lstrip('/')}"
        return url + ("?" + urllib.parse.urlencode(query) if query else "")

    def _forward_headers(self, token: str) -> dict:
        drop = _hop_by_hop(self.request.headers) | REQUEST_DROP
        headers = {}
        for name, value in self.request.headers.get_all():
            if name.lower() in drop:
                continue
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        headers["Authorization"] = f"token {token}"
        headers["X-Forwarded-For"] = self.request.remote_ip or ""
        headers["X-Forwarded-Proto"] = self.request.protocol
        return headers

    async def forward(self, kernel_id: str, path: Optional[str]) -> None:
        if self._too_large or self._finished:
            return
        info = self.announcement(kernel_id)
        address = kernel_address(info) if info is not None else None
        token = info.get("token") if info is not None else None
        if address is None or not isinstance(token, str) or not token:
            self.write_json_error(404, not_serving_message(kernel_id))
            return
        method = self.request.method or "GET"
        body = None if method in _NO_BODY_METHODS else b"".join(self._chunks)
        request = HTTPRequest(
            self._target_url(*address, path),
            method=method,
            headers=self._forward_headers(token),
            body=body,
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=REQUEST_TIMEOUT,
            follow_redirects=False,
            decompress_response=True,
            allow_nonstandard_methods=True,
        )
        client = SimpleAsyncHTTPClient(
            force_instance=True, max_body_size=MAX_RESPONSE_SIZE, max_buffer_size=MAX_RESPONSE_SIZE
        )
        try:
            response = await client.fetch(request, raise_error=False)
        except HTTPTimeoutError:
            self.write_json_error(
                504,
                f"Kernel {kernel_id}'s server did not answer within {REQUEST_TIMEOUT:.0f} s: "
                "check the notebook (`%algolink status`).",
            )
            return
        except Exception as e:
            self.log.warning("AlgoLink: kernel %s unreachable: %s", kernel_id, e)
            self.write_json_error(
                502,
                f"Kernel {kernel_id} announced a server that does not answer: "
                "run `%algolink serve` again in its notebook.",
            )
            return
        finally:
            client.close()
        if response.code == 401:
            # The kernel's server refused the announced token: a stale announcement.
            self.write_json_error(
                502,
                f"Kernel {kernel_id}'s server refused its announced token: "
                "run `%algolink serve` again in its notebook.",
            )
            return
        self._copy_response(response)

    def _copy_response(self, response: Any) -> None:
        self.set_status(response.code, response.reason)
        drop = _hop_by_hop(response.headers) | RESPONSE_DROP
        seen: set = set()
        for name, value in response.headers.get_all():
            lname = name.lower()
            if lname in drop or lname.startswith("access-control-"):
                continue
            if lname in seen:
                self.add_header(name, value)
            else:
                self.set_header(name, value)
                seen.add(lname)
        ctype = response.headers.get("Content-Type", "application/octet-stream")
        if response.code in (204, 304) or self.request.method == "HEAD":
            self.finish(set_content_type=ctype)
        else:
            self.finish(response.body or b"", set_content_type=ctype)


def setup_handlers(serverapp: Any) -> None:
    web_app = serverapp.web_app
    base_url = web_app.settings.get("base_url", "/")
    web_app.settings["algolink_runtime_dir"] = str(serverapp.runtime_dir)
    web_app.settings["algolink_connection_body_cap"] = getattr(serverapp, "max_body_size", None)
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base_url, r"algolink/api/endpoints/?"), EndpointsHandler),
            (url_path_join(base_url, r"algolink/api/hub/services/?"), HubServicesHandler),
            (url_path_join(base_url, r"algolink/api/access/?"), AccessHandler),
            (
                url_path_join(
                    base_url, r"algolink/api/examples/(?P<kernel_id>[^/]+)/(?P<command>[^/]+)"
                ),
                ExamplesHandler,
            ),
            (
                url_path_join(base_url, r"algolink/kernels/(?P<kernel_id>[^/]+)(?:/(?P<path>.*))?"),
                KernelProxyHandler,
            ),
        ],
    )
    serverapp.log.info("AlgoLink: kernel endpoints at %salgolink/api/endpoints", base_url)
