"""Helpers for the hub tests: a real hub process, small hand-written bundles, a real PostgreSQL server."""

from __future__ import annotations

import glob
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

import requests

REPO = Path(__file__).resolve().parent.parent
ALGOLINK = [sys.executable, "-m", "algolink_jupyter.cli"]
RUNNING = re.compile(r"AlgoLink hub running at (http://\S+?)/? ")
ADMIN = re.compile(r"Admin token: (\S+)")

# The Pillow version the test environment has, so that bundle builds come from uv's cache.
try:
    import PIL

    PILLOW = PIL.__version__
except ImportError:  # pragma: no cover
    PILLOW = "11.0.0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Any, timeout: float = 60, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}: {last!r}")


class Hub:
    """``algolink hub --port 0 --data DIR [--db URL]`` as a subprocess, with an API session."""

    def __init__(
        self,
        data: Path,
        db: Optional[str] = None,
        extra_args: Optional[list] = None,
        prefix: Optional[list] = None,
        cwd: Optional[Path] = None,
        env: Optional[dict] = None,
    ):
        self.data = Path(data)
        self.db = db
        self.extra_args = list(extra_args or [])
        #: A command the hub runs under (``prlimit --nofile=1024:1024 --``, say).
        self.prefix = list(prefix or [])
        #: Where the hub runs (the repository by default) and what of the environment differs
        #: (a name mapped to None is removed), say to run an older hub's code.
        self.cwd = Path(cwd) if cwd is not None else REPO
        self.env = dict(env or {})
        self.lines: list = []
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.token = ""
        self.printed_token: Optional[str] = None
        self.admin_password = ""
        self.session = requests.Session()

    def start(self, timeout: float = 60, extra_args: Optional[list] = None) -> Hub:
        args = [*ALGOLINK, "hub", "--port", "0", "--data", str(self.data), "--health-timeout", "60"]
        if self.db:
            args += ["--db", self.db]
        args = [*self.prefix, *args, *(extra_args or self.extra_args)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env = {k: v for k, v in env.items() if v is not None}
        self.lines = []
        self.printed_token = None
        self.proc = subprocess.Popen(
            args,
            cwd=str(self.cwd),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                m = ADMIN.search(line)
                if m and m.group(1) != "in":
                    self.printed_token = m.group(1)
                m = RUNNING.search(line)
                if m:
                    self.url = m.group(1).rstrip("/")
                    started.set()
            started.set()

        threading.Thread(target=read, daemon=True).start()
        if not started.wait(timeout) or not self.url:
            self.kill()
            raise AssertionError("the hub did not start:\n" + self.output)
        self.token = (self.data / "admin_token").read_text().strip()
        kept = self.data / "admin_password"  # the first admin's, while it is not changed
        self.admin_password = kept.read_text().strip() if kept.is_file() else ""
        self.session.headers["Authorization"] = f"token {self.token}"
        return self

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    # --- HTTP -------------------------------------------------------------------------------------

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.url + path, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.api("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.api("POST", path, **kw)

    def service(self, project: str, name: str) -> dict:
        r = self.get(f"/api/v1/projects/{project}/services/{name}")
        assert r.status_code == 200, r.text
        return r.json()

    def version(self, project: str, name: str, number: int) -> dict:
        return next(v for v in self.service(project, name)["versions"] if v["number"] == number)

    def ensure_group(self, project: str, group: str) -> None:
        r = self.post("/api/v1/projects", json={"name": project, "type": "model", "version": "1.0"})
        assert r.status_code in (201, 409), r.text
        r = self.post(f"/api/v1/projects/{project}/groups", json={"name": group})
        assert r.status_code in (201, 409), r.text

    def add_user(
        self,
        name: str,
        projects: Optional[dict] = None,
        admin: bool = False,
        password: Optional[str] = None,
        token_name: str = "",
        **token_fields: Any,
    ) -> str:
        """A user made by the admin (members of ``projects``: name -> role, each made when missing)
        and a token of theirs, asked for with their password as ``algolink login`` does."""
        password = password or f"pw-{name}-0123456789"
        r = self.post("/api/v1/users", json={"name": name, "password": password, "admin": admin})
        assert r.status_code == 201, r.text
        for project, role in (projects or {}).items():
            r = self.post("/api/v1/projects", json={"name": project})
            assert r.status_code in (201, 409), r.text
            r = self.post(f"/api/v1/projects/{project}/members", json={"user": name, "role": role})
            assert r.status_code == 201, r.text
        r = requests.post(
            self.url + "/api/v1/tokens",
            json={
                "name": token_name or f"{name}-token",
                "user": name,
                "password": password,
                **token_fields,
            },
            timeout=60,
        )
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def register(
        self, project: str, group: str, name: str, bundle: Path, **fields: Any
    ) -> requests.Response:
        files = {"bundle": ("bundle.tar.gz", pack(bundle))}
        for i, image in enumerate(fields.pop("images", [])):
            files[f"images{i}" if i else "images"] = image
        data = {"name": name, "group": group, **fields}
        return self.post(f"/api/v1/projects/{project}/services", data=data, files=files)

    def new_version(self, project: str, name: str, bundle: Path, **fields: Any) -> dict:
        r = self.post(
            f"/api/v1/projects/{project}/services/{name}/versions",
            data=fields,
            files={"bundle": ("bundle.tar.gz", pack(bundle))},
        )
        assert r.status_code == 201, r.text
        return r.json()

    def publish(self, project: str, name: str, version: Optional[int] = None) -> requests.Response:
        body = {} if version is None else {"version": version}
        return self.post(f"/api/v1/projects/{project}/services/{name}/publish", json=body)

    def wait_version(
        self, project: str, name: str, number: int, status: str = "online", timeout: float = 120
    ) -> dict:
        def settled() -> Optional[dict]:
            v = self.version(project, name, number)
            return v if v["status"] in ("online", "failed", "offline") else None

        v = wait_for(settled, timeout, 0.1, f"{project}/{name} version {number} to settle")
        assert v["status"] == status, f"{v}\n{self.logs(project, name, number)}"
        return v

    def logs(self, project: str, name: str, number: int) -> str:
        return self.get(f"/api/v1/projects/{project}/services/{name}/versions/{number}/logs").text

    def serve(self, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.session.post(self.url + "/serve/" + path.lstrip("/"), **kw)

    # --- processes --------------------------------------------------------------------------------

    def service_pid(self, project: str, name: str, number: int) -> Optional[int]:
        path = self.data / "services" / project / name / str(number) / "run.log.pid"
        try:
            return json.loads(path.read_text())["pid"]
        except (OSError, ValueError):
            return None

    def service_port(self, project: str, name: str, number: int) -> Optional[int]:
        """The port a version's process listens on (the hub keeps it to itself: clients go through
        /serve), from the pid file the runner writes."""
        path = self.data / "services" / project / name / str(number) / "run.log.pid"
        try:
            return json.loads(path.read_text())["port"]
        except (OSError, ValueError):
            return None

    def stop(self, keep_services: bool = False) -> None:
        """SIGTERM, as a service manager stops the hub; its services keep running (the next start
        takes them back) unless ``keep_services`` is False, when this test's are stopped too."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        if not keep_services:
            self.stop_services()
            self.remove_users()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop_services(self) -> None:
        """Stop the service processes this test's hub left running, by the pids it recorded."""
        from algolink_jupyter.hub.runner import kill_stale

        for pid_file in self.data.glob("services/*/*/*/run.log.pid"):
            kill_stale(pid_file, timeout=5)

    def remove_users(self) -> None:
        """The system users this test's hub made for its services and builds (as root)."""
        if self.data.exists():
            remove_hub_users([self.data])


def remove_hub_users(data_folders: list, patience: float = 10.0) -> list:
    """Remove the system users (``alk<tag>s<n>``, ``alk<tag>b<n>``) that the hubs with these data
    folders made for their services and builds, as root. ``userdel`` refuses while a process of the
    user still runs (a service just stopped, a Ray replica's server while its application is
    deleted): each is tried again for up to ``patience`` seconds in all. The names left, if any."""
    if os.geteuid() != 0 or not data_folders:
        return []
    import pwd

    from algolink_jupyter.hub.sandbox import hub_tag

    prefixes = tuple(f"alk{hub_tag(Path(d))}{kind}" for d in data_folders for kind in "sb")
    deadline = time.monotonic() + patience
    left = []
    for entry in pwd.getpwall():
        if not entry.pw_name.startswith(prefixes):
            continue
        while True:
            done = subprocess.run(["userdel", entry.pw_name], capture_output=True, timeout=60)
            if done.returncode in (0, 6):  # 6: there is no such user any more
                break
            if time.monotonic() >= deadline:
                left.append(entry.pw_name)
                break
            time.sleep(0.5)
    return left


def status_kb(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB: ``VmRSS`` (memory now) or ``VmHWM`` (its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


def rss_kb(pid: int) -> int:
    return status_kb(pid, "VmRSS")


def rss_peak_kb(pid: int) -> int:
    return status_kb(pid, "VmHWM")


def alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


# --- bundles --------------------------------------------------------------------------------------

ECHO_MODEL = """
import modelcloud
from modelcloud.data_types import text
from PIL import Image  # a Pillow-only bundle

TAG = {tag!r}


@modelcloud.setup
def setup():
    {setup}
    return TAG


@modelcloud.command("echo", inputs={{"text": text()}}, outputs={{"text": text()}},
                    description="Return the text with the version's tag")
def echo(model, inputs):
    return {{"text": model + ":" + inputs["text"]}}


modelcloud.meta(name="echo", tagline="Echoes text", description="# Echo\\nSays it back.",
                license="MIT", performance_notes="Instant on CPU",
                links=[{{"title": "Code", "url": "https://example.org/echo"}}],
                images=["gallery/dot.png"])

if __name__ == "__main__":
    modelcloud.run()
"""


def make_bundle(
    folder: Path,
    tag: str = "v1",
    *,
    python: Optional[str] = None,
    setup: str = "pass",
    requirements: Optional[str] = None,
) -> Path:
    """A small echo service: Pillow only, its setup customisable (say, to fail)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloud_model.py").write_text(ECHO_MODEL.format(tag=tag, setup=setup))
    (folder / "requirements.txt").write_text(
        requirements if requirements is not None else f"pillow=={PILLOW}\n"
    )
    config = (
        "entrypoint: python cloud_model.py\nbuild_steps:\n  - pip install -r requirements.txt\n"
    )
    if python:
        config = f'python: "{python}"\n' + config
    (folder / "algolink.yml").write_text(config)
    (folder / "gallery").mkdir(exist_ok=True)
    (folder / "gallery" / "dot.png").write_bytes(png_bytes())
    return folder


def png_bytes(color: tuple = (200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()


def pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return buf.getvalue()


def evil_tar(name: str, content: bytes = b"x", link: Optional[str] = None) -> bytes:
    """A .tar.gz with one entry named ``name`` (a symlink to ``link`` when given)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        cm = tarfile.TarInfo("cloud_model.py")
        body = b"print('hi')\n"
        cm.size = len(body)
        tar.addfile(cm, io.BytesIO(body))
        info = tarfile.TarInfo(name)
        if link is not None:
            info.type = tarfile.SYMTYPE
            info.linkname = link
            tar.addfile(info)
        else:
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


# --- PostgreSQL -----------------------------------------------------------------------------------


def find_pg_bin() -> Optional[Path]:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Postgres:
    """A throw-away PostgreSQL server: ``initdb`` + ``pg_ctl start`` in a temporary folder.

    PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system user
    (``nobody`` when there is none) through ``runuser``.
    """

    def __init__(self) -> None:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL is not installed (no initdb): `make test` installs it "
                "(apt-get install postgresql)."
            )
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="algolink-pg-"))
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            import pwd

            for candidate in ("postgres", "nobody"):
                try:
                    pw = pwd.getpwnam(candidate)
                except KeyError:
                    continue
                self.user = candidate
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                break
        os.chmod(self.dir, 0o700)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        argv = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=str(self.dir))

    def start(self) -> str:
        data = self.dir / "data"
        out = self.run("initdb", "-D", str(data), "-A", "trust", "-U", "algolink", "-E", "UTF8")
        assert out.returncode == 0, out.stdout + out.stderr
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        out = self.run(
            "pg_ctl", "-D", str(data), "-o", options, "-l", str(self.dir / "log"), "-w", "start"
        )
        assert out.returncode == 0, out.stdout + out.stderr + self.log()
        return f"postgresql://algolink@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"postgresql://algolink@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://algolink@127.0.0.1:{self.port}/{name}"

    def log(self) -> str:
        try:
            return (self.dir / "log").read_text()
        except OSError:
            return ""

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
