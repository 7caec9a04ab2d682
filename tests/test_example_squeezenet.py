"""examples/squeezenet (the seed's model) as a real process, with a randomly initialised SqueezeNet 1.1
checkpoint so that nothing is downloaded. Needs torchvision, which the default test environment lacks:
the whole module is skipped there."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from support import REPO, start_script

torchvision = pytest.importorskip("torchvision")
models = torchvision.models

pytestmark = pytest.mark.torchvision

EXAMPLE = REPO / "examples" / "squeezenet"


@pytest.fixture(scope="module")
def labels() -> dict:
    with open(EXAMPLE / "labels.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained SqueezeNet 1.1 state_dict: the real architecture, no download."""
    import torch

    path = tmp_path_factory.mktemp("squeezenet") / "random_squeezenet1_1.pth"
    torch.manual_seed(0)
    torch.save(models.squeezenet1_1(weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def server(checkpoint):
    proc = start_script(
        EXAMPLE / "cloud_model.py",
        env={"ALGOLINK_MODEL_OPTIONS": json.dumps({"checkpoint": str(checkpoint)})},
    )
    yield proc
    proc.stop()


def test_labels_are_torchvisions_imagenet_categories(labels):
    categories = models.SqueezeNet1_1_Weights.IMAGENET1K_V1.meta["categories"]
    assert len(categories) == 1000
    assert labels == {str(i): name for i, name in enumerate(categories)}


def test_console_lines(server):
    lines = server.lines
    starts = [
        i
        for i, line in enumerate(lines)
        if re.fullmatch(r"Starting model server at http://0\.0\.0\.0:\d+\.\.\.", line)
    ]
    assert "Setting up model..." in lines and starts, server.output
    assert lines.index("Setting up model...") < starts[0], server.output


def test_classify_answers_a_label(server, labels):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), mode="RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    photo = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    r = server.post("/classify", json={"photo": photo})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"label"}
    assert body["label"] in labels.values()

    r = server.post("/classify", files={"photo": ("photo.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.json()["label"] in labels.values()


def test_meta(server):
    manifest = server.get("/meta").json()
    (option,) = manifest["options"]
    assert option["name"] == "checkpoint"
    assert option["extension"] == [".pth", ".pt"]
    assert option["default"] == "models/squeezenet1_1.pth"
    assert manifest["metadata"]["name"] == "squeezenet"
    assert [c["name"] for c in manifest["commands"]] == ["classify"]


def test_missing_weights_exit_1(tmp_path):
    proc = start_script(
        EXAMPLE / "cloud_model.py",
        env={"ALGOLINK_MODEL_OPTIONS": json.dumps({"checkpoint": str(tmp_path / "none.pth")})},
        wait=False,
    )
    try:
        assert proc.wait_exit(120) == 1, proc.output
    finally:
        proc.stop()
    assert "'checkpoint'" in proc.output and "not an existing file" in proc.output
