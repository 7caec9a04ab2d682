"""A group called 表格模型 made and renamed on the project page in Chromium, in Chinese: the form's
check as you type takes letters of any language and refuses a space, with the Chinese rule."""

from __future__ import annotations

import pytest
from browser_support import artifacts_dir, signed_in_page
from hub_process import Hub

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-unicode-browser")).start()
    h.ensure_group("tables", "plain")
    yield h
    h.stop()


def test_a_chinese_group_name_in_the_project_page(hub, browser):
    context, page = signed_in_page(browser, hub, "/projects/tables", locale="zh-CN")
    try:
        page.fill("#g-name", "表格 模型")
        assert page.eval_on_selector("#g-name", "e => e.validity.valid") is False
        assert "任意语言的文字" in page.eval_on_selector("#g-name", "e => e.validationMessage")
        page.fill("#g-name", "表格模型")
        assert page.eval_on_selector("#g-name", "e => e.validity.valid") is True
        page.click("#new-group button[type=submit]")
        page.wait_for_url("**/projects/tables")
        page.get_by_role("heading", name="分组：表格模型").wait_for()
        rename = page.locator("form.rename-group", has=page.locator("input[value='表格模型']"))
        rename.locator("input[name=name]").fill("表格模型-二")
        rename.locator("button[type=submit]").click()
        page.get_by_role("heading", name="分组：表格模型-二").wait_for()
        page.screenshot(path=str(artifacts_dir("browser") / "group-unicode-zh.png"), full_page=True)
        names = [g["name"] for g in hub.get("/api/v1/projects/tables/groups").json()]
        assert sorted(names) == ["plain", "表格模型-二"]
    finally:
        context.close()
