"""Users, roles and scoped tokens (issue 15) on a hub that was used before them: a data folder made by
the hub of commit 355bb07 (run from that commit's code, as a real process) is opened by today's hub.
Every project, group, service, version, alias, flag and token keeps working; the old tokens become the
admin user's, who owns every project and can sign in with the password the new hub gives it.

Real hub processes, real builds, real service processes; nothing of ours is mocked.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
import requests
from hub_process import REPO, Hub, Postgres, make_bundle

pytestmark = pytest.mark.timeout(300)

#: The hub before users existed (the commit before issue 15).
OLD_COMMIT = "355bb07"

#: What differs between two answers about the same thing at different times or from other code.
VOLATILE = {"process", "running", "state", "last_used", "url", "urls", "logs", "gallery"}


def old_code(into: Path) -> Path:
    """The old hub's ``algolink_jupyter`` package, from git history (``modelcloud`` is shared)."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", OLD_COMMIT, "algolink_jupyter"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=60)
    assert (into / "algolink_jupyter" / "hub" / "app.py").is_file()
    assert not (into / "algolink_jupyter" / "hub" / "access.py").exists()  # users came later
    return into


def newest_revision(root: Path = REPO) -> str:
    versions = root / "algolink_jupyter" / "hub" / "alembic" / "versions"
    return max(p.name.split("_", 1)[0] for p in versions.glob("[0-9]*_*.py"))


def stable(value):
    """``value`` without what may change across a restart (processes, URLs with the port)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def assert_kept(was, now, where: str = "") -> None:
    """Everything ``was`` says, ``now`` says too (it may say more: fields the new hub added)."""
    if isinstance(was, dict):
        assert isinstance(now, dict), f"{where}: {now!r}"
        for key, value in was.items():
            assert key in now, f"{where}.{key} is gone: {now!r}"
            assert_kept(value, now[key], f"{where}.{key}")
    elif isinstance(was, list):
        assert isinstance(now, list) and len(now) == len(was), f"{where}: {was!r} -> {now!r}"
        for i, (a, b) in enumerate(zip(was, now)):
            assert_kept(a, b, f"{where}[{i}]")
    else:
        assert now == was, f"{where}: {was!r} -> {now!r}"


def ok(r: requests.Response, *codes: int) -> dict:
    assert r.status_code in (codes or (200,)), (
        f"{r.request.method} {r.url}: {r.status_code} {r.text}"
    )
    return r.json()


def echo(hub: Hub, path: str, token: str | None, text: str = "hi") -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.post(
        f"{hub.url}/serve/{path}", json={"text": text}, headers=headers, timeout=60
    )


def answer(hub: Hub, path: str, token: str | None) -> str:
    """What /serve/{path} answers (a 200 expected)."""
    r = echo(hub, path, token)
    assert r.status_code == 200, f"/serve/{path}: {r.status_code} {r.text}"
    return r.json()["text"]


def snapshot(hub: Hub) -> dict:
    """Everything the API says about the hub's projects, groups, services, versions and aliases."""
    projects = ok(hub.get("/api/v1/projects"))
    found: dict = {"projects": stable(projects), "detail": {}, "services": {}, "aliases": {}}
    for project in projects:
        name = project["name"]
        found["detail"][name] = stable(ok(hub.get(f"/api/v1/projects/{name}")))
        for group in project["groups"]:
            found["detail"][f"{name}/{group}"] = stable(
                ok(hub.get(f"/api/v1/projects/{name}/groups/{group}"))
            )
        for service in ok(hub.get(f"/api/v1/projects/{name}/services")):
            key = f"{name}/{service['name']}"
            found["services"][key] = stable(hub.service(name, service["name"]))
            found["aliases"][key] = stable(
                ok(hub.get(f"/api/v1/projects/{name}/services/{service['name']}/aliases"))
            )
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request):
    """None (the data folder's hub.sqlite) or a PostgreSQL database of a server of this test's."""
    if request.param == "sqlite":
        yield None
        return
    if os.environ.get("ALGOLINK_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("ALGOLINK_TEST_SKIP_POSTGRES=1")
    pg = Postgres()
    try:
        pg.start()
        yield pg.create_database("migration")
    finally:
        pg.stop()


def alembic_versions(data: Path, db: str | None) -> list:
    query = "select version_num from alembic_version"
    if db is None:
        with sqlite3.connect(data / "hub.sqlite") as conn:
            return [row[0] for row in conn.execute(query)]
    import psycopg

    with psycopg.connect(db) as conn:
        return [row[0] for row in conn.execute(query)]


def schema_drift(data: Path, db: str | None) -> list:
    """How the migrated database differs from the tables orm.py describes (nothing, we hope)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from algolink_jupyter.hub import orm

    engine = orm.make_engine(db or f"sqlite:///{data / 'hub.sqlite'}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, orm.Base.metadata)
    finally:
        engine.dispose()


def test_a_data_folder_of_the_old_hub_keeps_working(tmp_path, database):
    data = tmp_path / "data"
    bundles = {tag: make_bundle(tmp_path / "bundles" / tag, tag) for tag in ("v1", "v2", "hello")}
    code = old_code(tmp_path / "old")
    # No admin password from the environment: the new hub makes one up and keeps it in the folder.
    old = Hub(
        data,
        db=database,
        cwd=code,
        env={"PYTHONPATH": str(code), "ALGOLINK_ADMIN_PASSWORD": None},
    )
    new = Hub(data, db=database, env={"ALGOLINK_ADMIN_PASSWORD": None})
    try:
        # --- the old hub ------------------------------------------------------------------------
        old.start()
        assert alembic_versions(data, database) == [newest_revision(code)] == ["0005"]
        assert old.get("/api/v1/user").status_code == 404, "the old hub has no users"
        assert not any("Admin user" in line for line in old.lines), old.output
        assert old.printed_token == old.token  # its first start printed the admin token

        ok(
            old.post(
                "/api/v1/projects",
                json={"name": "alpha", "type": "model", "version": "2.1", "description": "first"},
            ),
            201,
        )
        ok(old.post("/api/v1/projects", json={"name": "beta", "type": "dataset"}), 201)
        for project, group in (("alpha", "vision"), ("alpha", "text"), ("beta", "misc")):
            ok(old.post(f"/api/v1/projects/{project}/groups", json={"name": group}), 201)

        # alpha/echo: two versions, both published (v2 online now), an alias on v1, not public.
        meta = {"tagline": "Migrated echo", "license": "Apache-2.0"}
        r = old.register("alpha", "text", "echo", bundles["v1"], metadata=json.dumps(meta))
        ok(r, 201)
        ok(old.publish("alpha", "echo", 1), 200, 202)
        old.wait_version("alpha", "echo", 1)
        assert old.new_version("alpha", "echo", bundles["v2"])["number"] == 2
        ok(old.publish("alpha", "echo", 2), 200, 202)
        old.wait_version("alpha", "echo", 2)
        aliases = "/api/v1/projects/alpha/services/echo/aliases/stable"
        ok(old.api("PUT", aliases, json={"version": 1}), 201)
        ok(old.api("PATCH", "/api/v1/projects/alpha/services/echo", json={"keep_warm": 30}))
        # beta/hello: public and online; alpha/draft: registered, never published.
        ok(old.register("beta", "misc", "hello", bundles["hello"], public="true"), 201)
        ok(old.publish("beta", "hello"), 200, 202)
        old.wait_version("beta", "hello", 1)
        ok(old.register("alpha", "vision", "draft", bundles["v1"]), 201)

        # Tokens: an extra one, and one revoked.
        extra = ok(old.post("/api/v1/tokens", json={"name": "ci"}), 201)
        gone = ok(old.post("/api/v1/tokens", json={"name": "gone"}), 201)
        ok(old.api("DELETE", f"/api/v1/tokens/{gone['id']}"))
        assert answer(old, "alpha/echo/echo", extra["token"]) == "v2:hi"
        assert echo(old, "alpha/echo/echo", gone["token"]).status_code == 403
        assert answer(old, "beta/hello/echo", None) == "hello:hi"

        # A browser signed in on the old hub with the extra token.
        signed_in = requests.Session()
        signed_in.get(f"{old.url}/login", timeout=30)
        r = signed_in.post(
            f"{old.url}/login",
            data={"token": extra["token"], "_xsrf": signed_in.cookies.get("_xsrf")},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 302, r.text
        assert signed_in.get(f"{old.url}/projects/alpha", timeout=30).status_code == 200

        before = snapshot(old)
        old_tokens = ok(old.get("/api/v1/tokens"))
        assert [t["name"] for t in old_tokens] == ["admin", "ci"]
        assert before["services"]["alpha/echo"]["published_version"] == 2
        assert before["services"]["alpha/echo"]["public"] is False
        assert before["services"]["beta/hello"]["public"] is True
        assert before["services"]["alpha/echo"]["metadata"]["tagline"] == "Migrated echo"
        assert [a["name"] for a in before["aliases"]["alpha/echo"]] == ["stable"]
        statuses = {
            key: [(v["number"], v["status"]) for v in s["versions"]]
            for key, s in before["services"].items()
        }
        old.stop()
        assert old.proc.returncode is not None

        # --- the new hub on the same folder -------------------------------------------------------
        new.start()
        assert new.token == old.token and new.printed_token is None  # the same admin token
        assert new.admin_password, f"no admin_password in {data}:\n{new.output}"
        assert f"Admin user: admin, password {new.admin_password}" in new.output

        assert alembic_versions(data, database) == [newest_revision()]
        assert schema_drift(data, database) == []

        # The services that were online are online again (their processes started anew).
        new.wait_version("alpha", "echo", 2)
        new.wait_version("beta", "hello", 1)
        after = snapshot(new)
        assert set(after["services"]) == {"alpha/echo", "alpha/draft", "beta/hello"}
        assert_kept(before, after, "hub")
        for key, service in after["services"].items():
            assert [(v["number"], v["status"]) for v in service["versions"]] == statuses[key], key

        # The old tokens: the extra one serves (the online version, a pinned API version, an
        # alias); the revoked one does not; the admin token works.
        token = extra["token"]
        assert answer(new, "alpha/echo/echo", token) == "v2:hi"
        assert answer(new, "alpha/echo/v2/echo", token) == "v2:hi"
        assert answer(new, "alpha/echo/v1/echo", token) == "v1:hi"
        assert answer(new, "alpha/echo/@stable/echo", token) == "v1:hi"
        assert echo(new, "alpha/echo/echo", None).status_code == 401
        r = echo(new, "alpha/echo/echo", gone["token"])
        assert r.status_code == 403, r.text
        r = requests.get(
            f"{new.url}/api/v1/projects",
            headers={"Authorization": f"token {gone['token']}"},
            timeout=30,
        )
        assert r.status_code == 403, r.text
        assert answer(new, "beta/hello/echo", None) == "hello:hi"  # still public
        assert answer(new, "alpha/echo/echo", new.token) == "v2:hi"

        # Every old token is the admin user's, with what it could do before (everything).
        tokens = {t["name"]: t for t in ok(new.get("/api/v1/tokens", params={"all": 1}))}
        assert set(tokens) == {"admin", "ci"}
        for was in old_tokens:
            now = tokens[was["name"]]
            assert now["user"] == "admin" and now["scopes"] is None, now
            assert (now["id"], now["prefix"], now["created"]) == (
                was["id"],
                was["prefix"],
                was["created"],
            )
            assert now["project"] is None and now["service"] is None and now["expires_at"] is None
        headers = {"Authorization": f"token {token}"}
        me = ok(requests.get(f"{new.url}/api/v1/user", headers=headers, timeout=30))
        assert me["name"] == "admin" and me["admin"] is True, me
        assert me["may"] == {"create_projects": True, "admin": True}, me
        assert me["projects"] == {"alpha": "owner", "beta": "owner"}, me
        assert me["token"]["name"] == "ci" and me["token"]["project"] is None, me
        # ... and it still changes things (a write), as before.
        r = requests.patch(
            f"{new.url}/api/v1/projects/alpha/services/draft",
            json={"public": True},
            headers=headers,
            timeout=30,
        )
        assert ok(r)["public"] is True
        for project in ("alpha", "beta"):
            members = ok(new.get(f"/api/v1/projects/{project}/members"))
            assert [(m["user"], m["role"]) for m in members] == [("admin", "owner")], members
        users = ok(new.get("/api/v1/users"))
        assert [(u["name"], u["admin"], u["disabled"]) for u in users] == [("admin", True, False)]

        # The admin signs in on the sign-in page with the password the new hub made up.
        browser = requests.Session()
        ok_page = browser.get(f"{new.url}/login", timeout=30)
        assert ok_page.status_code == 200
        xsrf = browser.cookies.get("_xsrf")
        assert xsrf, ok_page.headers
        wrong = browser.post(
            f"{new.url}/login",
            data={"name": "admin", "password": "not-the-password", "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        assert wrong.status_code in (401, 403), wrong.status_code
        r = browser.post(
            f"{new.url}/login",
            data={"name": "admin", "password": new.admin_password, "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 302, r.text
        page = browser.get(f"{new.url}/projects/alpha", timeout=30)
        assert page.status_code == 200 and "echo" in page.text

        # The old hub's browser session (its cookie held a bare token hash) stays signed in, as
        # the admin its token now belongs to.
        r = signed_in.get(f"{new.url}/projects/alpha", allow_redirects=False, timeout=30)
        assert r.status_code == 200 and "Signed in as admin" in r.text, (r.status_code, r.headers)

        # A second start migrates nothing more and keeps the password.
        new.stop()
        new.start()
        assert new.admin_password and f"password in {data / 'admin_password'}" in new.output
        new.wait_version("alpha", "echo", 2)
        assert answer(new, "alpha/echo/echo", token) == "v2:hi"
    finally:
        new.stop()
        old.stop()
