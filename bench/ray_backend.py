"""The hub's Ray Serve backend against its local one: the digits example's classify three ways.

Run by ``make bench`` (about three minutes on 2 cores, a minute of it setting up; ``--quick``, what
the smoke test runs, about a minute and a quarter). It starts a loopback Ray cluster
(``tests/ray_support.py``: its own environment under ``.algolink/ray``, 4 logical CPUs, Serve's HTTP
proxy on a free port), two hubs, and measures:

(a) local: ``/serve/bench/digits/classify`` on a hub with ``--backend local``: one service process
    on this machine, the example's bundle as it is (``examples/digits``, trained once in a copy);
(b) ray: the same request on a hub with ``--backend ray`` in front of the cluster, the same bundle
    with ``replicas: 2`` and ``cpus: 0.5`` added to its ``algolink.yml``: the hub sends requests to
    the two replicas' own servers in turn;
(c) serve proxy: ``POST <Serve's proxy>/bench/classify``: the very same version's Serve application
    deployed a second time under another name with ``route_prefix: /bench`` (a ``PUT`` of every
    application to the dashboard's ``/api/serve/applications/``, the hub's own included, as Serve's
    declarative API requires; its replicas log to a file and write their addresses to a folder of
    their own, so the hub's version does not see them). Serve's proxy hands each request to a
    replica's ``Replica.__call__``, which sends it on to its child server (the path under the
    route prefix, from the request's ASGI ``root_path``).

Each at concurrency 1 and 16 by ``bench/serve_overhead.py``'s load generator (a process of its own,
raw keep-alive sockets, one request in flight per connection), the same 64x64 PNG of a 3
(``examples/digits/samples/digit_3.png``) as a base64 data URI in a JSON body. A round measures the
three back to back (the order alternating between rounds) after a short warm-up of each; a figure is
the median over rounds. Printed: requests/s, p50 and p99 latency, the machine's CPU time per request
(every process, from ``/proc/stat``, over the whole run of the load generator), how busy its CPUs
were (100% per core; also measured for 2 s with nothing sent: the idle cluster's own share), and the
hub process's own CPU time per request (from ``/proc/<pid>/stat``: what relaying costs the hub with
each backend), then these ratios:

- ray per replica against local: at concurrency 16, (b)'s throughput / 2 against (a)'s; at
  concurrency 1 one request is in flight at a time, so the whole of (b) against (a). Latency: (b)
  against (a). Target: within 1.3x (per replica throughput at least 1/1.3 of local, p50 at most
  1.3x).
- serve proxy against ray: (c) against (b), throughput and latency (no target: what going through
  Serve's proxy costs, for comparison).

What the numbers mean on a small machine: with N cores, the two replicas, the hub and the load
generator share them. On 2 cores, two replicas cannot do twice the work of one process: at
concurrency 16 the machine is saturated (see the busy column) and "per replica" throughput is about
half of what one process does, whatever the backend costs (and the machine's CPU time per request is
then only the inverse of throughput); the figure that says what the backend costs the hub is the
hub's own CPU time per request. The classify command batches requests (up to 32 within 10 ms): at
concurrency 16 one process sees batches of up to 16, each replica about 8, which moves throughput
too. Latency at concurrency 1 is the cleaner comparison of the paths.

Targets are printed next to the figures; nothing fails when one is missed: this reports, it does not
pin. Results go to ``bench/results/ray_backend.json`` (``ray_backend.quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import base64
import copy
import io
import json
import os
import re
import shutil
import signal
import statistics
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
DIGITS = REPO / "examples" / "digits"
SAMPLE = DIGITS / "samples" / "digit_3.png"
LOADGEN = REPO / "bench" / "serve_overhead.py"
DEFAULT_OUTPUT = REPO / "bench" / "results" / "ray_backend.json"
QUICK_OUTPUT = REPO / "bench" / "results" / "ray_backend.quick.json"
HOST = "127.0.0.1"
CONCURRENCY = (1, 16)
REPLICAS = 2
PATHS = ("local", "ray 1 replica", "ray", "serve proxy")
RUNNING = re.compile(r"AlgoLink hub running at http://([^:/\s]+):(\d+)/")
PROXY_APP = "algolink-bench-proxy"
SERVE_PATH = "/serve/bench/digits/classify"
ONE_PATH = "/serve/bench/digits1/classify"
PROXY_PREFIX = "/bench"
TARGET_PER_REPLICA = 1.3

sys.path.insert(0, str(REPO / "tests"))
from hub_process import remove_hub_users  # noqa: E402
from ray_support import RayCluster  # noqa: E402


class HubProcess:
    """``algolink hub`` on a free port with its own data folder; stopped with its services."""

    def __init__(self, data: Path, extra: list, timeout: float = 180) -> None:
        self.data = data
        self.lines: list = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "algolink_jupyter.cli",
                "hub",
                "--port",
                "0",
                "--data",
                str(data),
                "--stop-services-on-exit",
                *extra,
            ],
            cwd=str(REPO),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.port = 0
        started = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                m = RUNNING.search(line)
                if m:
                    self.port = int(m.group(2))
                    started.set()
            started.set()

        threading.Thread(target=read, daemon=True).start()
        if not started.wait(timeout) or not self.port:
            self.stop()
            tail = "\n".join(self.lines[-30:])
            raise SystemExit(f"the hub ({' '.join(extra)}) did not start:\n{tail}")
        self.token = (data / "admin_token").read_text().strip()
        self.url = f"http://{HOST}:{self.port}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"

    def api(self, method: str, path: str, **kw: Any) -> Any:
        r = self.session.request(method, self.url + path, timeout=120, **kw)
        if r.status_code >= 400:
            raise SystemExit(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def publish(self, name: str, folder: Path, timeout: float = 600) -> dict:
        """Register ``folder`` as ``bench/name``, publish it and wait until it is online."""
        if self.session.get(self.url + "/api/v1/projects/bench", timeout=30).status_code == 404:
            self.api("POST", "/api/v1/projects", json={"name": "bench"})
            self.api("POST", "/api/v1/projects/bench/groups", json={"name": "g"})
        files = {"bundle": ("bundle.tar.gz", pack(folder))}
        self.api(
            "POST",
            "/api/v1/projects/bench/services",
            data={"name": name, "group": "g"},
            files=files,
        )
        self.api("POST", f"/api/v1/projects/bench/services/{name}/publish", json={})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            version = self.api("GET", f"/api/v1/projects/bench/services/{name}")["versions"][-1]
            if version["status"] == "online":
                return version
            if version["status"] == "failed":
                log = self.session.get(
                    f"{self.url}/api/v1/projects/bench/services/{name}/versions/"
                    f"{version['number']}/logs",
                    timeout=30,
                ).text
                raise SystemExit(f"bench/{name} failed: {version['error']}\n{log[-3000:]}")
            time.sleep(0.2)
        raise SystemExit(f"bench/{name} was not online within {timeout:g} s")

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def remove_users(self) -> None:
        """The system users this hub made for its services and builds (as root, ``--isolation
        users``), once no process of theirs runs (the Ray replicas' children end with the cluster)."""
        left = remove_hub_users([self.data])
        if left:
            print(f"warning: system users left behind: {', '.join(left)}", file=sys.stderr)


def start_ray_hub(data: Path, cluster: RayCluster, tries: int = 6) -> HubProcess:
    """The hub with ``--backend ray``. It checks the cluster with a Ray job when it starts, and a
    head that has just started may not take jobs yet ("No available agent to submit job"): then
    it is started again a few seconds later."""
    for attempt in range(tries):
        try:
            return HubProcess(data, ["--backend", "ray", "--ray-address", cluster.dashboard])
        except SystemExit as e:
            if "No available agent" not in str(e) or attempt == tries - 1:
                raise
            print("the Ray head takes no job yet: the hub starts again in 5 s", flush=True)
            time.sleep(5)
    raise AssertionError("unreachable")


def pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return buf.getvalue()


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds all of the machine's CPUs spent busy since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def bundles(work: Path) -> tuple[Path, Path, Path]:
    """The example's bundle as it is (trained once, in the copy) and copies for the Ray hub with
    ``replicas: 2`` (and ``replicas: 1``) and ``cpus: 0.5`` added to its ``algolink.yml``."""
    local = work / "digits"
    shutil.copytree(
        DIGITS, local, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    )
    if not (local / "models" / "digits.pt").exists():
        print("Training the digits network (examples/digits/train.py, in a copy)...", flush=True)
        subprocess.run(
            [sys.executable, "train.py", "--if-missing"],
            cwd=str(local),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    copies = []
    for replicas in (REPLICAS, 1):
        ray = work / f"digits-ray{replicas}"
        shutil.copytree(local, ray)
        config = (ray / "algolink.yml").read_text().rstrip("\n")
        (ray / "algolink.yml").write_text(config + f"\nreplicas: {replicas}\ncpus: 0.5\n")
        copies.append(ray)
    return local, copies[0], copies[1]


def dashboard(cluster: RayCluster, method: str, body: Optional[dict] = None) -> Any:
    r = requests.request(
        method, cluster.dashboard + "/api/serve/applications/", json=body, timeout=120
    )
    if r.status_code >= 400:
        raise SystemExit(f"{method} /api/serve/applications/: {r.status_code} {r.text[:1000]}")
    return r.json() if r.content and method == "GET" else None


def deploy_proxy_copy(cluster: RayCluster, work: Path) -> dict:
    """The hub's application of ``bench/digits`` deployed again as ``PROXY_APP`` with a route
    prefix, by a PUT of every application (Serve's REST API is declarative). Returns its config."""
    found = dashboard(cluster, "GET")
    apps = found.get("applications") or {}
    hub_apps = [name for name in apps if name.startswith("algolink-") and ".bench.digits." in name]
    if len(hub_apps) != 1:
        raise SystemExit(
            f"expected one application of bench/digits on the cluster, found {list(apps)}"
        )
    config = copy.deepcopy(apps[hub_apps[0]]["deployed_app_config"])
    config["name"] = PROXY_APP
    config["route_prefix"] = PROXY_PREFIX
    # Its replicas log and record their addresses apart from the hub's version (which would
    # otherwise count them as its own), and strip the prefix before sending a request on.
    config["args"]["log"] = str(work / "proxy-copy.log")
    config["args"]["replicas"] = str(work / "proxy-copy-replicas")
    body: dict = {
        "applications": [
            details["deployed_app_config"]
            for name, details in apps.items()
            if name != PROXY_APP and details.get("deployed_app_config")
        ]
        + [config]
    }
    for keep in ("proxy_location", "http_options", "grpc_options"):
        if found.get(keep) is not None:
            body[keep] = found[keep]
    dashboard(cluster, "PUT", body)
    return config


def wait_proxy_copy(cluster: RayCluster, work: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        app = (dashboard(cluster, "GET").get("applications") or {}).get(PROXY_APP) or {}
        status = app.get("status", "")
        if status == "RUNNING":
            return
        if status == "DEPLOY_FAILED":
            break
        time.sleep(0.5)
    log = (
        (work / "proxy-copy.log").read_text()[-3000:] if (work / "proxy-copy.log").exists() else ""
    )
    raise SystemExit(f"{PROXY_APP} on Serve's proxy is {status or 'not there'}:\n{log}")


def remove_proxy_copy(cluster: RayCluster) -> None:
    found = dashboard(cluster, "GET")
    apps = found.get("applications") or {}
    body: dict = {
        "applications": [
            details["deployed_app_config"]
            for name, details in apps.items()
            if name != PROXY_APP and details.get("deployed_app_config")
        ]
    }
    for keep in ("proxy_location", "http_options", "grpc_options"):
        if found.get(keep) is not None:
            body[keep] = found[keep]
    dashboard(cluster, "PUT", body)


def http_request(path: str, port: int, body: bytes, token: Optional[str]) -> str:
    auth = f"Authorization: token {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head + body.decode("latin-1")


class Target:
    """Where one of the three sends its requests."""

    def __init__(
        self,
        name: str,
        port: int,
        path: str,
        body: bytes,
        token: Optional[str],
        hub: Optional[HubProcess] = None,
    ) -> None:
        self.name, self.port, self.path, self.token, self.hub = name, port, path, token, hub
        self.request = http_request(path, port, body, token)
        self.body = body

    def answer(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        r = requests.post(
            f"http://{HOST}:{self.port}{self.path}", data=self.body, headers=headers, timeout=60
        )
        if r.status_code != 200:
            raise SystemExit(
                f"{self.name}: POST {self.path} answered {r.status_code}: {r.text[:500]}"
            )
        return r.json()


def load(target: Target, concurrency: int, warmup: float, duration: float) -> dict:
    """One measurement by the load generator in its own process, with the machine's CPU time."""
    spec = {
        "host": HOST,
        "port": target.port,
        "request": target.request,
        "concurrency": concurrency,
        "warmup": warmup,
        "duration": duration,
    }
    hub0 = target.hub.cpu_seconds() if target.hub else 0.0
    busy0, wall0 = busy_seconds(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(LOADGEN), "--client"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=warmup + duration + 60,
    )
    busy1, wall1 = busy_seconds(), time.perf_counter()
    hub1 = target.hub.cpu_seconds() if target.hub else 0.0
    if proc.returncode != 0:
        raise SystemExit(f"the load generator failed on {target.name}:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout)
    # Over the whole run (warm-up and the generator's start included): a rate, not a sum.
    total = max(result["total_requests"], 1)
    result["cpu_ms_per_request"] = (busy1 - busy0) / total * 1000
    result["busy_pct"] = 100 * (busy1 - busy0) / (wall1 - wall0)
    result["hub_us_per_request"] = (hub1 - hub0) / total * 1e6 if target.hub else None
    return result


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round (the smoke test)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds (default 3, 1 with --quick)"
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    warmup, duration = (0.25, 1.0) if args.quick else (1.0, 5.0)
    first_load, idle_window = (0.25, 1.0) if args.quick else (0.5, 2.0)
    rounds = args.rounds or (1 if args.quick else 3)
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    photo = "data:image/png;base64," + base64.b64encode(SAMPLE.read_bytes()).decode()
    body = json.dumps({"photo": photo}).encode()
    began = time.perf_counter()

    work = Path(tempfile.mkdtemp(prefix="algolink-bench-ray-"))
    cluster = RayCluster(cpus=4, serve_proxy=True)
    hubs: list = []
    results: dict = {name: {c: [] for c in CONCURRENCY} for name in PATHS}
    try:
        local_bundle, ray_bundle, one_bundle = bundles(work)
        # First, on a quiet machine: a head started while a build keeps the CPUs busy may never
        # take jobs ("No available agent to submit job"), which the Ray hub's start needs.
        cluster.start()
        print(f"Ray cluster up ({time.perf_counter() - began:.0f} s)", flush=True)
        local = HubProcess(work / "hub-local", ["--backend", "local"])
        hubs.append(local)
        ray = start_ray_hub(work / "hub-ray", cluster)
        hubs.append(ray)
        # Both hubs build (each its own environment) and start the version at once.
        published: dict = {}

        def publish(name: str, hub: HubProcess, folder: Path, service: str = "digits") -> None:
            try:
                published[name] = hub.publish(service, folder)
                print(
                    f"{name} hub: bench/{service} online ({time.perf_counter() - began:.0f} s)",
                    flush=True,
                )
            except BaseException as e:  # raised below, in the main thread
                published[name] = e

        threads = [
            threading.Thread(target=publish, args=("local", local, local_bundle), daemon=True),
            threading.Thread(target=publish, args=("ray", ray, ray_bundle), daemon=True),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        publish("ray 1 replica", ray, one_bundle, "digits1")  # its environment is built already
        for outcome in published.values():
            if isinstance(outcome, BaseException):
                raise outcome
        running = [r for r in published["ray"].get("replicas") or [] if r.get("state") == "RUNNING"]
        deploy_proxy_copy(cluster, work)
        wait_proxy_copy(cluster, work)
        serve_port = int(cluster.serve_url.rsplit(":", 1)[1])
        print(f"serve proxy: {PROXY_APP} running ({time.perf_counter() - began:.0f} s)", flush=True)

        targets = {
            "local": Target("local", local.port, SERVE_PATH, body, local.token, local),
            "ray 1 replica": Target("ray 1 replica", ray.port, ONE_PATH, body, ray.token, ray),
            "ray": Target("ray", ray.port, SERVE_PATH, body, ray.token, ray),
            "serve proxy": Target(
                "serve proxy", serve_port, f"{PROXY_PREFIX}/classify", body, None
            ),
        }
        answers = {name: target.answer() for name, target in targets.items()}
        print(f"answers: {json.dumps(answers)}", flush=True)
        for name, answer in answers.items():
            if answer.get("digit") != 3:
                raise SystemExit(f"{name} read the 3 as {answer}")
        for target in targets.values():  # warm-up: first requests, connections, batches
            load(target, 16, 0.0, first_load)
        time.sleep(0.5)
        before, at = busy_seconds(), time.perf_counter()
        time.sleep(idle_window)
        idle_busy = 100 * (busy_seconds() - before) / (time.perf_counter() - at)
        for r in range(rounds):
            for c in CONCURRENCY:
                order = list(PATHS) if r % 2 == 0 else list(PATHS)[::-1]
                for name in order:
                    result = load(targets[name], c, warmup, duration)
                    if result["errors"]:
                        raise SystemExit(f"{name} answered {result['errors']} requests with errors")
                    results[name][c].append(result)
        replicas_seen = len(running)
    finally:
        for hub in reversed(hubs):
            hub.stop()
        if cluster.proc is not None:
            cluster.stop()
        for hub in hubs:
            hub.remove_users()
        shutil.rmtree(work, ignore_errors=True)

    def fig(name: str, c: int, key: str) -> float:
        return statistics.median(run[key] for run in results[name][c])

    print(
        f"\ndigits classify, {rounds} round(s) of {duration:g} s per figure; "
        f"{os.cpu_count()} CPU(s) on this machine, the cluster's {REPLICAS} replicas at 0.5 CPU "
        "each"
    )
    print(
        f"{'path':<15}{'c':>3}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}"
        f"{'busy':>7}{'hub us/req':>12}"
    )
    table = []
    for c in CONCURRENCY:
        for name in PATHS:
            row = {
                "path": name,
                "concurrency": c,
                "rps": fig(name, c, "rps"),
                "p50_ms": fig(name, c, "p50_ms"),
                "p99_ms": fig(name, c, "p99_ms"),
                "cpu_ms_per_request": fig(name, c, "cpu_ms_per_request"),
                "busy_pct": fig(name, c, "busy_pct"),
                "hub_us_per_request": fig(name, c, "hub_us_per_request")
                if name != "serve proxy"
                else None,
            }
            table.append(row)
            print(
                f"{name:<15}{c:>3}{row['rps']:>9.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
                f"{row['cpu_ms_per_request']:>12.2f}{row['busy_pct']:>6.0f}%"
                + (
                    f"{row['hub_us_per_request']:>12.0f}"
                    if row["hub_us_per_request"]
                    else f"{'-':>12}"
                )
            )

    rows = []

    def add(
        figure: str, ours: float, baseline: float, unit: str, target: str, met: Optional[bool]
    ) -> None:
        rows.append(
            {
                "figure": figure,
                "ours": ours,
                "baseline": baseline,
                "ratio": ours / baseline if baseline else None,
                "unit": unit,
                "target": target,
                "met": met,
            }
        )

    low = 1 / TARGET_PER_REPLICA
    for c in CONCURRENCY:  # one replica against one local process: what the backend costs
        ours, base = fig("ray 1 replica", c, "rps"), fig("local", c, "rps")
        add(
            f"ray 1 replica c={c} throughput",
            ours,
            base,
            "req/s",
            f">= {low:.2f}x local",
            ours / base >= low,
        )
        ours, base = fig("ray 1 replica", c, "p50_ms"), fig("local", c, "p50_ms")
        add(
            f"ray 1 replica c={c} p50 latency",
            ours,
            base,
            "ms",
            f"<= {TARGET_PER_REPLICA:g}x local",
            ours / base <= TARGET_PER_REPLICA,
        )
    for c in CONCURRENCY:
        per = REPLICAS if c > 1 else 1
        rps, base = fig("ray", c, "rps") / per, fig("local", c, "rps")
        label = "throughput per replica" if per > 1 else "throughput"
        add(f"ray c={c} {label}", rps, base, "req/s", f">= {low:.2f}x local", rps / base >= low)
        for key, word in (("p50_ms", "p50"), ("p99_ms", "p99")):
            ours, base = fig("ray", c, key), fig("local", c, key)
            target = f"<= {TARGET_PER_REPLICA:g}x local" if key == "p50_ms" else ""
            add(
                f"ray c={c} {word} latency",
                ours,
                base,
                "ms",
                target,
                ours / base <= TARGET_PER_REPLICA if target else None,
            )
        add(
            f"ray c={c} machine CPU per request",
            fig("ray", c, "cpu_ms_per_request"),
            fig("local", c, "cpu_ms_per_request"),
            "ms",
            "(every process)",
            None,
        )
        add(
            f"ray c={c} hub CPU per request",
            fig("ray", c, "hub_us_per_request"),
            fig("local", c, "hub_us_per_request"),
            "us",
            "(the hub process)",
            None,
        )
    for c in CONCURRENCY:
        add(
            f"serve proxy c={c} throughput",
            fig("serve proxy", c, "rps"),
            fig("ray", c, "rps"),
            "req/s",
            "(vs ray)",
            None,
        )
        for key, word in (("p50_ms", "p50"), ("p99_ms", "p99")):
            add(
                f"serve proxy c={c} {word} latency",
                fig("serve proxy", c, key),
                fig("ray", c, key),
                "ms",
                "(vs ray)",
                None,
            )
        add(
            f"serve proxy c={c} machine CPU per request",
            fig("serve proxy", c, "cpu_ms_per_request"),
            fig("ray", c, "cpu_ms_per_request"),
            "ms",
            "(vs ray)",
            None,
        )

    print(f"\n{'figure':<40}{'ours':>13}{'baseline':>13}{'ratio':>8}  target")
    for r in rows:
        fmt = "{:.0f}" if r["unit"] in ("req/s", "us") else "{:.2f}"
        ours = fmt.format(r["ours"]) + " " + r["unit"]
        base = fmt.format(r["baseline"]) + " " + r["unit"]
        mark = "" if r["met"] is None else (" met" if r["met"] else " MISSED")
        print(f"{r['figure']:<40}{ours:>13}{base:>13}{r['ratio']:>7.2f}x  {r['target']}{mark}")
    busy16 = fig("ray", 16, "busy_pct")
    print(
        f"\nbaseline for ray and ray 1 replica: local (the hub with --backend local, one "
        "process); for serve proxy: "
        f"ray (the hub to the replicas' own addresses). ray had {replicas_seen} replica(s) running."
        f"\nthe machine's CPUs were {idle_busy:.0f}% busy with nothing sent (the cluster, the "
        f"hubs, other users; 100% per core) and {busy16:.0f}% during ray's run at c=16: on "
        f"{os.cpu_count()} core(s) the replicas, the hub and the load generator share them, so "
        "per-replica throughput there says more about the cores than about the backend; the hub's "
        "own CPU per request is what the backend costs the hub."
        f"\ntook {time.perf_counter() - began:.0f} s in all."
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "rounds": rounds,
                "duration_s": duration,
                "cpus": os.cpu_count(),
                "replicas": REPLICAS,
                "idle_busy_pct": idle_busy,
                "table": table,
                "rows": rows,
                "raw": {
                    name: {str(c): runs for c, runs in by.items()} for name, by in results.items()
                },
            },
            indent=1,
        )
        + "\n"
    )
    print(f"written: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
