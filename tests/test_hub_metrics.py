"""What a service does (issue 20): ``GET /metrics`` counted exactly after a known sequence of
requests, its scope checks, the service page's chart data, the request log's opt-in and cap, and the
retention of the history. A real hub, a real service process, a real database file; nothing mocked.
"""

from __future__ import annotations

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


@modelcloud.setup
def setup():
    return "m"


@modelcloud.command("echo", inputs={"text": text()}, outputs={"text": text()})
def echo(model, inputs):
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


def metrics_bundle(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloud_model.py").write_text(MODEL)
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
