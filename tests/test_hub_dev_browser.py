"""Development mode in a real browser (Playwright driving Debian's Chromium, headless): a running
``python cloud_model.py`` is connected from the project page's form, the service page shows the
development badge in English and 简体中文, "try it" runs the live server, and once the server stops the
page says it is not answering. Screenshots go to ``test-artifacts/browser/``."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import artifacts_dir, launch, signed_in_page, sync_api
from hub_process import Hub

from support import start_script

pytestmark = pytest.mark.timeout(300)


MODEL = """
import modelcloud
from modelcloud.data_types import text


@modelcloud.command("shout", inputs={"text": text()}, outputs={"text": text()})
def shout(model, inputs):
    return {"text": inputs["text"].upper() + "!"}


if __name__ == "__main__":
    modelcloud.run()
"""


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir("browser")


def test_a_development_service_in_the_browser(tmp_path, artifacts):
    hub = Hub(tmp_path / "hub").start()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "cloud_model.py").write_text(MODEL)
    server = start_script(tmp_path / "model" / "cloud_model.py")
    try:
        hub.ensure_group("live", "mine")
        with sync_api.sync_playwright() as p:
            browser = launch(p)
            context, page = signed_in_page(browser, hub)

            # Connect from the project page: a URL that answers nothing is refused with a sentence.
            page.goto(hub.url + "/projects/live")
            page.fill("#d-name", "shouter")
            page.fill("#d-url", "http://127.0.0.1:9")
            page.click("#dev-form button[type=submit]")
            assert "is not answering" in page.inner_text("body")
            page.fill("#d-name", "shouter")
            page.fill("#d-url", server.url)
            page.click("#dev-form button[type=submit]")
            page.wait_for_url("**/projects/live/services/shouter")

            assert page.is_visible("#dev-badge")
            assert page.inner_text("#dev-badge") == "Development mode"
            assert page.inner_text("#status") == "Development"
            assert page.inner_text("#dev-url") == server.url
            assert page.locator("#publish").count() == 0
            # No versions and no build log: nothing is built or published for it.
            assert page.locator("#versions").count() == 0 and page.locator("#log").count() == 0
            assert page.locator("#dev-unreachable").count() == 0
            assert f"{hub.url}/serve/live/shouter/" in page.inner_text("#api-panel")
            page.fill("#try-shout-text", "hello")
            page.click("#try form.try-form button[type=submit]")
            page.wait_for_selector("#try .try-output .value")
            assert page.inner_text("#try .try-output .value") == "HELLO!"
            page.screenshot(path=str(artifacts / "dev-01-service.png"), full_page=True)
            page.goto(hub.url + "/projects/live")  # the project's list marks it too
            assert page.inner_text("#groups .dev-badge") == "Development mode"
            page.goto(hub.url + "/projects/live/services/shouter")

            page.click("a.lang-switch[hreflang=zh-CN]")
            page.wait_for_url("**/projects/live/services/shouter")
            assert page.inner_text("#dev-badge") == "开发模式"
            assert page.inner_text("#status") == "开发中"

            # The server goes away: the page still loads and says so, in the page's language.
            server.stop()
            page.reload()
            assert page.is_visible("#dev-unreachable")
            assert f"位于 {server.url} 的开发服务器没有应答" in page.inner_text("#dev-unreachable")
            page.click("a.lang-switch[hreflang=en]")
            page.wait_for_url("**/projects/live/services/shouter")
            assert "is not answering" in page.inner_text("#dev-unreachable")
            page.fill("#try-shout-text", "again")
            page.click("#try form.try-form button[type=submit]")
            page.wait_for_selector("#try .try-output.error")
            assert "is not answering" in page.inner_text("#try .try-output.error")
            page.screenshot(path=str(artifacts / "dev-02-unreachable.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
        hub.stop()
