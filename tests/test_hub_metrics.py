"""What a service does (issue 20): ``GET /metrics`` counted exactly after a known sequence of
requests, its scope checks, the service page's chart data, the request log's opt-in and cap, and the
retention of the history. A real hub, a real service process, a real database file; nothing mocked.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
import requests
from hub_process import Hub, wait_for

pytestmark = pytest.mark.timeout(300)

MODEL = """
import time

import modelcloud
from modelcloud.data_types import text

DELAY = {delay}

@modelcloud.setup
def setup():
    return "m"


@modelcloud.command("echo", inputs={"text": text()}, outputs={"text": text()})
def echo(model, inputs):
    time.sleep(DELAY)
    return {"text": "echo:" + inputs["text"]}


@modelcloud.command("slow", inputs={"text": text()}, outputs={"text": text()})
def slow(model, inputs):
    time.sleep(0.3)
    return {"text": inputs["text"]}


@modelcloud.command("boom", inputs={"text": text()}, outputs={"text": text()})
def boom(model, inputs):
    raise RuntimeError("it broke")


if __name__ == "__main__":
    modelcloud.run()
"""


def metrics_bundle(folder: Path, delay: float = 0.0) -> Path:
    """A service of three commands: ``echo`` (after ``delay`` seconds), ``slow`` (0.3 s) and
    ``boom`` (a 500); no requirements."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloud_model.py").write_text(MODEL.replace("{delay}", repr(delay)))
    (folder / "algolink.yml").write_text("entrypoint: python cloud_model.py\n")
    return folder


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-metrics"), extra_args=["--request-log", "5"]).start()
    h.ensure_group("m", "g")
    bundle = metrics_bundle(tmp_path_factory.mktemp("metrics-bundle") / "b")
    r = h.register("m", "g", "svc", bundle)
    assert r.status_code == 201, r.text
    r = h.publish("m", "svc")
    assert r.status_code in (200, 202), r.text
    h.wait_version("m", "svc", 1)
    yield h
    h.stop()


def scrape(hub: Hub, token: str | None = None) -> str:
    headers = {"Authorization": f"token {token or hub.token}"}
    r = requests.get(hub.url + "/metrics", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    return r.text


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name{labels}`` (labels given must match; others may be there)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


def test_metrics_count_a_known_sequence_exactly(hub):
    for i in range(6):
        r = hub.serve("m/svc/echo", json={"text": f"hi{i}"})
        assert r.status_code == 200, r.text
        assert "model;dur=" in r.headers.get("Server-Timing", "")
    for _ in range(3):
        assert hub.serve("m/svc/echo", json={"wrong": 1}).status_code == 400
    assert hub.serve("m/svc/boom", json={"text": "x"}).status_code == 500
    assert hub.serve("m/svc/slow", json={"text": "z"}).status_code == 200
    assert hub.serve("m/svc/nope", json={}).status_code == 404  # not a command: no command label
    text = scrape(hub)
    base = {"project": "m", "service": "svc", "version": "1"}
    count = "algolink_serve_requests_total"
    assert sample(text, count, **base, command="echo", code="200") == 6
    assert sample(text, count, **base, command="echo", code="400") == 3
    assert sample(text, count, **base, command="boom", code="500") == 1
    assert sample(text, count, **base, command="slow", code="200") == 1
    assert sample(text, count, project="m", service="svc", version="", code="404") == 1
    hist = "algolink_serve_request_duration_seconds"
    echo = {**base, "command": "echo"}
    assert sample(text, hist + "_count", **echo) == 9
    assert sample(text, hist + "_bucket", **echo, le="+Inf") == 9
    # The fast ones end well under 0.25 s, the slow one between 0.25 s and 1 s.
    assert sample(text, hist + "_bucket", **echo, le="0.25") == 9
    slow = {**base, "command": "slow"}
    assert sample(text, hist + "_bucket", **slow, le="0.25") == 0
    assert sample(text, hist + "_bucket", **slow, le="1.0") == 1
    assert 0.3 <= sample(text, hist + "_sum", **slow) < 1.0
    # The model's time, from the model server's Server-Timing, told apart from the rest.
    model = "algolink_serve_model_duration_seconds"
    assert sample(text, model + "_count", **slow) == 1
    assert 0.3 <= sample(text, model + "_sum", **slow) < sample(text, hist + "_sum", **slow)
    assert sample(text, model + "_bucket", **slow, le="0.25") == 0
    assert sample(text, "algolink_serve_queue_duration_seconds_count", **slow) == 1
    assert sample(text, "algolink_serve_first_byte_seconds_count", **echo) == 9
    # Bytes: what the client sent and got, to the byte.
    sent = sum(len(json.dumps({"text": f"hi{i}"})) for i in range(6)) + 3 * len(
        json.dumps({"wrong": 1})
    )
    assert sample(text, "algolink_serve_request_bytes_total", **echo) == sent
    assert sample(text, "algolink_serve_response_bytes_total", **echo) > 0
    assert sample(text, "algolink_serve_requests_in_flight", **base) == 0


def test_the_model_server_tells_queue_time_from_model_time(model_server):
    """``Server-Timing`` on every command's answer (its errors too): the slow command's model time
    is its 0.3 s; with two at once, the second one waits for the first (one model at a time)."""
    import concurrent.futures

    server = model_server(MODEL.replace("{delay}", "0.0"))
    r = requests.post(server.url + "/slow", json={"text": "a"}, timeout=30)
    queue, model = timings(r.headers["Server-Timing"])
    assert 300 <= model < 1000 and 0 <= queue < 300
    r = requests.post(server.url + "/boom", json={"text": "a"}, timeout=30)
    assert r.status_code == 500 and "model;dur=" in r.headers["Server-Timing"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda _: requests.post(server.url + "/slow", json={"text": "b"}, timeout=30),
                range(2),
            )
        )
    waited = sorted(timings(a.headers["Server-Timing"])[0] for a in answers)
    assert waited[1] >= 250  # the second waited for the first one's 0.3 s


def timings(value: str) -> tuple[float, float]:
    parts = dict(re.findall(r"(\w+);dur=([0-9.]+)", value))
    return float(parts["queue"]), float(parts["model"])


def test_metrics_are_refused_without_the_metrics_scope_and_filtered_by_role(hub):
    # Nobody: 401. A token without the metrics scope: 403 that names it (the scope's own check).
    r = requests.get(hub.url + "/metrics", timeout=30)
    assert r.status_code == 401
    narrow = hub.add_user("reader", {"m": "viewer"}, scopes=["read", "invoke"])
    r = requests.get(hub.url + "/metrics", headers={"Authorization": f"token {narrow}"}, timeout=30)
    assert r.status_code == 403 and "'metrics' scope" in r.json()["error"]
    r = requests.get(
        hub.url + "/metrics", headers={"Authorization": "token not-a-token"}, timeout=30
    )
    assert r.status_code in (401, 403)
    # A viewer's metrics token sees its project's services; a stranger's sees none of them.
    assert hub.serve("m/svc/echo", json={"text": "seen"}).status_code == 200
    viewer = hub.add_user("watcher", {"m": "viewer"}, scopes=["metrics"])
    assert 'service="svc"' in scrape(hub, viewer)
    stranger = hub.add_user("stranger", {"other": "owner"}, scopes=["metrics"])
    text = scrape(hub, stranger)
    assert 'service="svc"' not in text and "algolink_serve_requests_total" in text
    # Limited to another project: nothing of m either, though its user is an admin.
    limited = hub.add_user("root2", admin=True, scopes=["metrics"], project="other")
    assert 'service="svc"' not in scrape(hub, limited)
    # A metrics-only token reads no API (it is not a read token).
    r = requests.get(
        hub.url + "/api/v1/projects/m", headers={"Authorization": f"token {viewer}"}, timeout=30
    )
    assert r.status_code == 403


def chart(hub: Hub, span: str = "hour", token: str | None = None) -> dict:
    headers = {"Authorization": f"token {token}"} if token else {}
    r = hub.session.get(
        hub.url + f"/api/v1/projects/m/services/svc/metrics?range={span}",
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_the_chart_data_matches_the_requests_and_prometheus(hub):
    before = chart(hub)
    for i in range(4):
        assert hub.serve("m/svc/echo", json={"text": str(i)}).status_code == 200
    assert hub.serve("m/svc/echo", json={"bad": 1}).status_code == 400
    assert hub.serve("m/svc/boom", json={"text": "x"}).status_code == 500
    after = chart(hub)
    assert after["step"] == 60 and len(after["times"]) == 60
    assert after["all"]["requests"] - before["all"]["requests"] == 6
    assert after["all"]["errors"] - before["all"]["errors"] == 1
    assert after["all"]["client_errors"] - before["all"]["client_errors"] == 1
    # The same figures as /metrics: every request to the service, counted once in each.
    text = scrape(hub)
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("algolink_serve_requests_total{") and 'service="svc"' in line
    )
    assert after["all"]["requests"] == total
    # Per minute: the points add up to the total (a step of one minute on the hour's chart).
    assert sum(v or 0 for v in after["all"]["requests_per_minute"]) == pytest.approx(total)
    v1 = next(v for v in after["versions"] if v["version"] == 1)
    assert v1["api_version"] == "v1" and v1["since"] is not None
    # Before the version's publish its line is empty (None), not zero.
    first = [i for i, t in enumerate(after["times"]) if t + 60 <= v1["since"]]
    assert all(v1["requests_per_minute"][i] is None for i in first)
    last = max(i for i, v in enumerate(v1["requests_per_minute"]) if v)
    p50, p95, p99 = (v1[q][last] for q in ("p50", "p95", "p99"))
    assert 0 < p50 <= p95 <= p99
    # The day and the week: coarser steps, the same totals.
    day, week = chart(hub, "day"), chart(hub, "week")
    assert (day["step"], len(day["times"])) == (600, 144)
    assert (week["step"], len(week["times"])) == (3600, 168)
    assert day["all"]["requests"] == week["all"]["requests"] == total
    r = hub.get("/api/v1/projects/m/services/svc/metrics?range=year")
    assert r.status_code == 400 and "hour, day, week" in r.json()["error"]
    # A metrics token reads the charts; a stranger gets a 404 as for any project not theirs.
    watcher = hub.add_user("charts", {"m": "viewer"}, scopes=["metrics"])
    assert chart(hub, token=watcher)["all"]["requests"] == total
    outsider = hub.add_user("outsider", {"elsewhere": "owner"})
    r = requests.get(
        hub.url + "/api/v1/projects/m/services/svc/metrics",
        headers={"Authorization": f"token {outsider}"},
        timeout=30,
    )
    assert r.status_code == 404


def log_of(hub: Hub, **params: str) -> dict:
    r = hub.get("/api/v1/projects/m/services/svc/requests", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_request_log_keeps_the_last_n_and_bodies_only_when_asked(hub):
    for i in range(7):
        assert hub.serve("m/svc/echo", json={"text": f"log{i}"}).status_code == 200
    log = log_of(hub)
    assert log["record_bodies"] is False and log["kept"] == 5
    rows = log["requests"]
    assert len(rows) == 5  # --request-log 5: the last five
    assert [r["status"] for r in rows] == [200] * 5
    newest = rows[0]
    assert newest["command"] == "echo" and newest["version"] == 1
    assert newest["user"] == "admin" and newest["token"] == "admin"
    assert newest["duration"] > 0 and newest["model"] is not None
    assert "input" not in newest and "output" not in newest  # off by default
    # Turning it on is an owner's: a viewer's token is refused.
    viewer = hub.add_user("peeker", {"m": "viewer"})
    r = requests.put(
        hub.url + "/api/v1/projects/m/services/svc/requests/settings",
        json={"record_bodies": True},
        headers={"Authorization": f"token {viewer}"},
        timeout=30,
    )
    assert r.status_code == 403, hub.output[-3000:]
    r = requests.get(
        hub.url + "/api/v1/projects/m/services/svc/requests",
        headers={"Authorization": f"token {viewer}"},
        timeout=30,
    )
    assert r.status_code == 403  # the log names callers: developers and owners only
    r = hub.api(
        "PUT",
        "/api/v1/projects/m/services/svc/requests/settings",
        json={"record_bodies": True, "record_limit": 12},
    )
    assert r.status_code == 200 and r.json() == {"record_bodies": True, "record_limit": 12}
    r = hub.api(
        "PUT",
        "/api/v1/projects/m/services/svc/requests/settings",
        json={"record_limit": 10**9},
    )
    assert r.status_code == 400 and "record_limit" in r.json()["error"]
    assert hub.serve("m/svc/echo", json={"text": "a long text to cut"}).status_code == 200
    assert hub.serve("m/svc/echo", json={"text": "é"}).status_code == 200
    rows = log_of(hub)["requests"]
    long, short = rows[1], rows[0]
    body = json.dumps({"text": "a long text to cut"})
    assert long["input"] == {"bytes": len(body), "truncated": True, "text": body[:12]}
    assert long["output"]["truncated"] is True and long["output"]["text"] == '{"text": "ec'[:12]
    assert short["input"]["text"] == json.dumps({"text": "é"})[:12]
    # Off again: nothing more is kept.
    r = hub.api(
        "PUT",
        "/api/v1/projects/m/services/svc/requests/settings",
        json={"record_bodies": False},
    )
    assert r.status_code == 200
    assert hub.serve("m/svc/echo", json={"text": "private"}).status_code == 200
    assert "input" not in log_of(hub)["requests"][0]
    # The export: every kept request, oldest first, one JSON object a line.
    r = hub.get("/api/v1/projects/m/services/svc/requests", params={"format": "jsonl"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == 5 and [x["id"] for x in lines] == sorted(x["id"] for x in lines)


def test_the_jupyterlab_sidebar_route_carries_each_services_last_hour(hub):
    """What the sidebar's sparklines draw: the Jupyter server extension's hub route asks the hub for
    each online service's last hour."""
    from algolink_jupyter.serverext.hub import hub_services

    assert hub.serve("m/svc/echo", json={"text": "spark"}).status_code == 200
    services = asyncio.run(hub_services(hub.url, hub.token))
    (svc,) = [s for s in services if (s["project"], s["name"]) == ("m", "svc")]
    figures = chart(hub)["all"]
    activity = svc["activity"]
    assert activity["requests"] == figures["requests"] and activity["errors"] == figures["errors"]
    assert len(activity["requests_per_minute"]) == 60 and any(activity["requests_per_minute"][-2:])
    assert any(activity["p95"][-2:])


def test_a_deleted_services_figures_leave_metrics(hub, tmp_path):
    r = hub.register("m", "g", "brief", metrics_bundle(tmp_path / "brief"))
    assert r.status_code == 201, r.text
    assert hub.publish("m", "brief").status_code in (200, 202)
    hub.wait_version("m", "brief", 1)
    assert hub.serve("m/brief/echo", json={"text": "x"}).status_code == 200
    assert 'service="brief"' in scrape(hub)
    r = hub.api("DELETE", "/api/v1/projects/m/services/brief")
    assert r.status_code == 200, r.text
    text = scrape(hub)
    assert 'service="brief"' not in text and 'service="svc"' in text


def test_retention_removes_what_is_older(hub):
    """Rows backdated through the database file, then a hub with --metrics-retention 1h: what is
    older than an hour goes, the rest stays."""
    hub.stop(keep_services=True)
    db = sqlite3.connect(hub.data / "hub.sqlite")
    with db:
        sid = db.execute("SELECT id FROM services WHERE name = 'svc'").fetchone()[0]
        for age, command in ((7200, "old"), (1800, "recent")):
            stamp = time.strftime("%Y-%m-%d %H:%M:00.000000", time.gmtime(time.time() - age))
            db.execute(
                "INSERT INTO serve_minutes (service_id, minute, version, command, requests, "
                "client_errors, errors, duration_sum, buckets, model_sum, model_count, queue_sum, "
                "bytes_in, bytes_out) VALUES (?, ?, 1, ?, 5, 0, 0, 0.5, '{\"40\": 5}', 0, 0, 0, 0, 0)",
                (sid, stamp, command),
            )
            db.execute(
                "INSERT INTO serve_requests (service_id, at, version, command, status, duration, "
                "bytes_in, bytes_out) VALUES (?, ?, 1, ?, 200, 0.1, 0, 0)",
                (sid, stamp, command),
            )
    db.close()
    hub.start(extra_args=["--metrics-retention", "1h", "--request-log", "50"])

    def commands(table: str) -> set:
        with sqlite3.connect(hub.data / "hub.sqlite") as conn:
            return {r[0] for r in conn.execute(f"SELECT DISTINCT command FROM {table}")}

    wait_for(lambda: "old" not in commands("serve_minutes"), 30, what="the old minute to go")
    wait_for(lambda: "old" not in commands("serve_requests"), 30, what="the old request to go")
    assert "recent" in commands("serve_minutes") and "recent" in commands("serve_requests")
    # The recent one is on the day's chart; the hour-old one on none.
    day = chart(hub, "day")
    assert day["retention"] == 3600
    assert day["all"]["requests"] >= 5
