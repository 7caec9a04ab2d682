"""Versions that stay versions (issue 14): every published API version callable, aliases, idle
versions stopped and started again on demand, 上线 that keeps a rollback, deleting each kind of thing
(and only it), ``algolink push``, and one log per version in time order.

Real hub processes, real builds, real service processes; nothing of ours is mocked.
"""

from __future__ import annotations

import re
import time

import pytest
from hub_process import Hub, alive, make_bundle, wait_for
from test_hub_flow import processes_of, run_cli

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("version-bundles")
    return {tag: make_bundle(root / tag, tag) for tag in ("v1", "v2", "v3", "other")}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-versions")).start()
    yield h
    h.stop()


def echo(hub: Hub, path: str, text: str = "hi") -> str:
    r = hub.serve(path, json={"text": text})
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return r.json()["text"]


def publish(hub: Hub, project: str, name: str, number: int) -> dict:
    r = hub.publish(project, name, number)
    assert r.status_code in (200, 202), r.text
    return hub.wait_version(project, name, number)


def three_versions(hub: Hub, bundles: dict, project: str, name: str) -> None:
    hub.ensure_group(project, "g")
    r = hub.register(project, "g", name, bundles["v1"])
    assert r.status_code == 201, r.text
    publish(hub, project, name, 1)
    for tag in ("v2", "v3"):
        number = hub.new_version(project, name, bundles[tag])["number"]
        publish(hub, project, name, number)


def test_every_api_version_answers_while_a_newer_one_is_online(hub, bundles):
    three_versions(hub, bundles, "pin", "echo")
    service = hub.service("pin", "echo")
    assert service["published_version"] == 3 and service["api_version"] == "v3"
    assert [v["api_version"] for v in service["versions"]] == ["v1", "v2", "v3"]
    assert echo(hub, "pin/echo/echo") == "v3:hi"
    # The old online versions stay warm for a while: no start for the first pinned request.
    assert echo(hub, "pin/echo/v1/echo") == "v1:hi"
    assert echo(hub, "pin/echo/v2/echo") == "v2:hi"
    assert echo(hub, "pin/echo/v3/echo") == "v3:hi"
    r = hub.api("PUT", "/api/v1/projects/pin/services/echo/aliases/stable", json={"version": 2})
    assert r.status_code == 201, r.text
    assert r.json()["url"].endswith("/serve/pin/echo/@stable/")
    assert echo(hub, "pin/echo/@stable/echo") == "v2:hi"
    # Pointed elsewhere, the alias follows at once.
    r = hub.api("PUT", "/api/v1/projects/pin/services/echo/aliases/stable", json={"version": 1})
    assert r.status_code == 200
    assert echo(hub, "pin/echo/@stable/echo") == "v1:hi"
    # The OpenAPI document of a pinned version tells its own prefix.
    doc = hub.session.get(hub.url + "/serve/pin/echo/v2/openapi.json", timeout=30).json()
    assert doc["servers"][0]["url"].rstrip("/").endswith("/serve/pin/echo/v2")
    # What is not there says what is.
    r = hub.serve("pin/echo/v9/echo", json={"text": "x"})
    assert r.status_code == 404 and "v1, v2, v3" in r.json()["error"]
    r = hub.serve("pin/echo/@canary/echo", json={"text": "x"})
    assert r.status_code == 404 and "@stable" in r.json()["error"]
    # The service lists the processes that run: all three now.
    assert hub.service("pin", "echo")["running"] == [1, 2, 3]
    assert processes_of(hub, "pin", "echo") == {"pin/echo/1", "pin/echo/2", "pin/echo/3"}


def test_an_idle_version_stops_and_starts_again_on_a_request(hub, bundles):
    three_versions(hub, bundles, "warm", "echo")
    r = hub.api("PATCH", "/api/v1/projects/warm/services/echo", json={"keep_warm": 2})
    assert r.status_code == 200 and r.json()["keep_warm"] == 2

    def only_the_online_one() -> bool:
        return hub.service("warm", "echo")["running"] == [3]

    wait_for(only_the_online_one, 20, 0.2, "the idle versions to stop")
    # their processes (service, keeper, sandbox) are gone moments after the hub stopped them
    wait_for(lambda: processes_of(hub, "warm", "echo") == {"warm/echo/3"}, 10, 0.2, "the processes")
    version = hub.version("warm", "echo", 1)
    assert version["process"] is None and version["status"] == "offline"

    started = time.monotonic()
    assert echo(hub, "warm/echo/v1/echo", "cold") == "v1:cold"  # waits for the start, then answers
    cold = time.monotonic() - started
    assert hub.version("warm", "echo", 1)["process"] == "online"
    assert echo(hub, "warm/echo/v1/echo") == "v1:hi"
    assert processes_of(hub, "warm", "echo") == {"warm/echo/1", "warm/echo/3"}
    assert cold < 30
    # Taken offline, the service's pinned versions answer no more and their processes stop.
    assert hub.post("/api/v1/projects/warm/services/echo/offline").status_code == 200
    r = hub.serve("warm/echo/v1/echo", json={"text": "x"})
    assert r.status_code == 503 and "offline" in r.json()["error"]
    wait_for(lambda: not processes_of(hub, "warm", "echo"), 20, 0.2, "every process to stop")


def test_a_slow_cold_start_answers_503_with_retry_after(tmp_path, bundles):
    hub = Hub(tmp_path / "hub", extra_args=["--cold-start-timeout", "1"]).start()
    try:
        slow = make_bundle(tmp_path / "slow", "slow", setup="import time; time.sleep(4)")
        hub.ensure_group("cold", "g")
        assert hub.register("cold", "g", "echo", slow).status_code == 201
        publish(hub, "cold", "echo", 1)
        hub.new_version("cold", "echo", bundles["v2"])
        publish(hub, "cold", "echo", 2)
        r = hub.api("PATCH", "/api/v1/projects/cold/services/echo", json={"keep_warm": 1})
        assert r.status_code == 200
        wait_for(lambda: hub.service("cold", "echo")["running"] == [2], 20, 0.2, "v1 to stop")
        r = hub.serve("cold/echo/v1/echo", json={"text": "x"})
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) >= 1 and "starting" in r.json()["error"]
        # It went on starting: a later request finds it running.
        wait_for(
            lambda: hub.serve("cold/echo/v1/echo", json={"text": "x"}).status_code == 200,
            30,
            0.5,
            "v1 to answer",
        )
    finally:
        hub.stop()


def test_publish_without_a_version_keeps_a_rollback(hub, bundles):
    three_versions(hub, bundles, "roll", "echo")
    publish(hub, "roll", "echo", 1)  # roll back
    service = hub.service("roll", "echo")
    assert service["published_version"] == 1 and service["api_version"] == "v1"
    assert echo(hub, "roll/echo/echo") == "v1:hi"
    assert hub.post("/api/v1/projects/roll/services/echo/offline").status_code == 200
    assert hub.service("roll", "echo")["publish_default"] == 1
    r = hub.publish("roll", "echo")  # 上线 with no version: the rolled-back one, not the newest
    assert r.status_code == 202 and r.json()["publishing"] == 1
    hub.wait_version("roll", "echo", 1)
    assert echo(hub, "roll/echo/echo") == "v1:hi"
    assert echo(hub, "roll/echo/v3/echo") == "v3:hi"  # and the newer ones stay callable


def test_deleting_removes_only_what_it_names(hub, bundles, tmp_path):
    hub.ensure_group("del", "g")
    hub.ensure_group("del", "empty")
    # Two services share a bundle (and so its stored copy and environment).
    shared = make_bundle(tmp_path / "shared", "v1")
    (shared / "note.txt").write_text("only del/a and del/b use this bundle")
    for name in ("a", "b"):
        assert hub.register("del", "g", name, shared).status_code == 201
        publish(hub, "del", name, 1)
    unique = make_bundle(tmp_path / "unique", "unique")
    number = hub.new_version("del", "a", unique)["number"]
    publish(hub, "del", "a", number)
    a = hub.service("del", "a")
    shared_hash = a["versions"][0]["bundle_hash"]
    unique_hash = a["versions"][1]["bundle_hash"]
    data = hub.data

    # A version: not while it is online, nor while an alias names it.
    r = hub.api("DELETE", "/api/v1/projects/del/services/a/versions/2")
    assert r.status_code == 409 and "online" in r.json()["error"]
    assert hub.api("PUT", "/api/v1/projects/del/services/a/aliases/old", json={"version": 1}).ok
    r = hub.api("DELETE", "/api/v1/projects/del/services/a/versions/1")
    assert r.status_code == 409 and "old" in r.json()["error"]
    assert hub.api("DELETE", "/api/v1/projects/del/services/a/aliases/old").ok
    assert echo(hub, "del/a/v1/echo") == "v1:hi"  # warm since the swap
    pid = hub.service_pid("del", "a", 1)
    assert alive(pid)
    r = hub.api("DELETE", "/api/v1/projects/del/services/a/versions/1")
    assert r.status_code == 200, r.text
    wait_for(lambda: not alive(pid), 15, 0.1, "version 1's process to stop")
    assert not (data / "services/del/a/1").exists() and not (data / "run/del/a/1").exists()
    assert [v["number"] for v in hub.service("del", "a")["versions"]] == [2]
    r = hub.serve("del/a/v1/echo", json={"text": "x"})
    assert r.status_code == 404 and "deleted" in r.json()["error"]
    assert (data / "bundles" / shared_hash).is_dir()  # b still uses it
    assert echo(hub, "del/b/echo") == "v1:hi"
    # A new version never takes a deleted one's number or API version.
    n = hub.new_version("del", "a", bundles["v3"])["number"]
    assert n == 3
    publish(hub, "del", "a", n)
    assert hub.version("del", "a", 3)["api_version"] == "v3"

    # A group: only an empty one.
    r = hub.api("DELETE", "/api/v1/projects/del/groups/g")
    assert r.status_code == 409 and "a, b" in r.json()["error"]
    assert hub.api("DELETE", "/api/v1/projects/del/groups/empty").status_code == 200

    # A service: its processes stop, its files go; what b shares stays.
    envs_before = {p.name for p in (data / "envs").iterdir() if p.is_dir()}
    pids = [hub.service_pid("del", "a", n) for n in (2, 3)]
    r = hub.api("DELETE", "/api/v1/projects/del/services/a")
    assert r.status_code == 200, r.text
    assert not any(alive(p) for p in pids)
    assert not processes_of(hub, "del", "a")
    assert not (data / "services/del/a").exists() and not (data / "run/del/a").exists()
    wait_for(lambda: not (data / "bundles" / unique_hash).exists(), 15, 0.2, "the bundle to go")
    assert (data / "bundles" / shared_hash).is_dir()
    assert {p.name for p in (data / "envs").iterdir() if p.is_dir()} == envs_before
    assert hub.serve("del/a/", json={"text": "x"}).status_code == 404
    assert echo(hub, "del/b/echo") == "v1:hi"
    assert hub.get("/api/v1/projects/del/services/a").status_code == 404

    # A project: with its last service.
    pid_b = hub.service_pid("del", "b", 1)
    r = hub.api("DELETE", "/api/v1/projects/del")
    assert r.status_code == 200 and r.json()["services"] == ["b"]
    assert not alive(pid_b)
    assert hub.get("/api/v1/projects/del").status_code == 404
    wait_for(lambda: not (data / "bundles" / shared_hash).exists(), 15, 0.2, "the shared bundle")


def test_algolink_push_twice_makes_v1_then_v2_online(hub, bundles, tmp_path):
    out = run_cli(hub, "push", str(bundles["v1"]), "pushed/echo", "--publish")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Registered pushed/echo (version 1)" in out.stdout
    assert "is online as v1" in out.stdout and "/serve/pushed/echo/v1/" in out.stdout
    out = run_cli(hub, "push", str(bundles["v2"]), "pushed/echo", "--publish")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Version 2 of pushed/echo is uploaded" in out.stdout
    assert "is online as v2" in out.stdout
    assert echo(hub, "pushed/echo/echo") == "v2:hi" and echo(hub, "pushed/echo/v1/echo") == "v1:hi"
    out = run_cli(hub, "versions", "pushed/echo")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^2 \*\s+online\s+v2", out.stdout, re.M), out.stdout
    out = run_cli(hub, "rollback", "pushed/echo", "1")
    assert out.returncode == 0 and "is online as v1" in out.stdout, out.stdout + out.stderr
    out = run_cli(hub, "alias", "pushed/echo", "stable", "2")
    assert out.returncode == 0 and "/serve/pushed/echo/@stable/" in out.stdout
    out = run_cli(hub, "delete", "pushed/echo")  # not a terminal: asks for --yes
    assert out.returncode != 0 and "--yes" in out.stderr
    out = run_cli(hub, "delete", "pushed/echo", "--yes")
    assert out.returncode == 0, out.stderr
    assert hub.get("/api/v1/projects/pushed/services/echo").status_code == 404
    # A folder that is not a bundle says so.
    out = run_cli(hub, "push", str(tmp_path), "pushed/none")
    assert out.returncode != 0 and "cloud_model.py" in out.stderr


def test_the_hub_takes_no_port_and_shows_none(hub, bundles):
    hub.ensure_group("ports", "g")
    r = hub.register("ports", "g", "echo", bundles["v1"], port="9555")
    assert r.status_code == 400 and "port" in r.json()["error"]
    assert hub.register("ports", "g", "echo", bundles["v1"]).status_code == 201
    service = hub.service("ports", "echo")
    assert "port" not in service and all("port" not in v for v in service["versions"])


def test_the_log_is_one_time_order_with_one_stamp(hub, bundles):
    hub.ensure_group("logs", "g")
    assert hub.register("logs", "g", "echo", bundles["v1"]).status_code == 201
    publish(hub, "logs", "echo", 1)
    hub.new_version("logs", "echo", bundles["v2"])
    publish(hub, "logs", "echo", 2)
    publish(hub, "logs", "echo", 1)  # the build log of 1 is older than its second start
    text = hub.logs("logs", "echo", 1)
    stamps = re.findall(r"^\[([^\]]+)\]", text, re.M)
    assert stamps and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", s) for s in stamps)
    assert stamps == sorted(stamps)
    assert text.index("Build succeeded") < text.index("online as v1")
    assert "online as v2" not in text and "online as v2" in hub.logs("logs", "echo", 2)


def test_environments_past_the_budget_go_least_recently_used_first(tmp_path, bundles):
    hub = Hub(tmp_path / "hub", extra_args=["--env-budget", "1K"]).start()
    try:
        other = make_bundle(tmp_path / "other", "other", requirements="pyyaml\n")
        hub.ensure_group("budget", "g")
        assert hub.register("budget", "g", "one", bundles["v1"]).status_code == 201
        publish(hub, "budget", "one", 1)
        first = {p.name for p in (hub.data / "envs").iterdir() if p.is_dir()}
        assert hub.post("/api/v1/projects/budget/services/one/offline").status_code == 200
        assert hub.register("budget", "g", "two", other).status_code == 201
        publish(hub, "budget", "two", 1)
        # Over the budget: the environment nothing runs in goes; the running one stays.
        wait_for(
            lambda: not first & {p.name for p in (hub.data / "envs").iterdir() if p.is_dir()},
            20,
            0.2,
            "the unused environment to go",
        )
        assert echo(hub, "budget/two/echo") == "other:hi"
        # Published again, the first service's environment is built anew.
        publish(hub, "budget", "one", 1)
        assert echo(hub, "budget/one/echo") == "v1:hi"
        assert "Creating a virtual environment" in hub.logs("budget", "one", 1)
    finally:
        hub.stop()
