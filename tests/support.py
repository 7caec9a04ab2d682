"""Helpers for tests that start real processes: a model server from a script, on a free port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import requests

REPO = Path(__file__).resolve().parent.parent
STARTED = re.compile(r"Starting model server at http://([^:\s]+):(\d+)\.\.\.")


class ServerProcess:
    """A ``python cloud_model.py`` (or any command) whose output is collected line by line."""

    def __init__(self, args: list, cwd: Path, env: Optional[dict] = None):
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "ALGOLINK_PORT": "0", **(env or {})}
        self.args = args
        self.proc = subprocess.Popen(
            args,
            cwd=str(cwd),
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list = []
        self.url: Optional[str] = None
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = requests.Session()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = STARTED.search(line)
            if m and self.url is None:
                self.url = f"http://127.0.0.1:{m.group(2)}"
                self._started.set()
        self._started.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_started(self, timeout: float = 120) -> ServerProcess:
        if not self._started.wait(timeout) or self.url is None:
            self.stop()
            raise AssertionError(f"server did not start; output:\n{self.output}")
        return self

    def wait_exit(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def get(self, path: str, **kw):
        return self.session.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)

    def post(self, path: str, **kw):
        return self.session.post(self.url + path, timeout=kw.pop("timeout", 60), **kw)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.session.close()


def start_script(
    path: Path, env: Optional[dict] = None, wait: bool = True, args: Optional[list] = None
) -> ServerProcess:
    server = ServerProcess([sys.executable, str(path), *(args or [])], cwd=path.parent, env=env)
    if wait:
        server.wait_started()
    return server


def wait_until(predicate, timeout: float = 30, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


class Kernel:
    """A real IPython kernel (jupyter_client) with helpers to run code and collect what it shows."""

    def __init__(self, cwd: Path, env: Optional[dict] = None):
        from jupyter_client.manager import start_new_kernel

        full_env = {**os.environ, **(env or {})}
        self.km, self.kc = start_new_kernel(
            kernel_name="python3", cwd=str(cwd), env=full_env, startup_timeout=60
        )

    def execute(self, code: str) -> str:
        """Send code without waiting; returns the message id."""
        return self.kc.execute(code)

    def collect(self, msg_id: str, timeout: float = 60) -> dict:
        """Everything the cell produced: stdout/stderr text, errors, display data."""
        out = {"stdout": "", "stderr": "", "error": None, "displays": [], "result": None}
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.1))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}"
            elif kind == "display_data":
                out["displays"].append(content["data"])
            elif kind == "execute_result":
                out["result"] = content["data"].get("text/plain")
            elif kind == "status" and content["execution_state"] == "idle":
                return out

    def run(self, code: str, timeout: float = 60, check: bool = True) -> dict:
        out = self.collect(self.execute(code), timeout)
        if check and out["error"]:
            raise AssertionError(f"cell failed: {out['error']}\n{out['stdout']}{out['stderr']}")
        return out

    def eval(self, expr: str):
        """The value of a JSON-serializable expression in the kernel."""
        import json

        out = self.run(f"import json as _j; print(_j.dumps({expr}))")
        return json.loads(out["stdout"].strip().splitlines()[-1])

    def shutdown(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=False)
