"""Who is signed in to a hub and what they may publish there, for the publish form and the sidebar.

Both ask the hub ``GET /api/v1/user`` (the caller: name, roles, the token's scopes and limits, ``may``)
and ``GET /api/v1/projects`` (the projects the caller may see, each with the caller's ``role``), then
show only what the hub would allow: publishing (and Connect) needs the developer or owner role in the
project (a hub admin is owner everywhere) and a token with the ``read`` and ``write`` scopes; a new
project needs ``may.create_projects`` (a token limited to no project or service); a token limited to one
service cannot see its project on the hub, so neither the form nor the sidebar offers it a publish.
The sentences here are the form's; the sidebar says the same in its own two languages from
:func:`publish_rights`'s fields.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ..translation import tr

#: The roles that may publish in a project.
PUBLISH_ROLES = ("developer", "owner")
#: The scopes a token of a user who is not a hub admin has when nothing narrows it.
USER_SCOPES = ("read", "invoke", "write", "manage", "metrics")
ASK_OWNER = "ask a project owner to make you a developer"


def ask_owner() -> str:
    """:data:`ASK_OWNER` in the language :func:`~algolink_jupyter.translation.tr` speaks."""
    return tr("ask a project owner to make you a developer")


def who(me: dict) -> str:
    """``Display Name (name)``, or the name alone when it is its own display name."""
    name = str(me.get("name") or "?")
    display = str(me.get("display_name") or "").strip()
    return f"{display} ({name})" if display and display != name else name


def signed_in_line(hub_url: str, me: dict) -> str:
    """``Signed in to <hub> as <display name> (<name>)``, and ", a hub admin" for one."""
    if me.get("admin"):
        return tr("Signed in to {hub} as {user}, a hub admin.", hub=hub_url, user=who(me))
    return tr("Signed in to {hub} as {user}.", hub=hub_url, user=who(me))


def token_limits(me: dict) -> list:
    """What narrows the token the caller came with (``["limited to the project P", "scopes read,
    invoke", "expires 2025-01-01T00:00:00Z"]``); empty for a token with all its user's say."""
    token = me.get("token")
    if not isinstance(token, dict):
        return []
    limits = []
    if token.get("service"):
        limits.append(tr("limited to the service {service}", service=token["service"]))
    elif token.get("project"):
        limits.append(tr("limited to the project {project}", project=token["project"]))
    scopes = sorted(str(s) for s in token.get("scopes") or [])
    full = set(USER_SCOPES) | ({"admin"} if me.get("admin") else set())
    if set(scopes) != full:
        limits.append(tr("scopes {scopes}", scopes=", ".join(scopes) or tr("none")))
    if token.get("expires_at"):
        limits.append(tr("expires {when}", when=token["expires_at"]))
    return limits


def token_line(me: dict) -> Optional[str]:
    """``Token <name>: limited to ...; scopes ...`` when the token is narrower than its user, else
    None."""
    limits = token_limits(me)
    if not limits:
        return None
    return tr(
        "Token {name}: {limits}.", name=me["token"].get("name") or "?", limits=tr("; ").join(limits)
    )


def publish_rights(me: dict, projects: list) -> dict:
    """What the caller may publish to: ``{"publish": bool, "projects": [names],
    "create_projects": bool, "service": "P/S" or None, "viewer_of": [names], "reason": None or
    "scope" (the token lacks read or write), "service" (the token is limited to one service),
    "viewer" (a viewer only) or "none" (no project)}``.

    ``projects`` is ``GET /api/v1/projects``'s answer (each with the caller's ``role``)."""
    scopes = {str(s) for s in me.get("scopes") or []}
    token = me.get("token") if isinstance(me.get("token"), dict) else {}
    service = token.get("service") or None
    writes = {"read", "write"} <= scopes
    roles = {
        str(p["name"]): p.get("role") for p in projects if isinstance(p, dict) and p.get("name")
    }
    targets = sorted(n for n, r in roles.items() if r in PUBLISH_ROLES)
    if not writes or service:
        targets = []
    create = writes and not service and bool((me.get("may") or {}).get("create_projects"))
    viewer_of = sorted(n for n, r in roles.items() if r == "viewer")
    reason = None
    if not targets and not create:
        reason = (
            "scope" if not writes else "service" if service else "viewer" if viewer_of else "none"
        )
    return {
        "publish": bool(targets or create),
        "projects": targets,
        "create_projects": create,
        "service": service,
        "viewer_of": viewer_of,
        "reason": reason,
    }


def cannot_publish_sentence(me: dict, rights: dict) -> str:
    """Why the caller may publish nowhere, and what to ask for ("" when they may)."""
    reason = rights.get("reason")
    if reason is None:
        return ""
    if reason == "scope":
        name = (me.get("token") or {}).get("name")
        scopes = ", ".join(sorted(me.get("scopes") or [])) or tr("none")
        return tr(
            "The token {name} cannot publish: publishing needs the read and write scopes and it "
            "has {scopes}. Run `algolink login` for a token that may write.",
            name=name or "",
            scopes=scopes,
        ).replace("  ", " ")
    if reason == "service":
        return tr(
            "This token is limited to the service {service}, and publishing from the "
            "notebook needs a token for a whole project: run `algolink login` for one that is not "
            "limited to a service.",
            service=rights["service"],
        )
    if reason == "viewer":
        listed = ", ".join(rights["viewer_of"])
        limited = token_limits(me)
        token = me.get("token") if isinstance(me.get("token"), dict) else {}
        theirs = tr("its services") if len(rights["viewer_of"]) == 1 else tr("their services")
        where = limited[0] if limited and (token.get("service") or token.get("project")) else ""
        if where:
            return tr(
                "You are a viewer of {projects} (this token is {limit}): you may call "
                "{services} but not publish. To publish there, {ask}.",
                projects=listed,
                services=theirs,
                limit=where,
                ask=ask_owner(),
            )
        return tr(
            "You are a viewer of {projects}: you may call {services} but not publish. "
            "To publish there, {ask}.",
            projects=listed,
            services=theirs,
            ask=ask_owner(),
        )
    return tr("You may publish to no project on this hub: {ask}.", ask=ask_owner())


def viewer_note(rights: dict) -> str:
    """For a caller who may publish somewhere: the projects they see but may not publish to."""
    if not rights.get("publish") or not rights.get("viewer_of"):
        return ""
    listed = ", ".join(rights["viewer_of"])
    return tr(
        "You are a viewer of {projects}: publishing there needs the developer role ({ask}).",
        projects=listed,
        ask=ask_owner(),
    )


def token_from_environment() -> bool:
    """Whether ``ALGOLINK_TOKEN`` is set (it wins over the config file ``algolink login`` writes)."""
    return bool((os.environ.get("ALGOLINK_TOKEN") or "").strip())


def not_signed_in_sentence(hub_url: str, then: str) -> str:
    """No token at all: sign in with ``algolink login`` (in the language of the JupyterLab panel that
    asked, English elsewhere: :func:`algolink_jupyter.translation.tr`)."""
    return tr(
        "Not signed in to the hub at {hub}: run `algolink login --hub {hub}` in a terminal (or set "
        "ALGOLINK_TOKEN), then {then}.",
        hub=hub_url,
        then=then,
    )


def refused_sentence(hub_url: str, reason: Any, then: str, then_env: str = "") -> str:
    """The hub refused the token (unknown, revoked, expired, its user disabled): how to get a new one.
    ``then`` says what to do after ``algolink login``; ``then_env`` after setting ALGOLINK_TOKEN."""
    reason = str(reason).strip().rstrip(".")
    if token_from_environment():
        return tr(
            "The hub at {hub} refused the token ({reason}): set ALGOLINK_TOKEN to a valid token (it "
            "is set here and wins over the config file that `algolink login` writes), then {then}.",
            hub=hub_url,
            reason=reason,
            then=then_env or then,
        )
    return tr(
        "The hub at {hub} refused the token ({reason}): run `algolink login --hub {hub}` in a "
        "terminal for a new one (or set ALGOLINK_TOKEN to a valid token), then {then}.",
        hub=hub_url,
        reason=reason,
        then=then,
    )


#: How the hub's answers begin when it refuses the token itself rather than what it was asked to do
#: (see the hub's ``access.Gate``): ``403`` unknown, revoked, no user, user disabled or gone.
_REFUSED_TOKEN = ("The token ", "The user ")


def refuses_token(status: int, message: str) -> bool:
    """Whether a 401 or 403 of the hub refuses the token itself (not what the token asked to do)."""
    return status == 401 or (status == 403 and str(message).startswith(_REFUSED_TOKEN))
