"""The notebooks under notebooks/, executed end to end in a fresh kernel (nbclient)."""

from __future__ import annotations

import json
import os
import re
import shutil

import nbformat
from nbclient import NotebookClient

from support import REPO


def execute(name: str, tmp_path, env_runtime: str) -> nbformat.NotebookNode:
    src = REPO / "notebooks" / name
    shutil.copy(src, tmp_path / name)
    nb = nbformat.read(tmp_path / name, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={**os.environ, "JUPYTER_RUNTIME_DIR": env_runtime})
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
