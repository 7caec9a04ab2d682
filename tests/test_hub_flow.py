"""The hub under stress: crashes, restarts, concurrent publishes, publishing under load, and the CLI.

Real hub processes, real builds, real service processes; nothing of ours is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from hub_process import ALGOLINK, REPO, Hub, alive, make_bundle, wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow-bundles")
    return {tag: make_bundle(root / tag, tag) for tag in ("v1", "v2", "v3")}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-flow")).start()
    yield h
    h.stop()


def processes_of(hub: Hub, project: str, service: str) -> set:
    """The versions of a service of ``hub`` whose processes (the service, its keeper, its sandbox)
    live: the runner marks each with its key, ``project/service/number``, and each runs in an
    environment in the hub's data folder."""
    marker = f"ALGOLINK_RUNNER_KEY={project}/{service}/".encode()
    here = f"VIRTUAL_ENV={hub.data}/".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        values = environ.split(b"\0")
        if not any(v.startswith(here) for v in values):
            continue
        for value in values:
            if value.startswith(marker) and alive(int(entry)):
                found.add(value.split(b"=", 1)[1].decode())
    return found


def online(hub, project, name, bundle) -> None:
    hub.ensure_group(project, "g")
    r = hub.register(project, "g", name, bundle)
    assert r.status_code == 201, r.text
    assert hub.publish(project, name).status_code == 202
    hub.wait_version(project, name, 1)


def test_a_service_killed_with_sigkill_comes_back(hub, bundles):
    online(hub, "crash", "svc", bundles["v1"])
    pid = hub.service_pid("crash", "svc", 1)
    assert alive(pid)
    os.kill(pid, signal.SIGKILL)

    def back() -> bool:
        new = hub.service_pid("crash", "svc", 1)
        return bool(new and new != pid and alive(new)) and (
            hub.service("crash", "svc")["status"] == "online"
        )

    wait_for(back, 60, 0.1, "the service to come back")
    assert hub.serve("crash/svc/echo", json={"text": "again"}).json() == {"text": "v1:again"}
    assert "restarting" in hub.logs("crash", "svc", 1)


def test_two_publishes_at_once_leave_the_service_consistent(hub, bundles):
    online(hub, "race", "svc", bundles["v1"])
    hub.new_version("race", "svc", bundles["v2"])
    hub.new_version("race", "svc", bundles["v3"])
    barrier = threading.Barrier(3)
    answers: list = []

    def publish(number):
        barrier.wait()
        answers.append(hub.publish("race", "svc", number).status_code)

    threads = [threading.Thread(target=publish, args=(n,)) for n in (2, 3, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers) in ([202, 202, 202], [200, 202, 202])

    def settled():
        versions = hub.service("race", "svc")["versions"]
        return all(v["status"] not in ("building", "starting") for v in versions) and versions

    versions = wait_for(settled, 120, 0.2, "both publishes to finish")
    service = hub.service("race", "svc")
    live = [v["number"] for v in versions if v["status"] == "online"]
    assert len(live) == 1 and service["published_version"] == live[0], versions
    assert service["status"] == "online"
    assert {v["status"] for v in versions if v["number"] != live[0]} == {"offline"}
    apis = [v["api_version"] for v in versions if v["api_version"]]
    assert len(apis) == len(set(apis)) == 3  # v1, and one each for versions 2 and 3
    tag = f"v{live[0]}"
    assert hub.serve("race/svc/echo", json={"text": "x"}).json() == {"text": f"{tag}:x"}
    # The versions swapped out stay warm for pinned clients, then stop when idle.
    assert hub.api("PATCH", "/api/v1/projects/race/services/svc", json={"keep_warm": 1}).ok
    wait_for(
        lambda: len(processes_of(hub, "race", "svc")) == 1, 30, 0.2, "one version left running"
    )


def test_publishing_under_a_stream_of_requests_fails_none(hub, bundles):
    online(hub, "load", "svc", bundles["v1"])
    hub.new_version("load", "svc", bundles["v2"])
    stop = threading.Event()
    seen: dict = {}
    failures: list = []

    def client():
        session = requests.Session()
        session.headers["Authorization"] = f"token {hub.token}"
        deadline = time.monotonic() + 120
        count = 0
        while not stop.is_set() and time.monotonic() < deadline and count < 100_000:
            count += 1
            try:
                r = session.post(hub.url + "/serve/load/svc/echo", json={"text": "x"}, timeout=30)
                if r.status_code != 200:
                    failures.append((r.status_code, r.text))
                else:
                    tag = r.json()["text"].split(":")[0]
                    seen[tag] = seen.get(tag, 0) + 1
            except requests.RequestException as e:
                failures.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: seen.get("v1", 0) > 20, 30, 0.05, "requests to flow")
    assert hub.publish("load", "svc", 2).status_code == 202
    hub.wait_version("load", "svc", 2)
    wait_for(lambda: seen.get("v2", 0) > 20, 30, 0.05, "requests to reach version 2")
    # Version 1 stays warm for clients that pinned /v1/; idle for a second, it stops.
    assert hub.api("PATCH", "/api/v1/projects/load/services/svc", json={"keep_warm": 1}).ok
    wait_for(lambda: len(processes_of(hub, "load", "svc")) == 1, 30, 0.1, "version 1 to stop")
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(60)
    assert failures == [], failures[:5]
    assert seen["v1"] > 20 and seen["v2"] > 20


def run_cli(hub, *args, timeout=180) -> subprocess.CompletedProcess:
    env = {**os.environ, "ALGOLINK_HUB_URL": hub.url, "ALGOLINK_TOKEN": hub.token}
    return subprocess.run(
        [*ALGOLINK, *args], cwd=str(REPO), env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_command_line(hub, bundles, tmp_path):
    out = run_cli(hub, "register", str(bundles["v1"]), "--project", "cli", "--group", "tools",
                  "--name", "echo", "--metadata", '{"license": "BSD"}')  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Created project cli" in out.stdout and "Registered cli/echo" in out.stdout

    out = run_cli(hub, "publish", "cli/echo")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Build succeeded" in out.stdout or "Reusing environment" in out.stdout
    assert "Starting model server" in out.stdout
    assert "is online as v1" in out.stdout and "/serve/cli/echo/" in out.stdout
    assert "==> building" in out.stderr or "==> starting" in out.stderr  # the progress

    out = run_cli(hub, "status")
    assert out.returncode == 0 and "cli/echo" in out.stdout and "online" in out.stdout
    out = run_cli(hub, "status", "cli/echo")
    assert out.returncode == 0 and "version 1: online" in out.stdout

    out = run_cli(hub, "logs", "cli/echo")
    assert out.returncode == 0 and "Starting model server" in out.stdout

    env = {**os.environ, "ALGOLINK_HUB_URL": hub.url, "ALGOLINK_TOKEN": hub.token}
    follow = subprocess.Popen(
        [*ALGOLINK, "logs", "cli/echo", "--follow"],
        cwd=str(REPO),
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        seen = ""
        while "online as v1" not in seen:
            line = follow.stdout.readline()
            assert line, "the log stream ended early"
            seen += line
        assert follow.poll() is None  # it keeps following an online service
    finally:
        follow.kill()
        follow.wait(10)

    broken = make_bundle(tmp_path / "broken", "b", setup="raise RuntimeError('bad checkpoint')")
    out = run_cli(hub, "register", str(broken), "--project", "cli", "--group", "tools",
                  "--name", "broken")  # fmt: skip
    assert out.returncode == 0, out.stderr
    out = run_cli(hub, "publish", "cli/broken")
    assert out.returncode != 0 and "failed" in out.stderr and "bad checkpoint" in out.stderr

    out = run_cli(hub, "register", str(bundles["v1"]), "--project", "cli", "--group", "tools",
                  "--name", "bad name")  # fmt: skip
    assert out.returncode != 0 and "space" in out.stderr
    env.pop("ALGOLINK_TOKEN")
    no_token = subprocess.run(
        [*ALGOLINK, "publish", "cli/echo"], cwd=str(REPO), env=env, capture_output=True, text=True
    )
    assert no_token.returncode != 0 and "ALGOLINK_TOKEN" in no_token.stderr
    env["ALGOLINK_HUB_URL"] = "http://127.0.0.1:9"
    unreachable = subprocess.run(
        [*ALGOLINK, "status"], cwd=str(REPO), env=env, capture_output=True, text=True
    )
    assert unreachable.returncode != 0 and "Cannot reach the hub" in unreachable.stderr


def test_a_restarted_hub_brings_its_services_back(tmp_path, bundles):
    hub = Hub(tmp_path / "hub").start()
    try:
        online(hub, "restart", "svc", bundles["v1"])
        hub.ensure_group("restart", "g")
        assert hub.register("restart", "g", "idle", bundles["v2"]).status_code == 201
        token = hub.token

        # A clean stop: the services keep running, and the next hub serves them at once.
        first = hub.service_pid("restart", "svc", 1)
        hub.stop(keep_services=True)
        assert alive(first)
        assert "keep running" in hub.output
        hub.start()
        assert hub.printed_token is None and hub.token == token  # printed once, then reused
        assert hub.version("restart", "svc", 1)["status"] == "online"  # never "starting"
        assert hub.serve("restart/svc/echo", json={"text": "a"}).json() == {"text": "v1:a"}
        assert hub.service_pid("restart", "svc", 1) == first  # no cold start

        # Killed: the same; nothing of the hub's end is needed.
        hub.kill()
        assert alive(first)
        hub.start()
        assert hub.serve("restart/svc/echo", json={"text": "b"}).json() == {"text": "v1:b"}
        assert hub.service_pid("restart", "svc", 1) == first
        assert hub.service("restart", "idle")["status"] == "registered"  # never published
        assert processes_of(hub, "restart", "svc") == {"restart/svc/1"}

        # A service that died while no hub ran is started again.
        hub.stop(keep_services=True)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: not alive(first), 10, 0.1, "the service to die")
        hub.start()
        hub.wait_version("restart", "svc", 1)
        assert hub.serve("restart/svc/echo", json={"text": "c"}).json() == {"text": "v1:c"}
        assert hub.service_pid("restart", "svc", 1) != first

        # --stop-services-on-exit: they stop with the hub.
        hub.stop(keep_services=True)
        hub.start(extra_args=["--stop-services-on-exit"])
        third = hub.service_pid("restart", "svc", 1)
        hub.stop(keep_services=True)
        assert not alive(third), (
            hub.output + (hub.data / "services/restart/svc/1/run.log").read_text()[-3000:]
        )
        assert processes_of(hub, "restart", "svc") == set()
    finally:
        hub.stop()


RAW_SERVICE = '''
"""Not the SDK: any server that answers /healthcheck can be a service (the seed's NOTE)."""
import asyncio
import hashlib
import json
import os
import sys

import tornado.web

if os.environ.get("ALGOLINK_META") == "1":
    print(json.dumps({"sdkVersion": "raw", "metadata": {"name": "raw"}, "options": [],
                      "commands": [{"name": c, "inputs": [], "outputs": []}
                                   for c in ("echo", "stream", "big")]}))
    sys.exit(0)

BIG = hashlib.sha256(b"seed").digest() * (3 * 2**20 // 32)


class Health(tornado.web.RequestHandler):
    def get(self):
        self.write({"status": "RUNNING"})


class Echo(tornado.web.RequestHandler):
    def post(self):
        self.write({"path": self.request.path, "query": self.request.query,
                    "length": len(self.request.body), "headers": dict(self.request.headers)})

    get = post


class Stream(tornado.web.RequestHandler):
    async def get(self):
        self.write("part1\\n")
        await self.flush()
        await asyncio.sleep(0.6)
        self.write("part2\\n")


class Big(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/octet-stream")
        self.write(BIG)

    def head(self):
        self.set_header("Content-Length", str(len(BIG)))


async def main():
    app = tornado.web.Application(
        [("/healthcheck", Health), ("/echo", Echo), ("/stream", Stream), ("/big", Big)]
    )
    app.listen(int(os.environ["ALGOLINK_PORT"]), os.environ.get("ALGOLINK_HOST", "127.0.0.1"))
    print("Starting model server", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
'''


def test_serve_streams_and_passes_everything_through(hub, tmp_path):
    import hashlib

    bundle = tmp_path / "raw"
    bundle.mkdir()
    (bundle / "cloud_model.py").write_text(RAW_SERVICE)
    (bundle / "requirements.txt").write_text("tornado\n")
    online(hub, "proxy", "raw", bundle)
    s = hub.session

    r = s.post(hub.url + "/serve/proxy/raw/echo?x=1&y=two", data=b"z" * 200_000, timeout=30)
    seen = r.json()
    assert seen["path"] == "/echo" and seen["query"] == "x=1&y=two" and seen["length"] == 200_000
    assert "Authorization" not in seen["headers"]  # the hub's token stays with the hub
    assert seen["headers"]["X-Forwarded-Prefix"] == "/serve/proxy/raw"
    assert s.get(hub.url + "/serve/proxy/raw/v1/echo", timeout=10).json()["path"] == "/echo"

    start = time.monotonic()
    with s.get(hub.url + "/serve/proxy/raw/stream", stream=True, timeout=30) as r:
        assert r.headers.get("Transfer-Encoding") == "chunked"
        lines = r.iter_lines()
        assert next(lines) == b"part1"
        first = time.monotonic() - start
        assert next(lines) == b"part2"
        total = time.monotonic() - start
    assert first < 0.5 <= total, (first, total)  # part1 came before the service had finished

    big = s.get(hub.url + "/serve/proxy/raw/big", timeout=30)
    assert big.status_code == 200 and len(big.content) == 3 * 2**20
    assert big.content == hashlib.sha256(b"seed").digest() * (3 * 2**20 // 32)
    head = s.head(hub.url + "/serve/proxy/raw/big", timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(3 * 2**20)
    assert head.content == b""
    assert s.get(hub.url + "/serve/proxy/raw/nothing-here", timeout=10).status_code == 404
    # What the manifest does not declare is not forwarded, whatever the process would answer.
    health = s.get(hub.url + "/serve/proxy/raw/healthcheck", timeout=10)
    assert health.status_code == 404 and "echo, stream" in health.json()["error"]
    # A body over the /serve limit is refused without being held, and the hub keeps serving.
    from algolink_jupyter.hub.proxy import MAX_SERVE_BODY

    r = s.post(hub.url + "/serve/proxy/raw/echo", data=b"o" * (MAX_SERVE_BODY + 1), timeout=60)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    assert s.post(hub.url + "/serve/proxy/raw/echo", data=b"x", timeout=10).json()["length"] == 1
    # Many requests on the hub's pooled connections, then the same after the service restarts.
    for _ in range(50):
        assert s.post(hub.url + "/serve/proxy/raw/echo", data=b"x", timeout=10).status_code == 200
    pid = hub.service_pid("proxy", "raw", 1)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: hub.service("proxy", "raw")["status"] == "online"
             and hub.service_pid("proxy", "raw", 1) != pid, 60, 0.1, "the restart")  # fmt: skip
    assert s.post(hub.url + "/serve/proxy/raw/echo", data=b"x", timeout=10).status_code == 200
