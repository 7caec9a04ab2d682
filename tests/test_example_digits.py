"""examples/digits end to end: train.py trains into a temporary copy of the example, cloud_model.py runs
as a real process (and once through `algolink serve`), and held-out digits go over real HTTP."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from support import REPO, ServerProcess, start_script

EXAMPLE = REPO / "examples" / "digits"
STARTED = re.compile(r"^Starting model server at http://0\.0\.0\.0:(\d+)\.\.\.$")
N_SAMPLES = 50


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A copy of the example without weights or samples, trained with ``train.py --out`` elsewhere."""
    root = tmp_path_factory.mktemp("digits")
    folder = root / "digits"
    shutil.copytree(
        EXAMPLE, folder, ignore=shutil.ignore_patterns("models", "samples", "__pycache__")
    )
    weights = root / "weights" / "digits.pt"
    proc = subprocess.run(
        [sys.executable, str(folder / "train.py"), "--out", str(weights)],
        cwd=root,  # not the example's folder: train.py must find its own files
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"held-out accuracy: (\d\.\d+)", proc.stdout)
    assert m, proc.stdout
    assert float(m.group(1)) > 0.95, proc.stdout
    assert weights.is_file() and weights.stat().st_size > 10_000
    assert not (folder / "models").exists(), "--out must replace models/digits.pt"
    samples = sorted((folder / "samples").glob("digit_*.png"))
    assert samples, proc.stdout
    return {"root": root, "folder": folder, "weights": weights, "samples": samples}


@pytest.fixture(scope="module")
def held_out(trained) -> list:
    """~50 (8x8 array, true digit) pairs the model never trained on, straight from the dataset."""
    spec = importlib.util.spec_from_file_location(
        "digits_example_model", trained["folder"] / "model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    digits = load_digits()
    train_idx, test_idx = module.split_indices(digits.target)
    assert not set(train_idx) & set(test_idx)
    assert len(test_idx) >= 0.15 * len(digits.target)
    pick = np.random.default_rng(7).choice(test_idx, size=N_SAMPLES, replace=False)
    return [(digits.images[i], int(digits.target[i])) for i in pick]


@pytest.fixture(scope="module")
def server(trained):
    """cloud_model.py started from another folder, its checkpoint named by ALGOLINK_MODEL_OPTIONS."""
    options = json.dumps({"checkpoint": str(trained["weights"])})
    proc = ServerProcess(
        [sys.executable, str(trained["folder"] / "cloud_model.py")],
        cwd=trained["root"],
        env={"ALGOLINK_MODEL_OPTIONS": options},
    ).wait_started()
    yield proc
    proc.stop()


def render(arr: np.ndarray, variant: int) -> Image.Image:
    """A dataset digit drawn as a person might send it: sizes, ink polarity, smoothing, canvas and
    colour mode vary with ``variant``."""
    dark_on_light = variant % 2 == 0
    values = arr * (255.0 / 16.0)
    if dark_on_light:
        values = 255.0 - values
    img = Image.fromarray(np.rint(values).astype(np.uint8), mode="L")
    size, resample = [
        (64, Image.Resampling.NEAREST),
        (50, Image.Resampling.BILINEAR),
        (120, Image.Resampling.BICUBIC),
        (33, Image.Resampling.LANCZOS),
        (8, Image.Resampling.NEAREST),
    ][variant % 5]
    img = img.resize((size, size), resample)
    if variant % 7 == 3:  # off-centre on a larger, wider canvas
        canvas = Image.new("L", (size * 3, size * 2), 255 if dark_on_light else 0)
        canvas.paste(img, (size // 3, size // 2))
        img = canvas
    if variant % 3 == 1:
        img = img.convert("RGB")
    return img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def check_answer(body: dict) -> tuple:
    assert set(body) == {"digit", "confidence"}, body
    assert isinstance(body["digit"], int) and 0 <= body["digit"] <= 9, body
    assert 0.0 <= body["confidence"] <= 1.0, body
    return body["digit"], body["confidence"]


def console_order_ok(lines: list) -> bool:
    """The console says "Setting up model..." and later "Starting model server at http://0.0.0.0:PORT"."""
    starts = [i for i, line in enumerate(lines) if STARTED.match(line)]
    return (
        "Setting up model..." in lines
        and bool(starts)
        and lines.index("Setting up model...") < starts[0]
    )


def test_console_lines(server):
    assert console_order_ok(server.lines), server.output
    port = next(m.group(1) for m in map(STARTED.match, server.lines) if m)
    assert server.url == f"http://127.0.0.1:{port}" and int(port) > 0
    assert server.get("/healthcheck").json() == {"status": "RUNNING", "ongoing": 0}


def test_classifies_held_out_digits(server, held_out):
    correct = 0
    for k, (arr, truth) in enumerate(held_out):
        data = png_bytes(render(arr, k))
        b64 = base64.b64encode(data).decode("ascii")
        photo = f"data:image/png;base64,{b64}" if k % 4 else b64  # bare base64 too
        r = server.post("/classify", json={"photo": photo})
        assert r.status_code == 200, r.text
        digit, _ = check_answer(r.json())
        correct += digit == truth
    assert correct >= 0.9 * len(held_out), f"{correct}/{len(held_out)} held-out digits right"


def test_multipart_upload(server, trained, held_out):
    sample = trained["samples"][0]
    truth = int(re.search(r"digit_(\d)\.png$", sample.name).group(1))
    r = server.post("/classify", files={"photo": (sample.name, sample.read_bytes(), "image/png")})
    assert r.status_code == 200, r.text
    assert check_answer(r.json())[0] == truth

    arr, truth = held_out[0]
    r = server.post(
        "/classify", files={"photo": ("digit.png", png_bytes(render(arr, 2)), "image/png")}
    )
    assert r.status_code == 200, r.text
    assert check_answer(r.json())[0] == truth


def test_bad_input_is_a_400(server):
    r = server.post("/classify", json={"photo": base64.b64encode(b"not an image").decode()})
    assert r.status_code == 400
    assert r.json()["field"] == "photo"
    assert server.get("/healthcheck").json() == {"status": "RUNNING", "ongoing": 0}


def test_meta_shows_option_and_card(server, trained):
    manifest = server.get("/meta").json()
    (option,) = manifest["options"]
    assert option["name"] == "checkpoint"
    assert option["type"] == "file"
    assert option["extension"] == [".pt"]
    assert option["default"] == "models/digits.pt"
    assert option["description"]
    meta = manifest["metadata"]
    assert meta["name"] == "digits"
    for key in ("tagline", "description", "license", "performance_notes"):
        assert isinstance(meta[key], str) and meta[key], key
    assert meta["links"] and all(link["url"].startswith("https://") for link in meta["links"])
    (cmd,) = manifest["commands"]
    assert cmd["name"] == "classify" and cmd["description"]
    assert [(i["name"], i["type"], i["channels"]) for i in cmd["inputs"]] == [("photo", "image", 1)]
    outputs = {o["name"]: o for o in cmd["outputs"]}
    assert outputs["digit"]["type"] == outputs["confidence"]["type"] == "number"
    assert (outputs["confidence"]["min"], outputs["confidence"]["max"]) == (0, 1)
    # The card's gallery is the sample pictures train.py writes.
    assert meta["images"]
    for path in meta["images"]:
        assert (trained["folder"] / path).is_file(), path


def failed_start(trained, checkpoint: str) -> str:
    proc = start_script(
        trained["folder"] / "cloud_model.py",
        env={"ALGOLINK_MODEL_OPTIONS": json.dumps({"checkpoint": checkpoint})},
        wait=False,
    )
    try:
        assert proc.wait_exit(60) == 1, proc.output
    finally:
        proc.stop()
    assert "Starting model server" not in proc.output
    return proc.output


def test_missing_checkpoint_exits_1(trained):
    missing = str(trained["root"] / "nowhere" / "digits.pt")
    out = failed_start(trained, missing)
    assert "Setting up model..." in out
    assert "'checkpoint'" in out and "not an existing file" in out, out


def test_wrong_extension_is_refused(trained):
    out = failed_start(trained, str(trained["samples"][0]))
    assert "'checkpoint'" in out and ".pt" in out, out


def test_file_that_is_not_a_checkpoint_exits_1(trained):
    bogus = trained["root"] / "bogus.pt"
    bogus.write_text("these are not weights")
    out = failed_start(trained, str(bogus))
    assert "not a digits checkpoint" in out and "train.py" in out, out


def test_algolink_serve_uses_the_default_checkpoint(trained):
    """`algolink serve FOLDER` from another directory: models/digits.pt resolves next to the file."""
    bundle = trained["root"] / "bundle"
    shutil.copytree(trained["folder"], bundle, ignore=shutil.ignore_patterns("__pycache__"))
    (bundle / "models").mkdir()
    shutil.copy(trained["weights"], bundle / "models" / "digits.pt")
    script = Path(sys.executable).with_name("algolink")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "algolink_jupyter.cli"]
    proc = ServerProcess([*cli, "serve", str(bundle)], cwd=trained["root"]).wait_started()
    try:
        assert console_order_ok(proc.lines), proc.output
        sample = trained["samples"][-1]
        truth = int(re.search(r"digit_(\d)\.png$", sample.name).group(1))
        r = proc.post("/classify", files={"photo": (sample.name, sample.read_bytes())})
        assert r.status_code == 200, r.text
        assert check_answer(r.json())[0] == truth
    finally:
        proc.stop()
    assert proc.proc.returncode == 0, proc.output
