"""The serving benchmark still runs: ``bench/serve_overhead.py --quick`` exits 0 and prints every row."""

from __future__ import annotations

import json
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
