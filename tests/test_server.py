"""The model server over real HTTP: a cloud_model.py started as a subprocess on a free port."""

from __future__ import annotations

import base64
import collections
import gzip
import io
import json
import os
import re
import socket
import threading
import time

import pytest
import requests
from openapi_spec_validator import validate
from PIL import Image

from support import wait_until

APP = """
import os, threading, time
import modelcloud
from modelcloud import text, number, image, category, boolean

@modelcloud.setup(options={'greeting': text(default='hello'), 'zero': number(default=0),
                           'fail': boolean(default=False)})
def setup(opts):
    if opts['fail']:
        raise RuntimeError('asked to fail')
    return {'greeting': opts['greeting'], 'zero': opts['zero']}

@modelcloud.command('greet', inputs={'name': text(min_length=1, max_length=20)},
                    outputs={'message': text()}, description='Say hello')
def greet(model, inputs):
    return {'message': model['greeting'] + ', ' + inputs['name']}

@modelcloud.command('bare', inputs={'x': number(default=2, min=0, max=10, step=0.5)}, outputs={'y': number()})
def bare(model, inputs):
    return inputs['x'] * 2

@modelcloud.command('zero', inputs={}, outputs={'zero': number()})
def zero(model, inputs):
    return model['zero']

@modelcloud.command('boom', inputs={}, outputs={'y': text()})
def boom(model, inputs):
    raise ValueError('the model broke')

@modelcloud.command('badout', inputs={}, outputs={'a': text(), 'b': number()})
def badout(model, inputs):
    return {'a': 'x'}

@modelcloud.command('exit', inputs={}, outputs={'y': text()})
def exit_(model, inputs):
    raise SystemExit(3)

@modelcloud.command('slow', inputs={'seconds': number(default=1, max=5)}, outputs={'thread': text()})
def slow(model, inputs):
    time.sleep(inputs['seconds'])
    return threading.current_thread().name

@modelcloud.command('invert', inputs={'photo': image(channels=3, max_width=64)},
                    outputs={'photo': image(default_output_format='PNG'), 'mode': text()})
def invert(model, inputs):
    from PIL import ImageOps
    return {'photo': ImageOps.invert(inputs['photo']), 'mode': inputs['photo'].mode}

@modelcloud.command('size', inputs={'photo': image(channels=1), 'flag': boolean(default=False),
                                    'n': number(default=1)}, outputs={'w': number(), 'h': number(), 'flag': boolean(), 'n': number()})
def size(model, inputs):
    w, h = inputs['photo'].size
    return {'w': w, 'h': h, 'flag': inputs['flag'], 'n': inputs['n']}

modelcloud.meta(name='test-model', tagline='A test model', description='# Title\\n\\nBody',
                license='MIT', links=[{'title': 'Code', 'url': 'https://example.org/code'}])

if __name__ == '__main__':
    modelcloud.run(port=9000)
"""


def png_b64(size=(16, 8), color=(200, 10, 10), mode="RGB", fmt="PNG") -> str:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from support import start_script

    path = tmp_path_factory.mktemp("app") / "cloud_model.py"
    path.write_text(APP)
    proc = start_script(path, env={"ALGOLINK_MAX_BODY_SIZE": str(2_000_000)})
    yield proc
    proc.stop()


def test_console_lines_in_order(server):
    lines = [line for line in server.lines if line.strip()]
    assert lines[0] == "Setting up model..."
    assert lines[1].startswith("Starting model server at http://0.0.0.0:")
    assert lines[1].endswith("...")


def test_meta_manifest(server):
    for path in ("/meta", "/"):
        m = server.get(path).json()
        assert m["sdkVersion"]
        assert m["metadata"]["name"] == "test-model"
        assert m["metadata"]["links"] == [{"title": "Code", "url": "https://example.org/code"}]
        assert [o["name"] for o in m["options"]] == ["greeting", "zero", "fail"]
        assert m["options"][1]["default"] == 0
        greet = next(c for c in m["commands"] if c["name"] == "greet")
        assert greet["description"] == "Say hello"
        assert greet["inputs"] == [
            {"name": "name", "type": "text", "description": None, "minLength": 1, "maxLength": 20}
        ]
        assert greet["outputs"][0]["name"] == "message"
        assert isinstance(m["millisRunning"], int) and m["millisRunning"] >= 0
        assert "millisSinceLastCommand" in m
        assert m["GPU"] is False


def test_healthcheck_running(server):
    r = server.get("/healthcheck")
    assert r.status_code == 200 and r.json() == {"status": "RUNNING", "ongoing": 0}


def test_command_json_with_and_without_content_type(server):
    body = json.dumps({"name": "Ada"})
    r1 = server.post("/greet", data=body)
    r2 = server.post("/greet", data=body, headers={"Content-Type": "application/json"})
    r3 = server.post(
        "/greet", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    for r in (r1, r2, r3):
        assert r.status_code == 200, r.text
        assert r.json() == {"message": "hello, Ada"}


def test_bare_return_default_and_step(server):
    assert server.post("/bare", json={}).json() == {"y": 4}
    assert server.post("/bare", json={"x": 2.5}).json() == {"y": 5.0}
    r = server.post("/bare", json={"x": 2.2})
    assert r.status_code == 400
    assert r.json()["field"] == "x" and "multiple of 0.5" in r.json()["error"]
    r = server.post("/bare", json={"x": 11})
    assert r.status_code == 400 and "at most 10" in r.json()["error"]


def test_setup_option_default_zero_applied(server):
    assert server.post("/zero").json() == {"zero": 0}


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({}, "name", "missing"),
        ({"name": ""}, "name", "at least 1"),
        ({"name": "x" * 21}, "name", "at most 20"),
        ({"name": 5}, "name", "must be text"),
        ({"name": "a", "extra": 1}, "extra", "Unknown input"),
    ],
)
def test_invalid_inputs_are_400_with_field(server, body, field, words):
    r = server.post("/greet", json=body)
    assert r.status_code == 400
    assert r.json()["field"] == field
    assert words in r.json()["error"]
    assert r.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"null"])
def test_malformed_bodies_are_400(server, raw):
    r = server.post("/greet", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert isinstance(r.json()["error"], str)


def test_unknown_command_404_and_wrong_method_405(server):
    r = server.post("/nope", json={})
    assert r.status_code == 404 and "greet" in r.json()["error"]
    assert server.get("/nope").status_code == 404
    r = server.get("/a/b/c")
    assert r.status_code == 404 and r.json()["error"]
    r = server.session.put(server.url + "/greet", json={})
    assert r.status_code == 405 and "POST" in r.json()["error"]
    assert r.headers["Allow"] == "GET, POST, OPTIONS"
    r = server.session.delete(server.url + "/meta")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, OPTIONS"


def test_command_spec_get(server):
    spec = server.get("/greet").json()
    assert spec["name"] == "greet" and spec["inputs"][0]["maxLength"] == 20


def test_inference_error_500_without_traceback(server):
    r = server.post("/boom")
    assert r.status_code == 500
    assert r.json() == {"error": "Error during inference: ValueError: the model broke"}
    r = server.post("/badout")
    assert r.status_code == 500 and "'b'" in r.json()["error"]
    r = server.post("/exit")
    assert r.status_code == 500 and "SystemExit" in r.json()["error"]
    assert server.get("/healthcheck").json() == {"status": "RUNNING", "ongoing": 0}
    assert server.alive()


def test_image_json_data_uri_multipart_and_output(server):
    r = server.post("/invert", json={"photo": "data:image/png;base64," + png_b64()})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["mode"] == "RGB"
    assert out["photo"].startswith("data:image/png;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(out["photo"].split(",", 1)[1])))
    assert img.getpixel((0, 0)) == (55, 245, 245)

    raw = base64.b64decode(png_b64(size=(30, 20), mode="RGB"))
    r = server.post(
        "/size",
        files={"photo": ("x.png", raw, "image/png")},
        data={"flag": "true", "n": "7"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"w": 30, "h": 20, "flag": True, "n": 7}


def test_image_limits_and_garbage(server):
    r = server.post("/invert", json={"photo": png_b64(size=(65, 8))})
    assert r.status_code == 400 and "at most 64 pixels wide" in r.json()["error"]
    r = server.post("/invert", json={"photo": "!!!not base64!!!"})
    assert r.status_code == 400 and "base64" in r.json()["error"]
    r = server.post("/invert", json={"photo": base64.b64encode(b"hello world").decode()})
    assert r.status_code == 400 and "not an image" in r.json()["error"]


def test_decompression_bomb_is_400(server):
    # A valid PNG header that claims 100000 x 100000 pixels: refused before decoding.
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, format="PNG")
    r = server.post("/invert", json={"photo": base64.b64encode(buf.getvalue()).decode()})
    assert r.status_code == 400 and "pixels" in r.json()["error"]
    assert server.get("/healthcheck").json()["status"] == "RUNNING"


def test_body_over_limit_is_413_and_server_survives(server):
    r = server.post("/greet", data=b"x" * 3_000_000)
    assert r.status_code == 413 and "limit" in r.json()["error"]

    # A chunked upload without Content-Length is cut off too.
    def chunks():
        for _ in range(40):
            yield b"y" * 100_000

    try:
        r = server.post("/greet", data=chunks())
        assert r.status_code == 413
    except requests.ConnectionError:
        pass  # the server may close before the client finished sending: also a refusal
    assert server.get("/healthcheck").json()["status"] == "RUNNING"


def test_cors_and_preflight(server):
    r = server.session.options(
        server.url + "/greet",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert server.get("/meta").headers["Access-Control-Allow-Origin"] == "*"


def test_gzip_when_accepted(server):
    r = server.get("/openapi.json", headers={"Accept-Encoding": "gzip"}, stream=True)
    assert r.headers.get("Content-Encoding") == "gzip"
    json.loads(gzip.decompress(r.raw.read()))
    r = server.get("/openapi.json", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in r.headers


def test_openapi_is_valid_31_with_a_path_per_command(server):
    doc = server.get("/openapi.json").json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    manifest = server.get("/meta").json()
    for cmd in manifest["commands"]:
        post = doc["paths"]["/" + cmd["name"]]["post"]
        schema = post["requestBody"]["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == {i["name"] for i in cmd["inputs"]}
    greet = doc["paths"]["/greet"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert greet["properties"]["name"] == {"type": "string", "minLength": 1, "maxLength": 20}
    assert greet["required"] == ["name"]
    assert doc["paths"]["/invert"]["post"]["requestBody"]["content"]["multipart/form-data"]


def test_health_and_meta_answer_while_a_command_runs(server):
    done = {}

    def long():
        done["r"] = server.session.post(server.url + "/slow", json={"seconds": 2}, timeout=30)

    t = threading.Thread(target=long)
    t.start()
    time.sleep(0.3)
    s = requests.Session()
    start = time.monotonic()
    assert s.get(server.url + "/healthcheck", timeout=5).json()["status"] == "RUNNING"
    assert s.get(server.url + "/meta", timeout=5).status_code == 200
    assert time.monotonic() - start < 1.0  # while the 1.5 s run goes on
    t.join()
    assert done["r"].status_code == 200


def test_one_request_at_a_time_reaches_the_model(server):
    results = []

    def call():
        s = requests.Session()
        r = s.post(server.url + "/slow", json={"seconds": 0.4}, timeout=30)
        results.append((time.monotonic(), r.json()["thread"]))

    start = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ends = sorted(t - start for t, _ in results)
    # Serialized: the three finish about 0.4 s apart, the last after ~1.2 s.
    assert ends[-1] >= 1.1
    assert ends[1] - ends[0] >= 0.3
    assert len({name for _, name in results}) == 1


def test_garbage_on_the_socket_does_not_stop_the_server(server):
    host, port = server.url.rsplit("/", 1)[-1].split(":")
    for junk in (
        b"\x00\x01\x02garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /greet HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(junk)
            try:
                sock.recv(1024)
            except OSError:
                pass
    assert server.get("/healthcheck").json()["status"] == "RUNNING"


def test_setup_route_reruns_setup_with_options(server):
    r = server.post("/setup", json={"greeting": "hi"})
    assert r.status_code == 200 and r.json() == {"success": True}
    assert server.post("/greet", json={"name": "Bo"}).json() == {"message": "hi, Bo"}
    r = server.post("/setup", json={"greeting": 5})
    assert r.status_code == 400 and r.json()["field"] == "greeting"
    r = server.post("/setup", json={"nope": 1})
    assert r.status_code == 400 and r.json()["field"] == "nope"
    # Bad options leave the running model alone.
    assert server.post("/greet", json={"name": "Bo"}).json() == {"message": "hi, Bo"}
    # A setup that raises: SETUP_FAILED, commands 503 until a good setup.
    r = server.post("/setup", json={"fail": True})
    assert r.status_code == 500 and "asked to fail" in r.json()["error"]
    assert server.get("/healthcheck").json() == {"status": "SETUP_FAILED", "ongoing": 0}
    r = server.post("/greet", json={"name": "Bo"})
    assert r.status_code == 503 and "POST /setup" in r.json()["error"]
    assert server.post("/setup").json() == {"success": True}
    assert server.post("/greet", json={"name": "Bo"}).json() == {"message": "hello, Bo"}


# -- run() and its environment -----------------------------------------------------------------------

SLOW_SETUP = """
import time, modelcloud
from modelcloud import text

@modelcloud.setup
def setup():
    time.sleep(0.2)
    return 'm'

@modelcloud.command('echo', inputs={'s': text()}, outputs={'s': text()})
def echo(model, inputs):
    return inputs['s']

if __name__ == '__main__':
    modelcloud.run(port=1, host='127.0.0.1')
"""


def test_environment_overrides_arguments(model_server):
    s = model_server(SLOW_SETUP, env={"ALGOLINK_HOST": "127.0.0.1", "ALGOLINK_DEBUG": "1"})
    assert "Starting model server at http://127.0.0.1:" in s.output
    assert s.post("/echo", json={"s": "a"}).json() == {"s": "a"}


def test_meta_env_prints_manifest_and_exits(model_server):
    s = model_server(APP, env={"ALGOLINK_META": "1"}, wait=False)
    assert s.wait_exit() == 0
    manifest = json.loads(s.output)
    assert manifest["metadata"]["name"] == "test-model"
    assert "Setting up model" not in s.output


def test_failing_setup_exits_1_with_the_error(model_server):
    s = model_server(APP, env={"ALGOLINK_MODEL_OPTIONS": '{"fail": true}'}, wait=False)
    assert s.wait_exit() == 1
    assert "Setting up model..." in s.output
    assert "asked to fail" in s.output
    assert "Starting model server" not in s.output


@pytest.mark.parametrize(
    "env, words",
    [
        ({"ALGOLINK_MODEL_OPTIONS": "{bad"}, "ALGOLINK_MODEL_OPTIONS is not valid JSON"),
        ({"ALGOLINK_MODEL_OPTIONS": '{"greeting": 3}'}, "Option 'greeting' must be text"),
        ({"ALGOLINK_MODEL_OPTIONS": '{"unknown": 3}'}, "Unknown setup option 'unknown'"),
        ({"ALGOLINK_PORT": "http"}, "ALGOLINK_PORT='http' is not a whole number"),
    ],
)
def test_bad_configuration_is_named(model_server, env, words):
    s = model_server(APP, env=env, wait=False)
    assert s.wait_exit() != 0
    assert words in s.output


def test_model_options_env_reaches_setup(model_server):
    s = model_server(APP, env={"ALGOLINK_MODEL_OPTIONS": '{"greeting": "hey"}'})
    assert s.post("/greet", json={"name": "A"}).json() == {"message": "hey, A"}


def test_port_in_use_is_a_clear_error(model_server):
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        s = model_server(APP, env={"ALGOLINK_PORT": str(port)}, wait=False)
        assert s.wait_exit() == 1
        assert f"Port {port}" in s.output and "already in use" in s.output


def test_debug_includes_traceback(model_server):
    s = model_server(APP, env={"ALGOLINK_DEBUG": "1"})
    body = s.post("/boom").json()
    assert "Traceback" in body["traceback"] and "the model broke" in body["error"]


def test_sigterm_stops_gracefully_after_inflight_request(model_server):
    s = model_server(APP)
    result = {}

    def call():
        result["r"] = requests.post(s.url + "/slow", json={"seconds": 1}, timeout=30)

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.3)
    s.proc.terminate()
    t.join()
    assert result["r"].status_code == 200
    assert s.wait_exit() == 0
    assert "Model server stopped." in s.output


SEED_SHAPE = """
import modelcloud
from modelcloud.data_types import image, text

labels = {'0': 'dark', '1': 'light'}

@modelcloud.setup
def setup():
    return lambda img: int(sum(img.convert('L').getdata()) / (img.width * img.height) > 127)

@modelcloud.command('classify', inputs={ 'photo': image() }, outputs={ 'label': text() })
def classify(model, input):
    img = input['photo']
    label = labels[str(model(img))]
    return { 'label': label }

if __name__ == '__main__':
    modelcloud.run()
"""


def test_seed_shape_runs_and_classifies(model_server):
    s = model_server(SEED_SHAPE)
    light = s.post("/classify", json={"photo": png_b64(color=(250, 250, 250), fmt="JPEG")})
    dark = s.post(
        "/classify",
        json={"photo": "data:image/jpeg;base64," + png_b64(color=(5, 5, 5), fmt="JPEG")},
    )
    assert light.json() == {"label": "light"}
    assert dark.json() == {"label": "dark"}


def test_queue_is_bounded_and_answers_503(model_server):
    s = model_server(APP, env={"ALGOLINK_MAX_QUEUE": "2"})
    codes = []

    def call():
        codes.append(requests.post(s.url + "/slow", json={"seconds": 0.5}, timeout=30).status_code)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(200) >= 2 and 503 in codes
    wait_until(lambda: s.get("/healthcheck").json()["status"] == "RUNNING")


FILE_OPTION = """
import os, modelcloud
from modelcloud import file, text

@modelcloud.setup(options={'weights': file(extension='.txt', default='weights.txt')})
def setup(opts):
    return opts['weights']

@modelcloud.command('weights', inputs={}, outputs={'path': text(), 'content': text()})
def weights(model, inputs):
    return {'path': model, 'content': open(model).read()}

if __name__ == '__main__':
    modelcloud.run()
"""


def test_file_option_paths_only_from_the_operator(model_server, tmp_path):
    (tmp_path / "weights.txt").write_text("default weights")
    secret = tmp_path / "other.txt"
    secret.write_text("operator's file")
    s = model_server(
        FILE_OPTION, env={"ALGOLINK_MODEL_OPTIONS": json.dumps({"weights": str(secret)})}
    )
    assert s.post("/weights").json()["content"] == "operator's file"
    # Over HTTP a client may not name files on the server; it sends the content instead.
    r = s.post("/setup", json={"weights": str(secret)})
    assert r.status_code == 400 and r.json()["field"] == "weights"
    assert "not a path on the server" in r.json()["error"]
    uri = "data:text/plain;base64," + base64.b64encode(b"uploaded weights").decode()
    assert s.post("/setup", json={"weights": uri}).json() == {"success": True}
    first = s.post("/weights").json()
    assert first["content"] == "uploaded weights" and first["path"].endswith(".txt")
    # The next setup removes the files the previous one was given.
    assert s.post("/setup").json() == {"success": True}
    assert s.post("/weights").json()["content"] == "default weights"
    assert not os.path.exists(first["path"])


ADAPTIVE = """
import time, threading, modelcloud
from modelcloud import number, text

@modelcloud.command('work', inputs={'seconds': number(min=0, max=5)}, outputs={'thread': text()})
def work(model, inputs):
    time.sleep(inputs['seconds'])
    return threading.current_thread().name

if __name__ == '__main__':
    modelcloud.run()
"""


def test_fast_commands_run_on_the_loop_and_slow_ones_go_back_to_the_worker(model_server):
    s = model_server(ADAPTIVE)
    threads = []
    for _ in range(300):  # on a busy machine a no-op run can take over 2 ms and restart the streak
        threads.append(s.post("/work", json={"seconds": 0}).json()["thread"])
        if threads[-1] == "MainThread":
            break
    assert threads[0].startswith("modelcloud")  # first runs on the worker thread
    assert threads[-1] == "MainThread"  # once proven fast, on the I/O loop
    assert len(threads) > 16  # and only after 16 fast runs in a row
    assert s.post("/work", json={"seconds": 0.3}).json()["thread"] == "MainThread"  # not known yet
    # That one slow run sends the command back to the worker: /healthcheck answers during the next.
    result = {}
    t = threading.Thread(
        target=lambda: result.update(r=requests.post(s.url + "/work", json={"seconds": 1.5}))
    )
    t.start()
    time.sleep(0.3)
    start = time.monotonic()
    assert requests.get(s.url + "/healthcheck", timeout=5).json()["status"] == "RUNNING"
    assert time.monotonic() - start < 1.0  # while the 1.5 s run goes on
    t.join()
    assert result["r"].json()["thread"].startswith("modelcloud")


def test_a_fast_command_under_steady_load_comes_back_to_the_loop_after_a_slow_run(model_server):
    """Eight clients keep a 1 ms command busy. One slow run sends it to the worker thread; once it has
    been fast 16 times there, its requests wait for the model to be idle and run on the loop again.
    (They used to queue for the busy worker for as long as the load lasted: the model was never idle.)"""
    s = model_server(ADAPTIVE)
    for _ in range(300):
        if s.post("/work", json={"seconds": 0}).json()["thread"] == "MainThread":
            break
    answers: list = []  # (when, thread)
    stop = threading.Event()

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                r = session.post(s.url + "/work", json={"seconds": 0.001}, timeout=10)
                answers.append((time.monotonic(), r.json()["thread"]))

    clients = [threading.Thread(target=client) for _ in range(8)]
    for c in clients:
        c.start()
    try:
        time.sleep(0.5)
        assert s.post("/work", json={"seconds": 0.05}).status_code == 200
        slow_done = time.monotonic()
        deadline = slow_done + 8
        while time.monotonic() < deadline:
            after = [thread for when, thread in answers if when > slow_done]
            worker = [i for i, thread in enumerate(after) if thread.startswith("modelcloud")]
            if worker and "MainThread" in after[worker[0] :]:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for c in clients:
            c.join()
    after = [thread for when, thread in answers if when > slow_done]
    first_worker = next(i for i, thread in enumerate(after) if thread.startswith("modelcloud"))
    assert "MainThread" in after[first_worker:], (
        f"{len(after)} answers after the slow run, none of them from the loop once the worker had "
        f"taken over: {collections.Counter(after)}"
    )


def test_small_large_and_chunked_bodies_answer_alike(server):
    """Small JSON bodies are read whole by Tornado, others are streamed: both routes answer the same,
    and the same errors."""
    small = json.dumps({"name": "Ada"})
    large = json.dumps({"name": "Ada"}) + " " * 70_000  # over the 64 KiB of the small route
    assert len(small) < 65536 < len(large)

    def chunked():
        yield small[:5].encode()
        yield small[5:].encode()

    for body in (small, large, chunked()):
        r = server.post("/greet", data=body, headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()) == (200, {"message": "hello, Ada"})
    for body in (json.dumps({"name": ""}), json.dumps({"name": ""}) + " " * 70_000):
        r = server.post("/greet", data=body)
        assert r.status_code == 400
        assert r.json()["field"] == "name"
    r = server.post("/greet", data="{not json")
    assert r.status_code == 400 and r.json()["error"].startswith("The body is not valid JSON")


SAME = """
import threading, modelcloud
from modelcloud import text
from modelcloud.data_types import BaseType

class ratio(BaseType):  # a custom type that lets NaN through: JSON cannot carry it
    def __init__(self):
        super().__init__('ratio')
    def deserialize(self, value):
        return value
    def serialize(self, value, output_format=None):
        return value

@modelcloud.command('same', inputs={'text': text()},
                    outputs={'text': text(), 'ratio': ratio(), 'thread': text()})
def same(model, inputs):
    if inputs['text'] == 'fail':
        raise RuntimeError('asked to fail')
    ratio = float('nan') if inputs['text'] == 'nan' else 0.5
    return {'text': inputs['text'], 'ratio': ratio, 'thread': threading.current_thread().name}

if __name__ == '__main__':
    modelcloud.run()
"""


def test_answers_on_the_loop_are_the_answers_of_the_worker_path(model_server):
    """Once a command runs on the I/O loop, a small JSON request is answered without Tornado's
    RequestHandler: the same status, the same headers in the same order and the same body as on the
    worker path (its first runs), for answers, errors, large and gzipped bodies."""
    import http.client

    s = model_server(SAME)
    conn = http.client.HTTPConnection(s.url.removeprefix("http://"), timeout=10)

    def post(body, **headers):
        conn.request(
            "POST", "/same", body=body, headers={"Content-Type": "application/json", **headers}
        )
        r = conn.getresponse()
        data = raw = r.read()
        if r.getheader("Content-Encoding") == "gzip":
            data = gzip.decompress(raw)
        seen = []
        for name, value in r.getheaders():
            if name == "Date":
                value = "(date)"
            elif name == "Server-Timing":
                assert re.fullmatch(r"queue;dur=\d+\.\d{3}, model;dur=\d+\.\d{3}", value), value
                value = "(timing)"
            seen.append((name, value))
        assert r.getheader("Content-Length") == str(len(raw))
        body = json.loads(data)
        thread = body.pop("thread", None)
        if thread is not None:  # the thread's name is in the body: its length varies
            seen = [(n, "(length)" if n == "Content-Length" else v) for n, v in seen]
        return (r.status, seen, body), thread

    cases = [
        ('{"text": "hi"}', {}),
        (json.dumps({"text": "x" * 2000}), {}),  # over GZIP_MIN_SIZE: Vary
        (json.dumps({"text": "x" * 2000}), {"Accept-Encoding": "gzip"}),
        ('{"text": "fail"}', {}),  # the command raises: 500 with Server-Timing
        ('{"text": "nan"}', {}),  # an answer JSON cannot carry: 500, the server's own error
        ('{"text": 5}', {}),  # a bad input: 400 with its field
        ('{"other": 1}', {}),
        ("", {}),  # no inputs at all
        ("{not json", {}),  # 400 before the run: no Server-Timing
        ("[1, 2]", {}),
    ]
    worker = []
    for body, headers in cases:
        answer, thread = post(body, **headers)
        assert thread is None or thread.startswith("modelcloud")
        worker.append(answer)
    assert [w[0] for w in worker] == [200, 200, 200, 500, 500, 400, 400, 400, 400, 400]
    assert worker[4][2] == {"error": "Internal server error; the server keeps running."}
    assert worker[5][2]["field"] == "text"
    assert ("Vary", "Accept-Encoding") in worker[2][1]
    assert ("Content-Encoding", "gzip") in worker[2][1]

    def warm():
        for _ in range(
            300
        ):  # on a busy machine a no-op run can take over 2 ms: the streak restarts
            if post('{"text": "warm"}')[1] == "MainThread":
                return
        raise AssertionError("the command never moved onto the loop")

    for (body, headers), expected in zip(cases, worker):
        warm()
        answer, thread = post(body, **headers)
        assert thread in (None, "MainThread")
        assert answer == expected, body
    conn.close()
