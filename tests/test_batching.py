"""Adaptive batching against a real model server process: requests that arrive together reach the model as
one call, every client gets its own answer or its own error, and a lone client is not made to wait."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import modelcloud
from modelcloud.data_types import number, text

APP = """
import json, threading, time
import modelcloud
from modelcloud.data_types import image, number, text

BATCHES = []  # the x values of every batch the model got, in order
LOCK = threading.Lock()

def record(batch):
    with LOCK:
        BATCHES.append([b["x"] for b in batch])

@modelcloud.command("double", inputs={"x": number(min=-1000, max=1000, step=1)},
                    outputs={"y": number()}, batch=modelcloud.batching(max_size=8, max_latency_ms=50))
def double(model, batch):
    record(batch)
    time.sleep(0.02)  # a model whose call costs about the same for 1 or 8 inputs
    if any(b["x"] == 13 for b in batch):
        raise ValueError("unlucky thirteen")
    if any(b["x"] == 14 for b in batch):
        return []  # no results at all: a broken batch function
    if any(b["x"] == 15 for b in batch):
        return [{"y": b["x"] * 2} if b["x"] != 15 else {"y": "fifteen"} for b in batch]
    return {"y": [b["x"] * 2 for b in batch]}  # the dict-of-columns form

@modelcloud.command("slow", inputs={"x": number()}, outputs={"y": number()},
                    batch=modelcloud.batching(max_size=4, max_latency_ms=5))
def slow(model, batch):
    record(batch)
    time.sleep(0.3)  # far slower than its latency budget
    return [{"y": b["x"] + 1} for b in batch]

@modelcloud.command("patient", inputs={"x": number()}, outputs={"y": number()},
                    batch=modelcloud.batching(max_size=32, max_latency_ms=400))
def patient(model, batch):
    record(batch)
    if any(b["x"] == 13 for b in batch):
        raise ValueError("unlucky thirteen")
    return [{"y": b["x"]} for b in batch]

@modelcloud.command("invert", inputs={"picture": image()},
                    outputs={"picture": image(default_output_format="PNG")},
                    batch=modelcloud.batching(max_size=16, max_latency_ms=20))
def invert(model, batch):
    from PIL import ImageOps
    # A 1x1 picture answers something that is not a picture: its encoding fails, alone.
    return [{"picture": "not a picture" if b["picture"].size == (1, 1)
             else ImageOps.invert(b["picture"].convert("RGB"))} for b in batch]

@modelcloud.command("batches", outputs={"batches": text()})
def batches(model, inputs):
    with LOCK:
        return json.dumps(BATCHES)

@modelcloud.command("forget", outputs={"ok": text()})
def forget(model, inputs):
    with LOCK:
        BATCHES.clear()
    return "ok"

if __name__ == "__main__":
    modelcloud.run()
"""


@pytest.fixture
def server(model_server):
    return model_server(APP)


def _batches(server) -> list:
    return json.loads(server.post("/batches", json={}).json()["batches"])


def _call_all(server, command: str, values: list, workers: int = 32, field: str = "x") -> list:
    """POST every value (as ``{field: value}``) at once from ``workers`` threads, each with its own
    connection: ``(status, answer)`` of each, in order."""
    start = threading.Barrier(min(workers, len(values)))

    def call(x):
        with requests.Session() as s:
            try:
                start.wait(10)
            except threading.BrokenBarrierError:
                pass
            r = s.post(f"{server.url}/{command}", json={field: x}, timeout=60)
            return r.status_code, r.json()

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(call, values))


def test_batched_command_gathers_concurrent_requests_and_answers_each_its_own(server):
    values = list(range(100, 164))
    answers = _call_all(server, "double", values)
    assert answers == [(200, {"y": 2 * x}) for x in values]
    batches = _batches(server)
    assert sorted(x for b in batches for x in b) == values  # each request reached the model once
    assert max(len(b) for b in batches) > 1
    assert max(len(b) for b in batches) <= 8  # max_size holds
    assert len(batches) < len(values)


def test_the_manifest_shows_the_batch_settings(server):
    commands = {c["name"]: c for c in server.get("/meta").json()["commands"]}
    assert commands["double"]["batch"] == {"maxSize": 8, "maxLatencyMs": 50.0}
    assert "batch" not in commands["batches"]
    assert commands["double"] == server.get("/double").json()


def test_one_bad_input_fails_alone(server):
    values = list(range(200, 231)) + [5000]  # 5000 breaks the input's max
    answers = _call_all(server, "double", values)
    for x, (status, body) in zip(values, answers):
        if x == 5000:
            assert status == 400
            assert body == {"error": "Input 'x' must be at most 1000, got 5000.", "field": "x"}
        else:
            assert (status, body) == (200, {"y": 2 * x})
    assert 5000 not in [x for b in _batches(server) for x in b]


def test_a_raising_batch_fails_each_of_its_requests_with_a_sentence_and_the_server_goes_on(server):
    values = list(range(300, 331)) + [13]
    answers = dict(zip(values, _call_all(server, "double", values)))
    unlucky = next(b for b in _batches(server) if 13 in b)
    for x, (status, body) in answers.items():
        if x in unlucky:
            assert status == 500
            assert body["error"] == (
                f"Error during inference (a batch of {len(unlucky)}): ValueError: unlucky thirteen"
            )
            assert "traceback" not in body
        else:
            assert (status, body) == (200, {"y": 2 * x})
    assert server.post("/double", json={"x": 21}).json() == {"y": 42}


def test_a_batch_function_returning_the_wrong_count_is_a_sentence_for_its_requests(server):
    r = server.post("/double", json={"x": 14})
    assert r.status_code == 500
    assert r.json()["error"] == (
        "Batched command 'double' returned 0 results for a batch of 1: return exactly one outputs "
        "dict per input, in order."
    )
    values = [14] + list(range(400, 415))
    answers = dict(zip(values, _call_all(server, "double", values, workers=16)))
    batch = [b for b in _batches(server) if 14 in b][-1]  # its batch in the concurrent round
    for x in batch:
        status, body = answers[x]
        assert status == 500
        assert body["error"] == (
            f"Batched command 'double' returned 0 results for a batch of {len(batch)}: return "
            "exactly one outputs dict per input, in order."
        )


def test_an_invalid_output_fails_only_its_own_request(server):
    values = [15] + list(range(500, 515))
    answers = dict(zip(values, _call_all(server, "double", values, workers=16)))
    status, body = answers[15]
    assert status == 500
    assert body["error"].startswith("Command 'double' returned an invalid 'y'")
    assert all(answers[x] == (200, {"y": 2 * x}) for x in values if x != 15)


def test_a_command_slower_than_its_latency_budget_still_answers(server):
    values = list(range(10))
    answers = _call_all(server, "slow", values, workers=10)
    assert answers == [(200, {"y": x + 1}) for x in values]
    assert max(len(b) for b in _batches(server)) <= 4


def test_a_lone_client_is_not_made_to_wait_for_a_batch(server):
    server.post("/patient", json={"x": 0})  # warm up
    took = []
    # Enough requests for the command to count as fast (its batches then run on the server's loop):
    # before and after, each is a batch of one.
    for x in range(40):
        start = time.perf_counter()
        assert server.post("/patient", json={"x": x + 100}).json() == {"y": x + 100}
        took.append(time.perf_counter() - start)
    # Its budget is 400 ms; one client alone gets batches of one that leave at once.
    assert sorted(took)[len(took) // 2] < 0.1, took
    # A lone request whose batch raises fails with the batch's sentence, and the next one answers.
    answer = server.post("/patient", json={"x": 13})
    assert answer.status_code == 500
    assert answer.json()["error"] == (
        "Error during inference (a batch of 1): ValueError: unlucky thirteen"
    )
    assert server.post("/patient", json={"x": 14}).json() == {"y": 14}
    batches = _batches(server)
    assert all(len(b) == 1 for b in batches)
    assert [b[0] for b in batches] == [0, *range(100, 140), 13, 14]
    # The lone client is answered at once, outside the batch queue; as soon as others connect, their
    # requests are gathered again (one connection open is what "alone" means).
    server.post("/forget", json={})
    values = list(range(200, 264))
    assert _call_all(server, "patient", values, workers=16) == [(200, {"y": x}) for x in values]
    batches = _batches(server)
    assert sorted(x for b in batches for x in b) == values
    assert max(len(b) for b in batches) > 1, batches


def test_batching_settings_are_checked_when_declared():
    with pytest.raises(ValueError, match="max_size must be between 1 and 4096, got 0"):
        modelcloud.batching(max_size=0)
    with pytest.raises(ValueError, match="max_latency_ms must be above 0"):
        modelcloud.batching(max_latency_ms=0)
    with pytest.raises(TypeError, match="batch must be modelcloud.batching"):
        modelcloud.Registry().command("c", outputs={"y": text()}, batch="fast")(lambda m, b: b)
    registry = modelcloud.Registry()
    registry.command("c", inputs={"x": number()}, outputs={"y": number()}, batch=16)(
        lambda model, batch: [{"y": b["x"] * 3} for b in batch]
    )
    registry.run_setup()
    # In-process (the notebook's test form, the export's recording), a batched command runs a batch of one.
    assert registry.run_command("c", {"x": 2}) == {"y": 6}
    assert registry.manifest()["commands"][0]["batch"] == {"maxSize": 16, "maxLatencyMs": 10.0}


def test_the_cost_estimate_is_the_least_squares_line_of_the_recent_runs():
    """The batcher's estimate of a batch's run time (what it weighs waiting against) is kept in running
    sums: over thousands of runs it must stay the least squares fit of the last COST_WINDOW of them."""
    import random

    from modelcloud.batching import COST_WINDOW, CostModel

    def fit(runs: list) -> tuple:
        n = len(runs)
        mean_s, mean_t = sum(s for s, _ in runs) / n, sum(t for _, t in runs) / n
        var = sum((s - mean_s) ** 2 for s, _ in runs)
        if var == 0:
            return mean_t, 0.0
        slope = max(sum((s - mean_s) * (t - mean_t) for s, t in runs) / var, 0.0)
        return max(mean_t - slope * mean_s, 0.0), slope

    rng = random.Random(7)
    cost, runs = CostModel(), []
    for i in range(10 * COST_WINDOW + 5):
        size = 4 if i < 3 else rng.choice([1, 1, 2, 8, 32])  # one size at first: all of it is fixed
        seconds = 0.0004 + 0.00003 * size + rng.random() * 0.0002
        cost.record(size, seconds)
        runs = (runs + [(size, seconds)])[-COST_WINDOW:]
        fixed, per_item = fit(runs)
        assert cost.fixed == pytest.approx(fixed, rel=1e-9, abs=1e-15), i
        assert cost.per_item == pytest.approx(per_item, rel=1e-9, abs=1e-15), i
    assert cost.per_item > 0 and cost.estimate(32) > cost.estimate(1)


def test_the_notebook_magic_batches_and_the_export_keeps_it(tmp_path):
    from support import Kernel, start_script

    kernel = Kernel(tmp_path, env={"JUPYTER_RUNTIME_DIR": str(tmp_path)})
    try:
        kernel.run("%load_ext algolink_jupyter\nimport modelcloud")
        bad = kernel.run(
            '%%algolink_command triple --inputs "x=number" --outputs "y=number" --max-latency 5\n'
            "def triple(model, batch):\n    return batch",
            check=False,
        )
        assert "--max-latency goes with --batch N (the largest batch)" in bad["stderr"], bad
        kernel.run(
            '%%algolink_command triple --inputs "x=number" --outputs "y=number" --batch 8 '
            "--max-latency 5\n"
            "def triple(model, batch):\n"
            '    return [{"y": inputs["x"] * 3} for inputs in batch]'
        )
        manifest = kernel.eval("modelcloud.default_registry.manifest()")
        assert manifest["commands"][0]["batch"] == {"maxSize": 8, "maxLatencyMs": 5.0}
        # The notebook's test form and the export's recording call it with one input.
        assert kernel.eval('modelcloud.default_registry.run_command("triple", {"x": 2})') == {
            "y": 6
        }
        out = kernel.run("%algolink export bundle", timeout=300, check=False)
        assert out["error"] is None, out
        source = (tmp_path / "bundle" / "cloud_model.py").read_text()
        assert "batch=modelcloud.batching(max_size=8, max_latency_ms=5)," in source
    finally:
        kernel.shutdown()
    server = start_script(tmp_path / "bundle" / "cloud_model.py")
    try:
        assert server.get("/meta").json()["commands"][0]["batch"]["maxSize"] == 8
        answers = _call_all(server, "triple", list(range(16)), workers=16)
        assert answers == [(200, {"y": 3 * x}) for x in range(16)]
    finally:
        server.stop()


def test_a_batched_service_batches_behind_the_hub(tmp_path):
    from hub_process import Hub

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "cloud_model.py").write_text(APP)
    (bundle / "requirements.txt").write_text("")
    (bundle / "algolink.yml").write_text("entrypoint: python cloud_model.py\n")
    hub = Hub(tmp_path / "hub").start()
    try:
        hub.ensure_group("p", "g")
        assert hub.register("p", "g", "doubler", bundle).status_code == 201
        assert hub.publish("p", "doubler").status_code in (200, 202)
        hub.wait_version("p", "doubler", 1)
        meta = hub.session.get(f"{hub.url}/serve/p/doubler/meta", timeout=30).json()
        assert meta["commands"][0]["batch"] == {"maxSize": 8, "maxLatencyMs": 50.0}
        values = list(range(600, 632))
        start = threading.Barrier(len(values))

        def call(x):
            with requests.Session() as s:
                s.headers.update(hub.session.headers)
                start.wait(10)
                r = s.post(f"{hub.url}/serve/p/doubler/double", json={"x": x}, timeout=60)
                return r.status_code, r.json()

        with ThreadPoolExecutor(len(values)) as pool:
            assert list(pool.map(call, values)) == [(200, {"y": 2 * x}) for x in values]
        batches = json.loads(hub.serve("p/doubler/batches", json={}).json()["batches"])
        assert sorted(x for b in batches for x in b) == values
        assert max(len(b) for b in batches) > 1
    finally:
        hub.stop()


def test_the_openapi_document_marks_the_batched_command(server):
    from openapi_spec_validator import validate

    doc = server.get("/openapi.json").json()
    validate(doc)
    assert doc["paths"]["/double"]["post"]["x-algolink-batch"] == {
        "maxSize": 8,
        "maxLatencyMs": 50.0,
    }
    assert "x-algolink-batch" not in doc["paths"]["/batches"]["post"]


def test_a_client_error_raised_by_a_batch_or_a_generator_keeps_its_status():
    """InvalidArgumentError from a command is the client's 400, whether the command is plain, batched
    or yields (the same rule in all three)."""
    from modelcloud.errors import InvalidArgumentError

    registry = modelcloud.Registry()

    def refuse(model, inputs):
        raise InvalidArgumentError("x", "must be even")

    def refuse_batch(model, batch):
        raise InvalidArgumentError("x", "must be even")

    def refuse_later(model, inputs):
        yield {"y": 1}, 0.5
        raise InvalidArgumentError("x", "must be even")

    spec = {"inputs": {"x": number()}, "outputs": {"y": number()}}
    registry.command("plain", **spec)(refuse)
    registry.command("batched", **spec, batch=4)(refuse_batch)
    registry.command("yields", **spec)(refuse_later)
    registry.run_setup()
    for name in ("plain", "batched", "yields"):
        with pytest.raises(InvalidArgumentError) as caught:
            registry.run_command(name, {"x": 3})
        assert caught.value.status == 400 and caught.value.field == "x"
        assert caught.value.message == "Invalid argument 'x': must be even."


def _answer(response) -> tuple:
    """What a client sees of an answer: status, body, and the headers that do not vary by request."""
    varying = {"Date", "Server-Timing", "Content-Length"}
    headers = {k: v for k, v in response.headers.items() if k not in varying}
    return response.status_code, response.json(), headers


def test_a_plain_post_and_a_form_post_to_a_batched_command_get_the_same_answer(server):
    # A small JSON POST is answered without a RequestHandler; a form goes through the handler. Both
    # must answer alike: the same status, body and headers, for a good input and for a bad one.
    url = f"{server.url}/double"
    for x in (21, 5000, 13):
        plain = requests.post(url, json={"x": x}, timeout=30)
        form = requests.post(url, data={"x": str(x)}, timeout=30)
        assert _answer(plain) == _answer(form), x
        assert "Server-Timing" in plain.headers or plain.status_code == 400
    assert _answer(requests.post(url, json={"x": 21}, timeout=30))[:2] == (200, {"y": 42})
    status, body, _ = _answer(requests.post(url, json={"x": 5000}, timeout=30))
    assert status == 400 and body["field"] == "x"


def test_a_client_that_goes_away_while_its_batch_runs_leaves_the_server_answering(server):
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(server.url)
    body = json.dumps({"x": 1}).encode()
    request = (
        f"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    for _ in range(3):
        with socket.create_connection((address.hostname, address.port), timeout=10) as s:
            s.sendall(request)
            time.sleep(0.05)  # its batch (0.3 s) is running: hang up before the answer
    answers = _call_all(server, "slow", [7, 8], workers=2)
    assert answers == [(200, {"y": 8}), (200, {"y": 9})]
    deadline = time.monotonic() + 10
    while requests.get(f"{server.url}/healthcheck", timeout=10).json()["ongoing"] != 0:
        assert time.monotonic() < deadline, "requests of gone clients are still counted as ongoing"
        time.sleep(0.05)


def _png_uri(pixels) -> str:
    import base64
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _pixels(uri: str):
    import base64
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def test_large_pictures_are_decoded_and_encoded_on_other_threads_each_for_its_own_client(server):
    # Noise pictures take milliseconds to decode and encode, so after the first few both move to the
    # codec threads; every client still gets its own picture back, inverted, and the one answer whose
    # encoding fails fails alone, with a sentence.
    import numpy as np

    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (320, 320, 3), dtype=np.uint8) for _ in range(4)]
    uris = [_png_uri(p) for p in pictures] + [_png_uri(np.zeros((1, 1, 3), dtype=np.uint8))]
    order = [i % 4 for i in range(40)] + [4] + [i % 4 for i in range(23)]
    answers = _call_all(server, "invert", [uris[i] for i in order], field="picture")
    for i, (status, body) in zip(order, answers):
        if i == 4:
            assert status == 500 and "picture" in body["error"], body
            continue
        assert status == 200, body
        assert np.array_equal(_pixels(body["picture"]), 255 - pictures[i])
