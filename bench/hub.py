"""What the hub costs: register-to-online time, and the latency ``/serve`` adds, against baselines.

Run by ``make bench`` (about half a minute; ``--quick`` takes a few seconds less and is what the smoke
test runs). From one run it prints a table and writes ``bench/results/hub.json``:

1. Register-to-online for a small Pillow-only bundle: ``POST .../services`` (upload) + ``POST
   .../publish`` until the version is ``online``, on a hub with an empty environment cache (a fresh
   data folder: uv builds the environment; uv's own download cache is the machine's) and then with a
   warm one (a second service with the same requirements: the environment is reused). The baseline is
   the service's own start-up in that environment: ``python cloud_model.py`` until ``/healthcheck``
   says RUNNING. Target: warm under 5 s.
2. A pinned version's cold start: a version stopped after its service's ``keep_warm`` (1 s here)
   and called at ``/serve/bench/warm/v{N}/echo``: the time until that first request is answered
   (the hub starts the process, waits for RUNNING, then relays), against the version's first start:
   ``POST .../publish`` of a built version until it is ``online``. Target: within 1.2x.
3. Latency of a no-op ``echo`` command through ``/serve/{project}/{service}/echo`` against the same
   service called directly on its port: p50 and p99 over sequential keep-alive requests (one
   connection each, measured in alternating rounds so that a noisy machine moves both sides alike).
   Target: the hub adds under 1 ms at p50.
4. What measuring costs (metrics.py: every /serve request counted, its history and log written):
   ``/serve`` throughput with 8 keep-alive connections at once, the hub started with and without
   ``--no-metrics`` in alternating rounds in front of the very same service process (it keeps
   running across the hub's restarts), and the hub process's CPU time per request (from /proc: what
   a loaded machine moves least). Target: under 5% (a ratio of 0.95 or more).

Targets are printed next to the figures; nothing fails when one is missed: this reports, it does not pin.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from hub_process import remove_hub_users  # noqa: E402

DEFAULT_OUTPUT = REPO / "bench" / "results" / "hub.json"
QUICK_OUTPUT = REPO / "bench" / "results" / "hub.quick.json"
RUNNING = re.compile(r"AlgoLink hub running at http://([^:/\s]+):(\d+)/")
TARGET_WARM_S = 5.0
TARGET_ADDED_P50_MS = 1.0
TARGET_COLD_RATIO = 1.2
TARGET_METRICS_COST = 0.05

try:
    import PIL

    PILLOW = PIL.__version__
except ImportError:  # pragma: no cover
    PILLOW = "11.0.0"

MODEL = """
import modelcloud
from modelcloud.data_types import text
from PIL import Image  # noqa: F401  (a Pillow-only bundle)


@modelcloud.setup
def setup():
    return {tag!r}


@modelcloud.command("echo", inputs={{"text": text()}}, outputs={{"text": text()}})
def echo(model, inputs):
    return inputs["text"]


if __name__ == "__main__":
    modelcloud.run()
"""


def bundle(tag: str) -> bytes:
    files = {
        "cloud_model.py": MODEL.format(tag=tag).encode(),
        "requirements.txt": f"pillow=={PILLOW}\n".encode(),
        "algolink.yml": b"entrypoint: python cloud_model.py\n"
        b"build_steps:\n  - pip install -r requirements.txt\n",
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int, token: Optional[str] = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"token {token}"} if token else {}

    def call(self, method: str, path: str, body: Any = None, headers: Optional[dict] = None) -> Any:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        for attempt in (1, 2):
            try:
                self.conn.request(
                    method, path, body=body, headers={**self.headers, **(headers or {})}
                )
                response = self.conn.getresponse()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The hub closed the kept-alive connection after its --idle-timeout: anew.
                self.conn.close()
                if attempt == 2:
                    raise
        data = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:500]!r}")
        return json.loads(data) if data else None


class HubProcess:
    def __init__(self, data: Path, extra: tuple = ("--stop-services-on-exit",)) -> None:
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
                *extra,
            ],
            cwd=str(REPO),
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
                m = RUNNING.search(line)
                if m:
                    self.port = int(m.group(2))
                    started.set()
            started.set()

        threading.Thread(target=read, daemon=True).start()
        if not started.wait(60) or not self.port:
            raise SystemExit("the hub did not start")
        self.token = (data / "admin_token").read_text().strip()
        self.api = Client(self.port, self.token)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)


def multipart(fields: dict, name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "algolinkbench"
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        )
    out.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="b.tar.gz"\r\n'
        "Content-Type: application/gzip\r\n\r\n".encode()
    )
    out.write(data + f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def register_to_online(hub: HubProcess, name: str) -> tuple[float, dict]:
    body, content_type = multipart({"name": name, "group": "g"}, "bundle", bundle(name))
    start = time.perf_counter()
    hub.api.call("POST", "/api/v1/projects/bench/services", body, {"Content-Type": content_type})
    hub.api.call("POST", f"/api/v1/projects/bench/services/{name}/publish", {})
    while True:
        service = hub.api.call("GET", f"/api/v1/projects/bench/services/{name}")
        version = service["versions"][-1]
        if version["status"] == "online":
            return time.perf_counter() - start, version
        if version["status"] == "failed":
            raise SystemExit(f"{name} failed to publish: {version['error']}")
        time.sleep(0.02)


def new_version(hub: HubProcess, name: str, tag: str) -> int:
    """Upload a new version of ``bench/name`` and wait until it is built (its manifest read)."""
    body, content_type = multipart({}, "bundle", bundle(tag))
    path = f"/api/v1/projects/bench/services/{name}/versions"
    number = hub.api.call("POST", path, body, {"Content-Type": content_type})["number"]
    while hub.api.call("GET", f"{path}/{number}")["manifest"] is None:
        time.sleep(0.02)
    return number


def first_start(hub: HubProcess, name: str, number: int) -> tuple[float, dict]:
    """``POST .../publish`` of a built version until it is online: its first start."""
    path = f"/api/v1/projects/bench/services/{name}"
    start = time.perf_counter()
    hub.api.call("POST", f"{path}/publish", {"version": number})
    while True:
        version = hub.api.call("GET", f"{path}/versions/{number}")
        if version["status"] == "online":
            return time.perf_counter() - start, version
        if version["status"] == "failed":
            raise SystemExit(f"version {number} failed to publish: {version['error']}")
        time.sleep(0.02)


def cold_start(hub: HubProcess, name: str, number: int, api: str) -> float:
    """Wait until version ``number`` was stopped for being idle, then time its first request."""
    path = f"/api/v1/projects/bench/services/{name}"
    while number in hub.api.call("GET", path)["running"]:
        time.sleep(0.05)
    client = Client(hub.port, hub.token)
    start = time.perf_counter()
    client.call("POST", f"/serve/bench/{name}/{api}/echo", {"text": "cold"})
    return time.perf_counter() - start


def service_port(data: Path, service: str, number: int) -> int:
    """The port of a version's process (the hub keeps it to itself), from the runner's pid file."""
    record = data / "services" / "bench" / service / str(number) / "run.log.pid"
    return json.loads(record.read_text())["port"]


def direct_start(data: Path, service: str, port: int) -> float:
    """The baseline: the same service started by hand in its built environment, until RUNNING."""
    envs = [p for p in (data / "envs").iterdir() if (p / "bin" / "python").exists()]
    version = data / "services" / "bench" / service / "1"
    bundle_dir = next(
        line.split(" in ", 1)[1].strip()
        for line in (version / "run.log").read_text().splitlines()
        if "==> Starting `" in line
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGOLINK_")}
    env.update({"ALGOLINK_PORT": str(port), "ALGOLINK_HOST": "127.0.0.1"})
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(envs[0] / "bin" / "python"), "cloud_model.py"],
        cwd=bundle_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                status = Client(port).call("GET", "/healthcheck")["status"]
                if status == "RUNNING":
                    return time.perf_counter() - start
            except (OSError, http.client.HTTPException):
                pass
            if proc.poll() is not None:
                raise SystemExit("the service did not start by hand")
            time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait(10)


def latencies(client: Client, path: str, n: int) -> list:
    body = json.dumps({"text": "hello"}).encode()
    headers = {"Content-Type": "application/json"}
    out = []
    for _ in range(n):
        t = time.perf_counter()
        client.call("POST", path, body, headers)
        out.append((time.perf_counter() - t) * 1000)
    return out


async def _throughput(port: int, token: str, path: str, connections: int, seconds: float) -> int:
    """Requests answered in ``seconds`` by ``connections`` keep-alive connections, each sending
    the next request as soon as the last is answered."""
    import asyncio

    body = json.dumps({"text": "hello"}).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    deadline = time.perf_counter() + seconds
    done = 0

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise SystemExit(f"{path}: {head[:200]!r}")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                await reader.readexactly(length)
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return done


def throughput(
    port: int, token: str, path: str, seconds: float, connections: int = 8
) -> tuple[float, int]:
    """``(requests per second, requests)`` of :func:`_throughput`."""
    import asyncio

    start = time.perf_counter()
    done = asyncio.run(_throughput(port, token, path, connections, seconds))
    return done / (time.perf_counter() - start), done


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all its threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metrics_cost(data: Path, quick: bool) -> dict:
    """``/serve`` throughput (requests/s) and the hub's CPU time per request, with measuring on
    and with ``--no-metrics``: one service process, behind a hub started again for each round with
    or without the flag (the service keeps running across the hub's restarts, so both sides call
    the very same process), in alternating rounds."""
    first = HubProcess(data, ())
    try:
        first.api.call("POST", "/api/v1/projects", {"name": "bench"})
        first.api.call("POST", "/api/v1/projects/bench/groups", {"name": "g"})
        register_to_online(first, "warm")
        throughput(first.port, first.token, "/serve/bench/warm/echo", 1.0)  # warm-up
    finally:
        first.stop()
    sides: list = [((), [], []), (("--no-metrics",), [], [])]
    seconds = 1.5 if quick else 3.0
    for i in range(2 if quick else 8):
        for extra, rates, cpus in sides if i % 2 == 0 else sides[::-1]:
            hub = HubProcess(data, extra)
            try:
                throughput(hub.port, hub.token, "/serve/bench/warm/echo", 0.3)
                before = cpu_seconds(hub.proc.pid)
                rate, done = throughput(hub.port, hub.token, "/serve/bench/warm/echo", seconds)
                cpus.append((cpu_seconds(hub.proc.pid) - before) / done * 1e6)
                rates.append(rate)
            finally:
                hub.stop()
    HubProcess(data).stop()  # --stop-services-on-exit: the service goes with this one
    (_, on, on_cpu), (_, off, off_cpu) = sides
    print(
        "throughput rounds (req/s), measured: "
        + ", ".join(f"{r:.0f}" for r in on)
        + "; --no-metrics: "
        + ", ".join(f"{r:.0f}" for r in off)
    )
    # Each round's two sides ran one after the other: their ratio is what a drifting load on the
    # machine moves least; its median, scaled onto the baseline's median, is the figure.
    ratio = statistics.median(a / b for a, b in zip(on, off))
    return {
        "measured_rps": ratio * statistics.median(off),
        "plain_rps": statistics.median(off),
        "measured_cpu_us": statistics.median(on_cpu),
        "plain_cpu_us": statistics.median(off_cpu),
    }


def pct(values: list, p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (the smoke test)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    rounds, per_round = (2, 300) if args.quick else (6, 1500)
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)

    with tempfile.TemporaryDirectory(prefix="algolink-bench-hub-") as tmp:
        data = Path(tmp) / "data"
        hub = HubProcess(data)
        try:
            hub.api.call("POST", "/api/v1/projects", {"name": "bench"})
            hub.api.call("POST", "/api/v1/projects/bench/groups", {"name": "g"})
            empty, _ = register_to_online(hub, "cold")
            warm, version = register_to_online(hub, "warm")
            baseline_start = statistics.median(
                direct_start(data, "warm", free_port()) for _ in range(1 if args.quick else 3)
            )

            hub_client = Client(hub.port, hub.token)
            direct_client = Client(service_port(data, "warm", version["number"]))
            latencies(hub_client, "/serve/bench/warm/echo", 200)  # warm-up both paths
            latencies(direct_client, "/echo", 200)
            via, direct = [], []
            for i in range(rounds):
                sides = [
                    (via, hub_client, "/serve/bench/warm/echo"),
                    (direct, direct_client, "/echo"),
                ]
                for values, client, path in sides if i % 2 == 0 else sides[::-1]:
                    values.extend(latencies(client, path, per_round))
            # Pinned versions: each round publishes a new version (its first start), then calls
            # the one before it once it was stopped for being idle (its cold start).
            hub.api.call("PATCH", "/api/v1/projects/bench/services/warm", {"keep_warm": 1})
            firsts, colds = [], []
            for i in range(2 if args.quick else 4):
                number = new_version(hub, "warm", f"warm-{i + 2}")
                took, _ = first_start(hub, "warm", number)
                firsts.append(took)
                previous = hub.api.call(
                    "GET", f"/api/v1/projects/bench/services/warm/versions/{number - 1}"
                )
                colds.append(cold_start(hub, "warm", number - 1, previous["api_version"]))
        finally:
            hub.stop()
        try:
            cost_figures = metrics_cost(Path(tmp) / "cost", args.quick)
        finally:
            # The system users both hubs made for their services (as root), once those have gone.
            left = remove_hub_users([data, Path(tmp) / "cost"])
            if left:
                print(f"warning: system users left behind: {', '.join(left)}", file=sys.stderr)
        measured_rps, plain_rps = cost_figures["measured_rps"], cost_figures["plain_rps"]

    rows = [
        {
            "figure": "register-to-online, empty cache",
            "ours": empty,
            "baseline": baseline_start,
            "unit": "s",
            "target": "",
        },
        {
            "figure": "register-to-online, warm cache",
            "ours": warm,
            "baseline": baseline_start,
            "unit": "s",
            "target": f"< {TARGET_WARM_S:g} s",
        },
        {
            "figure": "pinned version cold start",
            "ours": statistics.median(colds),
            "baseline": statistics.median(firsts),
            "unit": "s",
            "target": f"<= {TARGET_COLD_RATIO:g}x its first start",
        },
        {
            "figure": "/serve echo p50 latency",
            "ours": pct(via, 50),
            "baseline": pct(direct, 50),
            "unit": "ms",
            "target": f"adds < {TARGET_ADDED_P50_MS:g} ms",
        },
        {
            "figure": "/serve echo p99 latency",
            "ours": pct(via, 99),
            "baseline": pct(direct, 99),
            "unit": "ms",
            "target": "",
        },
    ]
    rows.append(
        {
            "figure": "/serve throughput, measured",
            "ours": measured_rps,
            "baseline": plain_rps,
            "unit": "req/s",
            "target": f">= {1 - TARGET_METRICS_COST:.2f}x (--no-metrics)",
        }
    )
    rows.append(
        {
            "figure": "hub CPU per /serve request",
            "ours": cost_figures["measured_cpu_us"],
            "baseline": cost_figures["plain_cpu_us"],
            "unit": "us",
            "target": "(--no-metrics; a fresh process each round: noisier)",
        }
    )
    added = rows[3]["ours"] - rows[3]["baseline"]
    print(f"\n{'figure':<34}{'hub':>12}{'baseline':>13}{'ratio':>8}  target")
    for r in rows:
        r["ratio"] = r["ours"] / r["baseline"] if r["baseline"] else None
        fmt = {"s": "{:.2f}", "req/s": "{:.0f}", "us": "{:.0f}"}.get(r["unit"], "{:.3f}")
        ours, base = (
            fmt.format(r["ours"]) + " " + r["unit"],
            fmt.format(r["baseline"]) + " " + r["unit"],
        )
        print(f"{r['figure']:<34}{ours:>12}{base:>13}{r['ratio']:>7.2f}x  {r['target']}")
    met_warm = "met" if warm < TARGET_WARM_S else "MISSED"
    cost = 1 - measured_rps / plain_rps
    cpu_cost = cost_figures["measured_cpu_us"] / cost_figures["plain_cpu_us"] - 1
    met_metrics = "met" if cost < TARGET_METRICS_COST else "MISSED"
    met_p50 = "met" if added < TARGET_ADDED_P50_MS else "MISSED"
    cold_ratio = rows[2]["ours"] / rows[2]["baseline"]
    met_cold = "met" if cold_ratio <= TARGET_COLD_RATIO else "MISSED"
    print(
        f"\nbaseline for register-to-online: the service started by hand in its environment until "
        f"RUNNING; for a pinned version's cold start: a version's first start (publish to online)."
        f"\nthe hub adds {added:.3f} ms at p50 ({met_p50}); warm register-to-online "
        f"{warm:.2f} s ({met_warm}); pinned cold start {cold_ratio:.2f}x its first start "
        f"({met_cold}); {len(via)} requests per side."
        f"\nmeasuring costs {cost:.1%} of /serve throughput ({met_metrics}; baseline: the hub "
        "started with --no-metrics before the same service, 8 connections, alternating rounds); "
        f"the hub's CPU time per request {cpu_cost:+.1%}."
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "rows": rows,
                "added_p50_ms": added,
                "requests_per_side": len(via),
                "metrics_cost": cost,
                "metrics_cpu_cost": cpu_cost,
            },
            indent=1,
        )
        + "\n"
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
