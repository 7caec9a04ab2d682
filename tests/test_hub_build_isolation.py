"""Build code that outlives its build, attacked as a hostile tester did.

A build step of a hub run with ``--isolation users`` (root, no bubblewrap) double-forks and calls
setsid: the daemon it leaves behind kept running as the build user every build shared, watched
/proc for later builds (same user, so their environment and /proc/<pid>/root were open to it) and
wrote a ``.pth`` into their environment, builds of another hub on the machine (with bubblewrap)
included. Here the same daemon is started by a real build of one hub, and another hub builds and
runs a victim after it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
import requests
from hub_process import Hub, alive, make_bundle, wait_for

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(os.geteuid() != 0, reason="builds run as users of their own only as root"),
]

#: Run by a build step: ``daemon.py SHARED`` leaves a daemon (double fork, setsid) and returns at
#: once; ``daemon.py SHARED watch`` watches in the foreground until SHARED/stop appears. Either looks
#: for other builds' environments in /proc and writes a .pth into each it can reach (directly, or
#: through /proc/<pid>/root), noting each in SHARED/hits.
DAEMON = r"""
import glob, os, sys, time
shared, watch = sys.argv[1], sys.argv[2:] == ["watch"]
with open(os.path.join(shared, "step.uid"), "w") as f:
    f.write(str(os.getuid()))
if watch:
    open(os.path.join(shared, "watching"), "w").close()
else:
    if os.fork():
        sys.exit(0)  # the step ends at once
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)  # as daemons do: the step's output is let go
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    open(os.path.join(shared, "daemon.started"), "w").close()
me = os.getpid()
deadline = time.time() + 300
while time.time() < deadline and not (watch and os.path.exists(os.path.join(shared, "stop"))):
    with open(os.path.join(shared, "heartbeat-" + ("watch" if watch else "daemon")), "w") as f:
        f.write(str(time.time()))
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        venvs = [e[len(b"VIRTUAL_ENV="):].decode() for e in env if e.startswith(b"VIRTUAL_ENV=")]
        for venv in venvs:
            for root in (f"/proc/{pid}/root", ""):
                for site in glob.glob(f"{root}{venv}/lib/python3*/site-packages"):
                    try:
                        with open(os.path.join(site, "zz_pwned.pth"), "w") as f:
                            f.write("import os; os.environ['ALGOLINK_PWNED'] = '1'\n")
                        with open(os.path.join(shared, "hits"), "a") as f:
                            f.write(site + "\n")
                    except OSError:
                        pass
    time.sleep(0.02)
"""

#: The victim reports whether a .pth someone slipped into its environment ran.
VICTIM = """
import os
import modelcloud
from modelcloud.data_types import text


@modelcloud.command("probe", inputs={}, outputs={"pwned": text()})
def probe(model, inputs):
    return {"pwned": os.environ.get("ALGOLINK_PWNED", "no")}


if __name__ == "__main__":
    modelcloud.run()
"""


def daemons(shared: Path) -> list:
    """The pids (as this test sees them) of the daemons that report to ``shared``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                if b"daemon.py" in argv and str(shared).encode() in argv and alive(int(entry)):
                    found.append(int(entry))
    return found


def beating(shared: Path, who: str = "daemon") -> bool:
    """Whether the daemon (or the watcher) still writes its heartbeat."""
    heartbeat = shared / f"heartbeat-{who}"
    before = heartbeat.read_text() if heartbeat.exists() else None
    time.sleep(0.5)
    return heartbeat.exists() and heartbeat.read_text() != before


def kill_daemons(shared: Path) -> None:
    for pid in daemons(shared):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def reachable_python() -> str:
    """The version of a Python that users other than root may run (the hub's own may live in
    root's home, which they cannot enter without bubblewrap)."""
    import subprocess
    import sys

    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if not candidate or not os.path.exists(candidate):
            continue
        real = Path(os.path.realpath(candidate))
        if all(os.stat(p).st_mode & 0o001 for p in real.parents):
            out = subprocess.run(
                [str(real), "-c", "import platform; print(platform.python_version())"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            version = out.stdout.strip()
            if out.returncode == 0 and tuple(map(int, version.split(".")[:2])) >= (3, 9):
                return version
    pytest.skip("no Python here that users other than root may run")


def reachable_folder() -> Path:
    """A folder under /tmp that other users may pass through (pytest's are root's, 0700): the data
    folder of a hub whose services run as other users without bubblewrap must be reachable."""
    folder = Path(tempfile.mkdtemp(prefix="algolink-build-isolation-", dir="/tmp"))
    os.chmod(folder, 0o711)
    return folder


def test_a_build_step_reaches_no_other_build_and_leaves_nothing_running(tmp_path):
    """Hub A (--isolation users) builds the attacker: one step leaves a daemon, the next watches
    /proc while hub B (bubblewrap, as root) builds and starts a victim. Neither reaches the
    victim's environment, and nothing of the attacker's build runs once it has ended."""
    base = reachable_folder()
    shared = base / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # where the daemon reports, whoever it runs as
    attacker_hub = Hub(base / "a", extra_args=["--isolation", "users"])
    victim_hub = Hub(tmp_path / "b")  # as root, with bubblewrap when it is installed
    try:
        attacker_hub.start()
        assert "a user of its own" in attacker_hub.output
        python = reachable_python()
        attacker = make_bundle(base / "attacker", "a", python=python, requirements="")
        (attacker / "daemon.py").write_text(DAEMON)
        (attacker / "algolink.yml").write_text(
            f"python: '{python}'\nentrypoint: python cloud_model.py\nbuild_steps:\n"
            f"  - python daemon.py {shared}\n  - python daemon.py {shared} watch\n"
        )
        attacker_hub.ensure_group("p", "g")
        assert attacker_hub.register("p", "g", "attacker", attacker).status_code == 201
        wait_for(
            lambda: (
                (shared / "watching").exists() or attacker_hub.version("p", "attacker", 1)["error"]
            ),
            300,
            0.5,
            "the attacker's build to watch",
        )
        assert (shared / "watching").exists(), attacker_hub.logs("p", "attacker", 1)

        victim_hub.start()  # builds while the attacker's step watches (and its daemon, if alive)
        victim = make_bundle(tmp_path / "victim", "v")
        (victim / "cloud_model.py").write_text(VICTIM)
        (victim / "requirements.txt").write_text("pyyaml\n")  # an environment of its own
        victim_hub.ensure_group("p", "g")
        assert victim_hub.register("p", "g", "victim", victim, public="true").status_code == 201
        assert victim_hub.publish("p", "victim").status_code == 202
        victim_hub.wait_version("p", "victim", 1, timeout=300)
        (shared / "stop").touch()
        wait_for(
            lambda: (
                attacker_hub.version("p", "attacker", 1)["manifest"]
                or attacker_hub.version("p", "attacker", 1)["error"]
            ),
            300,
            0.5,
            "the attacker's build to end",
        )

        r = requests.post(f"{victim_hub.url}/serve/p/victim/probe", json={}, timeout=30)
        assert r.json() == {"pwned": "no"}
        planted = list((victim_hub.data / "envs").glob("*/lib/python3*/site-packages/*pwned*"))
        assert planted == []
        hits = (shared / "hits").read_text() if (shared / "hits").exists() else ""
        assert str(victim_hub.data) not in hits, hits
        # nothing of the attacker's build runs now: its daemon went with the step that left it
        assert (shared / "daemon.started").exists()
        assert not beating(shared) and daemons(shared) == [], "the daemon outlived its build"
        # it ran as a user made for that build alone, removed since
        import pwd

        with pytest.raises(KeyError):
            pwd.getpwuid(int((shared / "step.uid").read_text()))
    finally:
        kill_daemons(shared)
        (shared / "stop").touch()
        victim_hub.stop()
        attacker_hub.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_a_daemon_left_by_a_service_dies_when_the_service_stops(tmp_path):
    """The same trick from the service's own process (as its user): gone when it stops."""
    base = reachable_folder()
    shared = base / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    hub = Hub(base / "hub", extra_args=["--isolation", "users"])
    try:
        hub.start()
        bundle = make_bundle(
            base / "svc",
            "s",
            python=reachable_python(),
            requirements="",
            setup=f"import subprocess, sys; subprocess.run([sys.executable, 'daemon.py', {str(shared)!r}])",
        )
        (bundle / "daemon.py").write_text(DAEMON)
        hub.ensure_group("p", "g")
        assert hub.register("p", "g", "svc", bundle).status_code == 201
        assert hub.publish("p", "svc").status_code == 202
        hub.wait_version("p", "svc", 1, timeout=300)
        wait_for(lambda: (shared / "daemon.started").exists(), 30, 0.2, "the daemon")
        assert beating(shared) and daemons(shared)  # beside the service: its own business...
        assert hub.post("/api/v1/projects/p/services/svc/offline").status_code in (200, 202)
        wait_for(lambda: not daemons(shared), 30, 0.2, "the service's daemon to end with it")
        assert not beating(shared)
    finally:
        kill_daemons(shared)
        hub.stop()
        shutil.rmtree(base, ignore_errors=True)
