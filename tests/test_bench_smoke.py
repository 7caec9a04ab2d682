"""The benchmarks still run: each one's ``--quick`` exits 0 and prints every row."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

ROWS = [
    "echo c=1 throughput",
    "echo c=1 p50 latency",
    "echo c=1 p99 latency",
    "echo c=16 throughput",
    "echo c=16 p50 latency",
    "echo c=16 p99 latency",
    "classify 224x224 JPEG p50",
    "classify 224x224 JPEG p99",
    "classify p50 vs bare Tornado",
    "SSE time to first event",
    "SSE events/s (100 yields)",
    "idle RSS after start-up",
    "idle RSS after load",
]


@pytest.mark.timeout(90)
def test_serve_overhead_quick(tmp_path: Path) -> None:
    output = tmp_path / "serve_overhead.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "serve_overhead.py"), "--quick", "--output", output],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = proc.stdout.split("figure", 1)[-1]
    for row in ROWS:
        assert row in table, f"no {row!r} row in:\n{proc.stdout}"
    results = json.loads(output.read_text())
    assert [r["figure"] for r in results["rows"] if "CPU" not in r["figure"]] == ROWS
    for r in results["rows"]:
        assert r["ours"] > 0, r


@pytest.mark.timeout(120)
def test_batching_bench_quick(tmp_path: Path) -> None:
    output = tmp_path / "batching.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "batching.py"),
            "--quick",
            "--no-bentoml",
            "--output",
            output,
        ],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "throughput batched/unbatched c=32" in proc.stdout
    results = json.loads(output.read_text())
    assert {(r["server"], r["concurrency"]) for r in results["rows"]} == {
        (s, c) for s in ("batched", "unbatched") for c in (1, 8, 32)
    }
    assert all(r["rps"] > 0 and r["errors"] == 0 for r in results["rows"])


RAY_ROWS = [
    "ray 1 replica c=1 throughput",
    "ray 1 replica c=1 p50 latency",
    "ray 1 replica c=16 throughput",
    "ray 1 replica c=16 p50 latency",
    "ray c=1 throughput",
    "ray c=1 p50 latency",
    "ray c=1 p99 latency",
    "ray c=1 machine CPU per request",
    "ray c=1 hub CPU per request",
    "ray c=16 throughput per replica",
    "ray c=16 p50 latency",
    "ray c=16 p99 latency",
    "ray c=16 machine CPU per request",
    "ray c=16 hub CPU per request",
    "serve proxy c=1 throughput",
    "serve proxy c=1 p50 latency",
    "serve proxy c=1 p99 latency",
    "serve proxy c=1 machine CPU per request",
    "serve proxy c=16 throughput",
    "serve proxy c=16 p50 latency",
    "serve proxy c=16 p99 latency",
    "serve proxy c=16 machine CPU per request",
]


@pytest.mark.timeout(300)
def test_ray_backend_bench_quick(tmp_path: Path) -> None:
    """``bench/ray_backend.py --quick``: a loopback Ray cluster, a hub of each backend, the digits
    example through both and through Serve's proxy; every figure is printed and written."""
    output = tmp_path / "ray_backend.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "ray_backend.py"), "--quick", "--output", output],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=290,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table, _, ratios = proc.stdout.partition("\nfigure")
    for path in ("local", "ray 1 replica", "ray", "serve proxy"):
        for c in (1, 16):
            assert re.search(rf"(?m)^{path} +{c} +\d+ ", table), f"no {path} c={c} in:\n{table}"
    for row in RAY_ROWS:
        assert row in ratios, f"no {row!r} row in:\n{proc.stdout}"
    results = json.loads(output.read_text())
    assert [r["figure"] for r in results["rows"]] == RAY_ROWS
    assert all(r["ours"] > 0 and r["baseline"] > 0 for r in results["rows"]), results["rows"]
    assert {(r["path"], r["concurrency"]) for r in results["table"]} == {
        (p, c) for p in ("local", "ray 1 replica", "ray", "serve proxy") for c in (1, 16)
    }
    assert "ray had 2 replica(s) running" in proc.stdout
