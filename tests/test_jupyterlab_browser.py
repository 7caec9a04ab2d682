"""The whole flow without leaving JupyterLab, in a real browser.

``scripts/run.py`` (what ``make run`` starts) brings up a real hub and a real JupyterLab on a copy of the
quickstart; Playwright drives Debian's Chromium through it: run all cells, try ``classify`` in the test
form with a digit image, find the endpoint in the AlgoLink sidebar, publish from the publish form until
it turns green, then call the published service on the hub. Screenshots go to
``test-artifacts/jupyterlab/`` (or ``$ALGOLINK_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import requests
from browser_support import artifacts_dir
from hub_process import free_port

from support import REPO, ServerProcess, wait_until

pytestmark = pytest.mark.timeout(900)

LAB_URL = re.compile(r"JupyterLab:\s+(http://\S+)")
HUB_URL = re.compile(r"AlgoLink hub:\s+(http://\S+?)/?\s")
DIGIT = REPO / "examples" / "digits" / "samples" / "digit_3.png"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir("jupyterlab")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """``scripts/run.py`` on free ports, its data and the notebook in a temporary folder."""
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    shutil.copy(REPO / "notebooks" / "quickstart.ipynb", root / "notebooks")
    args = [
        sys.executable,
        str(REPO / "scripts" / "run.py"),
        "--no-browser",
        "--data",
        str(root / ".algolink"),
        "--hub-port",
        str(free_port()),
        "--lab-port",
        str(free_port()),
        "--root-dir",
        str(root),
    ]
    env = {
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
        # Jupyter's files, and the publish form's copy of the hub token for its curl lines, here.
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
    }
    proc = ServerProcess(args, cwd=REPO, env=env)
    try:
        lab = wait_until(lambda: LAB_URL.search(proc.output), timeout=240)
        hub = HUB_URL.search(proc.output)
        assert lab and hub, proc.output
        token = (root / ".algolink" / "hub" / "admin_token").read_text().strip()
        yield {"lab": lab.group(1), "hub": hub.group(1), "token": token, "root": root, "proc": proc}
    finally:
        proc.stop()


def test_serve_try_and_publish_without_leaving_jupyterlab(stack, browser, artifacts):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(60_000)
    try:
        walk(page, stack, artifacts)
    except BaseException:
        page.screenshot(path=str(artifacts / "failure.png"), full_page=True)
        (artifacts / "failure-output.txt").write_text(stack["proc"].output)
        for log in ("hub.log", "lab.log"):  # scripts/run.py writes the servers' logs there
            if (stack["root"] / ".algolink" / log).is_file():
                shutil.copy(stack["root"] / ".algolink" / log, artifacts / f"failure-{log}")
        forms = page.locator(".algolink-publish")
        if forms.count():  # what the publish form says, when it is the form that failed
            (artifacts / "failure-publish.html").write_text(forms.first.inner_html())
        raise


def kernel_idle(page):
    """The status bar's kernel item once it reads "… | Idle"."""
    return page.locator(".jp-StatusBar-TextItem[title^='Change kernel']", has_text="Idle")


def walk(page, stack, artifacts) -> None:
    page.goto(stack["lab"])
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="visible", timeout=120_000)
    # The kernel is up (the status bar says so) before anything runs.
    kernel_idle(page).wait_for(timeout=120_000)
    page.screenshot(path=str(artifacts / "01-quickstart-opened.png"))

    # Run > Run All Cells, as a user would.
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")

    # The test form below the command cell: upload a digit, press Run, read the label.
    form = page.locator(".algolink-test-form").first
    form.wait_for(state="visible", timeout=240_000)
    with page.expect_file_chooser() as chooser:
        form.locator(".widget-upload").first.click()
    chooser.value.set_files(str(DIGIT))
    form.locator("button:has-text('Run')").first.click()
    wait_until(lambda: "3" in form.inner_text() and "digit" in form.inner_text(), timeout=60)
    form.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "02-test-form.png"))

    # The sidebar lists the kernel's endpoint, with a copy-curl button.
    page.click(".jp-SideBar .lm-TabBar-tab[data-id='algolink-panel']")
    panel = page.locator("#algolink-panel")
    panel.locator(".algolink-command[data-command='classify']").first.wait_for(timeout=60_000)
    assert panel.locator(".algolink-copy-curl").count() >= 1
    page.screenshot(path=str(artifacts / "03-sidebar.png"))

    # The publish form (the quickstart's last cell): wait until every cell has run, then publish.
    publish = page.locator(".algolink-publish").first
    publish.wait_for(state="visible", timeout=240_000)
    kernel_idle(page).wait_for(timeout=240_000)
    publish.scroll_into_view_if_needed()
    publish.locator(".algolink-publish-publish-button").click()
    page.wait_for_selector(".algolink-publish-online", timeout=600_000)
    publish.locator(".algolink-publish-result").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "04-published.png"))
    assert re.search(r"/serve/demo/digits/(v1/)?classify", publish.inner_text())

    # The hub's service is in the sidebar too, online.
    service = panel.locator(".algolink-service[data-project='demo'][data-service='digits']")
    wait_until(lambda: service.count() and service.get_attribute("data-status") == "online", 90)
    page.screenshot(path=str(artifacts / "05-sidebar-hub.png"))

    # And the published endpoint answers on the hub.
    with DIGIT.open("rb") as f:
        answer = requests.post(
            stack["hub"] + "/serve/demo/digits/classify",
            files={"photo": f},
            headers={"Authorization": f"token {stack['token']}"},
            timeout=60,
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["digit"] == 3

    # The form's lists came from the hub again: the service just published is selected, so
    # pressing Publish once more (no cell run again) publishes its version 2.
    assert selected(publish, "project") == "demo"
    assert selected(publish, "group") == "digits"
    assert selected(publish, "service") == "digits"
    assert publish.locator(".algolink-publish-new-version-button").is_hidden()
    assert publish.locator(".algolink-publish-new-project").is_hidden()
    for field in ("name", "tagline", "version", "bundle-dir"):  # hiding "New project" hid these
        assert publish.locator(f".algolink-publish-{field}").is_visible(), field
    publish.locator(".algolink-publish-service").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "06-lists-after-publish.png"))
    publish.locator(".algolink-publish-publish-button").click()
    status = publish.locator(".algolink-publish-status")
    status.filter(has_text="demo/digits version 2 is online").wait_for(timeout=600_000)
    publish.locator(".algolink-publish-result").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "07-published-again.png"))
    assert re.search(r"/serve/demo/digits/(v\d+/)?classify", publish.inner_text())
    service = requests.get(
        stack["hub"] + "/api/v1/projects/demo/services/digits",
        headers={"Authorization": f"token {stack['token']}"},
        timeout=30,
    ).json()
    assert service["published_version"] == 2
    assert next(v for v in service["versions"] if v["number"] == 2)["status"] == "online"


def selected(form, field: str) -> str:
    """The text of the option selected in the form's ``field`` dropdown."""
    return form.locator(f".algolink-publish-{field} select").evaluate(
        "s => s.options[s.selectedIndex].textContent"
    )
