"""A Ray cluster on loopback for the Ray backend's tests and benchmark, in an environment of its own.

:func:`ray_python` makes (once; kept in ``.algolink/ray/``) a virtual environment with ``ray[serve]``
at :data:`RAY_VERSION` and this checkout's ``modelcloud``, so Ray is installed for these alone and
never in the suite's own environment. :class:`RayCluster` runs ``scripts/ray_cluster.py`` in it: a
head with the dashboard and, if asked, more nodes (Ray's local multi-node test cluster), all on
127.0.0.1 with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, in a session folder of its own. Stopping it
stops exactly what it started: the script shuts its nodes down, and any process of its session still
there is killed by pid (never ``ray stop``, which would stop every Ray on the machine).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
RAY_VERSION = "2.60.0"
ENVS = REPO / ".algolink" / "ray"


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise RuntimeError("uv is not installed: run `make install` first.")
    return found


def ray_python(version: str = RAY_VERSION) -> Path:
    """The Python of an environment with ``ray[serve]==version`` and this checkout's modelcloud."""
    env = ENVS / f"venv-{version}"
    python = env / "bin" / "python"
    ENVS.mkdir(parents=True, exist_ok=True)
    with open(ENVS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = env / ".algolink-ready"
        if not marker.exists():
            shutil.rmtree(env, ignore_errors=True)
            base = os.path.realpath(sys.executable)
            subprocess.run([uv(), "venv", "-q", "-p", base, str(env)], check=True)
            subprocess.run(
                [uv(), "pip", "install", "-q", "-p", str(python), f"ray[serve]=={version}"],
                check=True,
                timeout=900,
            )
            marker.write_text(version + "\n")
        # Editable, so the cluster's modelcloud is always the hub's (the hub checks they match).
        subprocess.run(
            [uv(), "pip", "install", "-q", "-p", str(python), "-e", str(REPO / "runtime")],
            check=True,
            timeout=300,
        )
    return python


class RayCluster:
    """``scripts/ray_cluster.py`` running: ``dashboard`` (its URL), ``gcs`` and ``pids``."""

    def __init__(
        self,
        workers: int = 0,
        cpus: int = 4,
        gpus: float = 0,
        env: Optional[dict] = None,
        serve_proxy: bool = False,
    ) -> None:
        self.workers = workers
        self.cpus = cpus
        self.gpus = gpus
        self.extra_env = dict(env or {})
        self.serve_proxy = serve_proxy
        self.proc: Optional[subprocess.Popen] = None
        self.dashboard = ""
        self.gcs = ""
        self.serve_url = ""
        self.pids: list = []
        self.temp = ""

    def start(self, timeout: float = 180) -> RayCluster:
        python = ray_python()
        # Short: Ray's unix sockets live under it (at most 107 bytes a path).
        self.temp = tempfile.mkdtemp(prefix="alkray-", dir="/tmp")
        env = {
            **os.environ,
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": "",
            **self.extra_env,
        }
        args = [str(python), str(REPO / "scripts" / "ray_cluster.py")]
        args += ["--workers", str(self.workers), "--cpus", str(self.cpus), "--temp-dir", self.temp]
        if self.gpus:
            args += ["--gpus", str(self.gpus)]  # Ray's logical GPUs: real ones or not
        if self.serve_proxy:
            args.append("--serve-proxy")
        with open(os.path.join(self.temp, "cluster.err"), "wb") as errors:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=env,
                start_new_session=True,
                text=True,
            )
        assert self.proc.stdout is not None
        lines: list = []
        reader = threading.Thread(
            target=lambda: lines.append(self.proc.stdout.readline()), daemon=True
        )
        reader.start()
        reader.join(timeout)
        if lines and lines[0].strip():
            info = json.loads(lines[0])
            self.dashboard, self.gcs = info["dashboard"], info["gcs"]
            self.serve_url = info.get("serve", "")
            self.pids = info["pids"]
            return self
        self.stop()
        raise RuntimeError(f"the Ray cluster did not start:\n{self.errors()}")

    def errors(self) -> str:
        try:
            return Path(self.temp, "cluster.err").read_text()[-4000:]
        except OSError:
            return ""

    def session_pids(self) -> list:
        """Every process still running whose command line names this cluster's session folder."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if self.temp and self.temp.encode() in cmdline:
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()  # the script shuts its nodes down
            except OSError:
                pass
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # What is left of this cluster (workers of its session, the listed daemons): by pid.
        for pid in {*self.pids, *self.session_pids()}:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.temp:
            shutil.rmtree(self.temp, ignore_errors=True)
