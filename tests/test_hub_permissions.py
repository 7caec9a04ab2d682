"""Who may do what on the hub: every API route and page against eight callers, with the exact status
each gets, on a real hub with real users, roles and tokens.

The callers: nobody; a viewer of project ``alpha``; a developer of another project (``beta``); a
developer and an owner of ``alpha``; an invoke-only token limited to ``alpha/svc``; an expired token;
the hub admin. A call a caller may not make leaves things as they were: a refused delete is followed
by a check that its target is still there.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import requests
from hub_process import Hub, make_bundle

CALLERS = ("nobody", "viewer", "stranger", "developer", "owner", "invoke", "expired", "admin")

# The status each caller gets for an action's level, ``OK`` standing for the route's own success.
OK = "ok"
LEVELS: dict[str, dict[str, Any]] = {
    # see the project and its services
    "view": dict(nobody=401, viewer=OK, stranger=404, developer=OK, owner=OK, invoke=403,
                 expired=401, admin=OK),
    # call its services through /serve
    "invoke": dict(nobody=401, viewer=OK, stranger=404, developer=OK, owner=OK, invoke=OK,
                   expired=401, admin=OK),
    # logs, option values, the audit
    "inspect": dict(nobody=401, viewer=403, stranger=404, developer=OK, owner=OK, invoke=403,
                    expired=401, admin=OK),
    # register, upload, publish, offline, options, aliases
    "change": dict(nobody=401, viewer=403, stranger=404, developer=OK, owner=OK, invoke=403,
                   expired=401, admin=OK),
    # members, deleting
    "manage": dict(nobody=401, viewer=403, stranger=404, developer=403, owner=OK, invoke=403,
                   expired=401, admin=OK),
    # a bundle by a folder on the hub's machine
    "folder": dict(nobody=401, viewer=403, stranger=404, developer=403, owner=403, invoke=403,
                   expired=401, admin=OK),
    # the hub's users and the whole audit
    "admin": dict(nobody=401, viewer=403, stranger=403, developer=403, owner=403, invoke=403,
                  expired=401, admin=OK),
    # one's own account and tokens
    "self": dict(nobody=401, viewer=OK, stranger=OK, developer=OK, owner=OK, invoke=OK,
                 expired=401, admin=OK),
    # a user's account: the user and the admin (to anyone else it is not there)
    "vic": dict(nobody=401, viewer=OK, stranger=404, developer=404, owner=404, invoke=404,
                expired=401, admin=OK),
    # a public service: anyone
    "public": dict(nobody=OK, viewer=OK, stranger=OK, developer=OK, owner=OK, invoke=OK,
                   expired=OK, admin=OK),
}  # fmt: skip


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-permissions")).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def world(hub, tmp_path_factory):
    """Project alpha (group g; services svc, online and private; pub, online and public; spare,
    registered only; alias stable -> svc v1) and beta; the users and their tokens."""
    folder = tmp_path_factory.mktemp("perm-bundle")
    bundle = make_bundle(folder / "b")
    hub.ensure_group("alpha", "g")
    hub.ensure_group("beta", "g")
    for name, public in (("svc", False), ("pub", True), ("spare", False)):
        r = hub.register("alpha", "g", name, bundle, public="true" if public else "false")
        assert r.status_code == 201, r.text
    for name in ("svc", "pub"):
        assert hub.publish("alpha", name, 1).status_code == 202
        hub.wait_version("alpha", name, 1)
    r = hub.api("PUT", "/api/v1/projects/alpha/services/svc/aliases/stable", json={"version": 1})
    assert r.status_code in (200, 201), r.text
    tokens = {
        "admin": hub.token,
        "viewer": hub.add_user("vic", {"alpha": "viewer"}),
        "stranger": hub.add_user("otto", {"beta": "developer"}),
        "developer": hub.add_user("dev", {"alpha": "developer"}),
        "owner": hub.add_user("olga", {"alpha": "owner"}),
    }
    passwords = {"vic": "pw-vic-0123456789", "dev": "pw-dev-0123456789"}
    made = requests.post(
        hub.url + "/api/v1/tokens",
        json={"name": "app", "scopes": ["invoke"], "service": "alpha/svc"},
        headers=auth(tokens["developer"]),
        timeout=30,
    )
    assert made.status_code == 201, made.text
    tokens["invoke"] = made.json()["token"]
    made = requests.post(
        hub.url + "/api/v1/tokens",
        json={"name": "brief", "expires_in": 1},
        headers=auth(tokens["developer"]),
        timeout=30,
    )
    assert made.status_code == 201, made.text
    tokens["expired"] = made.json()["token"]
    time.sleep(1.2)
    return {"tokens": tokens, "bundle": bundle, "passwords": passwords}


def auth(token: Optional[str]) -> dict:
    return {"Authorization": f"token {token}"} if token else {}


class Fresh:
    """Names for things a call may make or delete, one per caller and route."""

    count = 0

    @classmethod
    def name(cls, stem: str) -> str:
        cls.count += 1
        return f"{stem}{cls.count}"


# --- the API ------------------------------------------------------------------------------------

P = "/api/v1/projects/alpha"
S = P + "/services/svc"


def fresh_group(hub: Hub) -> dict:
    name = Fresh.name("grp")
    assert hub.post(P + "/groups", json={"name": name}).status_code == 201
    return {"group": name, "gone": P + "/groups/" + name}


def fresh_project(hub: Hub) -> dict:
    name = Fresh.name("proj")
    assert hub.post("/api/v1/projects", json={"name": name}).status_code == 201
    for user, role in (("vic", "viewer"), ("dev", "developer"), ("olga", "owner")):
        r = hub.post(f"/api/v1/projects/{name}/members", json={"user": user, "role": role})
        assert r.status_code == 201, r.text
    return {"project": name, "gone": f"/api/v1/projects/{name}"}


def fresh_service(hub: Hub, bundle: Any) -> dict:
    name = Fresh.name("svcx")
    assert hub.register("alpha", "g", name, bundle).status_code == 201
    return {"service": name, "gone": f"{P}/services/{name}"}


def fresh_alias(hub: Hub) -> dict:
    name = Fresh.name("al")
    assert hub.api("PUT", f"{S}/aliases/{name}", json={"version": 1}).status_code in (200, 201)
    return {"alias": name, "gone": f"{S}/aliases/{name}"}


def fresh_user(hub: Hub) -> dict:
    name = Fresh.name("user")
    r = hub.post("/api/v1/users", json={"name": name, "password": "a-long-password"})
    assert r.status_code == 201, r.text
    return {"user": name, "gone": f"/api/v1/users/{name}"}


def fresh_member(hub: Hub) -> dict:
    made = fresh_user(hub)
    r = hub.post(P + "/members", json={"user": made["user"], "role": "viewer"})
    assert r.status_code == 201, r.text
    return {"user": made["user"]}


def dev_token(hub: Hub, world: dict) -> dict:
    r = requests.post(
        hub.url + "/api/v1/tokens",
        json={"name": Fresh.name("tok")},
        headers=auth(world["tokens"]["developer"]),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return {"token_id": r.json()["id"]}


def admin_token_id(hub: Hub, world: dict) -> dict:
    r = hub.get("/api/v1/user")
    return {"token_id": r.json()["token"]["id"]}


# (label, level, method, path, json body or None, the route's success status, a setup made fresh for
# each caller: its dict fills the path and the body, and "gone" is a path that must still be there
# when the call was refused)
Row = tuple[str, str, str, str, Any, int, Optional[Callable]]
API: list[Row] = [
    ("project", "view", "GET", P, None, 200, None),
    ("delete project", "manage", "DELETE", "/api/v1/projects/{project}", None, 200, fresh_project),
    ("groups", "view", "GET", P + "/groups", None, 200, None),
    ("new group", "change", "POST", P + "/groups", {"name": "{fresh}"}, 201, None),
    ("group", "view", "GET", P + "/groups/g", None, 200, None),
    ("delete group", "manage", "DELETE", P + "/groups/{group}", None, 200, fresh_group),
    ("services", "view", "GET", P + "/services", None, 200, None),
    ("register (bad name)", "change", "POST", P + "/services", {"name": "a b"}, 400, None),
    ("register a folder", "folder", "POST", P + "/services", "folder", 400, None),
    ("service", "view", "GET", S, None, 200, None),
    ("change service", "change", "PATCH", S, {"keep_warm": 600}, 200, None),
    ("delete service", "manage", "DELETE", P + "/services/{service}", None, 200, "service"),
    ("publish", "change", "POST", S + "/publish", {"version": 1}, 200, None),
    ("offline", "change", "POST", P + "/services/spare/offline", {}, 200, None),
    ("service log", "inspect", "GET", S + "/logs", None, 302, None),
    ("versions", "view", "GET", S + "/versions", None, 200, None),
    ("upload (no bundle)", "change", "POST", S + "/versions", {}, 400, None),
    ("version", "view", "GET", S + "/versions/1", None, 200, None),
    ("delete version (online)", "change", "DELETE", S + "/versions/1", None, 409, None),
    ("version log", "inspect", "GET", S + "/versions/1/logs", None, 200, None),
    ("example", "view", "GET", S + "/versions/1/examples/echo", None, 200, None),
    ("aliases", "view", "GET", S + "/aliases", None, 200, None),
    ("alias", "view", "GET", S + "/aliases/stable", None, 200, None),
    ("set alias", "change", "PUT", S + "/aliases/{fresh}", {"version": 1}, 201, None),
    ("delete alias", "change", "DELETE", S + "/aliases/{alias}", None, 200, fresh_alias),
    ("options", "inspect", "GET", S + "/options", None, 200, None),
    ("set options", "change", "PUT", S + "/options", {"values": {}}, 201, None),
    ("upload option", "change", "POST", S + "/uploads", {"option": "nope"}, 400, None),
    ("service audit", "inspect", "GET", S + "/audit", None, 200, None),
    ("service charts", "view", "GET", S + "/metrics?range=day", None, 200, None),
    ("request log", "inspect", "GET", S + "/requests", None, 200, None),
    ("request log export", "inspect", "GET", S + "/requests?format=jsonl", None, 200, None),
    ("request log settings", "inspect", "GET", S + "/requests/settings", None, 200, None),
    ("keep inputs", "manage", "PUT", S + "/requests/settings", {"record_bodies": False}, 200,
     None),
    ("prometheus", "self", "GET", "/metrics", None, 200, None),
    ("members", "view", "GET", P + "/members", None, 200, None),
    ("add member", "manage", "POST", P + "/members", {"user": "{user}", "role": "viewer"}, 201,
     fresh_user),
    ("change member", "manage", "PATCH", P + "/members/vic", {"role": "viewer"}, 200, None),
    ("remove member", "manage", "DELETE", P + "/members/{user}", None, 200, fresh_member),
    ("who am I", "self", "GET", "/api/v1/user", None, 200, None),
    ("my tokens", "self", "GET", "/api/v1/tokens", None, 200, None),
    ("new token", "self", "POST", "/api/v1/tokens", {"name": "{fresh}", "scopes": ["invoke"]}, 201,
     None),
    ("users", "admin", "GET", "/api/v1/users", None, 200, None),
    ("new user", "admin", "POST", "/api/v1/users", {"name": "{fresh}"}, 201, None),
    ("user", "vic", "GET", "/api/v1/users/vic", None, 200, None),
    ("change user", "vic", "PATCH", "/api/v1/users/vic", {"display_name": "Vic"}, 200, None),
    ("delete user", "admin", "DELETE", "/api/v1/users/{user}", None, 200, fresh_user),
    ("audit", "admin", "GET", "/api/v1/audit", None, 200, None),
    ("invoke", "invoke", "POST", "/serve/alpha/svc/echo", {"text": "hi"}, 200, None),
    ("invoke v1", "invoke", "POST", "/serve/alpha/svc/v1/echo", {"text": "hi"}, 200, None),
    ("invoke @stable", "invoke", "POST", "/serve/alpha/svc/@stable/echo", {"text": "hi"}, 200,
     None),
    ("meta", "invoke", "GET", "/serve/alpha/svc/meta", None, 200, None),
    ("invoke public", "public", "POST", "/serve/alpha/pub/echo", {"text": "hi"}, 200, None),
    ("public example", "public", "GET", P + "/services/pub/versions/1/examples/echo", None, 200,
     None),
]  # fmt: skip

# Routes whose matrix differs from their level's, and why.
EXCEPTIONS: dict[tuple[str, str], int] = {
    # a public service's example is public; an invoke-only token has no read scope for the rest
    ("public example", "expired"): 401,
    # the invoke-only token may call only alpha/svc: the public service is open to it anyway
    # a token limited to one service is refused elsewhere in its project with a 403
    ("offline", "invoke"): 403,
    # /metrics needs the metrics scope, which an invoke-only token has not
    ("prometheus", "invoke"): 403,
}


def expected(label: str, level: str, caller: str, ok: int) -> int:
    if (label, caller) in EXCEPTIONS:
        return EXCEPTIONS[(label, caller)]
    want = LEVELS[level][caller]
    return ok if want == OK else want


def fill(value: Any, names: dict) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


def call_api(hub: Hub, world: dict, caller: str, row: Row, tmp_path: Any) -> tuple[int, dict, str]:
    label, level, method, path, body, ok, setup = row
    names = {"fresh": Fresh.name("x")}
    if setup == "service":
        setup_fn: Optional[Callable] = lambda h: fresh_service(h, world["bundle"])  # noqa: E731
    else:
        setup_fn = setup
    if setup_fn is not None:
        names.update(
            setup_fn(hub, world) if setup_fn in (dev_token, admin_token_id) else setup_fn(hub)
        )
    token = world["tokens"].get(caller)
    kw: dict = {"headers": auth(token), "timeout": 60, "allow_redirects": False}
    if body == "folder":
        kw["data"] = {"name": Fresh.name("f"), "group": "g", "path": str(tmp_path / "not-there")}
    elif body is not None:
        kw["json"] = fill(body, names)
    r = requests.request(method, hub.url + fill(path, names), **kw)
    return r.status_code, names, r.text


@pytest.mark.parametrize("caller", CALLERS)
def test_every_api_route_answers_each_caller_as_its_role_allows(hub, world, caller, tmp_path):
    wrong = []
    for row in API:
        label, level, method, path, body, ok, setup = row
        want = expected(label, level, caller, ok)
        status, names, text = call_api(hub, world, caller, row, tmp_path)
        if status != want:
            wrong.append(f"{method} {path} ({label}): {status}, want {want}: {text[:200]}")
        if "gone" in names and status != ok:  # refused: nothing was deleted
            assert hub.get(names["gone"]).status_code == 200, (label, caller)
    assert not wrong, f"{caller}:\n" + "\n".join(wrong)


def test_a_token_cannot_be_wider_than_its_user_or_outlive_its_limits(hub, world):
    dev = world["tokens"]["developer"]
    r = requests.post(
        hub.url + "/api/v1/tokens",
        json={"name": "wide", "scopes": ["admin"]},
        headers=auth(dev),
        timeout=30,
    )
    assert r.status_code == 400 and "more than its owner" in r.json()["error"]
    # the invoke-only token can make a token no wider than itself, and it stays limited
    small = world["tokens"]["invoke"]
    r = requests.post(
        hub.url + "/api/v1/tokens",
        json={"name": "wider", "scopes": ["read", "invoke"]},
        headers=auth(small),
        timeout=30,
    )
    assert r.status_code == 403 and "read" in r.json()["error"]
    r = requests.post(
        hub.url + "/api/v1/tokens", json={"name": "same"}, headers=auth(small), timeout=30
    )
    assert r.status_code == 403, r.text  # default scopes = all the user's: wider than invoke
    # another user's token is not there for a developer; the admin sees it
    admin_id = hub.get("/api/v1/user").json()["token"]["id"]
    r = requests.get(f"{hub.url}/api/v1/tokens/{admin_id}", headers=auth(dev), timeout=30)
    assert r.status_code == 404
    # an invoke-only token may revoke itself only
    other = requests.post(
        hub.url + "/api/v1/tokens", json={"name": "victim"}, headers=auth(dev), timeout=30
    ).json()
    r = requests.delete(f"{hub.url}/api/v1/tokens/{other['id']}", headers=auth(small), timeout=30)
    assert r.status_code == 403 and "write" in r.json()["error"]
    assert requests.get(f"{hub.url}/api/v1/user", headers=auth(other["token"]), timeout=30).ok
    # a token limited to one service lists that service only
    r = requests.post(
        hub.url + "/api/v1/tokens",
        json={"name": "one", "scopes": ["read", "invoke"], "service": "alpha/svc"},
        headers=auth(dev),
        timeout=30,
    )
    one = auth(r.json()["token"])
    r = requests.get(hub.url + P + "/services", headers=one, timeout=30)
    assert r.status_code == 200 and [s["name"] for s in r.json()] == ["svc"], r.text
    r = requests.get(hub.url + P + "/services/spare", headers=one, timeout=30)
    assert r.status_code == 403 and "limited" in r.json()["error"]
    # the expired token says so
    r = requests.get(hub.url + "/api/v1/user", headers=auth(world["tokens"]["expired"]), timeout=30)
    assert r.status_code == 401 and "expired" in r.json()["error"]
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="AlgoLink"'  # how to authenticate


def test_the_stranger_sees_neither_projects_nor_services_it_has_no_role_in(hub, world):
    r = requests.get(hub.url + "/api/v1/projects", headers=auth(world["tokens"]["stranger"]))
    assert [p["name"] for p in r.json()] == ["beta"] and r.json()[0]["role"] == "developer"
    r = requests.get(hub.url + "/api/v1/projects", headers=auth(world["tokens"]["viewer"]))
    seen = {p["name"]: p["role"] for p in r.json()}
    assert seen["alpha"] == "viewer" and "beta" not in seen
    r = requests.get(hub.url + "/api/v1/projects", headers=auth(world["tokens"]["invoke"]))
    assert r.status_code == 403 and "read" in r.json()["error"]
    r = requests.get(hub.url + "/api/v1/projects", headers=auth(None))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="AlgoLink"'
    names = {p["name"] for p in hub.get("/api/v1/projects").json()}
    assert {"alpha", "beta"} <= names
    # a project that does not exist and one the caller has no role in answer alike
    a = requests.get(hub.url + P, headers=auth(world["tokens"]["stranger"]), timeout=30)
    b = requests.get(
        hub.url + "/api/v1/projects/nosuch", headers=auth(world["tokens"]["stranger"]), timeout=30
    )
    assert a.status_code == b.status_code == 404
    assert a.json()["error"].replace("alpha", "X") == b.json()["error"].replace("nosuch", "X")


def test_every_write_is_in_the_audit_with_who_and_from_where(hub, world):
    dev = world["tokens"]["developer"]
    r = requests.patch(hub.url + S, json={"keep_warm": 700}, headers=auth(dev), timeout=30)
    assert r.status_code == 200, r.text
    r = requests.patch(
        hub.url + S, json={"keep_warm": 700}, headers=auth(world["tokens"]["viewer"]), timeout=30
    )
    assert r.status_code == 403
    entries = hub.get(S + "/audit").json()
    mine = [e for e in entries if e["user"] == "dev" and e["action"].startswith("PATCH")]
    assert mine and mine[0]["remote_ip"] == "127.0.0.1" and mine[0]["status"] == 200
    assert mine[0]["project"] == "alpha" and mine[0]["service"] == "svc"
    refused = [e for e in entries if e["user"] == "vic" and e["action"].startswith("PATCH")]
    assert refused and refused[0]["status"] == 403
    # the service's own page shows them to its developers
    service = hub.service("alpha", "svc")
    assert service["created_by"] == "admin"
    assert service["versions"][0]["published_by"] == "admin"


# --- the pages ----------------------------------------------------------------------------------

PAGE_CALLERS = ("nobody", "viewer", "stranger", "developer", "owner", "invoke", "admin")
PP = "/projects/alpha"
PS = PP + "/services/svc"

# (label, level, method, path, form, success status, setup)
PAGES: list[Row] = [
    ("projects", "self", "GET", "/projects", None, 200, None),
    ("project", "view", "GET", PP, None, 200, None),
    ("new group", "change", "POST", PP + "/groups", {"name": "{fresh}"}, 302, None),
    ("service", "view", "GET", PS, None, 200, None),
    ("public service", "public", "GET", PP + "/services/pub", None, 200, None),
    ("publish", "change", "POST", PS + "/publish", {"version": "1"}, 302, None),
    ("offline", "change", "POST", PP + "/services/spare/offline", {}, 302, None),
    ("try", "invoke", "POST", PS + "/try/echo", {"text": "hi"}, 200, None),
    ("delete version", "change", "POST", PS + "/versions/1/delete", {"confirm": "1"}, 409, None),
    ("delete service", "manage", "POST", PP + "/services/{service}/delete", "confirm-service",
     302, "service"),
    ("set alias", "change", "POST", PS + "/aliases", {"name": "{fresh}", "version": "1"}, 302,
     None),
    ("delete alias", "change", "POST", PS + "/aliases/{alias}/delete", {"confirm": "1"}, 302,
     fresh_alias),
    ("delete group", "manage", "POST", PP + "/groups/{group}/delete", {"confirm": "1"}, 302,
     fresh_group),
    ("delete project", "manage", "POST", "/projects/{project}/delete", "confirm-project", 302,
     fresh_project),
    ("edit card", "change", "GET", PS + "/edit", None, 200, None),
    ("tokens", "self", "GET", "/tokens", None, 200, None),
    ("account", "self", "GET", "/account", None, 200, None),
    ("users", "admin", "GET", "/users", None, 200, None),
    ("disable user", "admin", "POST", "/users/{user}/disable", {}, 302, fresh_user),
    ("add member", "manage", "POST", PP + "/members", {"user": "{user}", "role": "viewer"}, 302,
     fresh_user),
    ("change member", "manage", "POST", PP + "/members/vic", {"role": "viewer"}, 302, None),
]  # fmt: skip

PAGE_EXCEPTIONS: dict[tuple[str, str], int] = {
    # the try-it form is called by the page's script: nobody gets the API's 401, not a redirect
    ("try", "nobody"): 401,
}


def browser_session(hub: Hub, world: dict, caller: str) -> requests.Session:
    s = requests.Session()
    s.headers["Accept"] = "text/html"
    s.get(hub.url + "/login", timeout=30)
    xsrf = s.cookies["_xsrf"]
    user = {"viewer": "vic", "stranger": "otto", "developer": "dev", "owner": "olga"}.get(caller)
    if caller == "nobody":
        return s
    if caller in ("invoke", "admin"):
        data = {"token": world["tokens"][caller]}
    else:
        data = {"name": user, "password": f"pw-{user}-0123456789"}
    r = s.post(hub.url + "/login", data={"_xsrf": xsrf, **data}, allow_redirects=False)
    assert r.status_code == 302, r.text
    return s


@pytest.mark.parametrize("caller", PAGE_CALLERS)
def test_every_page_answers_each_caller_as_its_role_allows(hub, world, caller):
    s = browser_session(hub, world, caller)
    wrong = []
    for label, level, method, path, form, ok, setup in PAGES:
        names = {"fresh": Fresh.name("x")}
        if setup == "service":
            names.update(fresh_service(hub, world["bundle"]))
        elif setup is not None:
            names.update(setup(hub))
        want = PAGE_EXCEPTIONS.get((label, caller))
        if want is None:
            level_want = LEVELS[level][caller]
            want = ok if level_want == OK else level_want
            if caller == "nobody" and want == 401:
                # a page: to the sign-in page; a form sent without a session: refused
                want = 302 if method == "GET" else 403
        kw: dict = {"timeout": 60, "allow_redirects": False}
        if label == "try":  # the page's script: JSON, the XSRF token in a header
            kw["json"] = form
            kw["headers"] = {"X-XSRFToken": s.cookies.get("_xsrf", "")}
        elif method == "POST":
            data = {"_xsrf": s.cookies.get("_xsrf", "")}
            if form == "confirm-service":
                data["confirm"] = names["service"]
            elif form == "confirm-project":
                data["confirm"] = names["project"]
            elif form:
                data.update(fill(form, names))
            kw["data"] = data
        r = s.request(method, hub.url + fill(path, names), **kw)
        if r.status_code != want:
            wrong.append(f"{method} {path} ({label}): {r.status_code}, want {want}")
        if r.status_code == 302 and caller == "nobody":
            assert r.headers["Location"].startswith("/login"), (label, r.headers)
        if "gone" in names and r.status_code != ok:
            assert hub.get(names["gone"]).status_code == 200, (label, caller)
    assert not wrong, f"{caller}:\n" + "\n".join(wrong)


def test_an_expired_token_cannot_sign_in_and_a_page_shows_only_what_the_role_allows(hub, world):
    s = requests.Session()
    s.get(hub.url + "/login", timeout=30)
    r = s.post(
        hub.url + "/login",
        data={"_xsrf": s.cookies["_xsrf"], "token": world["tokens"]["expired"]},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 403 and "not valid" in r.text
    viewer = browser_session(hub, world, "viewer").get(hub.url + PS, timeout=30).text
    owner = browser_session(hub, world, "owner").get(hub.url + PS, timeout=30).text
    for form in ('id="version-form"', "/delete", "/publish", "/aliases"):
        assert form in owner and form not in viewer, form
    assert 'id="try-' in viewer or "/try/" in viewer
    project = browser_session(hub, world, "viewer").get(hub.url + PP, timeout=30).text
    assert 'id="member-form"' not in project and re.search(r'data-user="vic"', project)
    project = browser_session(hub, world, "owner").get(hub.url + PP, timeout=30).text
    assert 'id="member-form"' in project


def test_lock_out_after_repeated_wrong_passwords(hub, world):
    r = hub.post("/api/v1/users", json={"name": "lock", "password": "right-password-1"})
    assert r.status_code == 201
    for _ in range(5):
        r = requests.post(
            hub.url + "/api/v1/tokens",
            json={"name": "t", "user": "lock", "password": "wrong-password"},
            timeout=30,
        )
        assert r.status_code == 403 and "do not match" in r.json()["error"]
    r = requests.post(
        hub.url + "/api/v1/tokens",
        json={"name": "t", "user": "lock", "password": "right-password-1"},
        timeout=30,
    )
    assert r.status_code == 403 and "locked" in r.json()["error"]
    # the sign-in page says the same in its language
    s = requests.Session()
    s.headers["Accept-Language"] = "zh-CN"
    s.get(hub.url + "/login", timeout=30)
    r = s.post(
        hub.url + "/login",
        data={"_xsrf": s.cookies["_xsrf"], "name": "lock", "password": "right-password-1"},
        timeout=30,
    )
    assert r.status_code == 403 and "已锁定" in r.text
    # an admin's new password unlocks it
    r = hub.api("PATCH", "/api/v1/users/lock", json={"password": "another-password-2"})
    assert r.status_code == 200, r.text
    r = requests.post(
        hub.url + "/api/v1/tokens",
        json={"name": "t", "user": "lock", "password": "another-password-2"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    entries = hub.get("/api/v1/audit").json()
    assert sum(1 for e in entries if e["user"] == "lock" and e["action"] == "sign in failed") >= 5


def test_a_disabled_user_is_out_at_once(hub, world):
    r = hub.post("/api/v1/users", json={"name": "gone", "password": "gone-password-1"})
    assert r.status_code == 201
    hub.post("/api/v1/projects/alpha/members", json={"user": "gone", "role": "viewer"})
    token = requests.post(
        hub.url + "/api/v1/tokens",
        json={"name": "t", "user": "gone", "password": "gone-password-1"},
        timeout=30,
    ).json()["token"]
    assert requests.get(hub.url + P, headers=auth(token), timeout=30).status_code == 200
    assert hub.api("PATCH", "/api/v1/users/gone", json={"disabled": True}).status_code == 200
    r = requests.get(hub.url + P, headers=auth(token), timeout=30)
    assert r.status_code == 403 and "disabled" in r.json()["error"]
    r = requests.post(
        hub.url + "/serve/alpha/svc/echo", json={"text": "x"}, headers=auth(token), timeout=30
    )
    assert r.status_code == 403


# --- in the browser -----------------------------------------------------------------------------


def test_two_users_in_chromium_see_only_their_projects(hub, world):
    """The admin adds a user on the users page and makes them a viewer of alpha on its page; the
    new user signs in with the password shown once, sees alpha only, no publish or delete action,
    and changes the password; a developer of beta sees beta only and alpha is not there for her."""
    from browser_support import artifacts_dir, launch, signed_in_page, sync_api

    shots = artifacts_dir("permissions")
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            admin, page = signed_in_page(browser, hub, "/users")
            page.fill("#u-name", "newbie")
            page.fill("#u-display", "New Bie")
            page.click("#new-user button[type=submit]")
            password = page.inner_text("#user-password").strip()
            assert len(password) >= 16 and "newbie" in page.inner_text("#users")
            page.screenshot(path=str(shots / "01-users.png"), full_page=True)
            page.goto(hub.url + "/projects/alpha")
            page.fill("#m-user", "newbie")
            page.select_option("#m-role", "viewer")
            page.click("#member-form button[type=submit]")
            page.wait_for_selector('li[data-user="newbie"]')
            assert "Viewer" in page.inner_text('li[data-user="newbie"]')
            page.screenshot(path=str(shots / "02-members.png"), full_page=True)
            admin.close()

            newbie, page = signed_in_page(browser, hub, user="newbie", password=password)
            listed = page.eval_on_selector_all(
                "#projects li strong", "els => els.map(e => e.textContent)"
            )
            assert listed == ["alpha"], listed
            assert "Signed in as newbie" in page.inner_text("#nav-account")
            assert page.query_selector("a[href='/users']") is None  # not an admin
            page.screenshot(path=str(shots / "03-viewer-projects.png"), full_page=True)
            page.goto(hub.url + PS)
            assert page.query_selector("#version-form") is None
            assert page.query_selector("form[action$='/publish']") is None
            assert page.query_selector("form[action$='/delete']") is None
            page.screenshot(path=str(shots / "04-viewer-service.png"), full_page=True)
            page.goto(hub.url + "/account")
            page.fill("#a-old", password)
            page.fill("#a-new", "newbie-password-2")
            page.fill("#a-new2", "newbie-password-2")
            page.click("#password-form button[type=submit]")
            page.wait_for_selector("#account-notice")
            newbie.close()

            otto, page = signed_in_page(browser, hub, user="otto", password="pw-otto-0123456789")
            listed = page.eval_on_selector_all(
                "#projects li strong", "els => els.map(e => e.textContent)"
            )
            assert listed == ["beta"], listed
            page.screenshot(path=str(shots / "05-other-projects.png"), full_page=True)
            answer = page.goto(hub.url + "/projects/alpha")
            assert answer is not None and answer.status == 404
            otto.close()

            # the old password is gone, the new one works
            context = browser.new_context()
            page = context.new_page()
            page.goto(hub.url + "/login")
            page.fill("#name", "newbie")
            page.fill("#password", password)
            page.click("#login-form button[type=submit]")
            assert "do not match" in page.inner_text("main")
            page.fill("#password", "newbie-password-2")
            page.click("#login-form button[type=submit]")
            page.wait_for_url("**/projects")
            context.close()
        finally:
            browser.close()


def test_an_external_authenticator_names_the_user(tmp_path, monkeypatch):
    """``--authenticator module:Class``: its ``request_user`` names the user of a request without a
    session or token (a proxy's header), its ``authenticate`` checks the sign-in form; a name the hub
    does not know becomes a user who is not an admin; forms still need the XSRF token."""
    tests = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", tests + os.pathsep + os.environ.get("PYTHONPATH", ""))
    hub = Hub(
        tmp_path / "data", extra_args=["--authenticator", "trusted_header_auth:Authenticator"]
    )
    hub.start()
    try:
        carol = {"X-Remote-User": "carol"}
        r = requests.get(hub.url + "/api/v1/user", headers=carol, timeout=30)
        assert r.status_code == 200 and r.json()["name"] == "carol" and not r.json()["admin"]
        assert requests.get(hub.url + "/api/v1/user", timeout=30).status_code == 401
        page = requests.get(hub.url + "/projects", headers=carol, timeout=30)
        assert page.status_code == 200 and "Signed in as carol" in page.text
        # a write without the page's XSRF token is refused, with it carol makes her project
        r = requests.post(hub.url + "/api/v1/projects", json={"name": "c"}, headers=carol)
        assert r.status_code == 403 and "XSRF" in r.json()["error"]
        s = requests.Session()
        s.headers.update(carol)
        s.get(hub.url + "/projects", timeout=30)
        r = s.post(
            hub.url + "/api/v1/projects",
            json={"name": "c"},
            headers={"X-XSRFToken": s.cookies["_xsrf"]},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        r = hub.get("/api/v1/projects/c/members")
        assert [(m["user"], m["role"]) for m in r.json()] == [("carol", "owner")]
        # the sign-in form asks the authenticator
        s = requests.Session()
        s.get(hub.url + "/login", timeout=30)
        form = {"_xsrf": s.cookies["_xsrf"], "name": "dave", "password": "wrong"}
        assert s.post(hub.url + "/login", data=form, timeout=30).status_code == 403
        form["password"] = "open-sesame-dave"
        r = s.post(hub.url + "/login", data=form, allow_redirects=False, timeout=30)
        assert r.status_code == 302
        assert "Signed in as dave" in s.get(hub.url + "/projects", timeout=30).text
    finally:
        hub.stop()


def test_algolink_login_whoami_and_logout(hub, world, tmp_path):
    """The CLI as a user: ``algolink login`` with the password on stdin keeps a token of the user in
    the config file (mode 600), ``whoami`` says who and where, ``logout`` revokes the token."""
    import subprocess
    import sys

    config = tmp_path / "config.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGOLINK_")}
    env["ALGOLINK_CONFIG"] = str(config)

    def algolink(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "algolink_jupyter.cli", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    r = algolink("login", "--hub", hub.url, "--user", "dev", "--password-stdin", stdin="wrong\n")
    assert r.returncode != 0 and "do not match" in r.stderr, r.stderr
    assert not config.exists()
    r = algolink(
        "login", "--hub", hub.url, "--user", "dev", "--password-stdin",
        stdin="pw-dev-0123456789\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"Signed in to {hub.url} as dev" in r.stdout
    assert config.stat().st_mode & 0o777 == 0o600
    kept = json.loads(config.read_text())
    assert kept["hub_url"] == hub.url and kept["token"] not in r.stdout
    r = algolink("whoami")
    assert r.returncode == 0 and r.stdout.startswith(f"dev on {hub.url}"), r.stdout + r.stderr
    assert re.search(r"developer\s+alpha", r.stdout)
    r = algolink("status")  # the other commands use the kept token
    assert r.returncode == 0 and "alpha/svc" in r.stdout, r.stdout + r.stderr
    r = algolink("logout")
    assert r.returncode == 0 and "revoked" in r.stdout
    assert "token" not in json.loads(config.read_text())
    r = requests.get(hub.url + "/api/v1/user", headers=auth(kept["token"]), timeout=30)
    assert r.status_code == 403
