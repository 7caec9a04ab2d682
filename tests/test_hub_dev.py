"""Development mode against live model servers: a real hub process, a real ``python cloud_model.py``
connected with the real ``algolink register --dev``, and a real notebook kernel connected with
``%algolink connect``. Calls go through ``/serve``; when the server goes away the service page still
answers 200 and says it is unreachable, and ``/serve`` answers with a sentence."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
from hub_process import ALGOLINK, REPO, Hub, free_port, wait_for

from support import Kernel, start_script

pytestmark = pytest.mark.timeout(300)

XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')

ECHO = """
import modelcloud
from modelcloud.data_types import text


@modelcloud.setup
def setup():
    return {tag!r}


@modelcloud.command("echo", inputs={{"text": text()}}, outputs={{"text": text()}})
def echo(model, inputs):
    return {{"text": model + ":" + inputs["text"]}}


modelcloud.meta(name="live-echo", tagline="Echoes, live from my machine")

if __name__ == "__main__":
    modelcloud.run()
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-dev")).start()
    yield h
    h.stop()


def echo_server(folder: Path, tag: str, port: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloud_model.py").write_text(ECHO.format(tag=tag))
    return start_script(folder / "cloud_model.py", env={"ALGOLINK_PORT": str(port)})


def algolink(hub: Hub, *args: str, token: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "ALGOLINK_HUB_URL": hub.url}
    env.pop("ALGOLINK_TOKEN", None)
    if token:
        env["ALGOLINK_TOKEN"] = hub.token
    return subprocess.run(
        [*ALGOLINK, *args], cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120
    )


def signed_in(hub: Hub) -> requests.Session:
    s = requests.Session()
    s.headers["Accept"] = "text/html"
    s.headers["Accept-Language"] = "en-US,en;q=0.9"
    xsrf = XSRF.search(s.get(hub.url + "/login", timeout=30).text).group(1)
    r = s.post(
        hub.url + "/login",
        data={"_xsrf": xsrf, "token": hub.token, "next": "/projects"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302, r.text
    return s


def test_cli_register_dev_serves_through_the_hub_and_survives_the_server_going_away(hub, tmp_path):
    server = echo_server(tmp_path / "one", "first")
    try:
        out = algolink(
            hub,
            "register",
            "--dev",
            server.url,
            "--project",
            "devp",
            "--group",
            "g",
            "--name",
            "echo",
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Connected devp/echo in development mode to " + server.url in out.stdout
        assert f"{hub.url}/projects/devp/services/echo" in out.stdout
        assert f"{hub.url}/serve/devp/echo/" in out.stdout

        svc = hub.service("devp", "echo")
        assert svc["mode"] == "development" and svc["status"] == "development"
        assert svc["dev_url"] == server.url and svc["reachable"] is True
        assert svc["versions"] == [] and svc["published_version"] is None
        assert [c["name"] for c in svc["manifest"]["commands"]] == ["echo"]
        assert svc["metadata"]["name"] == "live-echo"

        r = hub.serve("devp/echo/echo", json={"text": "hi"})
        assert r.status_code == 200, r.text
        assert r.json() == {"text": "first:hi"}
        assert (
            requests.post(hub.url + "/serve/devp/echo/echo", json={}, timeout=10).status_code == 401
        )

        # Never a published version: publishing, a bundle, offline and logs are refused with a sentence.
        for path in ("publish", "offline"):
            r = hub.post(f"/api/v1/projects/devp/services/echo/{path}", json={})
            assert r.status_code == 409 and "development mode" in r.json()["error"], r.text
        r = hub.post(
            "/api/v1/projects/devp/services/echo/versions", files={"bundle": ("b.tgz", b"x")}
        )
        assert r.status_code == 409 and "development mode" in r.json()["error"], r.text
        assert hub.get("/api/v1/projects/devp/services/echo/logs").status_code == 404
        out = algolink(hub, "publish", "devp/echo")
        assert out.returncode != 0 and "development mode" in out.stderr

        out = algolink(hub, "status", "devp/echo")
        assert out.returncode == 0, out.stderr
        assert f"development mode: served by {server.url} (answering)" in out.stdout

        page = signed_in(hub).get(hub.url + "/projects/devp/services/echo", timeout=30)
        assert page.status_code == 200 and 'id="dev-badge"' in page.text
        assert server.url in page.text and 'id="dev-unreachable"' not in page.text
    finally:
        server.stop()

    # The server is gone: the API says so, the page answers 200 with the sentence, /serve explains.
    svc = hub.service("devp", "echo")
    assert svc["reachable"] is False
    assert f"The development server at {server.url} is not answering" in svc["dev_message"]
    assert [c["name"] for c in svc["manifest"]["commands"]] == ["echo"]  # the last one known
    out = algolink(hub, "status", "devp/echo")
    assert "(NOT answering)" in out.stdout and "is not answering" in out.stdout
    page = signed_in(hub).get(hub.url + "/projects/devp/services/echo", timeout=30)
    assert page.status_code == 200 and 'id="dev-unreachable"' in page.text
    assert "is not answering" in page.text
    r = hub.serve("devp/echo/echo", json={"text": "hi"})
    assert r.status_code == 502
    assert r.json()["error"].startswith(f"The development server at {server.url} is not answering")

    # Started again on another port: registering again reconnects (200), nothing else changes.
    again = echo_server(tmp_path / "two", "second")
    try:
        out = algolink(
            hub,
            "register",
            "--dev",
            again.url,
            "--project",
            "devp",
            "--group",
            "g",
            "--name",
            "echo",
        )
        assert out.returncode == 0, out.stdout + out.stderr
        svc = hub.service("devp", "echo")
        assert svc["dev_url"] == again.url and svc["reachable"] is True
        assert hub.serve("devp/echo/echo", json={"text": "x"}).json() == {"text": "second:x"}
    finally:
        again.stop()


def test_bad_dev_urls_are_refused_with_a_sentence(hub):
    import http.server
    import threading

    hub.ensure_group("devbad", "g")
    gone = f"http://127.0.0.1:{free_port()}"
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    not_a_model = f"http://127.0.0.1:{other.server_address[1]}"
    cases = {
        gone: f"The development server at {gone} is not answering",
        "ftp://example.org/x": "is not an http:// or https:// URL",
        not_a_model: "did not answer with a model server's manifest",
        hub.url + "/api/v1": "leads to the hub itself",
    }
    try:
        for url, sentence in cases.items():
            r = hub.post(
                "/api/v1/projects/devbad/services", json={"name": "s", "group": "g", "dev_url": url}
            )
            assert r.status_code == 400 and sentence in r.json()["error"], (url, r.text)
    finally:
        other.shutdown()
    assert hub.get("/api/v1/projects/devbad/services").json() == []
    out = algolink(
        hub, "register", "--dev", gone, "--project", "devbad", "--group", "g", "--name", "s"
    )
    assert out.returncode != 0 and "is not answering" in out.stderr
    assert hub.get("/api/v1/projects/devbad/services/s").status_code == 404


def test_a_kernel_connected_in_development_mode(hub, tmp_path):
    env = {
        "ALGOLINK_HUB_URL": hub.url,
        "ALGOLINK_TOKEN": hub.token,
        "ALGOLINK_CONFIG": str(tmp_path / "no-config.json"),
    }
    kernel = Kernel(tmp_path, env={**env, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")})
    try:
        kernel.run("%load_ext algolink_jupyter")
        kernel.run("import algolink_jupyter")
        kernel.run(
            '%%algolink_command double --inputs "x=number" --outputs "y=number"\n'
            "def double(model, inputs):\n"
            "    return {'y': inputs['x'] * 2}\n"
        )
        out = kernel.run("%algolink connect --project kp --group nb --name live")
        info = kernel.eval("algolink_jupyter.serving_info()")
        assert f"Connected kp/live in development mode to {info['url']}" in out["stdout"]
        assert "(commands: double)" in out["stdout"]
        assert f"Serve URL: {hub.url}/serve/kp/live/" in out["stdout"]

        svc = hub.service("kp", "live")
        assert svc["mode"] == "development" and svc["reachable"] is True
        assert info["token"] not in hub.get("/api/v1/projects/kp/services/live").text
        r = hub.post(
            "/api/v1/projects/kp/services",
            json={"name": "tokenless", "group": "nb", "dev_url": info["url"]},
        )
        assert r.status_code == 400 and "give its token as dev_token" in r.json()["error"], r.text
        r = hub.serve("kp/live/double", json={"x": 21})
        assert r.status_code == 200, r.text
        assert r.json() == {"y": 42}
        assert info["token"] not in r.text + str(r.headers)

        # A new command cell shows on the hub at once: the manifest is read again on each look.
        kernel.run(
            '%%algolink_command negate --inputs "x=number" --outputs "y=number"\n'
            "def negate(model, inputs):\n"
            "    return {'y': -inputs['x']}\n"
        )
        svc = hub.service("kp", "live")
        assert sorted(c["name"] for c in svc["manifest"]["commands"]) == ["double", "negate"]
        assert hub.serve("kp/live/negate", json={"x": 3}).json() == {"y": -3}

        # Not configured: a sentence naming the environment variables.
        out = kernel.run(
            "import os; os.environ.pop('ALGOLINK_HUB_URL')\n%algolink connect", check=False
        )
        assert "set ALGOLINK_HUB_URL" in (out["error"] or "") + out["stderr"], out
        kernel.run(f"os.environ['ALGOLINK_HUB_URL'] = {hub.url!r}")

        kernel.run("%algolink stop")
        page = signed_in(hub).get(hub.url + "/projects/kp/services/live", timeout=30)
        assert page.status_code == 200 and 'id="dev-unreachable"' in page.text
        r = hub.serve("kp/live/double", json={"x": 1})
        assert r.status_code == 502 and "is not answering" in r.json()["error"]

        # Connecting again serves again (the kernel's port may change) and the service is back.
        out = kernel.run("%algolink connect --project kp --group nb --name live")
        assert hub.serve("kp/live/double", json={"x": 5}).json() == {"y": 10}
    finally:
        kernel.shutdown()
    wait_for(lambda: not hub.service("kp", "live")["reachable"], 30, 0.5, "unreachable")
    r = hub.serve("kp/live/double", json={"x": 1})
    assert r.status_code == 502 and "is not answering" in r.json()["error"]


def test_a_restarted_hub_still_routes_to_the_development_server(tmp_path):
    server = echo_server(tmp_path / "model", "kept")
    hub = Hub(tmp_path / "hub").start()
    try:
        hub.ensure_group("rp", "g")
        r = hub.post(
            "/api/v1/projects/rp/services",
            data={"name": "echo", "group": "g", "dev_url": server.url + "/", "public": "true"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["dev_url"] == server.url and r.json()["public"] is True
        hub.stop()
        hub.start()
        r = requests.post(hub.url + "/serve/rp/echo/echo", json={"text": "a"}, timeout=30)
        assert r.status_code == 200 and r.json() == {"text": "kept:a"}, r.text
        r = requests.get(hub.url + "/serve/rp/echo/v1/echo", timeout=30)
        assert r.status_code == 404 and "has no API versions" in r.json()["error"]
    finally:
        hub.stop()
        server.stop()
