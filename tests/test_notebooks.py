"""The notebooks under notebooks/, executed end to end in a fresh kernel (nbclient)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from typing import Optional

import nbformat
import numpy as np
import pytest
from hub_process import Hub
from nbclient import NotebookClient
from PIL import Image

from support import REPO


def execute(
    name: str, tmp_path, env_runtime: str, env: Optional[dict] = None
) -> nbformat.NotebookNode:
    src = REPO / "notebooks" / name
    shutil.copy(src, tmp_path / name)
    nb = nbformat.read(tmp_path / name, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={**os.environ, "JUPYTER_RUNTIME_DIR": env_runtime, **(env or {})})
    return nb


def texts(nb: nbformat.NotebookNode) -> list:
    """Each code cell's stream text."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        out.append("".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream"))
    return out


def test_quickstart_trains_serves_and_answers_curl(tmp_path):
    nb = execute("quickstart.ipynb", tmp_path, str(tmp_path))
    all_text = "\n".join(texts(nb))
    accuracy = float(re.search(r"held-out accuracy: ([0-9.]+)", all_text).group(1))
    assert accuracy > 0.9
    ready = re.search(r"Model ready in [0-9.]+ s: DigitNet on (\w+)", all_text)
    import torch

    assert ready.group(1) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert "Serving 'classify' at http://127.0.0.1:" in all_text
    # The test form was displayed as a widget below the command cell.
    widget_outputs = [
        o
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if o.output_type == "display_data" and "application/vnd.jupyter.widget-view+json" in o.data
    ]
    assert widget_outputs
    true_digit = int(re.search(r"true digit: (\d)", all_text).group(1))
    answer = json.loads(re.search(r'(\{"digit".*\})', all_text).group(1))
    assert answer["digit"] == true_digit
    assert 0 <= answer["confidence"] <= 1
    assert "Requests served: 1, errors: 0" in all_text


# --- the example notebooks, each published to a real hub from its last cell --------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("notebooks-hub")).start()
    yield h
    h.stop()


def hub_env(hub, tmp_path) -> dict:
    return {
        "ALGOLINK_HUB_URL": hub.url,
        "ALGOLINK_TOKEN": hub.token,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


def published(nb: nbformat.NotebookNode, hub) -> str:
    """The last cell's text, after checking it published and went online."""
    last = texts(nb)[-1]
    assert "publish: online" in last, last + "\n" + hub.output[-3000:]
    assert hub.token not in json.dumps(nb)  # the token never lands in the notebook
    return last


def widgets_shown(nb: nbformat.NotebookNode) -> int:
    return sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if o.output_type == "display_data" and "application/vnd.jupyter.widget-view+json" in o.data
    )


def test_image_to_image_detects_edges_serves_and_publishes(hub, tmp_path):
    nb = execute("image_to_image.ipynb", tmp_path, str(tmp_path), hub_env(hub, tmp_path))
    all_text = "\n".join(texts(nb))
    assert "Serving at http://127.0.0.1:" in all_text
    assert "output 64x64 L" in all_text
    m = re.search(r"edge brightness: (\d+), inside: (\d+), outside: (\d+)", all_text)
    edge, inside, outside = map(int, m.groups())
    assert edge > 150 and inside < 10 and outside < 10
    assert widgets_shown(nb) >= 3  # the test form twice and the publish form
    last = published(nb, hub)
    assert f"API: {hub.url}/serve/examples/edges/v1/" in last
    # The published service answers through the hub, as the kernel did.
    square = (tmp_path / "square.png").read_bytes()
    photo = "data:image/png;base64," + base64.b64encode(square).decode()
    r = hub.serve("examples/edges/edges", json={"photo": photo, "strength": 1, "invert": True})
    assert r.status_code == 200, r.text
    out = Image.open(io.BytesIO(base64.b64decode(r.json()["edges"].split(",", 1)[1])))
    pixels = np.asarray(out)
    assert out.size == (64, 64) and out.mode == "L"
    assert pixels[16, 32] < 105 and pixels[32, 32] > 245  # inverted: dark edges on white
    service = hub.service("examples", "edges")
    assert service["metadata"]["tagline"] == "Sobel edges of any photo"
    assert len(service["gallery"]) == 1


def test_text_classifies_topics_serves_and_publishes(hub, tmp_path):
    nb = execute("text.ipynb", tmp_path, str(tmp_path), hub_env(hub, tmp_path))
    all_text = "\n".join(texts(nb))
    accuracy = float(re.search(r"held-out accuracy: ([0-9.]+)", all_text).group(1))
    assert accuracy > 0.9
    assert "'topic': 'weather'" in all_text
    assert re.search(r"400 .*'top'.*", all_text), all_text
    assert widgets_shown(nb) >= 3
    last = published(nb, hub)
    assert f"API: {hub.url}/serve/examples/topics/v1/" in last
    body = {"text": "The chef baked bread with a spicy sauce", "detail": "full", "top": 2}
    r = hub.serve("examples/topics/topic", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["topic"] == "food"
    assert re.fullmatch(r"food [01]\.\d\d, \w+ [01]\.\d\d", answer["ranking"]), answer
    r = hub.serve("examples/topics/topic", json={"text": "goal", "detail": "loud"})
    assert r.status_code == 400 and r.json()["field"] == "detail"
    assert hub.service("examples", "topics")["metadata"]["license"] == "Apache-2.0"
