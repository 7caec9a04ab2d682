"""Kernel serving with a real IPython kernel: magics, the in-kernel server, hot swap, isolation."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from support import Kernel, wait_until

SETUP = """
%%algolink_setup
def setup():
    return {"factor": 2}
"""

DOUBLE = """
%%algolink_command double --inputs "x=number(min=0, max=100)" --outputs "y=number" --description "Double it"
def double(model, inputs):
    print("printed by the command")
    return {"y": inputs["x"] * model["factor"]}
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    runtime = tmp_path_factory.mktemp("runtime")
    k = Kernel(tmp_path_factory.mktemp("nb"), env={"JUPYTER_RUNTIME_DIR": str(runtime)})
    k.runtime = runtime
    k.run("%load_ext algolink_jupyter")
    k.run("import algolink_jupyter, modelcloud, json")
    yield k
    k.shutdown()


def info(kernel: Kernel) -> dict:
    return kernel.eval("algolink_jupyter.serving_info()")


def call(kernel_info: dict, command: str, body: dict, timeout: float = 10) -> requests.Response:
    return requests.post(
        f"{kernel_info['url']}/{command}",
        json=body,
        headers={"Authorization": f"token {kernel_info['token']}"},
        timeout=timeout,
    )


def test_setup_and_command_cells_serve_at_once(kernel):
    out = kernel.run(SETUP)
    assert "Model ready" in out["stdout"]
    out = kernel.run(DOUBLE)
    assert "Serving 'double' at http://127.0.0.1:" in out["stdout"]
    i = info(kernel)
    assert i["url"].startswith("http://127.0.0.1:") and i["token"] and i["commands"] == ["double"]
    r = call(i, "double", {"x": 21})
    assert r.status_code == 200 and r.json() == {"y": 42}
    meta = requests.get(i["url"] + "/meta", params={"token": i["token"]}, timeout=5).json()
    assert meta["commands"][0]["description"] == "Double it"
    # The setup's model stayed in the kernel: it is the very object the command gets.
    kernel.run("modelcloud.default_registry.model['factor'] = 3")
    assert call(i, "double", {"x": 2}).json() == {"y": 6}
    kernel.run("modelcloud.default_registry.model['factor'] = 2")


def test_validation_and_token(kernel):
    i = info(kernel)
    r = call(i, "double", {"x": 101})
    assert r.status_code == 400 and r.json()["field"] == "x"
    r = requests.post(i["url"] + "/double", json={"x": 1}, timeout=5)
    assert r.status_code == 401
    r = requests.post(
        i["url"] + "/double", json={"x": 1}, headers={"Authorization": "token wrong"}, timeout=5
    )
    assert r.status_code == 401


def test_bound_to_loopback_only(kernel):
    i = info(kernel)
    port = int(i["url"].rsplit(":", 1)[1])
    # Find an address of this machine that is not loopback, if there is one, and check it refuses.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(
                ("10.255.255.255", 1)
            )  # no packet is sent: this only picks the outgoing address
            addr = s.getsockname()[0]
    except OSError:
        pytest.skip("no non-loopback address on this machine")
    if addr.startswith("127."):
        pytest.skip("no non-loopback address on this machine")
    with pytest.raises(OSError), socket.create_connection((addr, port), timeout=2):
        pass


def test_answers_while_another_cell_sleeps(kernel):
    i = info(kernel)
    msg = kernel.execute("import time; time.sleep(5)")
    time.sleep(0.3)
    start = time.monotonic()
    r = call(i, "double", {"x": 1})
    elapsed = time.monotonic() - start
    assert r.status_code == 200 and elapsed < 1.0
    kernel.collect(msg, timeout=30)


def test_command_output_goes_to_the_log_not_the_running_cell(kernel):
    i = info(kernel)
    msg = kernel.execute("import time; time.sleep(1.5); print('cell says hi')")
    time.sleep(0.3)
    assert call(i, "double", {"x": 1}).status_code == 200
    out = kernel.collect(msg)
    assert out["stdout"] == "cell says hi\n"
    status = kernel.run("%algolink status")["stdout"]
    assert "[stdout] printed by the command" in status
    assert "Requests served:" in status


def test_serve_is_idempotent_no_leaked_port_or_thread(kernel):
    before = info(kernel)
    threads = kernel.eval("len(__import__('threading').enumerate())")
    for _ in range(3):
        kernel.run("%algolink serve")
        kernel.run(DOUBLE)
    assert info(kernel)["url"] == before["url"]
    assert kernel.eval("len(__import__('threading').enumerate())") == threads


def test_rerun_command_cell_under_load_fails_no_request(kernel):
    i = info(kernel)
    stop = threading.Event()
    results: list = []

    def hammer():
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.post(
                    i["url"] + "/double",
                    json={"x": 5},
                    headers={"Authorization": f"token {i['token']}"},
                    timeout=10,
                )
                results.append((r.status_code, r.json()))
            except Exception as e:  # a failed request is a result too
                results.append((0, repr(e)))

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(0.3)
        versions = []
        for n in range(1, 6):
            kernel.run(DOUBLE.replace('inputs["x"] * model["factor"]', f'inputs["x"] * 0 + {n}'))
            versions.append(n)
            time.sleep(0.15)
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert len(results) > 50
    assert all(code == 200 for code, _ in results), [r for r in results if r[0] != 200][:5]
    seen = {body["y"] for _, body in results}
    assert 10 in seen and 5 in seen  # the first and the last function both served
    assert seen <= {10, *versions}
    assert call(i, "double", {"x": 5}).json() == {"y": 5}
    kernel.run(DOUBLE)


def failure(out: dict) -> str:
    """What a failed cell showed: IPython prints a UsageError on stderr rather than as an error."""
    return (out["error"] or "") + out["stderr"]


def test_bad_specs_are_clear_errors(kernel):
    out = kernel.run(
        '%%algolink_command bad --inputs "x=numbr" --outputs "y=number"\ndef f(model, inputs): pass',
        check=False,
    )
    assert "UsageError" in failure(out) and "unknown type 'numbr'" in failure(out)
    out = kernel.run(
        '%%algolink_command bad --inputs "x=number(min=5, max=1)"\ndef f(model, inputs): pass',
        check=False,
    )
    assert "min (5) is greater than max (1)" in failure(out)
    out = kernel.run(
        '%%algolink_command bad --inputs "x=number, ="\ndef f(model, inputs): pass', check=False
    )
    assert "cannot parse" in failure(out)
    out = kernel.run("%%algolink_command two\ndef a(m, i): pass\ndef b(m, i): pass", check=False)
    assert "defines 2 functions (a, b)" in failure(out)
    out = kernel.run("%algolink frobnicate", check=False)
    assert "unknown subcommand 'frobnicate'" in failure(out)
    out = kernel.run("%algolink test nope", check=False)
    assert "no command 'nope'" in failure(out)
    assert "bad" not in info(kernel)["commands"]


def test_decorators_in_a_cell_fill_the_same_registry(kernel):
    kernel.run(
        """
from modelcloud import text
@modelcloud.command('shout', inputs={'s': text()}, outputs={'s': text()})
def shout(model, inputs):
    return inputs['s'].upper() + '!' * model['factor']
"""
    )
    i = info(kernel)
    assert "shout" in i["commands"]
    assert call(i, "shout", {"s": "hey"}).json() == {"s": "HEY!!"}


def test_announcement_file_and_stop(kernel):
    i = info(kernel)
    files = list(kernel.runtime.glob("algolink-kernel-*.json"))
    assert len(files) == 1
    announced = json.loads(files[0].read_text())
    assert announced["url"] == i["url"] and announced["token"] == i["token"]
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    assert "double" in announced["commands"]
    out = kernel.run("%algolink stop")
    assert "Stopped serving." in out["stdout"]
    assert info(kernel) is None
    assert not list(kernel.runtime.glob("algolink-kernel-*.json"))
    with pytest.raises(requests.ConnectionError):
        requests.get(i["url"] + "/healthcheck", timeout=2)
    kernel.run("%algolink serve --port 0")
    assert call(info(kernel), "double", {"x": 1}).status_code == 200


def test_unload_stops_serving(tmp_path):
    k = Kernel(tmp_path, env={"JUPYTER_RUNTIME_DIR": str(tmp_path)})
    try:
        k.run("%load_ext algolink_jupyter")
        k.run(SETUP)
        k.run(DOUBLE)
        i = k.eval("__import__('algolink_jupyter').serving_info()")
        assert call(i, "double", {"x": 1}).json() == {"y": 2}
        k.run("%unload_ext algolink_jupyter")
        assert k.eval("__import__('algolink_jupyter').serving_info()") is None
        with pytest.raises(requests.ConnectionError):
            requests.get(i["url"] + "/healthcheck", timeout=2)
    finally:
        k.shutdown()


def test_kernel_shutdown_stops_serving_and_removes_announcement(tmp_path):
    k = Kernel(tmp_path, env={"JUPYTER_RUNTIME_DIR": str(tmp_path)})
    k.run("%load_ext algolink_jupyter")
    k.run(DOUBLE)
    i = k.eval("__import__('algolink_jupyter').serving_info()")
    assert list(tmp_path.glob("algolink-kernel-*.json"))
    k.shutdown()
    wait_until(lambda: not list(tmp_path.glob("algolink-kernel-*.json")), timeout=15)
    with pytest.raises(requests.ConnectionError):
        requests.get(i["url"] + "/healthcheck", timeout=2)
