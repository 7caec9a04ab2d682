"""What the model server costs on top of the work: throughput, latency and memory against baselines.

Run by ``make bench`` (about a minute; ``--quick`` takes a few seconds and is what the smoke test runs).
From one run it prints a table and writes ``bench/results/serve_overhead.json``:

1. A no-op text command (``echo``) served by ``python cloud_model.py`` against a bare Tornado handler doing
   the same JSON echo, at concurrency 1 and 16: requests per second, p50 and p99 latency, ours/bare.
   Both servers run as subprocesses on 127.0.0.1. The load comes from a separate process (this script
   with ``--client``): an asyncio client over raw sockets, HTTP/1.1 keep-alive, one connection per
   concurrent worker, pre-built request bytes, Content-Length framing. Ours and bare are measured back
   to back in each of several rounds (alternating which goes first); a figure is the median over rounds
   and a ratio the median of the per-round ratios, so that a noisy machine moves both sides alike.
2. A 224x224 JPEG classify round trip over HTTP (base64 JSON body) against an in-process
   ``base64.b64decode`` + ``PIL.Image.open(...).convert('RGB')`` of the same image, and against a bare
   Tornado handler doing that decode and the same trivial model over HTTP (what the server itself adds).
3. Server-Sent Events: a generator command yielding 100 times (``tick``), POSTed with ``Accept:
   text/event-stream``, against a bare Tornado handler writing the same 100 events (and the final one),
   each flushed: time to the first event and events per second, ours/bare (median of paired rounds).
4. The idle server's resident memory (VmRSS) after start-up and after the load.

Targets are printed next to the figures; nothing fails when one is missed: this reports, it does not pin.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "bench" / "results" / "serve_overhead.json"
QUICK_OUTPUT = REPO / "bench" / "results" / "serve_overhead.quick.json"

HOST = "127.0.0.1"
STARTED = re.compile(r"Starting (?:model|bare) server at http://([^:\s]+):(\d+)\.\.\.")
ECHO_BODY = json.dumps({"text": "hello, model server"}).encode()

#: Targets: ours/bare throughput at least this; p50 at concurrency 1 under this; idle RSS under this.
TARGET_THROUGHPUT_RATIO = 1.0
TARGET_P50_MS = 1.0
TARGET_RSS_MB = 60.0

#: Every load loop is bounded in count as well as in time.
MAX_REQUESTS_PER_RUN = 2_000_000
MAX_DECODES = 5_000

MODES = {
    # echo: warm-up and measured seconds, rounds; classify: seconds per side, rounds; in-process decode
    "default": {
        "warmup": 0.5,
        "duration": 2.0,
        "rounds": 5,
        "classify": 1.5,
        "classify_rounds": 3,
        "decode": 1.5,
        "sse_rounds": 5,
        "sse_reps": 10,
    },
    "quick": {
        "warmup": 0.2,
        "duration": 0.6,
        "rounds": 1,
        "classify": 0.6,
        "classify_rounds": 1,
        "decode": 0.3,
        "sse_rounds": 1,
        "sse_reps": 3,
    },
}

OUR_MODEL = '''
"""A no-op model: echo text, and a trivial 224x224 classifier (mean pixel > 128)."""
import modelcloud
from modelcloud.data_types import image, number, text
from PIL import ImageStat


@modelcloud.setup
def setup():
    return None


@modelcloud.command("echo", inputs={"text": text()}, outputs={"text": text()},
                    description="Return the text as it came")
def echo(model, inputs):
    return inputs["text"]


@modelcloud.command("classify", inputs={"photo": image(width=224, height=224)},
                    outputs={"label": text()}, description="light or dark")
def classify(model, inputs):
    return "light" if sum(ImageStat.Stat(inputs["photo"]).mean) / 3 > 128 else "dark"


@modelcloud.command("tick", outputs={"i": number()}, description="100 yields, nothing else")
def tick(model, inputs):
    for i in range(100):
        yield {"i": i}, (i + 1) / 100


if __name__ == "__main__":
    modelcloud.run()
'''

BARE_SERVER = '''
"""The baseline: bare Tornado handlers doing the same work on the I/O loop, nothing more."""
import asyncio
import json

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets


class Echo(tornado.web.RequestHandler):
    def post(self):
        data = json.loads(self.request.body)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"text": data["text"]}))


class Classify(tornado.web.RequestHandler):
    def post(self):
        import base64
        import io

        from PIL import Image, ImageStat  # on first use: the idle RSS is Tornado's alone

        data = json.loads(self.request.body)
        b64 = data["photo"].split(",", 1)[-1]
        img = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")
        label = "light" if sum(ImageStat.Stat(img).mean) / 3 > 128 else "dark"
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"label": label}))


class Tick(tornado.web.RequestHandler):
    async def post(self):
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        for i in range(100):
            data = json.dumps({"progress": (i + 1) / 100, "outputs": {"i": i}})
            self.write(f"event: output\\nid: {i + 1}\\ndata: {data}\\n\\n")
            await self.flush()
        data = json.dumps({"outputs": {"i": 99}})
        self.write(f"event: succeeded\\nid: 101\\ndata: {data}\\n\\n")
        self.finish()


async def main():
    sockets = bind_sockets(0, "127.0.0.1")
    app = tornado.web.Application([(r"/echo", Echo), (r"/classify", Classify), (r"/tick", Tick)])
    HTTPServer(app).add_sockets(sockets)
    print(f"Starting bare server at http://127.0.0.1:{sockets[0].getsockname()[1]}...", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
'''


# ---------------------------------------------------------------------------------------------------
# The load generator: runs in its own process (``--client``), reads its spec as JSON on stdin and
# writes its figures as JSON on stdout.
# ---------------------------------------------------------------------------------------------------

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


class _Load:
    """Shared state of one measurement: the phase clock, the latencies, the counters."""

    def __init__(self, warmup: float, duration: float, max_requests: int):
        self.warmup = warmup
        self.duration = duration
        self.max_requests = max_requests
        self.t_measure = 0.0
        self.t_end = 0.0
        self.latencies: list = []
        self.total = 0
        self.errors = 0
        self.capped = False
        self.last_done = 0.0
        self.cpu_start: Optional[float] = None
        self.cpu_end: Optional[float] = None
        self.active = 0
        self.finished: Optional[asyncio.Future] = None

    def start(self, now: float) -> None:
        self.t_measure = now + self.warmup
        self.t_end = self.t_measure + self.duration

    def stopped(self) -> None:
        self.active -= 1
        if self.active == 0 and self.finished is not None and not self.finished.done():
            self.finished.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection with one request in flight at a time."""

    def __init__(self, load: _Load, request: bytes):
        self.load = load
        self.request = request
        self.transport: Any = None
        self.buf = b""
        self.need = -1  # bytes of the whole response once its head is parsed
        self.sent = 0.0
        self.running = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def send(self) -> None:
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            m = _CONTENT_LENGTH.search(buf, 0, end + 2)
            if m is None:  # the client reads only Content-Length framed answers
                self.load.errors += 1
                self._stop()
                return
            if buf[9:12] != b"200":
                self.load.errors += 1
            self.need = end + 4 + int(m.group(1))
        if len(buf) < self.need:
            self.buf = buf
            return
        self.buf = b""
        self.need = -1
        self._done()

    def _done(self) -> None:
        now = time.perf_counter()
        load = self.load
        load.total += 1
        if now >= load.t_measure:
            if load.cpu_start is None:
                load.cpu_start = time.process_time()
            if now <= load.t_end:
                load.latencies.append(now - self.sent)
                load.last_done = now
        if now < load.t_end and load.total < load.max_requests:
            self.send()
            return
        if now < load.t_end:
            load.capped = True
        if load.cpu_end is None:
            load.cpu_end = time.process_time()
        self._stop()

    def _stop(self) -> None:
        if self.running:
            self.running = False
            self.load.stopped()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.running:
            self.load.errors += 1
            self._stop()


async def _run_load(spec: dict) -> dict:
    loop = asyncio.get_running_loop()
    request = spec["request"].encode("latin-1")
    load = _Load(spec["warmup"], spec["duration"], spec.get("max_requests", MAX_REQUESTS_PER_RUN))
    load.finished = loop.create_future()
    conns = []
    for _ in range(spec["concurrency"]):
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: _Connection(load, request), spec["host"], spec["port"]),
            timeout=10,
        )
        conns.append(conn)
    load.start(time.perf_counter())
    for conn in conns:
        conn.running = True
        load.active += 1
        conn.send()
    try:
        await asyncio.wait_for(load.finished, timeout=spec["warmup"] + spec["duration"] + 15)
    finally:
        for conn in conns:
            conn.transport.close()
    lat = sorted(load.latencies)
    window = (load.last_done if load.capped else load.t_end) - load.t_measure
    cpu = (load.cpu_end or time.process_time()) - (load.cpu_start or time.process_time())
    return {
        "concurrency": spec["concurrency"],
        "requests": len(lat),
        "total_requests": load.total,
        "errors": load.errors,
        "seconds": window,
        "rps": len(lat) / window if window > 0 else 0.0,
        "p50_ms": _percentile(lat, 50) * 1000,
        "p99_ms": _percentile(lat, 99) * 1000,
        "mean_ms": (sum(lat) / len(lat) * 1000) if lat else float("nan"),
        "client_cpu_pct": 100.0 * cpu / window if window > 0 else 0.0,
    }


def client_main() -> None:
    spec = json.loads(sys.stdin.read())
    gc.disable()  # no collector pauses in the load generator's own latency
    result = asyncio.run(_run_load(spec))
    sys.stdout.write(json.dumps(result) + "\n")


def _percentile(sorted_values: list, pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (nan when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil(n * pct / 100)
    return sorted_values[int(rank) - 1]


# ---------------------------------------------------------------------------------------------------
# The orchestrator.
# ---------------------------------------------------------------------------------------------------


class Server:
    """A server subprocess on a free port; its console is drained by a thread."""

    def __init__(self, name: str, script: Path, env: Optional[dict] = None):
        self.name = name
        full_env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            **(env or {}),
        }
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, script.name],
            cwd=str(script.parent),
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list = []
        self.port: Optional[int] = None
        self.startup_s: Optional[float] = None
        self._ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if len(self.lines) < 1000:
                self.lines.append(line.rstrip("\n"))
            m = STARTED.search(line)
            if m and self.port is None:
                self.port = int(m.group(2))
                self.startup_s = time.perf_counter() - self.started_at
                self._ready.set()
        self._ready.set()

    def wait_started(self, timeout: float = 60) -> Server:
        if not self._ready.wait(timeout) or self.port is None:
            self.stop()
            output = "\n".join(self.lines[-30:])
            raise RuntimeError(f"{self.name} server did not start; its output:\n{output}")
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self, field: str = "VmRSS") -> float:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field} in /proc/{self.pid}/status")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole process (all its threads)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass


def http_request(path: str, port: int, body: bytes) -> str:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head + body.decode("latin-1")


def run_client(
    server: Server, path: str, body: bytes, concurrency: int, warmup: float, duration: float
) -> dict:
    """One measurement, by a load generator in its own process; adds the server's CPU per request."""
    spec = {
        "host": HOST,
        "port": server.port,
        "request": http_request(path, server.port, body),
        "concurrency": concurrency,
        "warmup": warmup,
        "duration": duration,
        "max_requests": MAX_REQUESTS_PER_RUN,
    }
    cpu0 = server.cpu_seconds()
    busy0, wall0 = system_busy_seconds(), time.perf_counter()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--client"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=warmup + duration + 30,
    )
    cpu1 = server.cpu_seconds()
    busy1, wall1 = system_busy_seconds(), time.perf_counter()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout)
    if result["errors"]:
        raise RuntimeError(f"{server.name} answered {result['errors']} requests with errors")
    total = result["total_requests"]
    result["server_cpu_us_per_request"] = (cpu1 - cpu0) / total * 1e6 if total else float("nan")
    client_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    other = (busy1 - busy0) - (cpu1 - cpu0) - client_cpu
    result["background_cpu_pct"] = max(0.0, 100.0 * other / (wall1 - wall0))
    return result


def system_busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (from /proc/stat), to see other load on the machine."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def sse_once(port: int) -> dict:
    """One ``POST /tick`` with ``Accept: text/event-stream`` over a fresh connection: seconds to
    the first event, and events per second from the request to the last event."""
    import socket

    request = (
        f"POST /tick HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ).encode()
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        sock.sendall(request)
        buf, first, events = b"", None, 0
        while b"event: succeeded" not in buf or not buf.endswith(b"0\r\n\r\n"):
            data = sock.recv(65536)
            if not data:
                break
            buf += data
            if first is None and b"event: " in buf:
                first = time.perf_counter() - t0
        total = time.perf_counter() - t0
    events = buf.count(b"event: ")
    if events != 101 or first is None:
        raise RuntimeError(f"/tick sent {events} events, not 101: {buf[:300]!r}")
    return {"first_event_ms": first * 1000, "events_per_s": events / total}


def measure_sse(ours: Server, bare: Server, rounds: int, reps: int) -> dict:
    """Ours and bare alternate; a round's figure is the median of its reps, ratios are paired."""
    per: dict = {"ours": [], "bare": []}
    for server in (ours, bare):  # warm-up
        sse_once(server.port)
    for rnd in range(rounds):
        for server in (ours, bare) if rnd % 2 == 0 else (bare, ours):
            reps_out = [sse_once(server.port) for _ in range(reps)]
            r = {k: statistics.median(x[k] for x in reps_out) for k in SSE_KEYS}
            per[server.name].append(r)
            print(
                f"  round {rnd + 1} sse {server.name:<4} first event {r['first_event_ms']:.3f} ms  "
                f"{r['events_per_s']:,.0f} events/s",
                flush=True,
            )
    out: dict = {}
    for side in ("ours", "bare"):
        out[side] = {k: statistics.median(r[k] for r in per[side]) for k in SSE_KEYS}
        out[side]["rounds"] = per[side]
    out["ratios"] = {
        k: statistics.median(o[k] / b[k] for o, b in zip(per["ours"], per["bare"]))
        for k in SSE_KEYS
    }
    return out


SSE_KEYS = ("first_event_ms", "events_per_s")
ECHO_KEYS = ("rps", "p50_ms", "p99_ms", "mean_ms", "server_cpu_us_per_request")


def summarize(runs: list) -> dict:
    """The median round of each figure, the best one too, and every round."""
    out = {k: statistics.median(r[k] for r in runs) for k in ECHO_KEYS}
    out["best"] = {
        "rps": max(r["rps"] for r in runs),
        **{k: min(r[k] for r in runs) for k in ECHO_KEYS[1:]},
    }
    return {**out, "rounds": runs}


def paired_ratios(ours: list, bare: list) -> dict:
    """ours/bare per round (the two measured back to back), and the median over rounds.

    Pairing cancels the slow swings of a shared machine: the median of paired ratios is steadier
    than the ratio of two medians taken from different moments."""
    out = {}
    for k in ECHO_KEYS:
        per_round = [o[k] / b[k] for o, b in zip(ours, bare) if b[k]]
        out[k] = {"median": statistics.median(per_round), "rounds": per_round}
    return out


def make_jpeg() -> bytes:
    """A deterministic 224x224 photo-like JPEG: smooth gradients with noise."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(224)
    y, x = np.mgrid[0:224, 0:224].astype(np.float64)
    rgb = np.stack([x, y, (x + y) / 2], axis=-1) * (255 / 224)
    rgb += rng.normal(0, 12, rgb.shape)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def time_bare_decode(b64: str, seconds: float) -> dict:
    """The in-process baseline: b64decode + Image.open + convert('RGB'), bounded in count and time."""
    import base64
    import io

    from PIL import Image, ImageStat

    def decode() -> Any:
        return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")

    img = decode()
    label = "light" if sum(ImageStat.Stat(img).mean) / 3 > 128 else "dark"
    for _ in range(20):  # warm-up
        decode()
    times = []
    model_times = []
    deadline = time.perf_counter() + seconds
    while len(times) < MAX_DECODES and time.perf_counter() < deadline:
        t0 = time.perf_counter()
        img = decode()
        t1 = time.perf_counter()
        sum(ImageStat.Stat(img).mean)
        model_times.append(time.perf_counter() - t1)
        times.append(t1 - t0)
    times.sort()
    model_times.sort()
    return {
        "iterations": len(times),
        "p50_ms": _percentile(times, 50) * 1000,
        "p99_ms": _percentile(times, 99) * 1000,
        "model_p50_ms": _percentile(model_times, 50) * 1000,
        "label": label,
    }


def _fmt(value: Optional[float], unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("req/s", "ev/s"):
        return f"{value:,.0f}"
    if unit == "MB":
        return f"{value:.1f}"
    return f"{value:.3f}"


def build_rows(results: dict) -> list:
    rows = []

    def row(
        figure: str,
        unit: str,
        ours: float,
        base: Optional[float],
        target: str,
        met: Optional[bool],
        ratio: Optional[float] = None,
    ) -> None:
        rows.append(
            {
                "figure": figure,
                "unit": unit,
                "ours": ours,
                "baseline": base,
                "ratio": ratio if ratio is not None else (ours / base) if base else None,
                "target": target,
                "met": met,
            }
        )

    for c in results["settings"]["concurrency"]:
        e = results["echo"][f"c{c}"]
        ours, bare = e["ours"], e["bare"]
        ratios = {k: v["median"] for k, v in e["ratios"].items()}
        row(
            f"echo c={c} throughput",
            "req/s",
            ours["rps"],
            bare["rps"],
            f">= {TARGET_THROUGHPUT_RATIO:.2f}x bare",
            ratios["rps"] >= TARGET_THROUGHPUT_RATIO,
            ratios["rps"],
        )
        p50_target = c == 1
        row(
            f"echo c={c} p50 latency",
            "ms",
            ours["p50_ms"],
            bare["p50_ms"],
            f"< {TARGET_P50_MS:g} ms" if p50_target else "-",
            ours["p50_ms"] < TARGET_P50_MS if p50_target else None,
            ratios["p50_ms"],
        )
        row(
            f"echo c={c} p99 latency",
            "ms",
            ours["p99_ms"],
            bare["p99_ms"],
            "-",
            None,
            ratios["p99_ms"],
        )
        row(
            f"echo c={c} server CPU/request",
            "us",
            ours["server_cpu_us_per_request"],
            bare["server_cpu_us_per_request"],
            "-",
            None,
            ratios["server_cpu_us_per_request"],
        )
    cl = results["classify"]
    row(
        "classify 224x224 JPEG p50",
        "ms",
        cl["ours"]["p50_ms"],
        cl["bare_decode"]["p50_ms"],
        "-",
        None,
    )
    row(
        "classify 224x224 JPEG p99",
        "ms",
        cl["ours"]["p99_ms"],
        cl["bare_decode"]["p99_ms"],
        "-",
        None,
    )
    row(
        "classify p50 vs bare Tornado",
        "ms",
        cl["ours"]["p50_ms"],
        cl["bare_tornado"]["p50_ms"],
        "-",
        None,
        cl["bare_tornado_ratios"]["p50_ms"]["median"],
    )
    sse = results["sse"]
    row(
        "SSE time to first event",
        "ms",
        sse["ours"]["first_event_ms"],
        sse["bare"]["first_event_ms"],
        "-",
        None,
        sse["ratios"]["first_event_ms"],
    )
    row(
        "SSE events/s (100 yields)",
        "ev/s",
        sse["ours"]["events_per_s"],
        sse["bare"]["events_per_s"],
        "-",
        None,
        sse["ratios"]["events_per_s"],
    )
    rss = results["rss_mb"]
    row(
        "idle RSS after start-up",
        "MB",
        rss["ours"]["startup"],
        rss["bare"]["startup"],
        f"< {TARGET_RSS_MB:g} MB",
        rss["ours"]["startup"] < TARGET_RSS_MB,
    )
    row(
        "idle RSS after load",
        "MB",
        rss["ours"]["after_load"],
        rss["bare"]["after_load"],
        f"< {TARGET_RSS_MB:g} MB",
        rss["ours"]["after_load"] < TARGET_RSS_MB,
    )
    return rows


def print_table(rows: list) -> None:
    header = ("figure", "ours", "baseline", "ratio", "target", "met")
    lines = []
    for r in rows:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        lines.append(
            (
                f"{r['figure']} ({r['unit']})",
                _fmt(r["ours"], r["unit"]),
                _fmt(r["baseline"], r["unit"]),
                "-" if r["ratio"] is None else f"{r['ratio']:.2f}x",
                r["target"],
                met,
            )
        )
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    left = {0, 4}

    def fmt_line(cells: tuple) -> str:
        return "  ".join(
            str(c).ljust(w) if i in left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        )

    print(fmt_line(header))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt_line(line))


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short durations (a smoke test)")
    parser.add_argument("--output", type=Path, help="where to write the JSON results")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        client_main()
        return 0

    mode = "quick" if args.quick else "default"
    cfg = MODES[mode]
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    concurrency = (1, 16)
    t_begin = time.perf_counter()
    import PIL
    import tornado

    print(
        f"serve_overhead ({mode}): python {sys.version.split()[0]}, tornado {tornado.version}, "
        f"pillow {PIL.__version__}, {os.cpu_count()} CPUs; {cfg['rounds']} round(s) of "
        f"{cfg['warmup']:g}s warm-up + {cfg['duration']:g}s per echo figure",
        flush=True,
    )

    servers: list = []
    with tempfile.TemporaryDirectory(prefix="serve-overhead-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "ours").mkdir()
        (tmpdir / "bare").mkdir()
        ours_script = tmpdir / "ours" / "cloud_model.py"
        bare_script = tmpdir / "bare" / "bare_server.py"
        ours_script.write_text(textwrap.dedent(OUR_MODEL).lstrip())
        bare_script.write_text(textwrap.dedent(BARE_SERVER).lstrip())
        try:
            ours = Server("ours", ours_script, {"ALGOLINK_PORT": "0", "ALGOLINK_HOST": HOST})
            servers.append(ours)
            ours.wait_started()
            bare = Server("bare", bare_script)
            servers.append(bare)
            bare.wait_started()
            time.sleep(0.5)  # let both settle before the idle reading
            rss = {s.name: {"startup": s.rss_mb(), "startup_s": s.startup_s} for s in (ours, bare)}

            # 1. echo: ours and bare alternate within each round; figures are medians of rounds.
            runs: dict = {c: {"ours": [], "bare": []} for c in concurrency}
            for rnd in range(cfg["rounds"]):
                for c in concurrency:
                    order = (ours, bare) if (rnd + c) % 2 == 0 else (bare, ours)
                    for server in order:
                        r = run_client(
                            server, "/echo", ECHO_BODY, c, cfg["warmup"], cfg["duration"]
                        )
                        runs[c][server.name].append(r)
                        print(
                            f"  round {rnd + 1} c={c:<2} {server.name:<4} {r['rps']:8,.0f} req/s  "
                            f"p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  "
                            f"server {r['server_cpu_us_per_request']:.0f} us/req  "
                            f"client CPU {r['client_cpu_pct']:.0f}%  "
                            f"other load {r['background_cpu_pct']:.0f}%",
                            flush=True,
                        )
            echo = {}
            for c in concurrency:
                echo[f"c{c}"] = {
                    "ours": summarize(runs[c]["ours"]),
                    "bare": summarize(runs[c]["bare"]),
                    "ratios": paired_ratios(runs[c]["ours"], runs[c]["bare"]),
                }

            # 2. classify: a 224x224 JPEG over HTTP, against an in-process decode and against the
            # bare Tornado handler doing the same decode and model (alternating, like the echo).
            import base64

            jpeg = make_jpeg()
            b64 = base64.b64encode(jpeg).decode("ascii")
            body = json.dumps({"photo": "data:image/jpeg;base64," + b64}).encode()
            cl_runs: dict = {"ours": [], "bare": []}
            for rnd in range(cfg["classify_rounds"]):
                for server in (ours, bare) if rnd % 2 == 0 else (bare, ours):
                    r = run_client(server, "/classify", body, 1, cfg["warmup"], cfg["classify"])
                    cl_runs[server.name].append(r)
                    print(
                        f"  round {rnd + 1} classify {server.name:<4} p50 {r['p50_ms']:.3f} ms  "
                        f"p99 {r['p99_ms']:.3f} ms  server {r['server_cpu_us_per_request']:.0f} "
                        f"us/req  other load {r['background_cpu_pct']:.0f}%",
                        flush=True,
                    )
            cl_bare = time_bare_decode(b64, cfg["decode"])
            cl_ours = summarize(cl_runs["ours"])
            classify = {
                "jpeg_bytes": len(jpeg),
                "body_bytes": len(body),
                "ours": cl_ours,
                "bare_tornado": summarize(cl_runs["bare"]),
                "bare_tornado_ratios": paired_ratios(cl_runs["ours"], cl_runs["bare"]),
                "bare_decode": cl_bare,
                "p50_ratio": cl_ours["p50_ms"] / cl_bare["p50_ms"],
                "p99_ratio": cl_ours["p99_ms"] / cl_bare["p99_ms"],
            }
            print(
                f"  in-process decode {cl_bare['p50_ms']:.3f} ms p50 "
                f"({cl_bare['iterations']} decodes), the model alone {cl_bare['model_p50_ms']:.3f} ms",
                flush=True,
            )

            # 3. Server-Sent Events of a 100-yield generator.
            sse = measure_sse(ours, bare, cfg["sse_rounds"], cfg["sse_reps"])

            # 4. memory once the load is over.
            time.sleep(1.0)
            for s in (ours, bare):
                rss[s.name]["after_load"] = s.rss_mb()
                rss[s.name]["peak"] = s.rss_mb("VmHWM")
        finally:
            for s in servers:
                s.stop()

    results = {
        "mode": mode,
        "settings": {**cfg, "concurrency": list(concurrency)},
        "environment": {
            "python": sys.version.split()[0],
            "tornado": tornado.version,
            "pillow": PIL.__version__,
            "cpus": os.cpu_count(),
        },
        "echo": echo,
        "classify": classify,
        "sse": sse,
        "rss_mb": rss,
    }
    results["rows"] = build_rows(results)
    results["elapsed_s"] = time.perf_counter() - t_begin

    print()
    print_table(results["rows"])
    print()
    print(
        "ours: python cloud_model.py (modelcloud). Baseline: bare tornado.web handlers (echo, RSS, "
        "'classify p50 vs bare Tornado', SSE), or an in-process b64decode + Image.open().convert('RGB') "
        "(classify p50/p99). Figures are medians of rounds; a ratio against bare Tornado is the "
        "median of per-round ours/bare ratios (measured back to back), others are ours / baseline."
    )
    measured = [r for c in concurrency for side in ("ours", "bare") for r in runs[c][side]]
    measured += cl_runs["ours"] + cl_runs["bare"]
    busy = sum(r["client_cpu_pct"] > 90 for r in measured)
    if busy:
        print(f"note: the load generator used over 90% of a CPU in {busy} measurement(s).")
    noisy = sum(r["background_cpu_pct"] > 20 for r in measured)
    if noisy:
        worst = max(r["background_cpu_pct"] for r in measured)
        print(
            f"note: other processes used over 20% of a CPU during {noisy} of {len(measured)} "
            f"measurement(s) (up to {worst:.0f}%): the machine was not quiet."
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {output} ({results['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
