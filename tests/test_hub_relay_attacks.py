"""/serve's relay, the connection guard and request parsing, attacked as a hostile tester did.

Each test drives a real hub process the way the hole was found: clients that drop planned requests
mid-body until the spool budget is gone, a service that answers HEAD, 204 and 304 with a body (and
what it smuggles in it reaches the next client), a service that sends one 90 MB chunk to many
clients at once, clients that ask for large answers and read none of them (or a byte now and then)
until the connection cap is full, a development server behind https that the hub spoke plain HTTP
to (its token in clear), a program that takes a service's port the moment the service dies while
clients hammer it, and the malformed forms and lengths that made the hub answer 500.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from hub_process import Hub, make_bundle, rss_kb, rss_peak_kb, wait_for

pytestmark = pytest.mark.timeout(300)

#: A service on raw sockets that keeps its connections alive (so the hub reuses them) and answers
#: out of the ordinary on purpose: ``?m=<mode>`` picks the answer.
KEEPALIVE = r"""
import json, os, socket, sys, threading
M = {"sdkVersion": "raw", "metadata": {}, "options": [],
     "commands": [{"name": "x", "inputs": [], "outputs": []}]}
if os.environ.get("ALGOLINK_META") == "1":
    print(json.dumps(M)); sys.exit(0)
SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nSMUGGLED!"


def answer(c, path):
    mode = path.split("m=", 1)[1].split("&")[0] if "m=" in path else "fine"
    if mode == "headbody":  # a HEAD answered with a body, and a whole answer in it
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(SMUGGLED), SMUGGLED))
    elif mode == "nocontent":
        c.sendall(b"HTTP/1.1 204 No Content\r\n\r\n" + SMUGGLED)
    elif mode == "notmodified":
        c.sendall(b"HTTP/1.1 304 Not Modified\r\n\r\n" + SMUGGLED)
    elif mode == "extra":  # more than its length says
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + SMUGGLED)
    elif mode == "bigchunk":  # one chunk of n bytes
        size = int(path.split("n=", 1)[1].split("&")[0])
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % size)
        block = b"z" * (1 << 20)
        left = size
        while left:
            n = min(left, len(block))
            c.sendall(block[:n])
            left -= n
        c.sendall(b"\r\n0\r\n\r\n")
    elif mode == "superscript":  # Content-Length: superscript two, as latin-1 sends it
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nok")
    elif mode == "clear":
        c.sendall(b'HTTP/1.1 200 OK\r\nClear-Site-Data: "cookies", "storage"\r\n'
                  b"Content-Length: 2\r\n\r\nok")
    else:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def serve(c):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                more = c.recv(65536)
                if not more:
                    return
                buf += more
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin1").split("\r\n")
            path = lines[0].split(" ")[1]
            fields = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
            length = int(fields.get("content-length") or 0)
            while len(buf) < length:
                buf += c.recv(65536)
            buf = buf[length:]
            if path.startswith(("/healthcheck", "/meta")):
                body = json.dumps({"status": "RUNNING"} if path.startswith("/h") else M).encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                answer(c, path)
            if fields.get("connection", "").lower() == "close":
                return
    except OSError:
        pass
    finally:
        c.close()


s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["ALGOLINK_PORT"]))); s.listen(256)
print("Starting model server", flush=True)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("relay"), extra_args=["--spool-budget", "16M"]).start()
    yield h
    h.stop()


def publish(hub, name: str, folder: Path, **fields) -> None:
    hub.ensure_group("attack", "g")
    r = hub.register("attack", "g", name, folder, public="true", **fields)
    assert r.status_code == 201, r.text
    assert hub.publish("attack", name).status_code == 202
    hub.wait_version("attack", name, 1)


@pytest.fixture(scope="module")
def echo(hub, tmp_path_factory):
    """A public SDK echo service, online: its URL."""
    publish(hub, "echo", make_bundle(tmp_path_factory.mktemp("echo") / "echo", "e"))
    return f"{hub.url}/serve/attack/echo/echo"


@pytest.fixture(scope="module")
def keepalive(hub, tmp_path_factory):
    folder = tmp_path_factory.mktemp("keepalive") / "ka"
    folder.mkdir()
    (folder / "cloud_model.py").write_text(KEEPALIVE)
    (folder / "requirements.txt").write_text("")
    publish(hub, "ka", folder)
    return f"{hub.url}/serve/attack/ka/x"


def port_of(hub) -> int:
    return int(hub.url.rsplit(":", 1)[1])


def raw_request(hub, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` on a connection of its own; all the hub answers until it closes (or waits)."""
    with socket.create_connection(("127.0.0.1", port_of(hub)), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        with contextlib.suppress(OSError):
            while True:
                more = s.recv(65536)
                if not more:
                    break
                got += more
                if b"\r\n\r\n" in got and b"Connection: close" not in got:
                    head, _, body = got.partition(b"\r\n\r\n")
                    m = re.search(rb"Content-Length: (\d+)", head)
                    if m and len(body) >= int(m.group(1)):
                        break
        return got


# --- 1. the spool budget, leaked by requests dropped mid-body ------------------------------------


def test_requests_dropped_mid_body_give_their_spool_budget_back(hub, echo):
    """Clients that declare a large body, send most of it and hang up: each one's share of the
    spool budget (here --spool-budget 16M) comes back at once, so bodies keep being taken."""
    size, sent = 64 * 2**20, 3 * 2**20
    for _ in range(12):  # 12 x 3 MB dropped: twice the budget, had it leaked
        with socket.create_connection(("127.0.0.1", port_of(hub)), timeout=10) as s:
            s.sendall(
                b"POST /serve/attack/echo/echo HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size
            )
            s.sendall(b" " * sent)
            time.sleep(0.05)
    body = json.dumps({"text": "y" * 4 * 2**20})  # 4 MB: spooled to disk, so counted
    r = wait_for(
        lambda: (r := requests.post(echo, data=body, timeout=30)).status_code != 503 and r,
        10,
        0.5,
        "a large body to be taken again",
    )
    assert r.status_code == 200 and r.json()["text"] == "e:" + "y" * 4 * 2**20
    wait_for(lambda: os.listdir(hub.data / "tmp") == [], 10, 0.2, "the spool files to go")


# --- 2. answers without a body that carry one -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "mode", "status"),
    [
        ("HEAD", "headbody", 200),
        ("GET", "nocontent", 204),
        ("GET", "notmodified", 304),
        ("GET", "extra", 200),
    ],  # fmt: skip
)
def test_what_a_service_smuggles_after_an_answer_reaches_no_other_client(
    hub, keepalive, method, mode, status
):
    """A HEAD (or a 204, a 304) answered with a body that holds a whole answer, or an answer with
    bytes past its length: the next client on that pooled connection must get its own answer,
    not the smuggled one."""
    for _ in range(3):
        first = requests.request(method, f"{keepalive}?m={mode}", timeout=10)
        assert first.status_code == status
        following = [requests.get(f"{keepalive}?m=fine", timeout=10) for _ in range(3)]
        assert [(r.status_code, r.text) for r in following] == [(200, "ok")] * 3, [
            r.text for r in following
        ]


def test_keep_alive_to_services_still_serves_ordinary_answers(hub, keepalive):
    """The pool is still used for ordinary answers: many requests, few connections at the service."""
    pid = hub.proc.pid
    session = requests.Session()
    for _ in range(50):
        assert session.get(f"{keepalive}?m=fine", timeout=10).text == "ok"
    port = hub.service_port("attack", "ka", 1)
    to_service = [
        line
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[2].endswith(f":{port:04X}") and line.split()[3] == "01"
    ]
    assert 1 <= len(to_service) <= 4, (len(to_service), pid)


# --- 3. one huge chunk -----------------------------------------------------------------------------


def test_a_huge_chunk_is_relayed_a_block_at_a_time(hub, keepalive):
    """Four clients at once, each sent one 90 MB chunk by the service, and one 150 MB chunk (over
    the 100 MB a stream may buffer): relayed whole, with the hub's memory flat."""
    pid = hub.proc.pid
    base = rss_kb(pid)
    with contextlib.suppress(OSError):  # the peak (VmHWM) starts again from here
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            time.sleep(0.01)

    sizes: list = []

    def fetch(n: int) -> None:
        got = 0
        try:
            with requests.get(f"{keepalive}?m=bigchunk&n={n}", stream=True, timeout=120) as r:
                for block in r.iter_content(1 << 20):
                    got += len(block)
        except requests.RequestException as e:
            sizes.append((n, f"broken after {got}: {type(e).__name__}"))
            return
        sizes.append((n, got))

    watcher = threading.Thread(target=sample)
    watcher.start()
    try:
        clients = [threading.Thread(target=fetch, args=(90 * 2**20,)) for _ in range(4)]
        clients.append(threading.Thread(target=fetch, args=(150 * 2**20,)))
        for t in clients:
            t.start()
        for t in clients:
            t.join(180)
    finally:
        done.set()
        watcher.join()
    expected = [(n, n) for n in [90 * 2**20] * 4 + [150 * 2**20]]
    assert sorted(sizes, key=str) == sorted(expected, key=str)
    peak[0] = max(peak[0], rss_peak_kb(pid))
    assert peak[0] - base < 60 * 1024, (base, peak[0])  # kB: not one chunk held, let alone five


# --- 6. https development URLs --------------------------------------------------------------------

#: A development server that speaks TLS only, and says so when a client speaks plain HTTP to it
#: (printing what it was sent in clear).
TLS_DEV = r"""
import json, socket, ssl, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

cert, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply({"sdkVersion": "tls", "metadata": {}, "options": [],
                    "commands": [{"name": "echo", "inputs": [], "outputs": []}]})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.reply({"tls": True, "authorization": self.headers.get("Authorization"),
                    "host": self.headers.get("Host")})

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    def get_request(self):
        sock, addr = self.socket.accept()
        if sock.recv(1, socket.MSG_PEEK) != b"\x16":  # not a TLS handshake
            sock.settimeout(2)
            print("PLAINTEXT " + json.dumps(sock.recv(65536).decode("latin1")), flush=True)
            sock.close()
            raise OSError("spoken to in plain HTTP")
        return ctx.wrap_socket(sock, server_side=True), addr


server = Server(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
"""


def test_an_https_development_url_is_spoken_to_over_tls(tmp_path, monkeypatch):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", TLS_DEV, str(cert), str(key), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    printed: list = []
    hub = None
    try:
        assert server.stdout.readline().strip() == "ready"
        threading.Thread(target=lambda: printed.extend(server.stdout), daemon=True).start()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the hub trusts this server's certificate
        hub = Hub(tmp_path / "hub").start()
        hub.ensure_group("attack", "g")
        r = hub.post(
            "/api/v1/projects/attack/services",
            json={"name": "tls", "group": "g", "dev_url": f"https://127.0.0.1:{port}",
                  "dev_token": "dev-secret-never-in-clear", "public": True},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        for _ in range(3):  # the second and third over the pooled TLS connection
            r = requests.post(f"{hub.url}/serve/attack/tls/echo", json={}, timeout=10)
            assert r.status_code == 200, (r.text, hub.output[-3000:])
            assert r.json() == {
                "tls": True,
                "authorization": "token dev-secret-never-in-clear",
                "host": f"127.0.0.1:{port}",
            }
        time.sleep(0.3)
        assert not [line for line in printed if line.startswith("PLAINTEXT")], printed
    finally:
        if hub is not None:
            hub.stop()
        server.kill()
        server.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- 7. a port taken over while clients hammer the service ----------------------------------------


def test_a_port_taken_over_the_moment_its_service_dies_gets_nothing_under_load(hub, tmp_path):
    publish(hub, "victim", make_bundle(tmp_path / "victim", "vic"))
    port = hub.service_port("attack", "victim", 1)
    seen: list = []

    class Impostor(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - it answers /healthcheck as the service would
            body = b'{"status": "RUNNING"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802
            seen.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    stop = threading.Event()
    answers: list = []

    def hammer(n: int) -> None:
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.post(
                    f"{hub.url}/serve/attack/victim/echo", json={"text": f"secret{n}"}, timeout=10
                )
                answers.append(r.status_code)
            except requests.RequestException:
                answers.append("error")

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(6)]
    for w in workers:
        w.start()
    impostor = None
    try:
        time.sleep(1)
        assert 200 in answers
        os.kill(hub.service_pid("attack", "victim", 1), signal.SIGKILL)
        deadline = time.monotonic() + 5
        while impostor is None and time.monotonic() < deadline:  # the port, as soon as it is free
            try:
                impostor = http.server.ThreadingHTTPServer(("127.0.0.1", port), Impostor)
            except OSError:
                time.sleep(0.001)
        assert impostor is not None
        threading.Thread(target=impostor.serve_forever, daemon=True).start()
        time.sleep(1.5)  # not longer: each restart it foils counts as a crash
    finally:
        stop.set()
        for w in workers:
            w.join(30)
        if impostor is not None:
            impostor.shutdown()
            impostor.server_close()
    assert seen == [], f"the impostor got {len(seen)} request(s): {seen[:3]}"
    assert 503 in answers  # told to come back while it restarted

    def back() -> bool:
        r = requests.post(f"{hub.url}/serve/attack/victim/echo", json={"text": "back"}, timeout=10)
        return r.status_code == 200 and r.json() == {"text": "vic:back"}

    wait_for(back, 60, 0.5, "the service to be back on its port")
    assert seen == []


# --- 8. 500s from forms and lengths ----------------------------------------------------------------


def status_of(answer: bytes) -> int:
    m = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    return int(m.group(1)) if m else 0


def test_forms_without_a_boundary_and_lengths_in_other_digits_are_not_500s(hub, echo, keepalive):
    lines_before = len(hub.lines)
    for content_type in (b"multipart/form-data", b"multipart/form-data; boundary="):
        for path, auth in ((b"/login", b""), (b"/api/v1/projects", b"Authorization: token %s\r\n")):
            request = (
                b"POST %s HTTP/1.1\r\nHost: x\r\n" % path
                + (auth % hub.token.encode() if auth else b"")
                + b"Content-Type: %s\r\nContent-Length: 5\r\n\r\nx=1&y" % content_type
            )
            answer = raw_request(hub, request)
            assert status_of(answer) == 400, (path, content_type, answer[:300])
    # Content-Length: superscript two (str.isdigit says yes, int says no)
    for path in (b"/login", b"/api/v1/projects", b"/serve/attack/echo/echo"):
        answer = raw_request(
            hub,
            b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: token %s\r\n"
            b"Content-Length: \xb2\r\n\r\nxx" % (path, hub.token.encode()),
        )
        assert status_of(answer) == 400, (path, answer[:300])
    # a service that answers with it: a 502 that says why
    r = requests.get(f"{keepalive}?m=superscript", timeout=10)
    assert r.status_code == 502 and "out of the protocol" in r.json()["error"]
    time.sleep(0.3)
    said = "\n".join(hub.lines[lines_before:])
    assert "Traceback" not in said and "Uncaught exception" not in said, said[-3000:]


# --- low: Clear-Site-Data, and the log of malformed requests -------------------------------------


def test_a_service_cannot_clear_the_hubs_site_data(hub, keepalive):
    r = requests.get(f"{keepalive}?m=clear", timeout=10)
    assert r.status_code == 200 and r.text == "ok"
    assert "Clear-Site-Data" not in r.headers


def test_malformed_requests_fill_no_log(hub):
    before = len(hub.lines)
    for _ in range(100):
        raw_request(hub, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", timeout=5)
    time.sleep(0.3)
    malformed = [line for line in hub.lines[before:] if "Malformed HTTP message" in line]
    assert len(malformed) <= 1, malformed[:5]  # one line every ten seconds at most
    assert any("Malformed HTTP message" in line for line in hub.lines)  # but said


# --- 4. slow readers at the connection cap --------------------------------------------------------


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    """A hub that holds 16 connections at most, with a public echo service whose gallery image is
    a 3 MB PNG: the hub, the echo URL and the image's URL."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("capped")
    h = Hub(folder / "hub", extra_args=["--max-connections", "16"]).start()
    try:
        bundle = make_bundle(folder / "big", "big")
        noise = Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000))
        buf = io.BytesIO()
        noise.save(buf, format="PNG")
        assert len(buf.getvalue()) > 3_000_000
        (bundle / "gallery" / "dot.png").write_bytes(buf.getvalue())
        h.ensure_group("c", "g")
        assert h.register("c", "g", "echo", bundle, public="true").status_code == 201
        assert h.publish("c", "echo").status_code == 202
        h.wait_version("c", "echo", 1)
        image = h.version("c", "echo", 1)["gallery"][0]["url"]
        h.session.close()  # its keep-alive connection is not one of the 16
        yield h, f"{h.url}/serve/c/echo/echo", image
    finally:
        h.stop()


def slow_reader(hub, request: bytes) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port_of(hub)))
    s.sendall(request)
    return s


def others_get_in(hub, within: float) -> float:
    """Seconds until a plain API request is answered 200 (an AssertionError past ``within``)."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < within:
        try:
            last = requests.get(hub.url + "/api/v1", timeout=2).status_code
            if last == 200:
                return time.monotonic() - t0
        except requests.RequestException as e:
            last = type(e).__name__
        time.sleep(0.5)
    raise AssertionError(f"still shut out after {within} s (last: {last})")


def test_clients_that_read_none_of_large_answers_do_not_shut_others_out(capped):
    hub, echo_url, _image = capped
    body = json.dumps({"text": "a" * (4 * 2**20)}).encode()
    request = (
        b"POST /serve/c/echo/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    held = [slow_reader(hub, request) for _ in range(16)]
    try:
        time.sleep(2)  # all 16 are being answered, and read nothing
        took = others_get_in(hub, 40)
        assert took < 30, took
        r = requests.post(echo_url, json={"text": "hi"}, timeout=10)
        assert r.json() == {"text": "big:hi"}
    finally:
        for s in held:
            s.close()


def test_clients_that_read_a_gallery_image_a_byte_at_a_time_do_not_shut_others_out(capped):
    hub, _echo, image = capped
    path = image.split(hub.url, 1)[1].encode()
    held = [slow_reader(hub, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path) for _ in range(16)]
    try:
        time.sleep(1)
        for s in held:  # a byte now, the next one in 25 s
            with contextlib.suppress(OSError):
                s.recv(1)
        took = others_get_in(hub, 40)
        assert took < 30, took
        r = requests.get(image, timeout=10)
        assert r.status_code == 200 and len(r.content) > 3_000_000
    finally:
        for s in held:
            s.close()
