"""The JupyterLab extension in a real JupyterLab, driven by Playwright on Debian's Chromium (headless,
--no-sandbox), with a real hub named in the environment JupyterLab starts from and the token in the
AlgoLink config file (as ``algolink login`` keeps it).

A notebook defines two commands; the palette's "AlgoLink: Serve this notebook" serves them; the status bar
says "AlgoLink: 2 commands"; the AlgoLink panel lists them. Its "Copy export line" puts
``export JUPYTER_TOKEN=<Jupyter's token>`` on the clipboard (the token never shows in the panel), and each
"Copy curl" line, taken from the page as shown, runs for real in bash after that export line and gets the
command's answer through Jupyter: one with the example recorded beside the notebook as its body, one with
a sample PNG for its image input. The hub section lists the hub's service with its status and a
link to its page; "AlgoLink: Publish this notebook" adds and runs a ``%algolink publish`` cell.

Signed in as another user (the config file rewritten, as ``algolink login`` does, then Refresh): a
viewer sees their name, the token's limit and one sentence instead of any publish action (the palette's
Publish command is disabled too); a developer sees their name, the project they may publish to and a
Publish button whose form says the same; without a token the panel says to run ``algolink login``.
Screenshots go to ``test-artifacts/labextension/`` (or ``$ALGOLINK_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest
from browser_support import artifacts_dir, jupyter_lab, launch, sync_api
from hub_process import Hub, make_bundle

from algolink_jupyter.kernel import announce

pytestmark = pytest.mark.timeout(420)


CELLS = [
    "%load_ext algolink_jupyter",
    '%%algolink_command shout --inputs "words=text" --outputs "loud=text"\n'
    "def shout(model, inputs):\n"
    '    return {"loud": inputs["words"].upper() + "!"}',
    '%%algolink_command size --inputs "photo=image(channels=1, width=20, height=12)" '
    '--outputs "size=text"\n'
    "def size(model, inputs):\n"
    '    photo = inputs["photo"]\n'
    '    return {"size": f"{photo.size[0]}x{photo.size[1]} {photo.getextrema()}"}',
]
#: An example recorded beside the notebook (as the test form's "Save as example" writes it).
EXAMPLE = {"command": "shout", "inputs": {"words": "recorded"}, "outputs": {"loud": "RECORDED!"}}


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir("labextension")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-lab")).start()
    h.ensure_group("lab-demo", "vision")
    r = h.register("lab-demo", "vision", "echo", make_bundle(tmp_path_factory.mktemp("b") / "echo"))
    assert r.status_code == 201, r.text
    yield h
    h.stop()


def sign_in_as(lab, hub, token) -> None:
    """What ``algolink login`` leaves behind: the hub's URL and a user's token in the config file
    JupyterLab (and its kernels) read (no token: signed out)."""
    config = {"hub_url": hub.url, **({"token": token} if token else {})}
    lab["config"].write_text(json.dumps(config))


@pytest.fixture(scope="module")
def lab(tmp_path_factory, hub):
    """``jupyter lab`` on a free port, with the hub's URL and token in its environment."""
    root = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("lab-home")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(root / "demo.ipynb"))
    (root / "algolink_examples" / "shout").mkdir(parents=True)
    (root / "algolink_examples" / "shout" / "001.json").write_text(json.dumps(EXAMPLE))
    config = home / "algolink.json"
    config.write_text(json.dumps({"hub_url": hub.url, "token": hub.token}))
    env = {"ALGOLINK_HUB_URL": hub.url, "ALGOLINK_CONFIG": str(config)}
    with jupyter_lab(root, home, env) as lab:
        yield {**lab, "config": config}


def run_palette(page, label: str) -> None:
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#modal-command-palette input")
    palette.fill(label)
    page.locator("#modal-command-palette .lm-CommandPalette-item", has_text=label).first.click()


def clipboard(page) -> str:
    """What the page put on the system clipboard."""
    return page.evaluate("() => navigator.clipboard.readText()")


def test_panel_status_bar_and_commands_in_jupyterlab(lab, hub, artifacts):
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab["url"])
        page = context.new_page()
        page.set_default_timeout(60_000)
        errors: list = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(f"{lab['url']}/lab/tree/demo.ipynb?reset&token={lab['token']}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
            )

            # The panel is in the left sidebar; before serving it says how to serve.
            page.click(".jp-SideBar .lm-TabBar-tab[data-id='algolink-panel']")
            kernel_section = page.locator("#algolink-panel [data-section='kernel']")
            kernel_section.get_by_text("serves no command yet").wait_for()
            kernel_section.locator("button.algolink-serve").wait_for()

            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt')]"
                ".every(e => /\\[\\d+\\]/.test(e.textContent))",
                timeout=120_000,
            )
            run_palette(page, "AlgoLink: Serve this notebook")

            page.locator(".Toastify__toast", has_text="Serving 2 commands (shout, size)").wait_for()
            status = page.locator("#algolink-status")
            status.get_by_text("AlgoLink: 2 commands").wait_for()
            assert status.get_attribute("data-count") == "2"

            # How to set $JUPYTER_TOKEN: a button that copies the export line, the token never shown.
            curl_section = page.locator("#algolink-panel [data-section='curl']")
            curl_section.locator(".algolink-curl-auth[data-mode='token']").wait_for()
            curl_section.locator("button.algolink-copy-export").click()
            curl_section.get_by_text("Copied: paste it into your terminal").wait_for()
            export = clipboard(page)
            assert export == f"export JUPYTER_TOKEN={lab['token']}"

            lines = {}
            for name in ("shout", "size"):
                command = kernel_section.locator(f".algolink-command[data-command='{name}']")
                command.locator("button.algolink-copy-curl").click()
                command.locator(".algolink-curl").wait_for()
                lines[name] = command.locator(".algolink-curl").text_content()
                assert clipboard(page) == lines[name]  # what was copied is what is shown
            shout = kernel_section.locator(".algolink-command[data-command='shout']")
            body_notes = kernel_section.locator(".algolink-curl-body").all_text_contents()
            assert body_notes == [
                "Body: the recorded example algolink_examples/shout/001.json",
                "Body: a sample made from the inputs' types (save an example from the test form"
                " to use it here)",
            ]
            # It stays there through the panel's next refresh (every 5 s) and a manual one.
            page.wait_for_timeout(5500)
            page.click("#algolink-panel button.algolink-refresh")
            page.wait_for_timeout(500)
            assert shout.locator(".algolink-curl").text_content() == lines["shout"]
            kernel_id = page.evaluate(
                "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id"
            )
            panel_html = page.locator("#algolink-panel").evaluate("e => e.outerHTML")
            assert lab["token"] not in panel_html
            for name, line in lines.items():
                assert f"/algolink/kernels/{kernel_id}/{name}" in line
                assert "$JUPYTER_TOKEN" in line and lab["token"] not in line
            assert "data:image/png;base64," in lines["size"] and " -F " not in lines["size"]
            page.screenshot(path=str(artifacts / "01-panel-curl-lines.png"))
            # The lines work as given: in bash, after the export line, through Jupyter.
            env = {k: v for k, v in os.environ.items() if k != "JUPYTER_TOKEN"}
            answers = {}
            for name, line in lines.items():
                run = subprocess.run(
                    ["bash", "-c", f"{export}\n{line} -sS --max-time 60 -w '\\n%{{http_code}}'"],
                    capture_output=True,
                    text=True,
                    timeout=90,
                    env=env,
                )
                assert run.returncode == 0, run.stderr
                body, code = run.stdout.rsplit("\n", 1)
                assert code == "200", run.stdout
                answers[name] = json.loads(body)
            assert answers == {"shout": {"loud": "RECORDED!"}, "size": {"size": "20x12 (255, 255)"}}

            # The hub's service, its status and its page.
            service = page.locator(
                "#algolink-panel [data-section='hub']"
                " .algolink-service[data-project='lab-demo'][data-service='echo']"
            )
            service.wait_for()
            assert service.get_attribute("data-status") == "registered"
            href = service.locator("a.algolink-service-name").get_attribute("href")
            assert href == f"{hub.url}/projects/lab-demo/services/echo"
            # Neither the hub's token nor the kernel server's own token reaches the page.
            info = announce.read(kernel_id, lab["runtime"])
            assert info and info["token"]
            assert hub.token not in page.content() and info["token"] not in page.content()
            page.screenshot(path=str(artifacts / "02-panel-serving.png"))

            # Publish: a `%algolink publish` cell at the end, run.
            cells_before = page.evaluate(
                "() => window.jupyterapp.shell.currentWidget.content.widgets.length"
            )
            run_palette(page, "AlgoLink: Publish this notebook")
            page.wait_for_function(
                f"() => window.jupyterapp.shell.currentWidget.content.widgets.length === "
                f"{cells_before + 1}"
            )
            last = page.evaluate(
                "() => { const w = window.jupyterapp.shell.currentWidget.content.widgets;"
                " return w[w.length - 1].model.sharedModel.getSource(); }"
            )
            assert last == "%algolink publish"
            page.wait_for_function(
                "() => { const w = window.jupyterapp.shell.currentWidget.content.widgets;"
                " return w[w.length - 1].model.executionCount !== null; }",
                timeout=120_000,
            )
            page.screenshot(path=str(artifacts / "03-publish-cell.png"))
            assert not [e for e in errors if "algolink" in e.lower()], errors
        except Exception:
            page.screenshot(path=str(artifacts / "failure.png"))
            print(lab["log"].read_text()[-5000:])
            raise
        finally:
            browser.close()


def test_the_panel_shows_who_is_signed_in_and_only_what_they_may_do(lab, hub, artifacts):
    viewer = hub.add_user("vera", {"lab-demo": "viewer"}, token_name="lab", project="lab-demo")
    developer = hub.add_user("dana", {"lab-demo": "developer"})
    r = hub.api("PATCH", "/api/v1/users/dana", json={"display_name": "Dana Dev"})
    assert r.status_code == 200, r.text
    r = hub.api("PATCH", "/api/v1/users/vera", json={"display_name": "Vera Viewer"})
    assert r.status_code == 200, r.text
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        panel = page.locator("#algolink-panel")
        hub_section = panel.locator("[data-section='hub']")
        publish_enabled = "() => window.jupyterapp.commands.isEnabled('algolink:publish')"
        try:
            sign_in_as(lab, hub, viewer)
            page.goto(f"{lab['url']}/lab/tree/demo.ipynb?reset&token={lab['token']}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            )
            page.click(".jp-SideBar .lm-TabBar-tab[data-id='algolink-panel']")

            # A viewer: who, the token's limit, and why there is nothing to publish with.
            user = hub_section.locator(".algolink-user[data-user='vera']")
            user.wait_for()
            assert user.locator(".algolink-signed-in").inner_text() == (
                f"Signed in to {hub.url} as Vera Viewer (vera)"
            )
            assert user.locator(".algolink-token").inner_text() == (
                "Token lab: limited to the project lab-demo."
            )
            assert hub_section.locator(".algolink-cannot-publish").inner_text() == (
                "You are a viewer of lab-demo: you may call the services but not publish. To "
                "publish, ask a project owner to make you a developer."
            )
            assert hub_section.locator("button.algolink-publish-notebook").count() == 0
            service = hub_section.locator(".algolink-service[data-service='echo']")
            assert service.get_attribute("data-role") == "viewer"
            assert page.evaluate(publish_enabled) is False
            panel.screenshot(path=str(artifacts / "04-sidebar-viewer.png"))

            # Signed in as a developer (`algolink login` again), seen at the next refresh.
            sign_in_as(lab, hub, developer)
            panel.locator("button.algolink-refresh").click()
            user = hub_section.locator(".algolink-user[data-user='dana']")
            user.wait_for()
            assert user.locator(".algolink-signed-in").inner_text() == (
                f"Signed in to {hub.url} as Dana Dev (dana)"
            )
            assert user.locator(".algolink-token").count() == 0  # a token of all her say
            assert hub_section.locator(".algolink-publish-where").inner_text() == (
                "You may publish to lab-demo, a new project of your own."
            )
            assert hub_section.locator(".algolink-cannot-publish").count() == 0
            assert service.get_attribute("data-role") == "developer"
            assert page.evaluate(publish_enabled) is True
            panel.screenshot(path=str(artifacts / "05-sidebar-developer.png"))
            # Its Publish button adds the publish cell, whose form says the same.
            hub_section.locator("button.algolink-publish-notebook").click()
            signed_in = page.locator(".algolink-publish-signed-in").last
            signed_in.wait_for(timeout=120_000)
            assert signed_in.inner_text() == f"Signed in to {hub.url} as Dana Dev (dana)."
            page.screenshot(path=str(artifacts / "06-publish-form-developer.png"))

            # Signed out: how to sign in.
            sign_in_as(lab, hub, None)
            panel.locator("button.algolink-refresh").click()
            out = hub_section.locator(".algolink-user[data-signed-in='false']")
            out.wait_for()
            assert out.inner_text() == (
                f"Not signed in to {hub.url}: run `algolink login --hub {hub.url}` in a terminal, "
                "then press Refresh."
            )
            assert page.evaluate(publish_enabled) is False
        except Exception:
            page.screenshot(path=str(artifacts / "failure-signed-in.png"))
            print(lab["log"].read_text()[-5000:])
            raise
        finally:
            sign_in_as(lab, hub, hub.token)
            browser.close()
