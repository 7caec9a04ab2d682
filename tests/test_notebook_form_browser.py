"""The notebook's test form in a real JupyterLab and a real Chromium: the hints from the declared rules,
the recorded example one click away (its image previewed as if chosen), a chosen photo previewed, and an
image output shown after Run. Screenshots go to ``test-artifacts/browser/`` (or
``$ALGOLINK_TEST_ARTIFACTS``)."""

from __future__ import annotations

import base64
import io
import json
import os
import sys

import nbformat
import pytest
from browser_support import artifacts_dir, jupyter_lab
from PIL import Image

pytestmark = pytest.mark.timeout(420)

CELLS = [
    "%load_ext algolink_jupyter",
    '%%algolink_command tint --inputs "photo=image(max_width=64, max_height=64), '
    'strength=number(min=0, max=2, step=0.25, default=1), label=text(max_length=12)" '
    "--outputs \"photo=image(default_output_format='PNG'), said=text\"\n"
    "from PIL import ImageOps\n"
    "def tint(model, inputs):\n"
    "    said = f\"{inputs['label']} x{inputs['strength']:g}\"\n"
    '    return {"photo": ImageOps.invert(inputs["photo"].convert("RGB")), "said": said}',
]


def png_uri(color: tuple, size: tuple) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``jupyter lab`` on a free port over a notebook with one command and one recorded example."""
    root = tmp_path_factory.mktemp("nb-form")
    home = tmp_path_factory.mktemp("nb-form-home")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(root / "form.ipynb"))
    folder = root / "algolink_examples" / "tint"
    folder.mkdir(parents=True)
    example = {"photo": png_uri((250, 200, 0), (48, 32)), "strength": 1.75, "label": "sunny"}
    (folder / "001.json").write_text(json.dumps({"command": "tint", "inputs": example}))
    env = {"ALGOLINK_CONFIG": str(home / "algolink.json"), "PYTHONPATH": os.pathsep.join(sys.path)}
    with jupyter_lab(root, home, env) as lab:
        yield {"url": lab["url"], "token": lab["token"], "root": root}


def test_the_notebook_test_form_shows_hints_examples_and_previews(lab, browser, tmp_path):
    artifacts = artifacts_dir("browser")
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.set_default_timeout(60_000)
    page.goto(f"{lab['url']}/lab/tree/form.ipynb?reset&token={lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    form = page.locator(".algolink-test-form").first
    form.wait_for(state="visible", timeout=180_000)

    text = form.inner_text()
    assert "0 to 2, step 0.25, default 1" in text  # strength
    assert "at most 12 characters" in text  # label
    assert "at most 64 pixels wide" in text and "at most 64 pixels high" in text  # photo

    # The recorded example: one click fills the inputs, its image previewed.
    form.locator("button:has-text('Example 1')").click()
    slider = form.locator(".widget-slider .widget-readout").first
    page.wait_for_function(
        "e => e.textContent.trim() === '1.75'", arg=slider.element_handle(), timeout=30_000
    )
    page.wait_for_function(
        "e => e.value === 'sunny'", arg=form.locator("textarea").first.element_handle()
    )
    preview = form.locator("img.jupyter-widgets").first
    page.wait_for_function("e => e.naturalWidth === 48", arg=preview.element_handle())
    page.screenshot(path=str(artifacts / "notebook-form-example.png"), full_page=True)

    form.locator("button:has-text('Run')").first.click()
    form.get_by_text("sunny x1.75").wait_for(timeout=60_000)
    page.wait_for_function(
        "f => [...f.querySelectorAll('img.jupyter-widgets')].filter(i => i.naturalWidth === 48)"
        ".length === 2",
        arg=form.element_handle(),
    )

    # A photo chosen afterwards is previewed, and is what runs.
    photo = tmp_path / "green.png"
    Image.new("RGB", (30, 20), (0, 160, 0)).save(photo)
    with page.expect_file_chooser() as chooser:
        form.locator(".widget-upload").first.click()
    chooser.value.set_files(str(photo))
    page.wait_for_function(
        "e => e.naturalWidth === 30", arg=form.locator("img.jupyter-widgets").first.element_handle()
    )
    form.locator("button:has-text('Run')").first.click()
    page.wait_for_function(
        "f => [...f.querySelectorAll('img.jupyter-widgets')].filter(i => i.naturalWidth === 30)"
        ".length === 2",
        arg=form.element_handle(),
    )
    form.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "notebook-form-run.png"), full_page=True)
    page.close()
