"""The JupyterLab extension in Chinese, in a real JupyterLab driven by Chromium: JupyterLab's own
language pack (jupyterlab-language-pack-zh-CN) chosen in the settings, and the extension's catalog
(``algolink_jupyter/locale/zh_CN/LC_MESSAGES/algolink_jupyter.json``) found through the package's
``jupyterlab.locale`` entry point and used by ``trans.__``.

JupyterLab loads this checkout's built extension (``algolink_jupyter/labextension``, put first on
``JUPYTER_PATH``), so the check holds for the sources under test, not for whatever copy the
environment's share folder has. Screenshot: ``test-artifacts/translations/jupyterlab-zh.png``."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from pathlib import Path

import pytest
import requests
from browser_support import artifacts_dir, jupyter_lab, launch, sync_api

pytestmark = pytest.mark.timeout(420)

REPO = Path(__file__).resolve().parent.parent
BUILT = REPO / "algolink_jupyter" / "labextension"
CATALOG = REPO / "algolink_jupyter" / "locale" / "zh_CN" / "LC_MESSAGES"


def language_pack_installed() -> bool:
    packs = importlib.metadata.entry_points(group="jupyterlab.languagepack")
    return any(ep.name == "zh-CN" or ep.name == "zh_CN" for ep in packs)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    assert (BUILT / "package.json").is_file(), (
        "build the extension first: cd js && npm run build:prod"
    )
    assert language_pack_installed(), "pip install jupyterlab-language-pack-zh-CN (the test extra)"
    from test_translations import catalog_tool

    tool = catalog_tool()
    catalog = CATALOG / "algolink_jupyter.json"
    wanted = tool.jupyterlab_json(tool.read(tool.po_path("zh_CN"), "zh_CN"), "zh_CN")
    assert catalog.is_file() and json.loads(catalog.read_text()) == wanted, (
        "compile the catalogs: make i18n-compile (the package build does it too)"
    )
    root = tmp_path_factory.mktemp("lab-zh")
    home = tmp_path_factory.mktemp("lab-zh-home")
    # this checkout's build first on JupyterLab's extension path
    share = home / "share" / "jupyter"
    (share / "labextensions").mkdir(parents=True)
    (share / "labextensions" / "algolink-jupyter").symlink_to(BUILT)
    # the entry point as pyproject.toml declares it, for an environment installed before it existed
    pythonpath = [str(REPO), str(REPO / "runtime")]
    section = re.search(
        r'^\[project\.entry-points\."jupyterlab\.locale"\]\n((?:\w+ = "[\w.]+"\n)+)',
        (REPO / "pyproject.toml").read_text(),
        re.M,
    )
    assert section, "pyproject.toml declares no jupyterlab.locale entry point"
    locale_entry = dict(re.findall(r'^(\w+) = "([\w.]+)"$', section.group(1), re.M))
    found = {ep.name for ep in importlib.metadata.entry_points(group="jupyterlab.locale")}
    if not set(locale_entry) <= found:
        info = home / "entry" / "algolink_jupyter_catalogs-0.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: algolink-jupyter-catalogs\nVersion: 0.0\n"
        )
        lines = "".join(f"{k} = {v}\n" for k, v in locale_entry.items())
        (info / "entry_points.txt").write_text(f"[jupyterlab.locale]\n{lines}")
        pythonpath.append(str(home / "entry"))
    settings = home / "settings" / "@jupyterlab" / "translation-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps({"locale": "zh_CN"}))
    env = {
        "ALGOLINK_CONFIG": str(home / "no-algolink.json"),
        "JUPYTER_PATH": str(share),
        "PYTHONPATH": os.pathsep.join(pythonpath),
    }
    with jupyter_lab(root, home, env) as lab:
        yield lab


def test_the_server_hands_jupyterlab_the_extensions_chinese_catalog(lab):
    r = requests.get(f"{lab['url']}/lab/api/translations/zh_CN?token={lab['token']}", timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert "jupyterlab" in data, "the zh-CN language pack is not in use"
    ours = data["algolink_jupyter"]
    assert ours[""]["domain"] == "algolink_jupyter" and ours[""]["language"] == "zh-CN"
    assert ours["Open a notebook to see what its kernel serves."] == [
        "打开一个笔记本，查看它的内核提供了什么。"
    ]


def test_the_server_extension_answers_in_the_panels_language(lab):
    api = f"{lab['url']}/algolink/api/hub/services?token={lab['token']}"
    english = requests.get(api, timeout=30).json()
    assert english["configured"] is False
    assert english["message"].startswith("Set ALGOLINK_HUB_URL (the hub's address")
    chinese = requests.get(api + "&lang=zh-CN", timeout=30).json()
    assert chinese["message"].startswith("请在启动 JupyterLab 的环境中设置 ALGOLINK_HUB_URL")
    assert "no-algolink.json" in chinese["message"]


def test_the_panel_speaks_chinese_in_jupyterlab(lab):
    shots = artifacts_dir("translations")
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        errors: list = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(f"{lab['url']}/lab?reset&token={lab['token']}")
            page.locator(".lm-MenuBar-itemLabel", has_text="文件").first.wait_for(timeout=120_000)
            page.click(".jp-SideBar .lm-TabBar-tab[data-id='algolink-panel']")
            panel = page.locator("#algolink-panel")
            try:
                panel.get_by_text("打开一个笔记本，查看它的内核提供了什么。").wait_for()
            finally:
                page.screenshot(path=str(shots / "jupyterlab-zh.png"))
            panel.get_by_text("请在启动 JupyterLab 的环境中设置 ALGOLINK_HUB_URL").wait_for()
            text = panel.inner_text()
            assert "Open a notebook" not in text and "Set ALGOLINK_HUB_URL" not in text, text
            assert "刷新" in text, text
        finally:
            browser.close()
    assert not errors, errors
