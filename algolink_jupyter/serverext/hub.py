"""``GET <base_url>algolink/api/hub/services``: the hub's services, for JupyterLab's AlgoLink panel.

The Jupyter server asks the hub itself, with the hub URL and token of its own environment
(``ALGOLINK_HUB_URL``, ``ALGOLINK_TOKEN``) or of the user's AlgoLink config file, found as the
``algolink`` command finds them, so the hub's token never reaches the browser. The answer is JSON:

- ``{"configured": false, "message": "<what to set>"}`` while no hub URL is set;
- ``{"configured": true, "hub_url": ..., "services": [{"project", "name", "group", "status",
  "published_version", "page_url", "api_url"}]}`` when the hub answered;
- a 502 ``{"error": "<one sentence>"}`` when it could not be asked (unreachable, token refused, ...).
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
from typing import Any, Optional

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..client import config_path
from ..client import hub_settings as client_settings
from ..errors import CLIError
from .base import AUTH_RESOURCE, AlgoLinkHandler

#: The hub is asked with this timeout (seconds) for each call.
HUB_TIMEOUT = 10.0


class HubUnavailable(Exception):
    """The hub could not be asked: the message is one sentence that says what to do."""


def hub_settings(environ: Optional[dict] = None) -> tuple:
    """``(url, token)`` as the ``algolink`` command finds them: the environment, else the user's AlgoLink
    config file; url is None when neither names a hub. Raises :class:`HubUnavailable` for a broken
    config file."""
    if environ is None:
        try:
            url, token, _ = client_settings()
        except CLIError as e:
            raise HubUnavailable(str(e)) from None
        return (url or "").strip().rstrip("/") or None, (token or "").strip() or None
    env = os.environ if environ is None else environ
    url = (env.get("ALGOLINK_HUB_URL") or "").strip().rstrip("/") or None
    token = (env.get("ALGOLINK_TOKEN") or "").strip() or None
    return url, token


def not_configured_message() -> str:
    where = f" (or write them as hub_url and token to {config_path()})"
    return (
        "Set ALGOLINK_HUB_URL (the hub's address, e.g. http://127.0.0.1:8800) and ALGOLINK_TOKEN "
        f"in the environment JupyterLab is started from{where}, then restart it to see the hub's "
        "services here."
    )


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


async def _get_json(url: str, token: Optional[str], hub_url: str) -> Any:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    request = HTTPRequest(
        url, headers=headers, connect_timeout=HUB_TIMEOUT, request_timeout=HUB_TIMEOUT
    )
    try:
        response = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as e:
        code = e.code
        message = ""
        if e.response is not None and e.response.body:
            try:
                message = str(json.loads(e.response.body)["error"])
            except (ValueError, KeyError, TypeError):
                message = e.response.body.decode("utf-8", "replace").strip()[:200]
        if code in (401, 403):
            raise HubUnavailable(
                f"The hub at {hub_url} refused the token ({message or code}): set ALGOLINK_TOKEN "
                "to a valid hub token and restart JupyterLab."
            ) from None
        if code == 599:
            raise HubUnavailable(
                f"The hub at {hub_url} did not answer within {HUB_TIMEOUT:.0f} s: check that it runs "
                "(`algolink hub`)."
            ) from None
        raise HubUnavailable(
            f"The hub at {hub_url} answered {code} ({message or e.message}): check ALGOLINK_HUB_URL."
        ) from None
    except (OSError, ValueError) as e:
        raise HubUnavailable(
            f"Cannot reach the hub at {hub_url} ({e}): start it with `algolink hub`, or set "
            "ALGOLINK_HUB_URL to its address."
        ) from None
    try:
        return json.loads(response.body)
    except ValueError:
        raise HubUnavailable(
            f"{hub_url} does not answer like an AlgoLink hub (no JSON at {url}): check ALGOLINK_HUB_URL."
        ) from None


async def hub_services(hub_url: str, token: Optional[str]) -> list:
    """Every service of every project the hub lists, in project then service order."""
    parts = urllib.parse.urlsplit(hub_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HubUnavailable(
            f"ALGOLINK_HUB_URL is not an http(s) address ({hub_url!r}): set it to the hub's address "
            "such as http://127.0.0.1:8800."
        )
    api = hub_url + "/api/v1/projects"
    projects = await _get_json(api, token, hub_url)
    if not isinstance(projects, list):
        raise HubUnavailable(
            f"{hub_url} does not answer like an AlgoLink hub (no project list at {api}): "
            "check ALGOLINK_HUB_URL."
        )
    names = sorted(str(p["name"]) for p in projects if isinstance(p, dict) and p.get("name"))
    details = await asyncio.gather(
        *(_get_json(f"{api}/{_quote(name)}", token, hub_url) for name in names)
    )
    services = []
    for project, detail in zip(names, details):
        for service in (detail or {}).get("services") or []:
            if not isinstance(service, dict) or not service.get("name"):
                continue
            name = str(service["name"])
            serve = f"{hub_url}/serve/{_quote(project)}/{_quote(name)}/"
            published = service.get("published_version")
            services.append(
                {
                    "project": project,
                    "name": name,
                    "group": service.get("group"),
                    "status": service.get("status") or "registered",
                    "published_version": published,
                    "page_url": f"{hub_url}/projects/{_quote(project)}/services/{_quote(name)}",
                    "api_url": serve if service.get("status") == "online" else None,
                }
            )
    services.sort(key=lambda s: (s["project"], s["name"]))
    return services


class HubServicesHandler(AlgoLinkHandler):
    """The hub's services, asked by the Jupyter server with its own environment's token."""

    @web.authenticated
    @authorized(action="read", resource=AUTH_RESOURCE)
    async def get(self) -> None:
        try:
            url, token = hub_settings()
            if url is None:
                self.finish(json.dumps({"configured": False, "message": not_configured_message()}))
                return
            services = await hub_services(url, token)
        except HubUnavailable as e:
            self.write_json_error(502, str(e))
            return
        self.finish(json.dumps({"configured": True, "hub_url": url, "services": services}))
