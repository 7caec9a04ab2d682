"""The hub attacked as a hostile client, a hostile service and bad luck would (issue 12).

Every test here drives a real hub process the way the hole was found: an anonymous POST to a
service's /setup, a service that reads cookies and sets them, a development URL that leads back to
the hub, a 512 MB anonymous body, a published bundle that goes after the hub's secrets, 1,100 slow
connections under ``ulimit -n 1024``, a restart under load, damaged databases, and the smaller
holes of item 9.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests
from hub_process import ALGOLINK, REPO, Hub, make_bundle, rss_kb, rss_peak_kb, wait_for

pytestmark = pytest.mark.timeout(300)

#: A server that is not the SDK (any server that answers /healthcheck can be a service): it shows
#: what a hostile service would do with what reaches it.
SPY = '''
import json
import os
import sys

import tornado.ioloop
import tornado.web

COMMANDS = ("echo", "page", "flip", "setup_probe")
if os.environ.get("ALGOLINK_META") == "1":
    print(json.dumps({"sdkVersion": "spy", "metadata": {"name": "spy"}, "options": [],
                      "commands": [{"name": c, "inputs": [], "outputs": []} for c in COMMANDS]}))
    sys.exit(0)

STATE = {"health": "RUNNING", "setup_calls": 0}


class Health(tornado.web.RequestHandler):
    def get(self):
        self.write({"status": STATE["health"]})


class Meta(tornado.web.RequestHandler):
    def get(self):
        self.write({"commands": [{"name": c} for c in COMMANDS]})


class Echo(tornado.web.RequestHandler):
    def post(self):
        self.set_header("Set-Cookie", "spy=1; Path=/")
        self.set_header("Set-Cookie2", "spy2=1")
        self.write({"headers": dict(self.request.headers), "setup_calls": STATE["setup_calls"]})

    get = post


class Page(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Set-Cookie", "spy=page; Path=/")
        self.set_header("Content-Type", "text/html")
        self.write("""<!doctype html><title>spy</title><script>
        var out = {};
        try { out.cookie = document.cookie; } catch (e) { out.cookie = "refused: " + e.name; }
        fetch("/api/v1/tokens", {credentials: "include"})
          .then(function (r) { out.tokens = r.status; })
          .catch(function (e) { out.tokens = "refused: " + e.name; })
          .then(function () { document.title = "done"; window.spyResult = out; });
        </script>""")


class Flip(tornado.web.RequestHandler):
    def post(self):
        STATE["health"] = "SETUP_FAILED"
        self.write({"flipped": True})


class Setup(tornado.web.RequestHandler):
    def post(self):
        STATE["setup_calls"] += 1
        self.write({"success": True})


app = tornado.web.Application([
    ("/healthcheck", Health), ("/meta", Meta), ("/", Meta), ("/echo", Echo), ("/page", Page), ("/flip", Flip),
    ("/setup", Setup), ("/setup_probe", Echo),
])
app.listen(int(os.environ["ALGOLINK_PORT"]), os.environ.get("ALGOLINK_HOST", "127.0.0.1"))
print("Starting model server", flush=True)
tornado.ioloop.IOLoop.current().start()
'''


def spy_bundle(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloud_model.py").write_text(SPY)
    (folder / "requirements.txt").write_text("tornado\n")
    return folder


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def error_of(r: requests.Response, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()["error"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hardening")).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def spy(hub, tmp_path_factory):
    """A public spy service, online."""
    hub.ensure_group("attack", "g")
    bundle = spy_bundle(tmp_path_factory.mktemp("spy") / "spy")
    r = hub.register("attack", "g", "spy", bundle, public="true")
    assert r.status_code == 201, r.text
    assert hub.publish("attack", "spy").status_code == 202
    hub.wait_version("attack", "spy", 1)
    return "attack/spy"


# --- 1. /setup and what else a client may reach ----------------------------------------------------


def test_setup_is_not_reachable_through_serve(hub, spy, tmp_path):
    anonymous = requests.Session()
    for path in ("setup", "v1/setup", "healthcheck", "%73etup", "../setup", "setup/"):
        r = anonymous.post(f"{hub.url}/serve/{spy}/{path}", json={}, timeout=10)
        assert r.status_code == 404, (path, r.status_code, r.text)
    err = error_of(anonymous.post(f"{hub.url}/serve/{spy}/setup", data=b"x", timeout=10), 404)
    assert "setup" in err and "options" in err
    # with the admin token too: setup options change through the options API only
    assert hub.serve(f"{spy}/setup", json={}).status_code == 404
    # the process never saw a setup call
    assert anonymous.post(f"{hub.url}/serve/{spy}/echo", timeout=10).json()["setup_calls"] == 0
    # what a client may reach
    assert anonymous.get(f"{hub.url}/serve/{spy}/meta", timeout=10).status_code == 200
    assert anonymous.get(f"{hub.url}/serve/{spy}/", timeout=10).status_code == 200
    assert anonymous.post(f"{hub.url}/serve/{spy}/echo", timeout=10).status_code == 200
    r = anonymous.delete(f"{hub.url}/serve/{spy}/echo", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD, POST"


def test_a_sdk_service_under_the_hub_has_no_setup_route_and_says_so(hub, tmp_path):
    hub.ensure_group("attack", "g")
    r = hub.register("attack", "g", "sdk", make_bundle(tmp_path / "sdk", "sdk"), public="true")
    assert r.status_code == 201, r.text
    assert hub.publish("attack", "sdk").status_code == 202
    hub.wait_version("attack", "sdk", 1)
    doc = requests.get(f"{hub.url}/serve/attack/sdk/openapi.json", timeout=10).json()
    assert set(doc["paths"]) == {"/meta", "/openapi.json", "/echo", "/jobs/{id}", "/ws"}
    assert doc["servers"] == [{"url": "/serve/attack/sdk/"}]
    # the process itself (on its port, bypassing the hub) has no /setup either
    port = hub.service_port("attack", "sdk", 1)
    direct = requests.post(f"http://127.0.0.1:{port}/setup", json={}, timeout=10)
    assert direct.status_code == 404


def test_openapi_example_images_are_images():
    from PIL import Image

    from modelcloud import data_types as dt
    from modelcloud.model import Registry
    from modelcloud.openapi import openapi_document

    registry = Registry()

    @registry.command(
        "look",
        inputs={"photo": dt.image(width=28, height=20), "any": dt.image()},
        outputs={"n": dt.number()},
    )
    def look(model, inputs):
        return {"n": 1}

    doc = openapi_document(registry)
    props = doc["paths"]["/look"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"
    ]
    sizes = []
    for name in ("photo", "any"):
        uri = props[name]["examples"][0]
        img = dt.image().deserialize(uri)
        assert isinstance(img, Image.Image)
        sizes.append(img.size)
    assert sizes == [(28, 20), (8, 8)]


def test_a_service_whose_health_turns_setup_failed_is_restarted(hub, spy):
    pid = hub.service_pid("attack", "spy", 1)
    assert requests.post(f"{hub.url}/serve/{spy}/flip", timeout=10).json() == {"flipped": True}
    # the runner asks /healthcheck every 5 s: SETUP_FAILED is a crash, the process is restarted
    wait_for(
        lambda: hub.service_pid("attack", "spy", 1) not in (None, pid), 60, 0.2, "a new process"
    )
    hub.wait_version("attack", "spy", 1)
    assert "SETUP_FAILED" in hub.logs("attack", "spy", 1)
    assert requests.post(f"{hub.url}/serve/{spy}/echo", timeout=10).status_code == 200


# --- 2. cookies and the hub's origin ---------------------------------------------------------------


def test_cookies_never_cross_serve(hub, spy):
    r = requests.post(
        f"{hub.url}/serve/{spy}/echo",
        headers={"Cookie": "algolink-session=stolen; lang=en", "X-Other": "kept"},
        timeout=10,
    )
    seen = {k.lower(): v for k, v in r.json()["headers"].items()}
    assert "cookie" not in seen and seen["x-other"] == "kept"
    assert "Set-Cookie" not in r.headers and "Set-Cookie2" not in r.headers
    assert r.headers["Content-Security-Policy"] == "sandbox"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    # the hub's own answers under /serve carry them too
    r = requests.post(f"{hub.url}/serve/{spy}/nothing", timeout=10)
    assert r.status_code == 404 and r.headers["Content-Security-Policy"] == "sandbox"


def test_the_session_cookie_is_http_only_and_same_site(hub):
    s = requests.Session()
    r = s.post(
        hub.url + "/login",
        data={"token": hub.token, "_xsrf": "x"},
        cookies={"_xsrf": "x"},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302
    cookies = [c for c in r.raw.headers.getlist("Set-Cookie") if "algolink-session=" in c]
    assert all("HttpOnly" in c and "SameSite=Lax" in c for c in cookies)
    # sent to the pages and the API the pages call, never to /serve, /gallery or /static
    paths = {c.split("Path=", 1)[1].split(";", 1)[0] for c in cookies}
    assert paths == {"/projects", "/tokens", "/users", "/account", "/preview", "/logout", "/api/v1"}


def test_a_service_page_cannot_read_or_use_the_hub_session_in_chromium(hub, spy):
    from browser_support import launch, sync_api

    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page()
            page.goto(hub.url + "/login")
            page.fill("#name", "admin")
            page.fill("#password", hub.admin_password)
            page.click("#login-form button[type=submit]")
            page.wait_for_url("**/projects")
            names = {c["name"] for c in page.context.cookies()}
            assert "algolink-session" in names
            page.goto(f"{hub.url}/serve/{spy}/page")
            page.wait_for_timeout(1000)
            # CSP sandbox: the service's script never ran (it would set the title to "done")...
            assert page.title() == "spy"
            # ...and the page, in an origin of its own, has no cookies to read
            cookie = page.evaluate(
                "(() => { try { return document.cookie; } catch (e) { return 'refused: ' + e.name; } })()"
            )
            assert cookie.startswith("refused: SecurityError"), cookie
            assert "spy" not in {c["name"] for c in page.context.cookies()}  # never set
            session = [c for c in page.context.cookies() if c["name"] == "algolink-session"]
            assert session and all(c["httpOnly"] for c in session)
            # the browser sends the session to no /serve path
            assert not page.context.cookies(f"{hub.url}/serve/{spy}/page") or all(
                c["name"] != "algolink-session"
                for c in page.context.cookies(f"{hub.url}/serve/{spy}/page")
            )
        finally:
            browser.close()


def test_serve_origin_sends_serve_elsewhere(tmp_path):
    """--serve-origin: /serve at its own host name (here localhost, the hub's pages at 127.0.0.1)."""
    port = free_port()
    hub = Hub(
        tmp_path / "hub",
        extra_args=["--port", str(port), "--serve-origin", f"http://localhost:{port}"],
    )
    hub.start()
    try:
        hub.ensure_group("o", "g")
        r = hub.register("o", "g", "echo", make_bundle(tmp_path / "b", "o"), public="true")
        assert r.status_code == 201
        assert hub.publish("o", "echo").status_code == 202
        hub.wait_version("o", "echo", 1)
        service = hub.service("o", "echo")
        assert service["urls"]["serve"] == f"http://localhost:{port}/serve/o/echo/"
        wrong = requests.post(
            f"http://127.0.0.1:{port}/serve/o/echo/echo", json={"text": "x"}, timeout=10
        )
        assert wrong.status_code == 421
        assert wrong.headers["Location"] == f"http://localhost:{port}/serve/o/echo/echo"
        right = requests.post(service["urls"]["serve"] + "echo", json={"text": "x"}, timeout=10)
        assert right.json() == {"text": "o:x"}
    finally:
        hub.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- 3. development URLs ---------------------------------------------------------------------------

#: Answers /meta itself and passes every other request on to the hub's /serve/attack/looper/ (headers
#: and all, as proxies do): a development URL that leads back to the hub.
FORWARDER = """
import json, sys, urllib.request
import tornado.ioloop, tornado.web

HUB = sys.argv[2]

class Meta(tornado.web.RequestHandler):
    def get(self):
        self.write({"sdkVersion": "fwd", "metadata": {}, "options": [],
                    "commands": [{"name": "echo", "inputs": [], "outputs": []}]})

class Forward(tornado.web.RequestHandler):
    def post(self, rest):
        headers = {k: v for k, v in self.request.headers.get_all()
                   if k.lower() not in ("host", "content-length")}
        req = urllib.request.Request(HUB + "/serve/attack/looper/" + rest, data=self.request.body,
                                     headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                self.set_status(r.status); self.write(r.read())
        except urllib.error.HTTPError as e:
            self.set_status(e.code); self.write(e.read())

app = tornado.web.Application([("/meta", Meta), ("/(.*)", Forward)])
app.listen(int(sys.argv[1]), "127.0.0.1")
print("ready", flush=True)
tornado.ioloop.IOLoop.current().start()
"""


def connect_dev(hub, name, url, token=None, **extra):
    headers = {"Authorization": f"token {token}"} if token else None
    body = {"name": name, "group": "g", "dev_url": url, **extra}
    return hub.post("/api/v1/projects/attack/services", json=body, headers=headers)


def test_development_urls_that_lead_to_the_hub_or_its_services_are_refused(hub, spy):
    hub.ensure_group("attack", "g")
    port = hub.url.rsplit(":", 1)[1]
    internal = hub.service_port("attack", "spy", 1)
    for url in (
        hub.url,
        f"http://localhost:{port}/serve/attack/spy",
        f"http://127.0.0.2:{port}",
        f"http://127.0.0.1:{internal}",
        f"http://localhost:{internal}/",
    ):
        err = error_of(connect_dev(hub, "loop", url), 400)
        assert "leads to" in err and ("the hub itself" in err or "its services" in err), err
    assert hub.get("/api/v1/projects/attack/services/loop").status_code == 404


@pytest.fixture
def forwarder(hub, tmp_path):
    """The URL of a :data:`FORWARDER` running for this test."""
    port = free_port()
    script = tmp_path / "forwarder.py"
    script.write_text(FORWARDER)
    fwd = subprocess.Popen(
        [sys.executable, str(script), str(port), hub.url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert fwd.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        fwd.kill()
        fwd.wait()


def test_a_loop_through_another_server_ends_at_once_with_flat_memory(hub, spy, forwarder):
    r = connect_dev(hub, "looper", forwarder, public=True)
    assert r.status_code == 201, r.text
    pid = hub.proc.pid
    before_rss, before_fds = rss_kb(pid), fds(pid)
    for _ in range(4):
        t0 = time.monotonic()
        r = requests.post(f"{hub.url}/serve/attack/looper/echo", json={}, timeout=30)
        assert r.status_code == 400 and "came back" in r.json()["error"]
        assert time.monotonic() - t0 < 2
    time.sleep(0.5)
    assert rss_kb(pid) - before_rss < 20_000  # kB
    assert fds(pid) - before_fds < 20


def test_development_tokens_are_sealed_and_connections_are_the_connectors(hub, spy, forwarder):
    other = hub.add_user("other-dev", {"attack": "developer"})
    url = forwarder
    r = connect_dev(hub, "sealed", url, token=other, dev_token="the-dev-secret-1234")
    assert r.status_code == 201, r.text
    assert "the-dev-secret" not in r.text
    # the database holds it sealed
    rows = (
        sqlite3.connect(hub.data / "hub.sqlite")
        .execute("SELECT dev_token, created_by FROM services WHERE name = 'sealed'")
        .fetchall()
    )
    assert rows[0][0].startswith("sealed:1:") and "the-dev-secret" not in rows[0][0]
    assert rows[0][1] == "other-dev"
    # another developer may not take it over; its own user and the admin may
    third = hub.add_user("third", {"attack": "developer"})
    err = error_of(connect_dev(hub, "sealed", url, token=third), 403)
    assert "other-dev" in err
    assert connect_dev(hub, "sealed", url, token=other).status_code == 200
    assert connect_dev(hub, "sealed", url).status_code == 200  # the admin's
    # a token that scans ports is stopped after ten tries a minute
    statuses = [
        connect_dev(hub, f"scan{i}", f"http://127.0.0.1:{free_port()}", token=third).status_code
        for i in range(12)
    ]
    assert statuses[:10] == [400] * 10 and statuses[10:] == [429, 429]


def test_try_it_follows_no_redirect(hub):
    """A development server whose command answers a redirect to the hub's own API: the try-it form
    does not follow it."""
    redirecting = """
import sys, tornado.ioloop, tornado.web
class Meta(tornado.web.RequestHandler):
    def get(self):
        self.write({"commands": [{"name": "go", "inputs": [], "outputs": []}], "metadata": {}})
class Go(tornado.web.RequestHandler):
    def post(self):
        self.redirect(sys.argv[2] + "/api/v1/tokens", status=307)
app = tornado.web.Application([("/meta", Meta), ("/go", Go)])
app.listen(int(sys.argv[1]), "127.0.0.1")
print("ready", flush=True)
tornado.ioloop.IOLoop.current().start()
"""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", redirecting, str(port), hub.url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        hub.ensure_group("attack", "g")
        assert connect_dev(hub, "redir", f"http://127.0.0.1:{port}").status_code == 201
        s = signed_in(hub)
        r = s.post(
            f"{hub.url}/projects/attack/services/redir/try/go",
            json={},
            headers={"X-XSRFToken": s.cookies["_xsrf"]},
            timeout=30,
        )
        assert r.status_code == 502 and "token" not in r.text.lower()
        r = s.post(
            f"{hub.url}/projects/attack/services/redir/try/setup",
            json={},
            headers={"X-XSRFToken": s.cookies["_xsrf"]},
            timeout=30,
        )
        assert r.status_code == 404  # only the service's own commands
    finally:
        proc.kill()
        proc.wait()


def signed_in(hub) -> requests.Session:
    s = requests.Session()
    s.get(hub.url + "/login", timeout=10)
    r = s.post(
        hub.url + "/login",
        data={"token": hub.token, "_xsrf": s.cookies["_xsrf"]},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302, r.text
    return s


# --- 4. bodies before tokens -----------------------------------------------------------------------


def send_body(url: str, size: int, headers: dict) -> tuple:
    """POST ``size`` zero bytes with a Content-Length; (status, body) of the answer."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.putrequest("POST", parts.path)
    for k, v in {**headers, "Content-Length": str(size)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    chunk = b"\0" * (1 << 20)
    sent = 0
    try:
        while sent < size:
            conn.send(chunk[: min(len(chunk), size - sent)])
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = conn.getresponse()
    body = answer.read()
    conn.close()
    return answer.status, body


def test_an_anonymous_512_mb_body_is_refused_without_being_held(hub, spy, tmp_path):
    hub.ensure_group("attack", "g")
    r = hub.register("attack", "g", "private", make_bundle(tmp_path / "p", "p"))
    assert r.status_code == 201
    pid = hub.proc.pid
    before = rss_peak_kb(pid)
    size = 512 * 2**20
    status, body = send_body(hub.url + "/api/v1/projects", size, {})
    assert status == 401 and b"needs a token" in body
    status, body = send_body(
        hub.url + "/api/v1/projects/attack/services", size, {"Content-Type": "multipart/form-data"}
    )
    assert status == 401
    status, body = send_body(hub.url + "/serve/attack/private/echo", size, {})
    assert status in (401, 503)  # refused on its head: not public
    assert b"not public" in body
    assert rss_peak_kb(pid) - before < 20 * 1024, (before, rss_peak_kb(pid))
    # a body over a small route's limit, with a token: 413 on its head, with a sentence
    status, body = send_body(
        hub.url + "/api/v1/projects",
        8 * 2**20,
        {"Authorization": f"token {hub.token}", "Content-Type": "application/json"},
    )
    assert status == 413 and b"limit of 1.0 MB" in body
    assert hub.get("/api/v1/projects").status_code == 200


# --- 5. a published bundle against the hub and its neighbours --------------------------------------

#: Each probe returns what it got, or "refused: <why>". The paths are given by the test (a bundle
#: author would guess them: the data folder's layout is documented).
PROBES = r"""
import errno, glob, json, os, sys

DATA = {data!r}
VICTIM_BUNDLE = {victim_bundle!r}
VICTIM_APP = {victim_app!r}
VICTIM_ENV = {victim_env!r}
HUB_PID = {hub_pid!r}


def attempt(fn):
    try:
        got = fn()
    except OSError as e:
        return "refused: " + (errno.errorcode.get(e.errno, str(e.errno)))
    return "GOT: " + repr(got)[:200]


def write(path):
    with open(path, "a") as f:
        f.write("# " + "pwn" + "ed\n")
    return path


def probes():
    site = [p for p in sys.path if p.endswith("site-packages")][0]
    return {{
        "read admin_token": attempt(lambda: open(os.path.join(DATA, "admin_token")).read()),
        "read cookie_secret": attempt(lambda: open(os.path.join(DATA, "cookie_secret")).read()),
        "read secret_key": attempt(lambda: open(os.path.join(DATA, "secret_key")).read()),
        "read the database": attempt(lambda: open(os.path.join(DATA, "hub.sqlite"), "rb").read(64)),
        "list the data folder": attempt(lambda: [n for n in os.listdir(DATA) if n not in ("envs", "run", "wheels")]),
        "write another bundle": attempt(lambda: write(os.path.join(VICTIM_BUNDLE, "cloud_model.py"))),
        "read another working copy": attempt(lambda: open(os.path.join(VICTIM_APP, "cloud_model.py")).read()),
        "write another environment": attempt(lambda: write(os.path.join(VICTIM_ENV, "pyvenv.cfg"))),
        "write its own environment": attempt(lambda: write(os.path.join(site, "pwned.py"))),
        "change its stored bundle through its working copy": attempt(lambda: write("cloud_model.py")),
        "read the hub's environment": attempt(lambda: open("/proc/%d/environ" % HUB_PID, "rb").read(64)),
        "read root's home": attempt(lambda: os.listdir(os.path.expanduser("~root"))),
        "hub variables": [k for k in os.environ if "TOKEN" in k or "SECRET" in k or k.startswith("ALGOLINK_HUB_")] or "none",
        "uid": os.getuid(),
    }}
"""

ATTACKER = (
    PROBES
    + r"""
import modelcloud
from modelcloud.data_types import text


@modelcloud.command("probe", inputs={{}}, outputs={{"report": text()}})
def probe(model, inputs):
    return {{"report": json.dumps(probes())}}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--build":
        print("BUILD-PROBE " + json.dumps(probes()), flush=True)
    else:
        modelcloud.run()
"""
)


def test_a_published_bundle_cannot_reach_the_hub_or_other_services(hub, tmp_path):
    hub.ensure_group("attack", "g")
    victim = make_bundle(tmp_path / "victim", "victim")
    assert hub.register("attack", "g", "victim", victim).status_code == 201
    assert hub.publish("attack", "victim").status_code == 202
    hub.wait_version("attack", "victim", 1)
    v = hub.version("attack", "victim", 1)
    envs = sorted((hub.data / "envs").glob("py*"))
    victim_env = [e for e in envs if e.is_dir()][0]
    attacker = tmp_path / "attacker"
    attacker.mkdir()
    (attacker / "cloud_model.py").write_text(
        ATTACKER.format(
            data=str(hub.data),
            victim_bundle=str(hub.data / "bundles" / v["bundle_hash"]),
            victim_app=str(hub.data / "run/attack/victim/1/app"),
            victim_env=str(victim_env),
            hub_pid=hub.proc.pid,
        )
    )
    (attacker / "requirements.txt").write_text("# the attacker's own environment\npillow\n")
    (attacker / "algolink.yml").write_text(
        "entrypoint: python cloud_model.py\n"
        "build_steps:\n  - pip install -r requirements.txt\n  - python cloud_model.py --build\n"
    )
    assert hub.register("attack", "g", "attacker", attacker).status_code == 201
    assert hub.publish("attack", "attacker").status_code == 202
    hub.wait_version("attack", "attacker", 1)

    report = json.loads(hub.serve("attack/attacker/probe", json={}).json()["report"])
    build = [
        json.loads(line.split("BUILD-PROBE ", 1)[1])
        for line in hub.logs("attack", "attacker", 1).splitlines()
        if "BUILD-PROBE " in line
    ]
    assert len(build) == 2  # as the build user (the environment), then as the service's user
    for seen in [report, *build]:
        for what, outcome in seen.items():
            if what == "uid":
                assert outcome != 0
            elif what == "hub variables":
                assert outcome == "none", outcome
            elif seen is build[0] and what in (
                "write its own environment",  # building its environment is what a build is for
                "change its stored bundle through its working copy",  # a scratch copy, thrown away
            ):
                continue
            elif what == "read root's home" and outcome.startswith("GOT"):
                # an empty home, but for the Python installation the service runs on
                assert set(eval(outcome[5:])) <= {".pyenv"}, outcome
            else:
                assert str(outcome).startswith("refused") or outcome == "GOT: []", (what, outcome)
    # nothing was changed: the victim's stored bundle and environment are as they were
    stored = hub.data / "bundles" / v["bundle_hash"] / "cloud_model.py"
    assert "pwned" not in stored.read_text()
    own = hub.data / "bundles" / hub.version("attack", "attacker", 1)["bundle_hash"]
    assert "# pwned" not in (own / "cloud_model.py").read_text()
    assert "pwned" not in (victim_env / "pyvenv.cfg").read_text()
    assert hub.serve("attack/victim/echo", json={"text": "ok"}).json() == {"text": "victim:ok"}
    # the data folder and its secrets: 0700 and 0600
    assert (hub.data.stat().st_mode & 0o777) == 0o700
    for name in ("admin_token", "cookie_secret", "secret_key", "hub.sqlite"):
        assert ((hub.data / name).stat().st_mode & 0o777) == 0o600, name


# --- 6. slow connections ---------------------------------------------------------------------------


def test_slow_connections_under_a_low_file_limit_leave_the_api_answering(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2400:
        pytest.skip(
            f"this test opens 1,100 connections and needs an open-file limit over 2,400 ({hard})"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    hub = Hub(tmp_path / "hub", prefix=["prlimit", "--nofile=1024:1024", "--"]).start()
    held = []
    try:
        limit = Path(f"/proc/{hub.proc.pid}/limits").read_text()
        assert "Max open files            1024                 1024" in limit
        for _ in range(1_100):
            s = socket.create_connection(("127.0.0.1", int(hub.url.rsplit(":", 1)[1])), timeout=5)
            s.sendall(b"GET /api/v1/projects HTTP/1.1\r\nHost: x\r\n")  # and never the end
            held.append(s)
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            r = hub.get("/api/v1/projects", timeout=1)
            times.append(time.monotonic() - t0)
            assert r.status_code == 200
        assert max(times) < 1, times
        assert fds(hub.proc.pid) < 1024
        # a few lines in the log, not a traceback per refused connection
        assert "Traceback" not in hub.output and len(hub.lines) < 40, hub.output[-2000:]
    finally:
        for s in held:
            s.close()
        hub.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- 7. a restart under load -----------------------------------------------------------------------


def test_a_restarted_hub_answers_every_request_for_services_that_stayed_up(tmp_path):
    hub = Hub(tmp_path / "hub").start()
    try:
        hub.ensure_group("r", "g")
        assert hub.register("r", "g", "echo", make_bundle(tmp_path / "b", "r")).status_code == 201
        assert hub.publish("r", "echo").status_code == 202
        hub.wait_version("r", "echo", 1)
        pid = hub.service_pid("r", "echo", 1)
        answers: list = []
        stop = threading.Event()
        token = hub.token

        def load() -> None:
            s = requests.Session()
            s.headers["Authorization"] = f"token {token}"
            while not stop.is_set():
                try:
                    r = s.post(hub.url + "/serve/r/echo/echo", json={"text": "x"}, timeout=10)
                    answers.append(r.status_code)
                except requests.ConnectionError:
                    answers.append("no hub")  # between the two hubs: nothing listens
                    time.sleep(0.01)

        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(1)
        url = hub.url
        hub.stop(keep_services=True)
        hub.start(extra_args=["--port", url.rsplit(":", 1)[1]])
        time.sleep(2)
        stop.set()
        worker.join(30)
        answered = [a for a in answers if a != "no hub"]
        assert answered.count(200) == len(answered), sorted(set(map(str, answers)))
        after = answers[len(answers) - 1 - answers[::-1].index("no hub") + 1 :]
        assert len(after) > 20 and set(after) == {200}
        assert hub.service_pid("r", "echo", 1) == pid  # the same process: no cold start
    finally:
        hub.stop()


# --- 8. damaged databases --------------------------------------------------------------------------


def start_fails(data: Path) -> str:
    out = subprocess.run(
        [*ALGOLINK, "hub", "--port", "0", "--data", str(data)],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "AlgoLink hub running" not in out.stdout
    return out.stderr


def test_an_empty_or_damaged_database_is_refused(tmp_path):
    hub = Hub(tmp_path / "hub").start()
    hub.ensure_group("db", "g")
    hub.stop()
    db = hub.data / "hub.sqlite"
    good = db.read_bytes()

    db.write_bytes(b"")
    err = start_fails(hub.data)
    assert "is empty (0 bytes)" in err and "restore hub.sqlite from a backup" in err
    assert db.stat().st_size == 0  # nothing was written over it

    damaged = bytearray(good)
    page = sqlite3.connect(":memory:").execute("PRAGMA page_size").fetchone()[0]
    damaged[2 * page : 3 * page] = os.urandom(page)  # a page of the projects table, scrambled
    db.write_bytes(bytes(damaged))
    err = start_fails(hub.data)
    assert "is damaged" in err or "cannot be read" in err, err
    assert "restore hub.sqlite from a backup" in err

    db.unlink()
    err = start_fails(hub.data)
    assert "is missing" in err

    db.write_bytes(good)  # and the real one starts
    hub.start()
    assert hub.get("/api/v1/projects/db").status_code == 200
    hub.stop()


# --- 9. the smaller holes ----------------------------------------------------------------------------


def test_open_redirects_through_next_are_refused(hub):
    """``next`` as a browser sends it: raw in the query string and the form (``%09`` is a tab once
    decoded, and a browser drops tabs: ``/<TAB>/evil.example`` is ``//evil.example`` to it)."""
    s = requests.Session()
    s.get(hub.url + "/login", timeout=10)
    raw = ("/%09/evil.example", "/%0a/evil.example", "//evil.example", "/%5Cevil.example",
           "https://evil.example", "/%2509/evil.example")  # fmt: skip
    for evil in raw:
        r = s.post(
            hub.url + "/login?next=" + evil,
            data=f"token={hub.token}&_xsrf={s.cookies['_xsrf']}&next={evil}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
            timeout=10,
        )
        assert r.status_code == 302 and r.headers["Location"] == "/projects", (evil, r.headers)
        r = s.get(hub.url + "/lang?to=en&next=" + evil, allow_redirects=False, timeout=10)
        assert r.headers["Location"] == "/projects", evil
    r = s.get(hub.url + "/lang?to=en&next=/tokens", allow_redirects=False, timeout=10)
    assert r.headers["Location"] == "/tokens"


def test_tokens_in_query_strings_stay_out_of_the_log(hub):
    secret = "do-not-log-" + os.urandom(8).hex()
    r = requests.get(hub.url + "/api/v1/tokens", params={"token": secret}, timeout=10)
    assert r.status_code == 403
    time.sleep(0.3)
    assert secret not in hub.output
    assert "token=[secret]" in hub.output


def test_a_deep_path_or_a_bomb_is_refused_with_a_sentence_and_nothing_written(hub):
    hub.ensure_group("attack", "g")
    deep = io.BytesIO()
    with tarfile.open(fileobj=deep, mode="w:gz") as tar:
        info = tarfile.TarInfo("/".join(["d"] * 2000) + "/cloud_model.py")
        tar.addfile(info, io.BytesIO(b""))
    r = hub.post(
        "/api/v1/projects/attack/services",
        data={"name": "deep", "group": "g"},
        files={"bundle": ("b.tar.gz", deep.getvalue())},
    )
    assert "folders deep" in error_of(r, 400)

    bomb = io.BytesIO()
    info = tarfile.TarInfo("cloud_model.py")
    info.size = 3 * 2**30  # declares 3 GB (the hub takes 2): refused on the header
    with tarfile.open(fileobj=bomb, mode="w:gz") as tar:
        tar.fileobj.write(info.tobuf())
        tar.fileobj.write(b"\0" * (1 << 20))
    t0 = time.monotonic()
    r = hub.post(
        "/api/v1/projects/attack/services",
        data={"name": "bomb", "group": "g"},
        files={"bundle": ("b.tar.gz", bomb.getvalue())},
    )
    assert "unpacks to more than 2.0 GB" in error_of(r, 400)
    assert time.monotonic() - t0 < 5
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w", zipfile.ZIP_STORED) as zf:
        for i in range(25_000):
            zf.writestr(f"f{i}", b"")
    r = hub.post(
        "/api/v1/projects/attack/services",
        data={"name": "many", "group": "g"},
        files={"bundle": ("b.zip", many.getvalue())},
    )
    assert "more than 20000 files" in error_of(r, 400)
    assert os.listdir(hub.data / "tmp") == []
    assert "Traceback" not in hub.output


def test_405_answers_say_what_is_allowed(hub):
    r = hub.api("DELETE", "/api/v1/projects")
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == {"GET", "POST"}
    assert "use GET or POST" in r.json()["error"]


POISON = r"""
import errno, json, os, sys
cache, shared = os.environ.get("UV_CACHE_DIR", ""), sys.argv[1]
report = {"cache": cache}
for root in (cache, shared):
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if name == "__init__.py" and folder.endswith("/tornado"):
                key = "shared" if root == shared else "own copy"
                try:
                    with open(path, "a") as f:
                        f.write("\nPOISONED = True\n")
                    report[key + ": wrote in place"] = path
                except OSError as e:
                    report[key + ": in place"] = errno.errorcode[e.errno]
                try:
                    os.unlink(path)
                    with open(path, "w") as f:
                        f.write("POISONED = True\n")
                    report[key + ": replaced"] = path
                except OSError as e:
                    report[key + ": replace"] = errno.errorcode[e.errno]
print("POISON-REPORT " + json.dumps(report), flush=True)
"""


def test_a_build_cannot_poison_the_package_cache_other_builds_use(tmp_path):
    """Build steps run with a cache of their own: what they change there (even by replacing files)
    is gone with the build; the shared cache is the cache user's, fetched without running code."""
    shared = tmp_path / "cache"
    hub = Hub(tmp_path / "hub", extra_args=["--build-cache", str(shared)]).start()
    try:
        hub.ensure_group("p", "g")
        attacker = make_bundle(tmp_path / "attacker", "a", requirements="tornado\n")
        (attacker / "poison.py").write_text(POISON)
        (attacker / "algolink.yml").write_text(
            "entrypoint: python cloud_model.py\nbuild_steps:\n  - pip install -r requirements.txt\n"
            f"  - python poison.py {shared}\n"
        )
        assert hub.register("p", "g", "attacker", attacker).status_code == 201
        wait_for(lambda: "POISON-REPORT" in hub.logs("p", "attacker", 1), 120, 0.5, "the build")
        report = json.loads(
            hub.logs("p", "attacker", 1).split("POISON-REPORT ", 1)[1].splitlines()[0]
        )
        assert not any(
            k.startswith("shared: wrote") or k.startswith("shared: replaced") for k in report
        )
        assert report.get("own copy: in place") == "EACCES", report  # it found and tried them
        assert not any(k == "own copy: wrote in place" for k in report), report
        # a bundle built after it, with other requirements (another environment), runs clean
        victim = make_bundle(tmp_path / "victim", "v", requirements="tornado\npyyaml\n")
        assert hub.register("p", "g", "victim", victim).status_code == 201
        assert hub.publish("p", "victim").status_code == 202
        hub.wait_version("p", "victim", 1)
        for path in [
            *shared.rglob("tornado/__init__.py"),
            *(hub.data / "envs").rglob("tornado/__init__.py"),
        ]:
            assert "POISONED" not in path.read_text(), path
    finally:
        hub.stop()


# --- what a second pair of eyes found: a hostile service's answers, its port, bodies, output --------

#: A server that answers out of the protocol on purpose: ?m=<mode> picks the answer.
RAW = r"""
import json, os, socket, sys, threading, time
M = {"sdkVersion": "raw", "metadata": {}, "options": [],
     "commands": [{"name": "x", "inputs": [], "outputs": []}]}
if os.environ.get("ALGOLINK_META") == "1":
    print(json.dumps(M)); sys.exit(0)
ANSWERS = {
    "cookie": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\nSet-Cookie: algolink-session=EVIL; Path=/projects\r\n\r\nok",
    "script": b"HTTP/1.1 200 OK\r\nX-A: a\nContent-Type: text/html\n\n<script>alert(1)</script>\r\n\r\n",
    "negative": b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
    "words": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    "status": b"HTTP/1.1 abc\r\nContent-Length: 0\r\n\r\n",
    "both": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "twice": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    "chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    "fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\nContent-Length: 2\r\n\r\nok",
    "fine": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
}
def answer(c):
    head = b""
    while b"\r\n\r\n" not in head:
        more = c.recv(65536)
        if not more:
            return
        head += more
    path = head.split(b" ")[1].decode()
    if path.startswith(("/healthcheck", "/meta")):
        body = json.dumps({"status": "RUNNING"} if path.startswith("/h") else M).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    elif "m=hang" in path:
        time.sleep(3600)
    else:
        c.sendall(ANSWERS[path.split("m=")[1]])
        time.sleep(0.5)
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["ALGOLINK_PORT"]))); s.listen(256)
print("Starting model server", flush=True)
while True:
    threading.Thread(target=answer, args=(s.accept()[0],), daemon=True).start()
"""


@pytest.fixture(scope="module")
def raw(hub, tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw") / "raw"
    folder.mkdir()
    (folder / "cloud_model.py").write_text(RAW)
    (folder / "requirements.txt").write_text("")
    hub.ensure_group("attack", "g")
    assert hub.register("attack", "g", "raw", folder, public="true").status_code == 201
    assert hub.publish("attack", "raw").status_code == 202
    hub.wait_version("attack", "raw", 1)
    return f"{hub.url}/serve/attack/raw/x"


def test_answers_out_of_the_protocol_are_refused_and_the_hub_keeps_answering(hub, raw):
    for mode in (
        "cookie",
        "script",
        "negative",
        "words",
        "status",
        "both",
        "twice",
        "chunk",
        "fold",
    ):
        t0 = time.monotonic()
        try:
            r = requests.get(f"{raw}?m={mode}", timeout=10)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            assert mode == "chunk"  # a bad chunk comes after the head was sent: the hub breaks off
            continue
        assert r.status_code == 502, (mode, r.status_code, r.headers, r.text[:200])
        assert "out of the protocol" in r.json()["error"]
        assert "Set-Cookie" not in r.headers and "<script>" not in r.text
        assert time.monotonic() - t0 < 5
        assert hub.get("/api/v1/projects", timeout=2).status_code == 200  # still answering
    fine = requests.get(f"{raw}?m=fine", timeout=10)
    assert fine.status_code == 200 and fine.text == "ok"
    assert fine.headers["Content-Security-Policy"] == "sandbox"


def test_requests_a_client_leaves_are_cancelled_at_the_service(hub, raw):
    pid = hub.proc.pid
    before = fds(pid)
    for _ in range(60):
        s = socket.create_connection(("127.0.0.1", int(hub.url.rsplit(":", 1)[1])), timeout=5)
        s.sendall(b"GET /serve/attack/raw/x?m=hang HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.02)
        s.close()
    wait_for(lambda: fds(pid) - before < 10, 20, 0.2, "the hub to let go of the requests")


def test_a_service_whose_port_is_taken_over_while_it_restarts_gets_no_traffic(hub, tmp_path):
    hub.ensure_group("attack", "g")
    r = hub.register("attack", "g", "victim2", make_bundle(tmp_path / "v2", "v2"), public="true")
    assert r.status_code == 201
    assert hub.publish("attack", "victim2").status_code == 202
    hub.wait_version("attack", "victim2", 1)
    port = hub.service_port("attack", "victim2", 1)
    seen: list = []

    class Impostor(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b'{"status": "RUNNING"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802
            seen.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    os.kill(hub.service_pid("attack", "victim2", 1), signal.SIGKILL)
    impostor = None
    deadline = time.monotonic() + 5
    while impostor is None and time.monotonic() < deadline:  # bind as soon as the port is free
        try:
            impostor = http.server.ThreadingHTTPServer(("127.0.0.1", port), Impostor)
        except OSError:
            time.sleep(0.005)
    assert impostor is not None
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    try:
        wait_for(
            lambda: "held by another program" in hub.logs("attack", "victim2", 1),
            30,
            0.2,
            "the hub to notice the impostor",
        )
        r = requests.post(
            f"{hub.url}/serve/attack/victim2/echo", json={"text": "secret"}, timeout=10
        )
        assert r.status_code != 200 and seen == []
    finally:
        impostor.shutdown()
        impostor.server_close()
    hub.wait_version("attack", "victim2", 1)  # the next restart, on its own port again
    r = requests.post(f"{hub.url}/serve/attack/victim2/echo", json={"text": "back"}, timeout=10)
    assert r.json() == {"text": "v2:back"} and seen == []


def test_many_large_bodies_are_spooled_not_held(hub, spy):
    pid = hub.proc.pid
    before = rss_peak_kb(pid)
    size = 40 * 2**20
    statuses: list = []

    def send() -> None:
        statuses.append(send_body(f"{hub.url}/serve/{spy}/echo", size, {})[0])

    threads = [threading.Thread(target=send) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses == [200] * 12
    assert rss_peak_kb(pid) - before < 100 * 1024, (before, rss_peak_kb(pid))
    assert os.listdir(hub.data / "tmp") == []


def test_a_body_that_trickles_in_is_cut_off(tmp_path):
    hub = Hub(tmp_path / "hub", extra_args=["--max-connections", "8"]).start()
    held = []
    try:
        port = int(hub.url.rsplit(":", 1)[1])
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\nx")
            held.append(s)
        time.sleep(1)
        assert requests.get(hub.url + "/login", timeout=5).status_code == 503  # all taken
        # a byte every second is under the 1 KB/s the hub asks of a body after 10 s: cut off
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            try:
                if requests.get(hub.url + "/login", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            for s in held:
                with contextlib.suppress(OSError):
                    s.send(b"x")
            time.sleep(1)
        assert requests.get(hub.url + "/login", timeout=2).status_code == 200
    finally:
        for s in held:
            s.close()
        hub.stop()


def test_bundle_output_is_capped(hub, tmp_path):
    hub.ensure_group("attack", "g")
    loud = make_bundle(tmp_path / "loud", "loud")
    (loud / "cloud_model.py").write_text(
        "import os, sys\n"
        "if os.environ.get('ALGOLINK_META') == '1':\n"
        "    sys.stdout.write('x' * (20 << 20))\n"
    )
    assert hub.register("attack", "g", "loud", loud).status_code == 201
    v = wait_for(
        lambda: hub.version("attack", "loud", 1)["error"] and hub.version("attack", "loud", 1),
        120,
        0.5,
        "the manifest read to fail",
    )
    assert "printed more than 16 MB" in v["error"]
    noisy = make_bundle(tmp_path / "noisy", "noisy")
    (noisy / "algolink.yml").write_text(
        "entrypoint: python cloud_model.py\nbuild_steps:\n  - pip install -r requirements.txt\n"
        "  - python -c \"import sys; sys.stdout.write(('y' * 999 + chr(10)) * 40000)\"\n"
    )
    assert hub.register("attack", "g", "noisy", noisy).status_code == 201
    wait_for(lambda: hub.version("attack", "noisy", 1)["manifest"], 180, 0.5, "the build")
    build_log = hub.data / "services" / "attack" / "noisy" / "1" / "build.log"
    assert build_log.stat().st_size < 33 * 2**20
    assert "the rest is left out of this log" in build_log.read_text()
    r = hub.get("/api/v1/projects/attack/services/noisy/versions/1/logs", stream=True, timeout=30)
    assert r.status_code == 200 and len(r.content) > 30 * 2**20  # streamed, a block at a time


def test_the_small_things_a_token_holder_could_trip_on(hub):
    r = hub.post(
        "/api/v1/projects", data="[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert "nested too deeply" in error_of(r, 400)
    r = hub.post(
        "/api/v1/projects/attack/services",
        json={"name": "x", "group": "g", "dev_url": "http://[::1"},
    )
    assert "is not an http" in error_of(r, 400)
    assert hub.api("DELETE", "/api/v1/tokens/99999999999999999999999").status_code == 404
    assert "Traceback" not in hub.output


def test_api_reads_need_a_caller(hub, spy):
    for path in ("/api/v1/projects", "/api/v1/projects/attack/services/spy",
                 "/api/v1/projects/attack/services/spy/options",
                 "/api/v1/projects/attack/services/spy/versions/1/logs"):  # fmt: skip
        assert requests.get(hub.url + path, timeout=10).status_code == 401, path
        assert hub.get(path).status_code == 200, path
    assert requests.get(hub.url + "/api/v1", timeout=10).status_code == 200  # where things are


def test_a_token_of_the_same_name_does_not_take_over_a_development_service(hub, forwarder):
    hub.ensure_group("attack", "g")
    alice = hub.add_user("alice", {"attack": "developer"}, token_name="nb-token")
    assert connect_dev(hub, "nb", forwarder, token=alice).status_code == 201
    # mallory names her token as alice's and as alice herself: it is the user that counts
    mallory = hub.add_user("mallory", {"attack": "developer"})
    for name in ("nb-token", "alice"):
        r = requests.post(
            hub.url + "/api/v1/tokens",
            json={"name": name},
            headers={"Authorization": f"token {mallory}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        same_name = r.json()["token"]
        assert "only that user" in error_of(connect_dev(hub, "nb", forwarder, token=same_name), 403)
    assert connect_dev(hub, "nb", forwarder, token=alice).status_code == 200
