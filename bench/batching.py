"""Adaptive batching on a real model: the digits CNN served three ways, measured in one run.

1. ours, batched: ``examples/digits/cloud_model.py`` as it is (``classify`` declared with
   ``batch=modelcloud.batching(max_size=32, max_latency_ms=10)``);
2. ours, unbatched: the same network and preprocessing, one request per forward pass (the example's
   ``classify`` before batching);
3. BentoML's adaptive batching serving the same network and preprocessing (``@bentoml.api(batchable=True,
   max_batch_size=32, max_latency_ms=10000)``), installed from PyPI into its own environment under
   ``.algolink/bench/bentoml`` the first time (about a minute; ``--no-bentoml`` leaves it out). BentoML's
   ``max_latency_ms`` is a deadline it sheds load to keep: with 10 ms, most of its answers at
   concurrency 8 and 32 were 503s (which the load generator counts in requests/s), so it gets a budget
   it meets, and answers every request.

Each is loaded at concurrency 1, 8 and 32 by ``bench/serve_overhead.py``'s load generator (a separate
process, raw keep-alive sockets), with the same 64x64 PNG of a digit as a base64 data URI. The three are
measured back to back in each round; a figure is the median over rounds. Printed: requests/s, p50 and p99
latency, and the ratios batched/unbatched and batched/BentoML, next to the targets (batched >= 3x
unbatched and >= 1.2x BentoML at concurrency 32, p99 at concurrency 1 within 1.2x of unbatched). Results
go to ``bench/results/batching.json``. All three put the network on a CUDA GPU when there is one.

First it measures the ceiling: the model and its preprocessing called in this process, no server, one
input per call against 32 per call. No server can batch better than that ratio on the same machine (on
a CPU the forward pass of one 8x8 digit is already cheap, and decoding and preparing each picture costs
the same batched or not; on a GPU one forward pass costs about the same for 1 or 32).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "examples" / "digits"
CHECKPOINT = DIGITS / "models" / "digits.pt"
LOADGEN = REPO / "bench" / "serve_overhead.py"
BENTOML_ENV = REPO / ".algolink" / "bench" / "bentoml"
DEFAULT_OUTPUT = REPO / "bench" / "results" / "batching.json"
HOST = "127.0.0.1"
CONCURRENCY = (1, 8, 32)

TARGET_VS_UNBATCHED = 3.0
TARGET_VS_BENTOML = 1.2
TARGET_P99_C1 = 1.2

sys.path.insert(0, str(REPO / "bench"))
from serve_overhead import Server, http_request  # noqa: E402

UNBATCHED_MODEL = f'''
"""The digits example's classify, unbatched: one request, one forward pass."""
import sys
sys.path.insert(0, {str(DIGITS)!r})

import torch
from model import image_to_array, load_model, pick_device, predict

import modelcloud
from modelcloud.data_types import image, number


@modelcloud.setup
def setup():
    torch.set_num_threads(1)
    return load_model({str(CHECKPOINT)!r}, pick_device())


@modelcloud.command("classify", inputs={{"photo": image(channels=1)}},
                    outputs={{"digit": number(min=0, max=9, step=1), "confidence": number(min=0, max=1)}})
def classify(model, inputs):
    digits, confidences = predict(model, image_to_array(inputs["photo"])[None])
    return {{"digit": int(digits[0]), "confidence": float(confidences[0])}}


if __name__ == "__main__":
    modelcloud.run()
'''

BENTOML_SERVICE = f'''
"""The same network and preprocessing behind BentoML's adaptive batching."""
import base64
import io
import sys

sys.path.insert(0, {str(DIGITS)!r})

import bentoml
import numpy as np
import torch
from PIL import Image
from model import image_to_array, load_model, pick_device, predict


@bentoml.service(workers=1)
class Digits:
    def __init__(self) -> None:
        torch.set_num_threads(1)
        self.net = load_model({str(CHECKPOINT)!r}, pick_device())

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=10000)
    def classify(self, photos: list[str]) -> list[dict]:
        arrays = np.stack([
            image_to_array(Image.open(io.BytesIO(base64.b64decode(p.split(",", 1)[-1]))))
            for p in photos
        ])
        digits, confidences = predict(self.net, arrays)
        return [{{"digit": int(d), "confidence": float(c)}} for d, c in zip(digits, confidences)]
'''


def digit_png() -> str:
    """A 64x64 PNG of the dataset's first 3, dark ink on white, as a data URI."""
    sys.path.insert(0, str(DIGITS))
    from model import array_to_image
    from sklearn.datasets import load_digits

    digits = load_digits()
    index = int(list(digits.target).index(3))
    out = io.BytesIO()
    array_to_image(digits.images[index], scale=8).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def ensure_checkpoint() -> None:
    if not CHECKPOINT.exists():
        print(
            "Training the digits network (examples/digits/train.py, a few seconds)...", flush=True
        )
        subprocess.run([sys.executable, "train.py"], cwd=str(DIGITS), check=True)


def ensure_bentoml() -> Path:
    """BentoML in its own environment (it pins packages of its own), with our torch/numpy/pillow."""
    python = BENTOML_ENV / "bin" / "python"
    if python.exists():
        return python
    import numpy
    import PIL
    import torch

    print(
        f"Installing BentoML into {BENTOML_ENV} for the comparison (once, about a minute)...",
        flush=True,
    )
    subprocess.run([sys.executable, "-m", "venv", str(BENTOML_ENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "bentoml",
            f"torch=={torch.__version__.split('+')[0]}",
            f"numpy=={numpy.__version__}",
            f"pillow=={PIL.__version__}",
            "scikit-learn",
        ],
        check=True,
    )
    return python


class BentoServer(Server):
    """``bentoml serve`` on a fixed free port: ready when its /readyz answers."""

    def __init__(self, python: Path, folder: Path, port: int):
        self.name = "BentoML"
        self.port = None
        self.wanted = port
        self.lines = []
        self.started_at = time.perf_counter()
        self.log_path = folder / "bentoml.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen(
            [
                str(python),
                "-m",
                "bentoml",
                "serve",
                "service:Digits",
                "--host",
                HOST,
                "--port",
                str(port),
            ],
            cwd=str(folder),
            env={**os.environ, "BENTOML_DO_NOT_TRACK": "True", "PYTHONUNBUFFERED": "1"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_started(self, timeout: float = 120) -> BentoServer:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"bentoml serve exited with {self.proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.wanted}/readyz", timeout=2):
                    self.port = self.wanted
                    return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("bentoml serve did not become ready in time")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        super().stop()
        self.log.close()


def model_alone(photo: str, seconds: float) -> dict:
    """The ceiling batching has on this machine: the digits model and its preprocessing called in this
    process, no server at all, one input per call against 32 per call (each call decodes its data URIs,
    prepares and predicts, as the served commands do). Seconds per input, and their ratio."""
    sys.path.insert(0, str(DIGITS))
    import numpy as np
    import torch
    from model import image_to_array, load_model, pick_device, predict
    from PIL import Image

    torch.set_num_threads(1)  # as the served model
    net = load_model(str(CHECKPOINT), pick_device())
    data = photo.split(",", 1)[1]

    def call(size: int) -> None:
        images = [Image.open(io.BytesIO(base64.b64decode(data))).convert("L") for _ in range(size)]
        predict(net, np.stack([image_to_array(img) for img in images]))

    per_input = {}
    for size in (1, 32):
        call(size)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds and calls < 100_000:
            call(size)
            calls += 1
        per_input[size] = (time.perf_counter() - start) / (calls * size)
    return {
        "unbatched_us": per_input[1] * 1e6,
        "batched_us": per_input[32] * 1e6,
        "ceiling": per_input[1] / per_input[32],
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def load(port: int, body: bytes, concurrency: int, warmup: float, duration: float) -> dict:
    spec = {
        "host": HOST,
        "port": port,
        "request": http_request("/classify", port, body),
        "concurrency": concurrency,
        "warmup": warmup,
        "duration": duration,
    }
    proc = subprocess.run(
        [sys.executable, str(LOADGEN), "--client"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=warmup + duration + 60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def check_answer(port: int, body: bytes) -> object:
    import urllib.request

    req = urllib.request.Request(
        f"http://{HOST}:{port}/classify", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--no-bentoml", action="store_true", help="leave BentoML out")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per figure (default 3)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    warmup, duration = (0.3, 0.8) if args.quick else (1.0, 3.0)
    rounds = args.rounds or (1 if args.quick else 3)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"

    ensure_checkpoint()
    photo = digit_png()
    alone = model_alone(photo, 0.5 if args.quick else 2.0)
    print(
        f"the model alone, in one process (decode, prepare, predict; no server): "
        f"{alone['unbatched_us']:.0f} us per input one at a time, {alone['batched_us']:.0f} us per "
        f"input 32 at a time: batching can give at most {alone['ceiling']:.2f}x on this machine",
        flush=True,
    )
    ours_body = json.dumps({"photo": photo}).encode()
    bento_body = json.dumps({"photos": [photo]}).encode()
    work = Path(tempfile.mkdtemp(prefix="algolink-bench-batching-"))
    (work / "unbatched.py").write_text(textwrap.dedent(UNBATCHED_MODEL))
    env = {"ALGOLINK_PORT": "0", "ALGOLINK_HOST": HOST}
    servers: dict = {}
    try:
        servers["batched"] = Server("batched", DIGITS / "cloud_model.py", env=env)
        servers["unbatched"] = Server("unbatched", work / "unbatched.py", env=env)
        if not args.no_bentoml:
            python = ensure_bentoml()
            (work / "service.py").write_text(textwrap.dedent(BENTOML_SERVICE))
            servers["bentoml"] = BentoServer(python, work, free_port())
        for server in servers.values():
            server.wait_started(180)
        bodies = {"batched": ours_body, "unbatched": ours_body, "bentoml": bento_body}
        answers = {name: check_answer(s.port, bodies[name]) for name, s in servers.items()}
        print(f"answers: {json.dumps(answers)}", flush=True)

        results: dict = {name: {c: [] for c in CONCURRENCY} for name in servers}
        names = list(servers)
        for r in range(rounds):
            for c in CONCURRENCY:
                order = names if r % 2 == 0 else names[::-1]
                for name in order:
                    results[name][c].append(
                        load(servers[name].port, bodies[name], c, warmup, duration)
                    )
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    def fig(name: str, c: int, key: str) -> float:
        return statistics.median(run[key] for run in results[name][c])

    rows = []
    header = f"{'server':<11} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    print(f"\ndigits CNN on {device}, {rounds} round(s) of {duration:g} s each\n{header}")
    for c in CONCURRENCY:
        for name in servers:
            row = {
                "server": name,
                "concurrency": c,
                "rps": fig(name, c, "rps"),
                "p50_ms": fig(name, c, "p50_ms"),
                "p99_ms": fig(name, c, "p99_ms"),
                "errors": sum(run["errors"] for run in results[name][c]),
            }
            rows.append(row)
            print(
                f"{name:<11} {c:>3} {row['rps']:>9.0f} {row['p50_ms']:>8.2f} "
                f"{row['p99_ms']:>8.2f} {row['errors']:>6}"
            )
    ratios = []
    print("\nratio                                   measured   target")
    for c in CONCURRENCY:
        ratio = fig("batched", c, "rps") / fig("unbatched", c, "rps")
        ratios.append({"figure": f"throughput batched/unbatched c={c}", "ratio": ratio})
        target = f">= {TARGET_VS_UNBATCHED:g}x" if c == 32 else ""
        if c == 32:
            target += f" (the model alone: at most {alone['ceiling']:.2f}x here)"
        print(f"throughput batched/unbatched c={c:<9} {ratio:>8.2f}x  {target}")
        if "bentoml" in servers:
            ratio = fig("batched", c, "rps") / fig("bentoml", c, "rps")
            ratios.append({"figure": f"throughput batched/BentoML c={c}", "ratio": ratio})
            target = f">= {TARGET_VS_BENTOML:g}x" if c == 32 else ""
            print(f"throughput batched/BentoML c={c:<12} {ratio:>8.2f}x  {target}")
    ratio = fig("batched", 1, "p99_ms") / fig("unbatched", 1, "p99_ms")
    ratios.append({"figure": "p99 batched/unbatched c=1", "ratio": ratio})
    print(f"p99 latency batched/unbatched c=1       {ratio:>8.2f}x  <= {TARGET_P99_C1:g}x")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "device": device,
                "rounds": rounds,
                "model_alone": alone,
                "rows": rows,
                "ratios": ratios,
                "raw": results,
            },
            indent=1,
            default=str,
        )
    )
    print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
