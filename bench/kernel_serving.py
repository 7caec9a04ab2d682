"""Kernel serving against the standalone server, measured in one run.

Prints p50/p99 latency of a no-op text command served by a notebook kernel (``%%algolink_command``) and
by the standalone model server (``python cloud_model.py``), with the ratio (target: at most 1.2x), and
p99 while a pure-Python busy loop runs in a cell of that kernel (target: under 50 ms).

Both servers are real processes on loopback; the client is one keep-alive HTTP connection in this process,
so the figures are round-trip latency at concurrency 1. Run: ``.venv/bin/python bench/kernel_serving.py``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support import Kernel, start_script  # noqa: E402

STANDALONE = """
import modelcloud
from modelcloud import text

@modelcloud.command('noop', inputs={'s': text()}, outputs={'s': text()})
def noop(model, inputs):
    return inputs['s']

if __name__ == '__main__':
    modelcloud.run()
"""

CELL = """%%algolink_command noop --inputs "s=text" --outputs "s=text"
def noop(model, inputs):
    return inputs["s"]
"""


def measure(url: str, token: str | None, seconds: float, warmup: float = 0.3) -> list:
    """Sequential requests on one keep-alive connection for ``seconds``: their latencies in ms."""
    host, port = url.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"s": "hello"})
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    latencies = []
    start = time.perf_counter()
    end_warmup = start + warmup
    deadline = end_warmup + seconds
    while True:
        t0 = time.perf_counter()
        if t0 >= deadline:
            break
        conn.request("POST", "/noop", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        t1 = time.perf_counter()
        if resp.status != 200:
            raise RuntimeError(f"{url}/noop answered {resp.status}")
        if t0 >= end_warmup:
            latencies.append((t1 - t0) * 1000)
    conn.close()
    return latencies


def summary(latencies: list) -> dict:
    values = sorted(latencies)
    n = len(values)
    return {
        "requests": n,
        "p50_ms": values[n // 2],
        "p99_ms": values[min(n - 1, int(n * 0.99))],
        "max_ms": values[-1],
    }


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per figure")
    parser.add_argument("--quick", action="store_true", help="short runs, to smoke-test the script")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "cloud_model.py").write_text(STANDALONE)
        standalone = start_script(tmp_path / "cloud_model.py")
        kernel = Kernel(tmp_path, env={"JUPYTER_RUNTIME_DIR": str(tmp_path)})
        try:
            kernel.run("%load_ext algolink_jupyter")
            kernel.run(CELL)
            info = kernel.eval("__import__('algolink_jupyter').serving_info()")
            # Alternate short rounds so that noise from the rest of the machine hits both alike,
            # and pool each side's latencies.
            pooled: dict = {"standalone": [], "kernel": []}
            rounds = 8
            for r in range(rounds):
                sides = [
                    ("standalone", standalone.url, None),
                    ("kernel", info["url"], info["token"]),
                ]
                for name, url, token in sides if r % 2 == 0 else sides[::-1]:
                    pooled[name] += measure(url, token, seconds / rounds, warmup=0.1)
            results = {name: summary(values) for name, values in pooled.items()}
            busy_seconds = seconds + 2
            msg = kernel.execute(
                f"import time\n_t = time.time()\nwhile time.time() - _t < {busy_seconds}: pass"
            )
            time.sleep(0.5)
            results["kernel_busy"] = summary(
                measure(info["url"], info["token"], seconds, warmup=0.2)
            )
            kernel.collect(msg, timeout=busy_seconds + 30)
        finally:
            kernel.shutdown()
            standalone.stop()

    p50_ratio = results["kernel"]["p50_ms"] / results["standalone"]["p50_ms"]
    p99_ratio = results["kernel"]["p99_ms"] / results["standalone"]["p99_ms"]
    busy_p99 = results["kernel_busy"]["p99_ms"]
    rows = [
        (
            "no-op p50 (ms)",
            results["kernel"]["p50_ms"],
            results["standalone"]["p50_ms"],
            p50_ratio,
            "<= 1.2x",
            p50_ratio <= 1.2,
        ),
        (
            "no-op p99 (ms)",
            results["kernel"]["p99_ms"],
            results["standalone"]["p99_ms"],
            p99_ratio,
            "<= 1.2x",
            p99_ratio <= 1.2,
        ),
        (
            "p99 with a busy cell (ms)",
            busy_p99,
            results["kernel"]["p99_ms"],
            busy_p99 / results["kernel"]["p99_ms"],
            "< 50 ms",
            busy_p99 < 50,
        ),
    ]
    print(f"{'figure':28} {'kernel':>10} {'baseline':>10} {'ratio':>8}  {'target':10} met")
    for label, ours, base, ratio, target, met in rows:
        print(
            f"{label:28} {ours:10.3f} {base:10.3f} {ratio:7.2f}x  {target:10} {'yes' if met else 'NO'}"
        )
    print(
        "baseline: the standalone server (python cloud_model.py) for the first two rows, the idle kernel "
        f"for the third; requests: kernel {results['kernel']['requests']}, standalone "
        f"{results['standalone']['requests']}, busy {results['kernel_busy']['requests']}"
    )
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "kernel_serving.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
