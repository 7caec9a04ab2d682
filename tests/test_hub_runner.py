"""The runner: real service processes in a built environment, health checks, supervision, stopping."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from builder_support import processes_with_key, write_bundle

from algolink_jupyter.hub.bundles import read_config
from algolink_jupyter.hub.runner import (
    RotatingLog,
    Runner,
    StartError,
    free_port,
    kill_stale,
    pid_file_for,
)

pytest_plugins = ("builder_support",)

REPO = Path(__file__).resolve().parent.parent


class Recorder:
    """An ``on_state`` that keeps every report."""

    def __init__(self) -> None:
        self.events: list = []

    def __call__(self, key: str, state: str, message) -> None:
        self.events.append((key, state, message))

    def states(self, key: str) -> list:
        return [s for k, s, _ in self.events if k == key]

    async def wait_for(self, key: str, state: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.states(key).count(state) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{key} never reached {state} x{count}: {self.events}")
            await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ", 1)[1][:1] != "Z"


async def get(url: str, **kw):
    return await asyncio.to_thread(requests.get, url, timeout=10, **kw)


async def post(url: str, **kw):
    return await asyncio.to_thread(requests.post, url, timeout=10, **kw)


@pytest.fixture
def bundle(tmp_path, warm):
    """A fresh copy of the test service, so flag files stay in this test."""
    return write_bundle(
        tmp_path / "bundle", requirements=(warm.bundle / "requirements.txt").read_text()
    )


def test_start_health_and_stop(warm, bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("ALGOLINK_TOKEN", "the-hubs-secret")
    rec = Recorder()
    runner = Runner(on_state=rec)
    port = free_port()
    log_path = tmp_path / "logs" / "run.log"

    async def go():
        await runner.start(
            "p/s/1",
            warm.env,
            bundle,
            warm.config,
            port,
            log_path,
            extra_env={"ALGOLINK_MODEL_OPTIONS": json.dumps({"greeting": "hi from the hub"})},
        )
        assert rec.states("p/s/1") == ["starting", "online"]
        assert runner.state("p/s/1") == "online"
        url = runner.url("p/s/1")
        assert url == f"http://127.0.0.1:{port}"
        pid = runner.pid("p/s/1")
        assert pid and alive(pid) and os.getpgid(pid) == pid  # a process group of its own
        record = json.loads(pid_file_for(log_path).read_text())
        assert record["pid"] == pid and record["port"] == port and record["key"] == "p/s/1"
        assert (await get(url + "/healthcheck")).json() == {"status": "RUNNING", "ongoing": 0}
        answer = await post(url + "/info", json={"name": "ada"})
        info = json.loads(answer.json()["info"])
        assert info["greeting"] == "hi from the hub"  # extra_env reached setup
        assert info["host"] == "127.0.0.1" and info["pid"] == pid
        assert info["token"] is None  # the hub's ALGOLINK_* settings are not passed on
        assert info["prefix"] == str(warm.env.path)
        await runner.stop("p/s/1")
        assert rec.states("p/s/1")[-1] == "stopped"
        assert runner.url("p/s/1") is None and runner.pid("p/s/1") is None
        assert not alive(pid)
        assert not pid_file_for(log_path).exists()
        with pytest.raises(requests.ConnectionError):
            await get(url + "/healthcheck")
        await runner.stop("p/s/1")  # stopping twice is harmless

    asyncio.run(go())
    text = log_path.read_text()
    assert "Setting up model..." in text
    assert f"Starting model server at http://127.0.0.1:{port}..." in text
    assert "==> Online at" in text and "==> Stopped." in text


def test_a_killed_process_comes_back(warm, bundle, tmp_path):
    rec = Recorder()
    runner = Runner(on_state=rec, backoff_initial=0.2)

    async def go():
        await runner.start("k", warm.env, bundle, warm.config, free_port(), tmp_path / "run.log")
        first = runner.pid("k")
        os.kill(first, signal.SIGKILL)
        await rec.wait_for("k", "restarting")
        assert runner.url("k") is None  # not routed while it restarts
        await rec.wait_for("k", "online", count=2)
        second = runner.pid("k")
        assert second and second != first and alive(second)
        assert (await get(runner.url("k") + "/healthcheck")).json()["status"] == "RUNNING"
        message = [m for _, s, m in rec.events if s == "restarting"][0]
        assert "SIGKILL" in message
        await runner.stop_all()
        assert not alive(second)

    asyncio.run(go())
    assert "killed by SIGKILL; restarting in 0.2 s" in (tmp_path / "run.log").read_text()


def test_a_crash_loop_ends_failed(warm, bundle, tmp_path):
    rec = Recorder()
    runner = Runner(on_state=rec, max_crashes=3, crash_window=60, backoff_initial=0.1)
    log_path = tmp_path / "run.log"

    async def go():
        await runner.start("loop", warm.env, bundle, warm.config, free_port(), log_path)
        (bundle / "crash.flag").write_text("")  # from now on every setup fails
        os.kill(runner.pid("loop"), signal.SIGKILL)
        await rec.wait_for("loop", "failed", timeout=60)

    asyncio.run(go())
    assert rec.states("loop") == ["starting", "online", "restarting", "restarting", "failed"]
    message = rec.events[-1][2]
    assert "exited with status 1: 3 crashes within 60 s" in message
    assert "crash.flag says this setup fails" in message  # the log's tail says why
    assert runner.state("loop") == "failed"
    assert runner.url("loop") is None and runner.pid("loop") is None
    assert not pid_file_for(log_path).exists()
    assert processes_with_key("loop") == []


def test_a_setup_that_fails_is_a_start_error(warm, bundle, tmp_path):
    (bundle / "crash.flag").write_text("")
    rec = Recorder()
    runner = Runner(on_state=rec)
    with pytest.raises(StartError) as e:
        asyncio.run(
            runner.start("bad", warm.env, bundle, warm.config, free_port(), tmp_path / "run.log")
        )
    assert "exited with status 1 before it was ready" in str(e.value)
    assert "crash.flag says this setup fails" in str(e.value)
    assert rec.states("bad") == ["starting", "failed"]
    assert runner.url("bad") is None and runner.state("bad") is None
    assert processes_with_key("bad") == []


def test_a_service_that_never_gets_ready_times_out(warm, bundle, tmp_path):
    (bundle / "slow-import.flag").write_text("")
    runner = Runner()
    t0 = time.monotonic()
    with pytest.raises(StartError, match=r"not ready within 1\.5 s"):
        asyncio.run(
            runner.start(
                "slow",
                warm.env,
                bundle,
                warm.config,
                free_port(),
                tmp_path / "run.log",
                health_timeout=1.5,
            )
        )
    assert time.monotonic() - t0 < 10
    assert processes_with_key("slow") == []


def test_a_taken_port_is_a_start_error(warm, bundle, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartError, match=f"Port {port} on 127.0.0.1 is already in use"):
            asyncio.run(
                Runner().start("busy", warm.env, bundle, warm.config, port, tmp_path / "run.log")
            )
    assert processes_with_key("busy") == []


def test_a_stale_process_in_the_pid_file_is_stopped_first(warm, bundle, tmp_path):
    """What a hub killed with SIGKILL leaves: a process of the key, recorded in the pid file."""
    log_path = tmp_path / "run.log"
    stale = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env={**os.environ, "ALGOLINK_RUNNER_KEY": "again"},
        start_new_session=True,
    )
    pid_file_for(log_path).write_text(json.dumps({"key": "again", "pid": stale.pid}))
    runner = Runner()

    async def go():
        await runner.start("again", warm.env, bundle, warm.config, free_port(), log_path)
        assert stale.poll() is not None  # stopped before the new one started
        assert json.loads(pid_file_for(log_path).read_text())["pid"] == runner.pid("again")
        await runner.stop("again")

    try:
        asyncio.run(go())
    finally:
        if stale.poll() is None:
            stale.kill()
        stale.wait()


def test_kill_stale_leaves_a_reused_pid_alone(tmp_path):
    """A pid file whose pid now belongs to some other program (here: this test) kills nothing."""
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(json.dumps({"key": "gone", "pid": os.getpid()}))
    assert kill_stale(pid_file) is False
    assert not pid_file.exists()
    pid_file.write_text("not json")
    assert kill_stale(pid_file) is False and not pid_file.exists()
    assert kill_stale(tmp_path / "missing.pid") is False


HUB = """
import asyncio, json, sys
from pathlib import Path
from algolink_jupyter.hub.builder import Environment
from algolink_jupyter.hub.bundles import read_config
from algolink_jupyter.hub.runner import Runner, free_port

async def main():
    env = Environment.at(sys.argv[1], Path(sys.argv[2]))
    bundle = Path(sys.argv[3])
    runner = Runner()
    await runner.start("orphan", env, bundle, read_config(bundle), free_port(), Path(sys.argv[4]))
    print(runner.pid("orphan"), runner.url("orphan"), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_a_service_outlives_a_hub_killed_with_sigkill_and_is_taken_back(warm, bundle, tmp_path):
    """What a hub restart needs: the service keeps serving while no hub runs, with its log, and the
    next runner takes it back (same process, no cold start) and can stop it."""
    script = tmp_path / "hub.py"
    script.write_text(textwrap.dedent(HUB))
    log_path = tmp_path / "run.log"
    hub = subprocess.Popen(
        [sys.executable, str(script), warm.env.key, str(warm.env.path), str(bundle), str(log_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        words = hub.stdout.readline().split()
        pid, url = int(words[0]), words[1]
        assert alive(pid)
        hub.kill()  # SIGKILL: no clean-up code of the hub runs
        hub.wait()
        time.sleep(0.5)
        assert alive(pid)
        answer = requests.post(url + "/info", json={"name": "alone"}, timeout=10)
        assert json.loads(answer.json()["info"])["pid"] == pid  # still serving, no hub

        rec = Recorder()
        runner = Runner(on_state=rec)

        async def go():
            taken = await runner.adopt("orphan", warm.env, bundle, warm.config, log_path)
            assert taken and runner.pid("orphan") == pid and runner.url("orphan") == url
            assert rec.states("orphan") == ["online"]
            assert not await runner.adopt("someone-else", warm.env, bundle, warm.config, log_path)
            await runner.stop("orphan")

        asyncio.run(go())
        assert not alive(pid) and processes_with_key("orphan") == []
        text = log_path.read_text()
        # the keeper outlived the first hub: the service's shutdown lines reached the log
        assert "Taken back by a new hub" in text and "==> Stopped." in text
        assert text.index("Taken back") < text.rindex("Stopped.")
    finally:
        if hub.poll() is None:
            hub.kill()
        for leftover in processes_with_key("orphan"):
            os.kill(leftover, signal.SIGKILL)


def test_a_pid_file_of_a_dead_keeper_is_not_taken_back(warm, bundle, tmp_path):
    log_path = tmp_path / "run.log"
    pid_file_for(log_path).write_text(
        json.dumps({"key": "k", "pid": os.getpid(), "shim": os.getpid(), "port": free_port()})
    )
    assert not asyncio.run(Runner().adopt("k", warm.env, bundle, warm.config, log_path))


def test_setup_failed_at_run_time_is_noticed_and_restarted(warm, bundle, tmp_path):
    """A service whose /healthcheck turns to SETUP_FAILED while it runs (here: its own /setup, called
    on its port, failed) is reported with its log's tail and restarted."""
    rec = Recorder()
    runner = Runner(on_state=rec, health_interval=0.3, health_check_timeout=1, backoff_initial=0.1)

    async def go():
        await runner.start("sf", warm.env, bundle, warm.config, free_port(), tmp_path / "run.log")
        first, url = runner.pid("sf"), runner.url("sf")
        (bundle / "crash.flag").write_text("")
        answer = await post(url + "/setup", json={"greeting": "again"})
        assert answer.status_code == 500
        assert (await get(url + "/healthcheck")).json()["status"] == "SETUP_FAILED"
        await rec.wait_for("sf", "restarting", timeout=20)
        (bundle / "crash.flag").unlink()
        await rec.wait_for("sf", "online", count=2, timeout=60)
        assert runner.pid("sf") != first
        assert (await get(runner.url("sf") + "/healthcheck")).json()["status"] == "RUNNING"
        await runner.stop_all()

    asyncio.run(go())
    message = [m for _, s, m in rec.events if s == "restarting"][0]
    assert "SETUP_FAILED" in message and "crash.flag says this setup fails" in message


def test_a_hung_service_is_noticed_and_restarted(warm, bundle, tmp_path):
    rec = Recorder()
    runner = Runner(on_state=rec, health_interval=0.3, health_check_timeout=0.5, hung_checks=3)

    async def go():
        await runner.start("hung", warm.env, bundle, warm.config, free_port(), tmp_path / "run.log")
        first = runner.pid("hung")
        os.kill(first, signal.SIGSTOP)  # alive, but answers nothing
        await rec.wait_for("hung", "restarting", timeout=30)
        await rec.wait_for("hung", "online", count=2, timeout=60)
        assert not alive(first) and runner.pid("hung") != first
        await runner.stop_all()

    asyncio.run(go())
    message = [m for _, s, m in rec.events if s == "restarting"][0]
    assert "stopped answering GET /healthcheck" in message


def test_stop_all_stops_every_service(warm, tmp_path):
    bundles = [write_bundle(tmp_path / f"b{i}") for i in range(2)]
    rec = Recorder()
    runner = Runner(on_state=rec)

    async def go():
        await asyncio.gather(
            *(
                runner.start(f"s{i}", warm.env, b, warm.config, free_port(), tmp_path / f"{i}.log")
                for i, b in enumerate(bundles)
            )
        )
        pids = [runner.pid("s0"), runner.pid("s1")]
        assert all(alive(p) for p in pids)
        await runner.stop_all()
        return pids

    pids = asyncio.run(go())
    assert not any(alive(p) for p in pids)
    assert rec.states("s0")[-1] == rec.states("s1")[-1] == "stopped"
    assert runner.keys() == []


def test_stop_escalates_to_sigkill_and_takes_the_whole_group(warm, bundle, tmp_path):
    """A request still running holds the server after SIGTERM; stop() kills it after its timeout."""
    (bundle / "child.flag").write_text("")
    runner = Runner()

    async def go():
        await runner.start("busy", warm.env, bundle, warm.config, free_port(), tmp_path / "r.log")
        pid, url = runner.pid("busy"), runner.url("busy")
        helper = int((bundle / "child.pid").read_text())
        assert alive(helper)
        request = asyncio.ensure_future(post(url + "/info", json={"name": "nap"}))
        await asyncio.sleep(0.5)  # the request is in the model now
        t0 = time.monotonic()
        await runner.stop("busy", timeout=1)
        seconds = time.monotonic() - t0
        with pytest.raises(requests.RequestException):
            await request
        return pid, helper, seconds

    pid, helper, seconds = asyncio.run(go())
    assert not alive(pid) and not alive(helper)
    assert 0.9 < seconds < 8


def test_rotating_log_caps_its_files(tmp_path):
    log = RotatingLog(tmp_path / "run.log", max_bytes=1000, backups=2)
    for i in range(500):
        log.write(f"line {i:04d} " + "x" * 40)
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["run.log", "run.log.1", "run.log.2"]
    assert all((tmp_path / n).stat().st_size <= 1000 for n in names)
    assert (tmp_path / "run.log").read_text().splitlines()[-1].startswith("line 0499")
    # appending to an existing log keeps what was there
    log = RotatingLog(tmp_path / "run.log", max_bytes=10_000, backups=2)
    log.write("after")
    log.close()
    assert "line 0499" in (tmp_path / "run.log").read_text()


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_missing_entrypoint_program_is_a_start_error(warm, tmp_path):
    odd = write_bundle(tmp_path / "odd", yml="entrypoint: no-such-program-here --serve\n")
    with pytest.raises(StartError, match="no-such-program-here"):
        asyncio.run(
            Runner().start("odd", warm.env, odd, read_config(odd), free_port(), tmp_path / "r.log")
        )
