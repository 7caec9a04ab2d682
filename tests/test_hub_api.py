"""The hub's REST API against a real hub process, on SQLite and on a real PostgreSQL server.

Every test talks HTTP to ``algolink hub`` running as a subprocess; bundles are built for real (uv, one
shared environment per hub) and their services run as real processes.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time

import pytest
import requests
from hub_process import (
    Hub,
    Postgres,
    evil_tar,
    make_bundle,
    pack,
    png_bytes,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def postgres():
    if os.environ.get("ALGOLINK_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("ALGOLINK_TEST_SKIP_POSTGRES=1")
    pg = Postgres()
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hub(request, tmp_path_factory):
    db = None
    if request.param == "postgresql":
        db = request.getfixturevalue("postgres").create_database("hub_api")
    h = Hub(tmp_path_factory.mktemp(f"hub-{request.param}"), db).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    return {
        "v1": make_bundle(root / "v1", "v1"),
        "v2": make_bundle(root / "v2", "v2"),
        "v3": make_bundle(root / "v3", "v3"),
        "no-python": make_bundle(root / "no-python", "np", python="3.99"),
        "bad-setup": make_bundle(
            root / "bad-setup", "bad", setup="raise RuntimeError('no weights here')"
        ),
    }


def error_of(r: requests.Response, status: int) -> str:
    assert r.status_code == status, f"{r.status_code} {r.text}"
    body = r.json()
    assert set(body) == {"error"} and body["error"].endswith((".", ")")), body
    return body["error"]


# --- the basics -----------------------------------------------------------------------------------


def test_index_and_unknown_paths(hub):
    assert hub.get("/").json()["api"] == "/api/v1"
    assert "/api/v1" in error_of(hub.get("/no/such/page"), 404)


def test_admin_token_printed_once_and_kept_private(hub):
    path = hub.data / "admin_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert hub.printed_token == hub.token
    assert f"Admin token: {hub.token}" in hub.output


def test_state_changes_need_a_token(hub):
    anonymous = requests.post(hub.url + "/api/v1/projects", json={"name": "anon"}, timeout=10)
    assert "token" in error_of(anonymous, 401)
    forged = requests.post(
        hub.url + "/api/v1/projects",
        json={"name": "anon"},
        headers={"Authorization": "token not-a-token"},
        timeout=10,
    )
    assert "not valid" in error_of(forged, 403)
    assert "token" in error_of(requests.get(hub.url + "/api/v1/projects", timeout=10), 401)
    assert "token" in error_of(requests.get(hub.url + "/api/v1/tokens", timeout=10), 401)


def test_tokens_are_created_shown_once_and_revoked(hub):
    r = hub.post("/api/v1/tokens", json={"name": "ci"})
    assert r.status_code == 201, r.text
    made = r.json()
    token, token_id = made["token"], made["id"]
    headers = {"Authorization": f"token {token}"}
    r = requests.post(hub.url + "/api/v1/projects", json={"name": "by-ci"}, headers=headers)
    assert r.status_code == 201, r.text
    listed = hub.get("/api/v1/tokens").json()
    assert {"ci", "admin"} <= {t["name"] for t in listed}
    assert all("token" not in t for t in listed)
    assert hub.api("DELETE", f"/api/v1/tokens/{token_id}").status_code == 200
    r = requests.post(hub.url + "/api/v1/projects", json={"name": "by-ci-2"}, headers=headers)
    assert "revoked" in error_of(r, 403)
    admin = next(t for t in listed if t["name"] == "admin")
    assert "admin token" in error_of(hub.api("DELETE", f"/api/v1/tokens/{admin['id']}"), 400)
    assert "admin" in error_of(hub.post("/api/v1/tokens", json={"name": "admin"}), 400)


@pytest.mark.parametrize(
    "name, rule",
    [
        ("my model", "no spaces"),
        ("a.b", "'.'"),
        ("中文", "'中'"),
        ("", "missing"),
        ("x" * 65, "too long"),
    ],
)
def test_bad_names_say_which_rule_they_broke(hub, name, rule):
    assert rule in error_of(hub.post("/api/v1/projects", json={"name": name}), 400)


def test_projects_and_groups(hub):
    r = hub.post(
        "/api/v1/projects",
        json={"name": "vision_2-a", "type": "cv", "version": "1.0-beta", "description": "Photos"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == "1.0-beta"
    err = error_of(hub.post("/api/v1/projects", json={"name": "v", "version": "1_0"}), 400)
    assert "'_'" in err and "version" in err
    assert "already exists" in error_of(
        hub.post("/api/v1/projects", json={"name": "vision_2-a"}), 409
    )
    assert "JSON" in error_of(hub.post("/api/v1/projects", data=b"{nope"), 400)

    assert hub.post("/api/v1/projects/vision_2-a/groups", json={"name": "g1"}).status_code == 201
    assert "already" in error_of(
        hub.post("/api/v1/projects/vision_2-a/groups", json={"name": "g1"}), 409
    )
    assert "space" in error_of(
        hub.post("/api/v1/projects/vision_2-a/groups", json={"name": "g 2"}), 400
    )
    assert "no project" in error_of(
        hub.post("/api/v1/projects/nope/groups", json={"name": "g"}), 404
    )
    project = hub.get("/api/v1/projects/vision_2-a").json()
    assert project["type"] == "cv" and project["description"] == "Photos"
    assert [g["name"] for g in project["groups"]] == ["g1"]
    assert "vision_2-a" in [p["name"] for p in hub.get("/api/v1/projects").json()]


# --- registration ---------------------------------------------------------------------------------


def bundle_store(hub) -> set:
    return set(os.listdir(hub.data / "bundles"))


@pytest.mark.parametrize(
    "archive, words",
    [
        (evil_tar("../escape.txt"), "outside the bundle"),
        (evil_tar("/tmp/algolink-absolute.txt"), "absolute path"),
        (evil_tar("passwd", link="/etc/passwd"), "link"),
        (b"this is not an archive at all", "not a"),
        (evil_tar("a/../../up.txt"), "outside the bundle"),
    ],
    ids=["dotdot", "absolute", "symlink", "garbage", "nested-dotdot"],
)
def test_bad_archives_are_refused_and_leave_nothing(hub, archive, words):
    hub.ensure_group("archives", "g")
    before = bundle_store(hub)
    r = hub.post(
        "/api/v1/projects/archives/services",
        data={"name": "evil", "group": "g"},
        files={"bundle": ("bundle.tar.gz", archive)},
    )
    err = error_of(r, 400)
    assert words in err and "refused" in err
    assert bundle_store(hub) == before
    assert os.listdir(hub.data / "tmp") == []
    assert not (hub.data.parent / "escape.txt").exists()
    assert not os.path.exists("/tmp/algolink-absolute.txt")
    assert hub.get("/api/v1/projects/archives/services/evil").status_code == 404


def test_registration_is_checked(hub, bundles, tmp_path):
    hub.ensure_group("checks", "g")
    url = "/api/v1/projects/checks/services"
    v1 = pack(bundles["v1"])

    def register(data, files=None):
        return hub.post(url, data=data, files=files or {"bundle": ("b.tar.gz", v1)})

    assert "No bundle" in error_of(hub.post(url, data={"name": "s", "group": "g"}), 400)
    assert "no group" in error_of(register({"name": "s", "group": "nope"}), 404)
    assert "no project" in error_of(
        hub.post("/api/v1/projects/nope/services", data={"name": "s", "group": "g"}), 404
    )
    assert "space" in error_of(register({"name": "my service", "group": "g"}), 400)
    assert "port" in error_of(register({"name": "s", "group": "g", "port": "80"}), 400)
    assert "JSON" in error_of(register({"name": "s", "group": "g", "metadata": "{x"}), 400)
    not_image = {"bundle": ("b.tar.gz", v1), "images": ("x.png", b"not an image")}
    assert "not an image" in error_of(register({"name": "s", "group": "g"}, not_image), 400)

    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w:gz") as tar:
        info = tarfile.TarInfo("README.md")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    err = error_of(
        register({"name": "s", "group": "g"}, {"bundle": ("b.tgz", empty.getvalue())}), 400
    )
    assert "cloud_model.py" in err

    bad_yaml = make_bundle(tmp_path / "bad-yaml")
    (bad_yaml / "algolink.yml").write_text("python: [3]\n")
    err = error_of(
        register({"name": "s", "group": "g"}, {"bundle": ("b.tgz", pack(bad_yaml))}), 400
    )
    assert "python" in err

    port = 20000 + os.getpid() % 20000
    assert "no longer takes a port" in error_of(
        register({"name": "first", "group": "g", "port": str(port)}), 400
    )
    r = register({"name": "first", "group": "g"})
    assert r.status_code == 201, r.text
    assert "port" not in r.json() and r.json()["status"] == "registered"
    assert "already has a service" in error_of(register({"name": "first", "group": "g"}), 409)
    folder = hub.post(url, data={"name": "from-folder", "group": "g", "path": str(bundles["v1"])})
    assert folder.status_code == 201, folder.text
    assert folder.json()["versions"][0]["bundle_hash"] == r.json()["versions"][0]["bundle_hash"]


# --- the seed's flow: register, publish (上线), serve, new version, offline ------------------------


def test_seed_flow(hub, bundles):
    r = hub.post(
        "/api/v1/projects",
        json={"name": "seed", "type": "image", "version": "1.0", "description": "Seed flow"},
    )
    assert r.status_code == 201, r.text
    assert hub.post("/api/v1/projects/seed/groups", json={"name": "classifiers"}).status_code == 201

    r = hub.register(
        "seed",
        "classifiers",
        "echo",
        bundles["v1"],
        metadata='{"license": "Apache-2.0"}',
        images=[("cover.png", png_bytes((0, 0, 255)))],
    )
    assert r.status_code == 201, r.text
    service = r.json()
    assert service["status"] == "registered" and "port" not in service
    assert service["versions"][0]["status"] == "registered"

    # The manifest is read from the bundle (ALGOLINK_META=1 in its environment).
    version = wait_for(
        lambda: hub.version("seed", "echo", 1)["manifest"] and hub.version("seed", "echo", 1),
        120,
        0.2,
        "the manifest",
    )
    assert [c["name"] for c in version["manifest"]["commands"]] == ["echo"]
    metadata = version["metadata"]
    assert metadata["tagline"] == "Echoes text"  # from modelcloud.meta(...)
    assert metadata["license"] == "Apache-2.0"  # the registration's wins
    gallery = hub.service("seed", "echo")["gallery"]
    assert [g["name"] for g in gallery] == ["dot.png", "cover.png"]
    image = requests.get(gallery[0]["url"], timeout=10)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    # 上线
    r = hub.publish("seed", "echo")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "building"
    v1 = hub.wait_version("seed", "echo", 1)
    assert v1["api_version"] == "v1" and v1["published_by"] == "admin"
    service = hub.service("seed", "echo")
    assert service["status"] == "online" and service["api_version"] == "v1"
    assert service["urls"]["api"].endswith("/serve/seed/echo/v1/")

    assert hub.serve("seed/echo/echo", json={"text": "hi"}).json() == {"text": "v1:hi"}
    assert hub.serve("seed/echo/v1/echo", json={"text": "hi"}).json() == {"text": "v1:hi"}
    meta = hub.session.get(hub.url + "/serve/seed/echo/meta", timeout=10)
    assert meta.status_code == 200 and meta.json()["commands"][0]["name"] == "echo"
    bad_input = hub.serve("seed/echo/echo", data=b"{not json")  # the service's own 400 comes back
    assert bad_input.status_code == 400 and "error" in bad_input.json()
    assert "not public" in error_of(
        requests.post(hub.url + "/serve/seed/echo/echo", json={"text": "x"}, timeout=10), 401
    )
    assert "no API version v7" in error_of(hub.serve("seed/echo/v7/echo", json={}), 404)
    assert "no service" in error_of(hub.serve("seed/nope/echo", json={}), 404)

    logs = hub.logs("seed", "echo", 1)
    assert "Build succeeded" in logs and "Starting model server" in logs and "online as v1" in logs

    # A new bundle: version 2, published with no downtime; its API version is v2.
    v2 = hub.new_version("seed", "echo", bundles["v2"], metadata='{"tagline": "Second"}')
    assert v2["number"] == 2 and v2["status"] == "registered"
    assert hub.publish("seed", "echo").status_code == 202  # the newest version
    hub.wait_version("seed", "echo", 2)
    assert hub.serve("seed/echo/echo", json={"text": "hi"}).json() == {"text": "v2:hi"}
    assert hub.serve("seed/echo/v2/echo", json={"text": "hi"}).json() == {"text": "v2:hi"}
    # Version 1 stays callable at its API version, for clients that pinned it.
    assert hub.serve("seed/echo/v1/echo", json={"text": "hi"}).json() == {"text": "v1:hi"}
    service = hub.service("seed", "echo")
    assert service["published_version"] == 2 and service["metadata"]["tagline"] == "Second"
    assert [v["status"] for v in service["versions"]] == ["offline", "online"]
    assert [v["api_version"] for v in service["versions"]] == ["v1", "v2"]

    # Public: no token needed on /serve (the API still needs one to change anything).
    r = hub.api("PATCH", "/api/v1/projects/seed/services/echo", json={"public": True})
    assert r.status_code == 200 and r.json()["public"] is True
    anonymous = requests.post(hub.url + "/serve/seed/echo/echo", json={"text": "a"}, timeout=10)
    assert anonymous.json() == {"text": "v2:a"}

    # Offline, then version 1 again: it keeps its API version v1.
    r = hub.post("/api/v1/projects/seed/services/echo/offline")
    assert r.status_code == 200 and r.json()["status"] == "offline"
    assert "not online" in error_of(hub.serve("seed/echo/echo", json={"text": "x"}), 503)
    assert hub.publish("seed", "echo", 1).status_code == 202
    hub.wait_version("seed", "echo", 1)
    assert hub.serve("seed/echo/v1/echo", json={"text": "x"}).json() == {"text": "v1:x"}
    assert "version 9" in error_of(hub.publish("seed", "echo", 9), 404)
    assert "not a version number" in error_of(hub.publish("seed", "echo", "v1"), 400)


def test_failed_build_or_start_leaves_the_old_version_online(hub, bundles):
    hub.ensure_group("resilient", "g")
    assert hub.register("resilient", "g", "svc", bundles["v1"]).status_code == 201
    assert hub.publish("resilient", "svc").status_code == 202
    hub.wait_version("resilient", "svc", 1)

    hub.new_version("resilient", "svc", bundles["no-python"])
    assert hub.publish("resilient", "svc", 2).status_code == 202
    failed = hub.wait_version("resilient", "svc", 2, "failed")
    assert "3.99" in failed["error"] and "3.11" in failed["error"]  # lists the Pythons there are
    service = hub.service("resilient", "svc")
    assert service["status"] == "online" and service["published_version"] == 1
    assert "failed" in service["message"]
    assert hub.serve("resilient/svc/echo", json={"text": "still"}).json() == {"text": "v1:still"}

    hub.new_version("resilient", "svc", bundles["bad-setup"])
    assert hub.publish("resilient", "svc", 3).status_code == 202
    failed = hub.wait_version("resilient", "svc", 3, "failed")
    assert "setup" in failed["error"].lower() and "no weights here" in failed["error"]
    assert hub.serve("resilient/svc/echo", json={"text": "still"}).json() == {"text": "v1:still"}
    assert hub.service("resilient", "svc")["api_version"] == "v1"
    assert "no weights here" in hub.logs("resilient", "svc", 3)


def test_logs_follow_streams_until_online(hub, bundles):
    hub.ensure_group("follow", "g")
    assert hub.register("follow", "g", "svc", bundles["v3"]).status_code == 201
    assert hub.publish("follow", "svc").status_code == 202
    start = time.monotonic()
    with hub.session.get(
        hub.url + "/api/v1/projects/follow/services/svc/versions/1/logs?follow=1&until=online",
        stream=True,
        timeout=120,
    ) as r:
        assert r.status_code == 200
        assert r.headers.get("Transfer-Encoding") == "chunked"
        text = b"".join(r.iter_content(None)).decode()
    assert time.monotonic() - start < 120
    assert "Starting model server" in text and "online as v1" in text
    assert hub.version("follow", "svc", 1)["status"] == "online"
    # The service's own logs route: the published version's.
    assert "Starting model server" in hub.get("/api/v1/projects/follow/services/svc/logs").text


def test_the_schema_is_the_migrations(hub):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from algolink_jupyter.hub import orm

    engine = orm.make_engine(hub.db or f"sqlite:///{hub.data / 'hub.sqlite'}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            head = ScriptDirectory.from_config(orm.alembic_config(engine)).get_current_head()
            assert context.get_current_revision() == head
            assert compare_metadata(context, orm.Base.metadata) == []
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
