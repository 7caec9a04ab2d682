"""The service page's setup options in a real browser (Playwright driving Debian's Chromium): the
declared options shown with their rules, a value set, a checkpoint uploaded through the streaming
route with its progress bar, the new version published and answering with the uploaded weights; a
wrong extension and a value out of range refused with a sentence; the card in 简体中文 too.
Screenshots go to ``test-artifacts/browser/``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_support import artifacts_dir, signed_in_page, sync_api
from hub_process import Hub, wait_for
from test_hub_options import MB, make_checkpoint, make_options_bundle, sha256_of

pytestmark = pytest.mark.timeout(300)


expect = sync_api.expect


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir("browser")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-options-browser")).start()
    bundle = make_options_bundle(tmp_path_factory.mktemp("options-bundle"))
    h.ensure_group("web", "g")
    r = h.register("web", "g", "svc", bundle)
    assert r.status_code == 201, r.text
    wait_for(lambda: h.version("web", "svc", 1)["manifest"] is not None, 240, 0.2, "the manifest")
    yield h
    h.stop()


def signed_in(hub, browser, locale: str = "en-US"):
    return signed_in_page(browser, hub, locale=locale, height=1000)


def test_setting_an_option_and_uploading_a_file_in_the_browser(hub, browser, artifacts, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "browser.pt", [1.25, 2.5], 6 * MB)
    wrong = make_checkpoint(tmp_path / "browser.pkl", [1.0], 1000)
    context, page = signed_in(hub, browser)
    page.goto(hub.url + "/projects/web/services/svc")
    card = page.locator("#options")
    card.wait_for()
    text = card.inner_text()
    assert "Setup options" in text and "checkpoint" in text and "scale" in text
    assert "The weights to load" in text and "Multiplies every weight" in text
    assert "min=0" in text and "max=10" in text and ".pt" in text
    page.screenshot(path=str(artifacts / "options-01-card.png"), full_page=True)

    # A value out of range: refused with a sentence naming the option; no version made.
    page.fill("#opt-scale", "11")
    page.click("#options-save")
    result = page.locator("#options-result.error")
    result.wait_for()
    assert "'scale'" in result.inner_text() and "at most 10" in result.inner_text()
    # A file with the wrong extension: refused before any byte is sent.
    page.fill("#opt-scale", "4")
    page.set_input_files("#opt-checkpoint", str(wrong))
    page.click("#options-save")
    expect(page.locator("#options-result")).to_contain_text(".pkl")
    assert "'checkpoint'" in page.inner_text("#options-result")
    assert len(hub.service("web", "svc")["versions"]) == 1

    # The real checkpoint, streamed with a progress bar, published at once.
    page.set_input_files("#opt-checkpoint", str(checkpoint))
    page.check("#options-publish")
    page.click("#options-save")
    expect(page.locator("#options-result")).to_contain_text("Version 2", timeout=60_000)
    assert page.eval_on_selector("#options progress", "p => p.value") == 100
    page.screenshot(path=str(artifacts / "options-02-saved.png"), full_page=True)
    values = hub.version("web", "svc", 2)["options"]
    assert values == {
        "scale": 4,
        "checkpoint": {"file": sha256_of(checkpoint), "filename": "browser.pt"},
    }
    hub.wait_version("web", "svc", 2, timeout=180)
    got = json.loads(hub.serve("web/svc/predict", json={"x": 1}).json()["answer"])
    assert got["weights"] == [1.25, 2.5] and got["scale"] == 4 and got["name"] == "browser.pt"

    # After the reload the card shows the version's values.
    expect(page.locator("#options .current-file")).to_be_visible()
    assert "browser.pt" in page.inner_text("#options .current-file")
    assert page.input_value("#opt-scale") == "4"
    context.close()


def test_the_options_card_in_chinese(hub, browser, artifacts, tmp_path):
    context, page = signed_in(hub, browser, locale="zh-CN")
    page.goto(hub.url + "/projects/web/services/svc")
    text = page.inner_text("#options")
    assert "设置项" in text and "保存为新版本" in text and "默认值" in text
    page.fill("#opt-scale", "")
    page.click("#options-save")
    expect(page.locator("#options-result")).to_contain_text("没有可保存的内容")
    # A refusal is a sentence in the page's language that names the option.
    page.fill("#opt-scale", "11")
    page.click("#options-save")
    expect(page.locator("#options-result")).to_contain_text("设置项 'scale' 的取值不符合规则")
    wrong = tmp_path / "w.pkl"
    wrong.write_bytes(b"x")
    page.fill("#opt-scale", "")
    page.set_input_files("#opt-checkpoint", str(wrong))
    page.click("#options-save")
    expect(page.locator("#options-result")).to_contain_text("只接受扩展名为 .pt 的文件")
    page.screenshot(path=str(artifacts / "options-03-zh.png"), full_page=True)
    context.close()
