"""The hub benchmark still runs: ``bench/hub.py --quick`` exits 0 and prints every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIGURES = [
    "register-to-online, empty cache",
    "register-to-online, warm cache",
    "pinned version cold start",
    "/serve echo p50 latency",
    "/serve echo p99 latency",
    "/serve throughput, measured",
    "hub CPU per /serve request",
]


@pytest.mark.timeout(180)
def test_hub_bench_quick(tmp_path: Path) -> None:
    output = tmp_path / "hub.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "hub.py"), "--quick", "--output", str(output)],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for figure in FIGURES:
        assert figure in proc.stdout, proc.stdout
    assert "the hub adds" in proc.stdout and "pinned cold start" in proc.stdout
    assert "measuring costs" in proc.stdout
    results = json.loads(output.read_text())
    assert [r["figure"] for r in results["rows"]] == FIGURES
    for row in results["rows"]:
        assert row["ours"] > 0 and row["baseline"] > 0 and row["ratio"] > 0, row
