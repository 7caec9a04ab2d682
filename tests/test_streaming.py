"""Commands that yield, against a real model server process: a plain POST (the last outputs),
Server-Sent Events, Runway's WebSocket protocol, and async jobs through their whole life.

Every generator here writes a line per step to a file of its own (named by its ``tag`` input) before
it yields: that file proves when a cancel or a client that went away stopped it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from openapi_spec_validator import validate
from tornado.websocket import websocket_connect

import modelcloud
from algolink_jupyter.client import Client, PredictError
from algolink_jupyter.client.calls import StreamEvent
from modelcloud.testing import TestClient
from support import start_script, wait_until

MODEL = """
import os, time
import modelcloud
from modelcloud.data_types import number, text

LOGS = os.environ["STEP_LOGS"]

def step(tag, i):
    with open(os.path.join(LOGS, tag + ".log"), "a") as f:
        f.write(f"{i}\\n")

@modelcloud.command(
    "count",
    inputs={"n": number(default=3), "delay": number(default=0.0), "tag": text(default="count"),
            "pad": number(default=0)},
    outputs={"value": number(), "label": text()},
    description="Counts, one yield per step",
)
def count(model, inputs):
    for i in range(int(inputs["n"])):
        step(inputs["tag"], i)
        time.sleep(inputs["delay"])
        yield {"value": i, "label": f"step {i}" + " " * int(inputs["pad"])}, (i + 1) / inputs["n"]

@modelcloud.command("ticks", inputs={"n": number(default=4)}, outputs={"done": text()})
def ticks(model, inputs):
    n = int(inputs["n"])
    for i in range(n):
        yield i / n  # progress only
    yield {"progress": 1, "done": "yes"}

@modelcloud.command("broken", outputs={"value": number()})
def broken(model, inputs):
    yield {"value": 1}
    raise RuntimeError("the model ran out of steps")

@modelcloud.command("bad_progress", outputs={"value": number()})
def bad_progress(model, inputs):
    yield {"value": 1}, 7

@modelcloud.command("plain", inputs={"x": number(), "delay": number(default=0.0),
                                     "tag": text(default="plain")}, outputs={"y": number()})
def plain(model, inputs):
    time.sleep(inputs["delay"])
    step(inputs["tag"], 0)
    return {"y": inputs["x"] * 2}

if __name__ == "__main__":
    modelcloud.run()
"""


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("steps")


@pytest.fixture(scope="module")
def server(tmp_path_factory, logs):
    path = tmp_path_factory.mktemp("model") / "cloud_model.py"
    path.write_text(MODEL)
    proc = start_script(path, env={"STEP_LOGS": str(logs)})
    yield proc
    proc.stop()


def steps(logs: Path, tag: str) -> int:
    path = logs / f"{tag}.log"
    return len(path.read_text().splitlines()) if path.exists() else 0


def read_events(response) -> list:
    """``[(event, data)]`` of an SSE answer, read as it arrives."""
    events, name, data = [], None, None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and name is not None:
            events.append((name, data))
            name = data = None
    return events


# -- plain POST, manifest, OpenAPI -----------------------------------------------------------------
def test_a_plain_post_gets_the_last_yield_and_the_manifest_marks_generators(server):
    r = server.post("/count", json={"n": 4, "tag": "plainpost"})
    assert r.status_code == 200
    assert r.json() == {"value": 3, "label": "step 3"}
    assert server.post("/ticks", json={}).json() == {"done": "yes"}
    commands = {c["name"]: c for c in server.get("/meta").json()["commands"]}
    assert commands["count"]["streams"] is True
    assert "streams" not in commands["plain"]
    assert server.get("/count").json()["streams"] is True
    doc = server.get("/openapi.json").json()
    validate(doc)
    assert doc["paths"]["/count"]["post"]["x-streams"] is True
    assert doc["paths"]["/plain"]["post"]["x-streams"] is False
    assert set(doc["paths"]["/jobs/{id}"]) == {"get", "delete"}
    assert "202" in doc["paths"]["/count"]["post"]["responses"]


def test_a_generator_that_raises_or_yields_bad_progress_is_a_500_sentence(server):
    r = server.post("/broken", json={})
    assert r.status_code == 500
    assert r.json()["error"] == "Error during inference: RuntimeError: the model ran out of steps"
    r = server.post("/bad_progress", json={})
    assert r.status_code == 500
    assert "yielded the progress 7: yield a number between 0 and 1" in r.json()["error"]


def test_commands_cannot_take_the_new_route_names():
    registry = modelcloud.Registry()
    for name in ("ws", "jobs"):
        with pytest.raises(ValueError, match="taken by the server's own route"):
            registry.command(name)(lambda model, inputs: {})


# -- Server-Sent Events ------------------------------------------------------------------------------
def test_sse_streams_each_yield_as_it_happens(server):
    start = time.monotonic()
    with server.session.post(
        server.url + "/count",
        json={"n": 5, "delay": 0.25, "tag": "sse"},
        headers={"Accept": "text/event-stream"},
        stream=True,
        timeout=30,
    ) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert r.headers["Cache-Control"] == "no-cache"
        lines = r.iter_lines(decode_unicode=True)
        assert next(lines) == "event: output"
        first = time.monotonic() - start
        rest = read_events(r)
    total = time.monotonic() - start
    assert first < 0.9 < total  # the first event came as it happened, not with the last
    outputs = [data for name, data in rest if name == "output"]
    assert [o["outputs"]["value"] for o in outputs] == [1, 2, 3, 4]
    assert [o["progress"] for o in outputs] == [0.4, 0.6, 0.8, 1.0]
    assert rest[-1] == ("succeeded", {"outputs": {"value": 4, "label": "step 4"}})


def test_sse_progress_only_events_failure_and_bad_inputs(server):
    with server.session.post(
        server.url + "/ticks", json={}, headers={"Accept": "text/event-stream"}, stream=True
    ) as r:
        events = read_events(r)
    assert events == [
        ("progress", {"progress": 0.0}),
        ("progress", {"progress": 0.25}),
        ("progress", {"progress": 0.5}),
        ("progress", {"progress": 0.75}),
        ("output", {"progress": 1.0, "outputs": {"done": "yes"}}),
        ("succeeded", {"outputs": {"done": "yes"}}),
    ]
    with server.session.post(
        server.url + "/broken", json={}, headers={"Accept": "text/event-stream"}, stream=True
    ) as r:
        events = read_events(r)
    assert events == [
        ("output", {"outputs": {"value": 1}}),
        ("failed", {"error": "Error during inference: RuntimeError: the model ran out of steps"}),
    ]
    # Inputs that do not pass: a plain JSON error with its status, before any event.
    r = server.post("/count", json={"n": "many"}, headers={"Accept": "text/event-stream"})
    assert r.status_code == 400
    assert r.json() == {"error": "Input 'n' must be a number, got the text 'many'.", "field": "n"}
    # A plain function over SSE: one output event, then succeeded.
    with server.session.post(
        server.url + "/plain", json={"x": 2}, headers={"Accept": "text/event-stream"}, stream=True
    ) as r:
        assert read_events(r) == [
            ("output", {"outputs": {"y": 4}}),
            ("succeeded", {"outputs": {"y": 4}}),
        ]


def test_an_sse_client_that_goes_away_stops_the_generator(server, logs):
    r = server.session.post(
        server.url + "/count",
        json={"n": 100, "delay": 0.1, "tag": "sse-gone"},
        headers={"Accept": "text/event-stream"},
        stream=True,
        timeout=30,
    )
    lines = r.iter_lines(decode_unicode=True)
    seen = 0
    for line in lines:
        if line.startswith("event: output"):
            seen += 1
            if seen == 2:
                break
    r.close()  # the client goes away mid-stream
    wait_until(lambda: server.get("/healthcheck").ok)
    time.sleep(0.6)
    stopped_at = steps(logs, "sse-gone")
    time.sleep(0.5)
    assert steps(logs, "sse-gone") == stopped_at < 10  # stopped, within a step or two of leaving
    # and the worker is free again
    assert server.post("/plain", json={"x": 1}, timeout=5).json() == {"y": 2}


def test_a_client_that_reads_slowly_holds_the_generator_back(server, logs):
    with server.session.post(
        server.url + "/count",
        json={"n": 100000, "pad": 65536, "tag": "slow-reader"},
        headers={"Accept": "text/event-stream"},
        stream=True,
        timeout=30,
    ) as r:
        time.sleep(1.5)  # reads nothing: the socket's buffers fill, then the server's queue
        held = steps(logs, "slow-reader")
        time.sleep(0.5)
        assert steps(logs, "slow-reader") == held < 2000  # waiting at its yield, not running on
        assert r.raw.read(100).startswith(b"event: output")
    wait_until(lambda: server.post("/plain", json={"x": 1}, timeout=10).ok, timeout=15)


def test_health_answers_while_a_generator_runs(server):
    r = server.post(
        "/count", json={"n": 8, "delay": 0.1, "tag": "health"}, headers={"Prefer": "respond-async"}
    )
    url = r.headers["Location"]
    wait_until(lambda: server.get(url).json()["status"] == "running", timeout=10)
    start = time.monotonic()
    assert server.get("/healthcheck").json() == {"status": "RUNNING", "ongoing": 0}
    assert time.monotonic() - start < 0.3
    wait_until(lambda: server.get(url).json()["status"] == "succeeded", timeout=10)


# -- WebSocket (Runway's protocol) -----------------------------------------------------------------
async def ws_session(url: str, messages: list, until: int, cancel_after: int = 0) -> list:
    """Send ``messages``; collect what comes back until ``until`` terminal messages; send a cancel
    for the first run after ``cancel_after`` outputs (0: never)."""
    ws = await websocket_connect(url.replace("http://", "ws://"))
    for m in messages:
        await ws.write_message(json.dumps(m))
    got, ended, outputs = [], 0, 0
    while ended < until:
        raw = await asyncio.wait_for(ws.read_message(), 20)
        assert raw is not None, got
        msg = json.loads(raw)
        got.append(msg)
        if msg["type"] == "output":
            outputs += 1
            if outputs == cancel_after:
                await ws.write_message(json.dumps({"type": "cancel", "id": msg["id"]}))
        if msg["type"] in ("succeeded", "failed", "cancelled"):
            ended += 1
    ws.close()
    return got


def test_websocket_runs_a_generator_with_progress(server):
    got = asyncio.run(
        ws_session(
            server.url + "/ws",
            [
                {
                    "type": "submit",
                    "id": "a1",
                    "command": "count",
                    "inputData": {"n": 3, "tag": "ws"},
                }
            ],
            1,
        )
    )
    assert [m["type"] for m in got] == ["started", "output", "output", "output", "succeeded"]
    assert {m["id"] for m in got} == {"a1"}
    assert [m["progress"] for m in got[1:4]] == [1 / 3, 2 / 3, 1.0]
    assert [m["outputData"]["value"] for m in got[1:4]] == [0, 1, 2]
    assert got[-1]["outputData"] == {"value": 2, "label": "step 2"}
    assert isinstance(got[-1]["timeElapsed"], int)
    # Runway's own path: the WebSocket at /, while GET / is still the manifest.
    assert "commands" in server.get("/").json()
    got = asyncio.run(
        ws_session(
            server.url + "/", [{"type": "submit", "command": "plain", "inputData": {"x": 5}}], 1
        )
    )
    assert [m["type"] for m in got] == ["started", "output", "succeeded"]
    assert got[-1]["outputData"] == {"y": 10}


def test_websocket_failures_are_sentences(server):
    got = asyncio.run(
        ws_session(
            server.url + "/ws",
            [
                {"type": "submit", "id": "x", "command": "nope", "inputData": {}},
                {"type": "submit", "id": "y", "command": "count", "inputData": {"n": "many"}},
                {"type": "submit", "id": "z", "command": "broken"},
                "not an object",
            ],
            4,
        )
    )
    failed = {m["id"]: m for m in got if m["type"] == "failed"}
    assert failed["x"]["error"].startswith("There is no command 'nope'")
    assert failed["y"] == {
        "type": "failed",
        "id": "y",
        "error": "Input 'n' must be a number, got the text 'many'.",
        "field": "n",
    }
    assert (
        failed["z"]["error"] == "Error during inference: RuntimeError: the model ran out of steps"
    )
    assert failed[None]["error"].startswith("Messages are JSON objects")


def test_websocket_cancel_stops_the_generator_within_one_yield(server, logs):
    got = asyncio.run(
        ws_session(
            server.url + "/ws",
            [
                {
                    "type": "submit",
                    "id": "c",
                    "command": "count",
                    "inputData": {"n": 100, "delay": 0.1, "tag": "ws-cancel"},
                }
            ],
            1,
            cancel_after=2,
        )
    )
    assert got[-1] == {"type": "cancelled", "id": "c"}
    # Two outputs seen, the cancel sent: the generator may have started one more step (it was
    # sleeping in it) and then stopped at that yield.
    assert 2 <= steps(logs, "ws-cancel") <= 4
    time.sleep(0.4)
    assert steps(logs, "ws-cancel") <= 4


def test_closing_the_websocket_stops_its_runs(server, logs):
    async def leave() -> None:
        ws = await websocket_connect(server.url.replace("http://", "ws://") + "/ws")
        await ws.write_message(
            json.dumps(
                {
                    "type": "submit",
                    "id": "g",
                    "command": "count",
                    "inputData": {"n": 100, "delay": 0.1, "tag": "ws-gone"},
                }
            )
        )
        for _ in range(3):  # started, then two outputs
            await ws.read_message()
        ws.close()

    asyncio.run(leave())
    time.sleep(0.5)
    stopped_at = steps(logs, "ws-gone")
    time.sleep(0.4)
    assert steps(logs, "ws-gone") == stopped_at <= 5


# -- async jobs ---------------------------------------------------------------------------------------
def test_a_job_through_its_whole_life(server):
    r = server.post(
        "/count", json={"n": 6, "delay": 0.15, "tag": "job"}, headers={"Prefer": "respond-async"}
    )
    assert r.status_code == 202
    job = r.json()
    assert r.headers["Location"] == f"/jobs/{job['id']}" == job["url"]
    assert r.headers["Preference-Applied"] == "respond-async"
    assert job["status"] in ("queued", "running") and job["outputs"] is None
    assert len(job["id"]) >= 20  # unguessable: the id is the key to the outputs
    partial = wait_until(
        lambda: (
            (j := server.get(job["url"]).json())["status"] == "running"
            and j["outputs"] is not None
            and j
        ),
        timeout=10,
    )
    assert 0 < partial["progress"] < 1 and partial["outputs"]["label"].startswith("step ")
    done = wait_until(
        lambda: (j := server.get(job["url"]).json())["status"] == "succeeded" and j, timeout=10
    )
    assert done["outputs"] == {"value": 5, "label": "step 5"} and done["progress"] == 1.0
    assert done["error"] is None and done["finished_at"] >= done["started_at"]
    # DELETE on a finished job forgets it.
    assert server.session.delete(server.url + job["url"]).json()["status"] == "succeeded"
    r = server.get(job["url"])
    assert r.status_code == 404
    assert r.json()["error"].startswith(f"There is no job '{job['id']}' here")


def test_a_failing_job_and_a_job_with_bad_inputs(server):
    job = server.post("/broken", json={}, headers={"Prefer": "respond-async"}).json()
    done = wait_until(lambda: (j := server.get(job["url"]).json())["status"] == "failed" and j)
    assert done["error"] == "Error during inference: RuntimeError: the model ran out of steps"
    assert done["outputs"] == {"value": 1}  # the last partial outputs stay readable
    job = server.post("/count", json={"n": "x"}, headers={"Prefer": "respond-async"}).json()
    done = wait_until(lambda: (j := server.get(job["url"]).json())["status"] == "failed" and j)
    assert done["field"] == "n" and done["error"].startswith("Input 'n' must be a number")
    # Not JSON at all: refused before any job exists.
    r = server.post("/count", data=b"{", headers={"Prefer": "respond-async"})
    assert r.status_code == 400


def test_delete_cancels_a_running_generator_at_its_next_yield(server, logs):
    job = server.post(
        "/count",
        json={"n": 100, "delay": 0.1, "tag": "job-cancel"},
        headers={"Prefer": "respond-async"},
    ).json()
    wait_until(lambda: steps(logs, "job-cancel") >= 3, timeout=10)
    r = server.session.delete(server.url + job["url"])
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    at_cancel = steps(logs, "job-cancel")
    time.sleep(0.5)
    assert steps(logs, "job-cancel") <= at_cancel + 1  # at most the step it was in
    assert server.get(job["url"]).json()["status"] == "canceled"


def test_a_canceled_plain_job_finishes_but_its_result_is_dropped_and_queued_jobs_wait(server, logs):
    first = server.post(
        "/plain",
        json={"x": 1, "delay": 0.6, "tag": "job-plain"},
        headers={"Prefer": "respond-async"},
    ).json()
    # One worker (ALGOLINK_CONCURRENCY=1): the second job waits in the queue.
    second = server.post(
        "/plain", json={"x": 2, "tag": "job-queued"}, headers={"Prefer": "respond-async"}
    ).json()
    assert server.get(second["url"]).json()["status"] == "queued"
    wait_until(lambda: server.get(first["url"]).json()["status"] == "running", timeout=5)
    assert server.session.delete(server.url + first["url"]).json()["status"] == "canceled"
    # Canceled while queued: it never runs.
    assert server.session.delete(server.url + second["url"]).json()["status"] == "canceled"
    wait_until(lambda: steps(logs, "job-plain") == 1, timeout=5)  # the function finished
    time.sleep(0.3)
    assert server.get(first["url"]).json() | {"started_at": None, "finished_at": None} == {
        **first,
        "status": "canceled",
        "started_at": None,
        "finished_at": None,
    }
    assert steps(logs, "job-queued") == 0


def test_finished_jobs_expire_by_count_and_by_time(tmp_path, logs):
    path = tmp_path / "cloud_model.py"
    path.write_text(MODEL)
    proc = start_script(
        path, env={"STEP_LOGS": str(logs), "ALGOLINK_JOBS_KEEP": "2", "ALGOLINK_JOBS_TTL": "2"}
    )
    try:
        urls = []
        for x in range(3):
            job = proc.post("/plain", json={"x": x}, headers={"Prefer": "respond-async"}).json()
            wait_until(lambda job=job: proc.get(job["url"]).json()["status"] == "succeeded")
            urls.append(job["url"])
        assert proc.get(urls[0]).status_code == 404  # the oldest of three, past the count of 2
        assert [proc.get(u).json()["outputs"] for u in urls[1:]] == [{"y": 2}, {"y": 4}]
        time.sleep(2.2)
        assert [proc.get(u).status_code for u in urls[1:]] == [404, 404]  # past 2 s
        # A bad setting is one sentence, and the server does not start.
        bad = start_script(
            path, env={"STEP_LOGS": str(logs), "ALGOLINK_JOBS_KEEP": "lots"}, wait=False
        )
        assert bad.wait_exit() == 2
        assert "ALGOLINK_JOBS_KEEP='lots' is not a whole number." in bad.output
    finally:
        proc.stop()


def test_a_full_queue_refuses_a_job(tmp_path, logs):
    path = tmp_path / "cloud_model.py"
    path.write_text(MODEL)
    proc = start_script(path, env={"STEP_LOGS": str(logs), "ALGOLINK_MAX_QUEUE": "1"})
    try:
        r = proc.post("/plain", json={"x": 1, "delay": 0.5}, headers={"Prefer": "respond-async"})
        assert r.status_code == 202
        r = proc.post("/plain", json={"x": 1}, headers={"Prefer": "respond-async"})
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert "busy" in r.json()["error"]
    finally:
        proc.stop()


def test_cors_preflight_allows_the_new_headers_and_delete(server):
    r = requests.options(server.url + "/jobs/abc", timeout=5)
    assert "DELETE" in r.headers["Access-Control-Allow-Methods"]
    assert "Prefer" in r.headers["Access-Control-Allow-Headers"]
    assert "Location" in r.headers["Access-Control-Expose-Headers"]


# -- the Python client and `algolink predict` --------------------------------------------------------
def test_the_client_streams_a_generator_and_stopping_early_stops_it(server, logs):
    client = Client(url=server.url)
    events = list(client.stream("count", n=3, tag="client-stream"))
    assert [e.event for e in events] == ["output", "output", "output", "succeeded"]
    assert [e.progress for e in events] == [1 / 3, 2 / 3, 1.0, 1.0]
    assert [e.outputs["value"] for e in events] == [0, 1, 2, 2]
    assert list(client.stream("ticks"))[0] == StreamEvent("progress", 0.0, None)
    with pytest.raises(PredictError) as e:
        list(client.stream("broken"))
    assert e.value.status == 500 and "ran out of steps" in e.value.message
    with pytest.raises(PredictError) as e:
        list(client.stream("count", n="many"))
    assert e.value.status == 400 and e.value.field == "n"
    # Leaving the loop closes the connection: the command stops at its next yield.
    for event in client.stream("count", n=100, delay=0.1, tag="client-gone"):
        if event.outputs["value"] == 1:
            break
    time.sleep(0.5)
    stopped_at = steps(logs, "client-gone")
    time.sleep(0.4)
    assert steps(logs, "client-gone") == stopped_at < 8


def test_the_client_submits_jobs_waits_and_cancels(server, logs):
    client = Client(url=server.url)
    job = client.submit("count", n=4, delay=0.1, tag="client-job")
    assert job.status in ("queued", "running") and job.url == f"/jobs/{job.id}"
    assert job.wait(timeout=10) == {"value": 3, "label": "step 3"}
    assert job.status == "succeeded" and job.progress == 1.0
    again = client.job(job_id=job.id)
    assert again.outputs == job.outputs and again.spec["name"] == "count"
    job = client.submit("count", n=100, delay=0.1, tag="client-cancel")
    wait_until(lambda: job.refresh().outputs is not None, timeout=10)
    assert job.status == "running" and 0 < job.progress < 1
    assert job.cancel().status == "canceled"
    with pytest.raises(PredictError, match=f"Job {job.id} was canceled."):
        job.wait(timeout=5)
    failing = client.submit("broken")
    with pytest.raises(PredictError) as e:
        failing.wait(timeout=10)
    assert e.value.status == 500 and "ran out of steps" in e.value.message
    slow = client.submit("count", n=100, delay=0.1, tag="client-slow")
    with pytest.raises(PredictError, match=r"is still running after 0.3 s: wait longer"):
        slow.wait(timeout=0.3)
    slow.cancel()


def test_algolink_predict_shows_progress_on_stderr_and_prints_the_final_json(server, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "algolink_jupyter.cli", "predict", server.url, "count", "-i", "n=4"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"value": 3, "label": "step 3"}
    assert r.stderr.splitlines() == [
        f"[{'#' * 8}{'.' * 22}]  25%",
        f"[{'#' * 15}{'.' * 15}]  50%",
        f"[{'#' * 22}{'.' * 8}]  75%",
        f"[{'#' * 30}] 100%",
    ]


# -- modelcloud.testing: the in-process test client --------------------------------------------------
def in_process_model(record: list) -> modelcloud.Registry:
    from modelcloud.data_types import number, text

    registry = modelcloud.Registry()

    @registry.setup(options={"scale": number(default=1)})
    def setup(opts):
        return opts["scale"]

    @registry.command("count", inputs={"n": number(default=3)}, outputs={"value": number()})
    def count(model, inputs):
        try:
            for i in range(int(inputs["n"])):
                record.append(i)
                yield {"value": i * model}, (i + 1) / inputs["n"]
        finally:
            record.append("closed")

    @registry.command("greet", inputs={"name": text(max_length=5)}, outputs={"text": text()})
    def greet(model, inputs):
        return {"text": "hi " + inputs["name"]}

    return registry


def test_the_testing_client_runs_commands_in_process():
    record: list = []
    client = TestClient(in_process_model(record), options={"scale": 10})
    assert client.run("greet", name="bo") == {"text": "hi bo"}
    assert client.run("count", n=2) == {"value": 10}
    answer = client.call("greet", {"name": "much too long"})
    assert not answer.ok and answer.status == 400 and answer.field == "name"
    assert answer.json() == {"error": answer.error, "field": "name"}
    assert answer.error.startswith("Input 'name' must be at most 5 characters")
    assert client.call("nope").status == 404
    with pytest.raises(modelcloud.ModelCloudError) as e:
        client.run("greet")
    assert e.value.status == 400 and e.value.message.startswith("Input 'name' is missing")
    assert client.meta()["commands"][0]["streams"] is True
    validate(client.openapi())
    client.setup(scale=2)
    assert [(e.event, e.progress, e.outputs) for e in client.stream("count", n=2)] == [
        ("output", 0.5, {"value": 0}),
        ("output", 1.0, {"value": 2}),
        ("succeeded", 1.0, {"value": 2}),
    ]
    failed = list(client.stream("greet", name="toolong"))
    assert [(e.event, e.status) for e in failed] == [("failed", 400)]
    # Leaving the loop stops the generator at its next yield (its finally block runs).
    record.clear()
    for event in client.stream("count", n=1000):
        if event.outputs["value"] == 4:
            break
    assert record == [0, 1, 2, "closed"]  # value 4 is step 2 (scale 2)
    with pytest.raises(TypeError, match="must be JSON values"):
        client.run("greet", name=object())


# -- the notebook's test form ------------------------------------------------------------------------
def test_the_test_form_shows_progress_and_outputs_as_they_come():
    from algolink_jupyter.widgets import for_command

    record: list = []
    registry = in_process_model(record)
    registry.run_setup({"scale": 1})
    form = for_command(registry, "count")
    assert form.progress.layout.display == "none"  # hidden until a run
    seen_progress: list = []
    seen_outputs: list = []
    form.progress.observe(lambda change: seen_progress.append(change["new"]), "value")
    form.output_box.observe(
        lambda change: seen_outputs.append(
            form.output_widgets["value"].value if form.output_widgets else None
        ),
        "children",
    )
    form.input_widgets["n"].value = 4
    form.run_button.click()
    assert form.error_message == ""
    assert seen_progress == [0.25, 0.5, 0.75, 1.0]
    shown = [v for v in seen_outputs if v is not None]
    assert shown == [f"<code>{i}</code>" for i in (0, 1, 2, 3, 3)]
    assert form.events == 4 and form.progress.bar_style == "success"
    assert form.last_outputs == {"value": 3}
    # A plain command's form has no progress bar.
    assert for_command(registry, "greet").progress.layout.display == "none"
    form.input_widgets["n"].value = -1  # no yields at all: an error, and the bar says so
    form.run_button.click()
    assert "yielded no outputs" in form.error_message
    assert form.progress.bar_style == "danger"


def test_the_websocket_routes_answer_plain_http_in_json(server):
    r = server.get("/ws")
    assert r.status_code == 400
    assert r.json() == {
        "error": "/ws is a WebSocket: open it with a WebSocket client (GET with 'Upgrade: websocket')."
    }
    r = server.post("/", json={})
    assert r.status_code == 405 and r.json() == {"error": "POST is not allowed on /: use GET."}
    assert requests.options(server.url + "/", timeout=5).status_code == 204


# -- a notebook kernel: the test form's updates as they happen, the kernel's server streams ----------
KERNEL_CELL = """%%algolink_command slow_count --inputs "n=number" --outputs "value=number"
def slow_count(model, inputs):
    import time
    for i in range(int(inputs["n"])):
        time.sleep(0.1)
        yield {"value": i}, (i + 1) / inputs["n"]
"""


def test_in_a_kernel_the_form_updates_as_it_runs_and_the_server_streams(tmp_path):
    from datetime import datetime

    from support import Kernel

    kernel = Kernel(tmp_path, env={"JUPYTER_RUNTIME_DIR": str(tmp_path)})
    try:
        kernel.run("%load_ext algolink_jupyter")
        kernel.run(KERNEL_CELL)
        kernel.run(
            "from algolink_jupyter import kernel as _k\n"
            "from algolink_jupyter.widgets import for_command\n"
            "form = for_command(_k.registry, 'slow_count')\n"
            "form.input_widgets['n'].value = 4\n"
            "bar = form.progress.model_id"
        )
        bar = kernel.eval("bar")
        msg_id = kernel.execute("form.run_button.click()")
        updates = []  # (when the kernel sent it, the bar's value)
        while True:
            msg = kernel.kc.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            data = msg["content"].get("data", {})
            if msg["msg_type"] == "comm_msg" and msg["content"].get("comm_id") == bar:
                value = data.get("state", {}).get("value")
                if value:
                    sent = msg["header"]["date"]
                    if isinstance(sent, str):
                        sent = datetime.fromisoformat(sent)
                    updates.append((sent, value))
        assert [v for _t, v in updates] == [0.25, 0.5, 0.75, 1.0]
        gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(updates, updates[1:])]
        assert min(gaps[:2]) > 0.05  # each sent as its yield happened, not all at the end
        # The kernel's own server streams too (its token as a query for WebSocket clients).
        info = kernel.eval("__import__('algolink_jupyter').serving_info()")
        with requests.post(
            f"{info['url']}/slow_count",
            json={"n": 2},
            headers={"Accept": "text/event-stream", "Authorization": f"token {info['token']}"},
            stream=True,
            timeout=30,
        ) as r:
            assert [name for name, _d in read_events(r)] == ["output", "output", "succeeded"]
        got = asyncio.run(
            ws_session(
                f"{info['url']}/ws?token={info['token']}",
                [{"type": "submit", "command": "slow_count", "inputData": {"n": 1}}],
                1,
            )
        )
        assert [m["type"] for m in got] == ["started", "output", "succeeded"]
        r = requests.get(f"{info['url']}/ws", timeout=10)
        assert r.status_code == 401  # no token, no socket
    finally:
        kernel.shutdown()
