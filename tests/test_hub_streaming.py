"""Commands that yield, through a real hub's /serve: Server-Sent Events streamed as they happen,
the WebSocket tunnelled, async jobs reachable at the version that runs them, all behind the hub's
token checks exactly as the commands are.

The service counts each step of its generators in memory (``steps`` answers how many a tag took):
that count proves that a cancel, or a client that went away, stopped the generator."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
import requests
from hub_process import PILLOW, Hub, wait_for
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from algolink_jupyter.client import Client, PredictError

pytestmark = pytest.mark.timeout(300)

MODEL = """
import collections, time
import modelcloud
from modelcloud.data_types import number, text

TAG = {tag!r}
STEPS = collections.Counter()


@modelcloud.command(
    "count",
    inputs={{"n": number(default=3), "delay": number(default=0.0), "tag": text(default="x")}},
    outputs={{"value": number(), "label": text()}},
)
def count(model, inputs):
    for i in range(int(inputs["n"])):
        STEPS[inputs["tag"]] += 1
        time.sleep(inputs["delay"])
        yield {{"value": i, "label": TAG}}, (i + 1) / inputs["n"]


@modelcloud.command("steps", inputs={{"tag": text()}}, outputs={{"n": number()}})
def steps(model, inputs):
    return {{"n": STEPS[inputs["tag"]]}}


if __name__ == "__main__":
    modelcloud.run()
"""


def bundle(folder: Path, tag: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloud_model.py").write_text(MODEL.format(tag=tag))
    (folder / "requirements.txt").write_text(f"pillow=={PILLOW}\n")
    (folder / "algolink.yml").write_text(
        "entrypoint: python cloud_model.py\nbuild_steps:\n  - pip install -r requirements.txt\n"
    )
    return folder


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream-bundles")
    h = Hub(tmp_path_factory.mktemp("hub-stream")).start()
    h.ensure_group("gen", "g")
    r = h.register("gen", "g", "svc", bundle(root / "v1", "v1"))
    assert r.status_code == 201, r.text
    assert h.publish("gen", "svc").status_code == 202
    h.wait_version("gen", "svc", 1)
    h.bundle_root = root
    yield h
    h.stop()


def auth(hub: Hub) -> dict:
    return {"Authorization": f"token {hub.token}"}


def steps(hub: Hub, tag: str) -> int:
    r = hub.serve("gen/svc/steps", json={"tag": tag}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["n"]


def sse(hub: Hub, path: str, body: dict, **kw):
    return hub.session.post(
        hub.url + "/serve/" + path,
        json=body,
        headers={"Accept": "text/event-stream", **kw.pop("headers", {})},
        stream=True,
        timeout=30,
        **kw,
    )


def test_sse_through_the_hub_arrives_as_it_happens(hub):
    start = time.monotonic()
    with sse(hub, "gen/svc/count", {"n": 5, "delay": 0.25, "tag": "sse"}) as r:
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert r.headers["Content-Security-Policy"] == "sandbox"
        names, first = [], None
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                names.append(line[7:])
                if first is None:
                    first = time.monotonic() - start
            if line.startswith("data: ") and names[-1] == "output":
                progress = json.loads(line[6:])["progress"]
                assert progress == len(names) / 5
    total = time.monotonic() - start
    assert names == ["output"] * 5 + ["succeeded"]
    assert first < 0.9 < total  # streamed by the hub chunk by chunk, not buffered to the end


def test_sse_through_the_hub_needs_the_token_and_a_gone_client_stops_it(hub):
    r = requests.post(
        hub.url + "/serve/gen/svc/count",
        json={},
        headers={"Accept": "text/event-stream"},
        timeout=10,
    )
    assert r.status_code == 401
    assert "is not public" in r.json()["error"]
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="AlgoLink"'
    r = sse(hub, "gen/svc/count", {"n": 100, "delay": 0.1, "tag": "sse-gone"})
    seen = 0
    for line in r.iter_lines(decode_unicode=True):
        if line == "event: output":
            seen += 1
            if seen == 2:
                break
    r.close()
    time.sleep(0.4)
    stopped_at = steps(hub, "sse-gone")  # answers: the worker is free, the generator stopped
    time.sleep(0.4)
    assert steps(hub, "sse-gone") == stopped_at < 10


async def ws_run(url: str, headers: dict, submit: dict, cancel_after: int = 0) -> list:
    ws = await websocket_connect(HTTPRequest(url.replace("http://", "ws://"), headers=headers))
    await ws.write_message(json.dumps(submit))
    got, outputs = [], 0
    while True:
        msg = json.loads(await asyncio.wait_for(ws.read_message(), 20))
        got.append(msg)
        if msg["type"] == "output":
            outputs += 1
            if outputs == cancel_after:
                await ws.write_message(json.dumps({"type": "cancel", "id": msg["id"]}))
        if msg["type"] in ("succeeded", "failed", "cancelled"):
            break
    ws.close()
    return got


def test_the_websocket_through_the_hub(hub):
    url = hub.url + "/serve/gen/svc/ws"
    submit = {"type": "submit", "id": "r", "command": "count", "inputData": {"n": 3}}
    got = asyncio.run(ws_run(url, auth(hub), submit))
    assert [m["type"] for m in got] == ["started", "output", "output", "output", "succeeded"]
    assert got[-1]["outputData"] == {"value": 2, "label": "v1"}
    # Runway's path, /, and a pinned version
    got = asyncio.run(ws_run(hub.url + "/serve/gen/svc/v1/", auth(hub), submit))
    assert got[-1]["type"] == "succeeded"
    # cancel stops the generator within one yield
    cancel = {
        "type": "submit",
        "id": "c",
        "command": "count",
        "inputData": {"n": 100, "delay": 0.1, "tag": "ws-cancel"},
    }
    got = asyncio.run(ws_run(url, auth(hub), cancel, cancel_after=2))
    assert got[-1] == {"type": "cancelled", "id": "c"}
    assert 2 <= steps(hub, "ws-cancel") <= 4
    # closing the socket (through the hub) stops the run at the service

    async def leave() -> None:
        ws = await websocket_connect(
            HTTPRequest(url.replace("http://", "ws://"), headers=auth(hub))
        )
        gone = {**cancel, "id": "g", "inputData": {**cancel["inputData"], "tag": "ws-gone"}}
        await ws.write_message(json.dumps(gone))
        for _ in range(3):  # started, then two outputs
            await ws.read_message()
        ws.close()

    asyncio.run(leave())
    time.sleep(0.4)
    stopped_at = steps(hub, "ws-gone")
    time.sleep(0.4)
    assert steps(hub, "ws-gone") == stopped_at <= 6
    # the hub's token checks, exactly as for commands
    for headers in ({}, {"Authorization": "token wrong"}):
        command = requests.post(hub.url + "/serve/gen/svc/count", headers=headers, timeout=10)
        assert command.status_code in (401, 403)
        with pytest.raises(HTTPClientError) as e:
            asyncio.run(ws_run(url, headers, submit))
        assert e.value.code == command.status_code
    r = hub.session.get(url, timeout=10)  # not a WebSocket handshake
    assert r.status_code == 400 and "WebSocket" in r.json()["error"]


def test_a_job_through_the_hub_is_found_at_the_version_that_runs_it(hub):
    r = hub.serve(
        "gen/svc/count",
        json={"n": 20, "delay": 0.15, "tag": "job"},
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    location = r.headers["Location"]
    assert location == f"/serve/gen/svc/v1/jobs/{job['id']}" == job["url"]
    running = wait_for(
        lambda: (j := hub.get(location).json())["status"] == "running" and j["outputs"] and j,
        10,
        0.1,
        "the job to run",
    )
    assert 0 < running["progress"] < 1
    # the hub's token checks
    assert requests.get(hub.url + location, timeout=10).status_code == 401
    assert requests.delete(hub.url + location, timeout=10).status_code == 401
    assert hub.get(f"/serve/gen/svc/jobs/{job['id']}").json()["id"] == job["id"]
    assert hub.api("PUT", location).status_code == 405
    # Another version goes online while the job runs: the job stays at v1, where its URL points.
    assert hub.new_version("gen", "svc", bundle(hub.bundle_root / "v2", "v2"))["number"] == 2
    assert hub.publish("gen", "svc", 2).status_code == 202
    hub.wait_version("gen", "svc", 2)
    assert hub.get(location).json()["status"] in ("running", "succeeded")
    r = hub.get(f"/serve/gen/svc/jobs/{job['id']}")  # the online version (v2) never ran it
    assert r.status_code == 404 and "There is no job" in r.json()["error"]
    r = hub.api("DELETE", location)
    assert r.status_code == 200 and r.json()["status"] in ("canceled", "succeeded")
    # a job on the new version, run to its end
    r = hub.serve("gen/svc/count", json={"n": 2}, headers={"Prefer": "respond-async"})
    location = r.headers["Location"]
    assert location.startswith("/serve/gen/svc/v2/jobs/")
    done = wait_for(
        lambda: (j := hub.get(location).json())["status"] == "succeeded" and j, 10, 0.1, "done"
    )
    assert done["outputs"] == {"value": 1, "label": "v2"}


def test_the_python_client_streams_and_submits_through_the_hub(hub):
    client = Client(hub.url, hub.token)
    events = list(client.stream("gen/svc", "count", n=3))
    assert [e.event for e in events] == ["output", "output", "output", "succeeded"]
    assert [e.progress for e in events] == [1 / 3, 2 / 3, 1.0, 1.0]
    job = client.submit("gen/svc", "count", n=2)
    assert job.url.startswith("/serve/gen/svc/v") and job.url.endswith(f"/jobs/{job.id}")
    assert job.wait(timeout=20)["value"] == 1
    with pytest.raises(PredictError) as e:
        list(Client(hub.url, "wrong-token").stream("gen/svc", "count"))
    assert e.value.status in (401, 403)


def handshake(hub: Hub, path: str) -> bytes:
    """A WebSocket handshake for ``path`` on a raw socket: the head of what the hub answers."""
    host, port = hub.url.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: token {hub.token}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                break
            head += data
    return head


def test_only_the_websocket_paths_are_upgraded(hub):
    assert handshake(hub, "/serve/gen/svc/ws").startswith(b"HTTP/1.1 101 ")
    # A handshake aimed at a command goes on as a plain request: its spec, no tunnel.
    for path in ("count", "meta", "v1/openapi.json"):
        head = handshake(hub, f"/serve/gen/svc/{path}")
        assert head.startswith(b"HTTP/1.1 200 ") and b"upgrade" not in head.lower(), head
    # Routes closed to clients stay closed, upgrade or not.
    assert handshake(hub, "/serve/gen/svc/setup").startswith(b"HTTP/1.1 404 ")
    assert handshake(hub, "/serve/gen/svc/healthcheck").startswith(b"HTTP/1.1 404 ")
    assert handshake(hub, "/serve/gen/svc/jobs/x/y").startswith(b"HTTP/1.1 404 ")
