"""Development mode: a service backed by a model server that runs elsewhere, not by a bundle.

A data scientist points the hub at a server already running on their machine (a notebook kernel's
server, or ``python cloud_model.py``): the hub reads its manifest from ``<url>/meta``, shows the
service page, the "try it" form and the API panel, and routes ``/serve/{project}/{service}/...`` to it
with the token that server needs (never handed back to callers). Such a service has no versions and is
never published: its status is ``development``. Whether the server still answers is checked when the
service is shown (a short timeout), and ``/serve`` says so in a sentence when it does not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from . import orm

#: The status of a development-mode service (it is never published).
STATUS = "development"
#: How long the hub waits for a development server's ``/meta``.
CHECK_TIMEOUT = 3.0
REGISTER_TIMEOUT = 10.0
#: The header every request the hub sends on carries, with this hub's id: a request that comes back
#: with it (a development URL that leads to the hub again) is refused at once, not forwarded again.
HOP_HEADER = "X-AlgoLink-Hop"
#: A token may try this many development URLs a minute (a refused URL says whether a port answers).
CONNECTS_PER_MINUTE = 10


class DevServerError(Exception):
    """A development server that cannot be used: the message is the sentence to show; ``key`` and
    ``params`` name it for the pages' translations (``ERRORS[key]`` in handlers/i18n.py)."""

    def __init__(self, message: str, key: str = "dev_unreachable", **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


def check_url(url: Any) -> str:
    """An ``http(s)://host[:port][/prefix]`` URL, without a trailing ``/``; else a DevServerError."""
    if not isinstance(url, str) or not url.strip():
        raise DevServerError(
            "The dev_url is missing: give the URL of your running model server, such as "
            "http://127.0.0.1:9000.",
            "dev_url_missing",
        )
    url = url.strip()
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # "http://[::1" and the like
        parts, hostname = None, None
    if parts is None or parts.scheme not in ("http", "https") or not hostname:
        raise DevServerError(
            f"The dev_url {url!r} is not an http:// or https:// URL: give the address your model "
            "server prints, such as http://127.0.0.1:9000.",
            "dev_url_bad",
            url=url,
        )
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        raise DevServerError(
            f"The dev_url {url!r} has a bad port: give a port number between 1 and 65535.",
            "dev_url_bad",
            url=url,
        ) from None
    if parts.query or parts.fragment:
        raise DevServerError(
            f"The dev_url {url!r} has a query or fragment: give only the server's address "
            "(pass its token as dev_token).",
            "dev_url_bad",
            url=url,
        )
    return url.rstrip("/")


def _local(ip: str) -> bool:
    """Whether ``ip`` is an address of this machine (loopback, unspecified, or one it can bind)."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if address.is_loopback or address.is_unspecified:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _local(str(address.ipv4_mapped))
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, 0))
        except OSError:
            return False
    return True


async def target_address(hub: Any, url: str) -> tuple[str, int]:
    """The address (IP, port) the hub may send ``url``'s requests to, resolved now (so a name that
    later resolves elsewhere is not followed), or a DevServerError: the hub's own addresses and ports
    and its services' internal ports are refused."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError):
        raise DevServerError(not_answering(url), url=url) from None
    internal = hub.internal_ports()
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = str(sockaddr[0])
        if port in internal and _local(ip):
            what = "the hub itself" if port in hub.own_ports() else "one of its services"
            raise DevServerError(
                f"The dev_url {url} leads to {what} ({ip}:{port}): give the address of your own "
                "model server (python cloud_model.py or %algolink serve prints it).",
                "dev_url_internal",
                url=url,
            )
        addresses.append((ip, port))
    if not addresses:
        raise DevServerError(not_answering(url), url=url)
    return addresses[0]


class ConnectLimiter:
    """At most :data:`CONNECTS_PER_MINUTE` development URLs tried per token per minute."""

    def __init__(self) -> None:
        self._tries: dict[str, list] = {}

    def check(self, who: str) -> None:
        now = time.monotonic()
        tries = [t for t in self._tries.get(who, []) if now - t < 60]
        if len(tries) >= CONNECTS_PER_MINUTE:
            raise DevServerError(
                f"This token tried {len(tries)} development URLs within a minute: wait a minute "
                "and connect again.",
                "dev_too_many",
            )
        tries.append(now)
        self._tries[who] = tries


def not_answering(url: str) -> str:
    return (
        f"The development server at {url} is not answering: start it again (or run "
        "%algolink connect again in the notebook) and reconnect."
    )


async def fetch_manifest(
    hub: Any, url: str, token: Optional[str], timeout: float = CHECK_TIMEOUT
) -> dict:
    """The manifest ``<url>/meta`` answers, or a DevServerError that says what is wrong. The address
    is checked first (:func:`target_address`), no redirect is followed, and the request carries the
    hub's hop header."""
    ip, port = await target_address(hub, url)
    parts = urlsplit(url)
    headers = {"Accept": "application/json", HOP_HEADER: hub.hop_id}
    if token:
        headers["Authorization"] = f"token {token}"
    fetch_url = url
    if parts.scheme == "http":  # to the address just checked, not to a second look-up of the name
        headers["Host"] = parts.netloc.rpartition("@")[2]
        netloc = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        fetch_url = urlunsplit(("http", netloc, parts.path, "", ""))
    request = HTTPRequest(
        fetch_url + "/meta",
        headers=headers,
        connect_timeout=timeout,
        request_timeout=timeout,
        follow_redirects=False,
    )
    try:
        answer = await AsyncHTTPClient().fetch(request, raise_error=False)
    except Exception:  # refused, unknown host, timed out: all mean "not answering"
        raise DevServerError(not_answering(url), url=url) from None
    if answer.code == 599:
        raise DevServerError(not_answering(url), url=url)
    if answer.code in (401, 403):
        hint = "give its token as dev_token" if not token else "the dev_token is wrong"
        raise DevServerError(
            f"The development server at {url} refused the hub ({answer.code}): {hint} "
            "(a notebook kernel's token is algolink_jupyter.serving_info()['token']).",
            "dev_refused",
            url=url,
        )
    manifest: Any = None
    if answer.code == 200:
        try:
            import json

            manifest = json.loads(answer.body or b"")
        except ValueError:
            manifest = None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("commands"), list):
        raise DevServerError(
            f"{url}/meta did not answer with a model server's manifest (HTTP {answer.code}): "
            "give the URL of a running AlgoLink model server (python cloud_model.py or "
            "%algolink serve).",
            "dev_not_manifest",
            url=url,
        )
    return manifest


async def refresh(hub: Any, service_id: int, timeout: float = CHECK_TIMEOUT) -> None:
    """Ask the development server for its manifest now; keep the answer (or why there is none)."""
    with hub.session() as db:
        service = db.get(orm.Service, service_id)
        if service is None or not service.dev_url:
            return
        url, token = service.dev_url, hub.sealer.open(service.dev_token)
    try:
        manifest: Optional[dict] = await fetch_manifest(hub, url, token, timeout)
        error = None
    except DevServerError as e:
        manifest, error = None, str(e)
    with hub.session() as db:
        service = db.get(orm.Service, service_id)
        if service is None or service.dev_url != url:
            return  # reconnected meanwhile: that answer is older than the new URL
        if manifest is not None:
            service.dev_manifest = manifest
        service.dev_error = error
        service.dev_checked_at = orm.utcnow()
        db.commit()
        hub.publisher.route(service)  # the commands /serve forwards follow its manifest


def dev_model(service: orm.Service) -> dict:
    """What the API shows of a development-mode service (never its token)."""
    return {
        "mode": "development",
        "dev_url": service.dev_url,
        "reachable": service.dev_checked_at is not None and not service.dev_error,
        "dev_message": service.dev_error or None,
        "dev_checked_at": None
        if service.dev_checked_at is None
        else service.dev_checked_at.isoformat(timespec="seconds") + "Z",
    }
