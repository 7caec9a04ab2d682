"""``GET <base_url>algolink/api/hub/services``: the hub's services, for JupyterLab's AlgoLink panel.

The Jupyter server asks the hub itself, with the hub URL and token of its own environment
(``ALGOLINK_HUB_URL``, ``ALGOLINK_TOKEN``) or of the user's AlgoLink config file, found as the
``algolink`` command finds them, so the hub's token never reaches the browser. The answer is JSON:

- ``{"configured": false, "message": "<what to set>"}`` while no hub URL is set;
- ``{"configured": true, "hub_url": ..., "signed_in": false, "message": "<run algolink login>",
  "services": []}`` while no token is set (the hub lists nothing to nobody);
- ``{"configured": true, "hub_url": ..., "signed_in": true, "user": {"name", "display_name", "admin",
  "projects": {project: role}, "token": {"name", "scopes", "project", "service", "expires_at",
  "limits": [...]} or null}, "may": {"publish", "projects", "create_projects", "service", "viewer_of",
  "reason"}, "services": [{"project", "name", "group", "status", "published_version", "page_url",
  "api_url", "role", "activity"?}]}`` when the hub answered: who the token signs in, what they may
  publish to (:func:`algolink_jupyter.client.rights.publish_rights`), and the services of the
  projects they see (an online one's ``activity``: its last hour, for the sparklines, or null);
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

from ..client import config_path, rights
from ..client import hub_settings as client_settings
from ..errors import CLIError
from ..translation import N_, pick, tr, use
from .base import AUTH_RESOURCE, AlgoLinkHandler

#: The hub is asked with this timeout (seconds) for each call.
HUB_TIMEOUT = 10.0


class HubUnavailable(Exception):
    """The hub could not be asked: the message is one sentence that says what to do."""


#: What the sidebar's sentences about the token say to do once it is fixed (said in the panel's
#: language, as every sentence of this module: ``translation.tr``, the language the panel asks with).
THEN = N_("press Refresh in the AlgoLink panel")
THEN_ENV = N_("restart JupyterLab")


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
    return tr(
        "Set ALGOLINK_HUB_URL (the hub's address, e.g. http://127.0.0.1:8800) and ALGOLINK_TOKEN "
        "in the environment JupyterLab is started from (or write them as hub_url and token to "
        "{path}), then restart it to see the hub's services here.",
        path=config_path(),
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
        if code in (401, 403) and rights.refuses_token(code, message):
            raise HubUnavailable(
                rights.refused_sentence(hub_url, message or code, tr(THEN), tr(THEN_ENV))
            ) from None
        if code in (401, 403):
            raise HubUnavailable(
                tr(
                    "The hub at {hub} refused {url}: {reason}",
                    hub=hub_url,
                    url=url,
                    reason=message or code,
                )
            ) from None
        if code == 599:
            raise HubUnavailable(
                tr(
                    "The hub at {hub} did not answer within {seconds} s: check that it runs "
                    "(`algolink hub`).",
                    hub=hub_url,
                    seconds=round(HUB_TIMEOUT),
                )
            ) from None
        raise HubUnavailable(
            tr(
                "The hub at {hub} answered {code} ({reason}): check ALGOLINK_HUB_URL.",
                hub=hub_url,
                code=code,
                reason=message or e.message,
            )
        ) from None
    except (OSError, ValueError) as e:
        raise HubUnavailable(
            tr(
                "Cannot reach the hub at {hub} ({reason}): start it with `algolink hub`, or set "
                "ALGOLINK_HUB_URL to its address.",
                hub=hub_url,
                reason=e,
            )
        ) from None
    try:
        return json.loads(response.body)
    except ValueError:
        raise HubUnavailable(
            tr(
                "{hub} does not answer like an AlgoLink hub (no JSON at {url}): check "
                "ALGOLINK_HUB_URL.",
                hub=hub_url,
                url=url,
            )
        ) from None


def _check_url(hub_url: str) -> None:
    parts = urllib.parse.urlsplit(hub_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HubUnavailable(
            tr(
                "ALGOLINK_HUB_URL is not an http(s) address ({hub}): set it to the hub's address "
                "such as http://127.0.0.1:8800.",
                hub=repr(hub_url),
            )
        )


def user_model(me: dict) -> dict:
    """The sidebar's part of ``GET /api/v1/user``: who, their roles, the token's limits (no id)."""
    token = me.get("token") if isinstance(me.get("token"), dict) else None
    return {
        "name": str(me.get("name") or ""),
        "display_name": str(me.get("display_name") or me.get("name") or ""),
        "admin": bool(me.get("admin")),
        "projects": dict(me.get("projects") or {}),
        "token": None
        if token is None
        else {
            "name": token.get("name"),
            "scopes": list(token.get("scopes") or []),
            "project": token.get("project"),
            "service": token.get("service"),
            "expires_at": token.get("expires_at"),
            "limits": rights.token_limits(me),
        },
    }


async def hub_state(hub_url: str, token: Optional[str]) -> dict:
    """The hub part of the sidebar: who is signed in, what they may publish to, and the services of
    the projects they may see (see the module's docstring)."""
    _check_url(hub_url)
    state: dict = {"configured": True, "hub_url": hub_url}
    if not token:
        message = rights.not_signed_in_sentence(hub_url, tr(THEN))
        return {**state, "signed_in": False, "message": message, "services": []}
    me = await _get_json(hub_url + "/api/v1/user", token, hub_url)
    if not isinstance(me, dict) or not me.get("name"):
        raise HubUnavailable(
            tr(
                "{hub} does not answer like an AlgoLink hub (no user at {hub}/api/v1/user): check "
                "ALGOLINK_HUB_URL, or update the hub.",
                hub=hub_url,
            )
        )
    readable = "read" in (me.get("scopes") or [])
    projects = await _projects(hub_url, token) if readable else []
    only = (me.get("token") or {}).get("service")
    services = await hub_services(hub_url, token, projects, only) if readable else []
    return {
        **state,
        "signed_in": True,
        "user": user_model(me),
        "may": rights.publish_rights(me, projects),
        "services": services,
    }


async def _projects(hub_url: str, token: Optional[str]) -> list:
    api = hub_url + "/api/v1/projects"
    projects = await _get_json(api, token, hub_url)
    if not isinstance(projects, list):
        raise HubUnavailable(
            tr(
                "{hub} does not answer like an AlgoLink hub (no project list at {url}): check "
                "ALGOLINK_HUB_URL.",
                hub=hub_url,
                url=api,
            )
        )
    return [p for p in projects if isinstance(p, dict) and p.get("name")]


async def hub_services(
    hub_url: str,
    token: Optional[str],
    projects: Optional[list] = None,
    only: Optional[str] = None,
) -> list:
    """Every service of every project the hub lists (or of ``projects``, its answer), in project then
    service order, each with the caller's ``role`` in its project; ``only`` ("P/S", a token limited
    to that service, which the hub does not let see the rest of its project): that service alone."""
    _check_url(hub_url)
    api = hub_url + "/api/v1/projects"
    if projects is None:
        projects = await _projects(hub_url, token)
    roles = {str(p["name"]): p.get("role") for p in projects}
    names = sorted(roles)
    if only:
        project, _, name = only.partition("/")
        names = [project]
        one = await _get_json(f"{api}/{_quote(project)}/services/{_quote(name)}", token, hub_url)
        details = [{"services": [one]}]
    else:
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
                    "role": roles.get(project),
                }
            )
    services.sort(key=lambda s: (s["project"], s["name"]))
    # The last hour of each online service (the sidebar's sparklines), asked for at once.
    shown = [s for s in services if s["status"] == "online"][:MAX_ACTIVITY]
    found = await asyncio.gather(*(_activity(hub_url, token, s) for s in shown))
    for service, activity in zip(shown, found):
        service["activity"] = activity
    return services


#: Services whose last hour the sidebar asks for at most (each one request to the hub).
MAX_ACTIVITY = 30


async def _activity(hub_url: str, token: Optional[str], service: dict) -> Optional[dict]:
    """The service's last hour (requests per minute, p95 latency in seconds, the hour's requests
    and 5xx), or None when the hub does not say (it measures nothing, or the token may not see)."""
    url = (
        f"{hub_url}/api/v1/projects/{_quote(service['project'])}/services/"
        f"{_quote(service['name'])}/metrics?range=hour"
    )
    try:
        chart = await _get_json(url, token, hub_url)
        figures = chart["all"]
        return {
            "requests_per_minute": list(figures["requests_per_minute"]),
            "p95": list(figures["p95"]),
            "requests": int(figures["requests"]),
            "errors": int(figures["errors"]),
        }
    except (HubUnavailable, KeyError, TypeError, ValueError):
        return None


class HubServicesHandler(AlgoLinkHandler):
    """Who is signed in to the hub and its services, asked by the Jupyter server with the token of
    its own environment (or of the user's config file, which ``algolink login`` writes: read again
    on every request, so a login shows at the panel's next refresh)."""

    @web.authenticated
    @authorized(action="read", resource=AUTH_RESOURCE)
    async def get(self) -> None:
        # the panel asks in JupyterLab's language (``?lang=zh-CN``); the sentences follow it
        use(pick(None, self.get_argument("lang", "")))
        try:
            url, token = hub_settings()
            if url is None:
                self.finish(json.dumps({"configured": False, "message": not_configured_message()}))
                return
            state = await hub_state(url, token)
        except HubUnavailable as e:
            self.write_json_error(502, str(e))
            return
        self.finish(json.dumps(state))
