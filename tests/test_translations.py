"""The translation catalogs (gettext, ``algolink_jupyter/locale``): every message the templates, the
hub's Python and the JupyterLab extension use is translated into 简体中文, no catalog entry is stale,
placeholders survive, the Chinese uses full-width punctuation and the product's terms; and the pages
render in Chinese through a real hub."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CJK = r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"


def catalog_tool():
    spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "scripts" / "i18n.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def msgid(message) -> str:
    return message.id if isinstance(message.id, str) else message.id[0]


def strings(message) -> list:
    s = message.string
    return list(s) if isinstance(s, (list, tuple)) else [s]


@pytest.fixture(scope="module")
def catalogs():
    tool = catalog_tool()
    used = {(m.context, msgid(m)): m for m in tool.extract_catalog() if m.id}
    po = tool.read(tool.po_path("zh_CN"), "zh_CN")
    have = {(m.context, msgid(m)): m for m in po if m.id}
    return used, have


def test_every_message_in_use_is_translated_and_no_entry_is_stale(catalogs):
    used, have = catalogs
    # extraction sees templates, Python (plain, with a context, plural, the N_ families) and TS
    for sample in [
        (None, "Sign in"),
        ("column", "Online"),
        (None, "{n} minute ago"),
        (None, "There is no user {name}: a hub admin adds users on the users page."),
        (None, "Viewer"),
    ]:
        assert sample in used, sample
    missing = sorted(k for k in used if k not in have)
    assert not missing, (
        f"not in zh_CN.po (python scripts/i18n.py update, then translate): {missing}"
    )
    untranslated = sorted(k for k, m in have.items() if not all(strings(m)) or m.fuzzy)
    assert not untranslated, f"untranslated or fuzzy in zh_CN.po: {untranslated}"
    stale = sorted(k for k in have if k not in used)
    assert not stale, f"in zh_CN.po but used nowhere (python scripts/i18n.py update): {stale}"


def test_translations_keep_placeholders_and_use_chinese_punctuation_and_terms(catalogs):
    _, have = catalogs
    problems = []
    for (_, english), message in have.items():
        wanted = sorted(set(re.findall(r"\{[a-z_0-9]*\}|%\d", english)))
        for text in strings(message):
            if sorted(set(re.findall(r"\{[a-z_0-9]*\}|%\d", text))) != wanted:
                problems.append(f"placeholders differ: {english!r} -> {text!r}")
            # ASCII punctuation next to Chinese (URLs, `code`, f() calls and placeholders aside)
            prose = re.sub(r"https?://\S+|`[^`]*`|\{[^}]*\}|[A-Za-z_.]+\(\)", "", text)
            if re.search(CJK + r" ?[:;,?!()]|[:;,?!()] ?" + CJK, prose):
                problems.append(f"ASCII punctuation in Chinese: {text!r}")
            if re.search(r'"[^"]*' + CJK, text):
                problems.append(f"ASCII quotes around Chinese (use “”): {text!r}")
            if "您" in text or "中心" in text:
                problems.append(f"the catalog says 你 and hub: {text!r}")
            plain = re.sub(r"\{[^}]*\}", "", english).lower()
            for term, chinese in (
                ("group", "分组"),
                ("model service", "模型服务"),
                ("project", "项目"),
                ("take offline", "下线"),
            ):
                if re.search(r"\b" + term, plain) and chinese not in text:
                    problems.append(f"{term!r} is {chinese} in Chinese: {english!r} -> {text!r}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from hub_process import Hub, make_bundle

    h = Hub(tmp_path_factory.mktemp("hub-zh")).start()
    h.ensure_group("zh-demo", "表格模型")
    r = h.register(
        "zh-demo", "表格模型", "echo", make_bundle(tmp_path_factory.mktemp("b") / "echo")
    )
    assert r.status_code == 201, r.text
    yield h
    h.stop()


def visible(html: str) -> str:
    """A page's text as a reader meets it: the text between tags and the attributes that show
    (title, placeholder, aria-label, alt, value of buttons, data-confirm and other messages)."""
    from html import unescape

    html = re.sub(r"(?s)<script.*?</script>|<style.*?</style>", " ", html)
    shown = re.findall(r'(?:title|placeholder|aria-label|alt|data-[a-z-]+)="([^"]*)"', html)
    text = re.sub(r"<[^>]+>", " ", html)
    return unescape(" ".join([text, *shown]))


def test_every_page_renders_in_chinese_through_a_real_hub(catalogs, hub):
    from test_hub_pages import sign_in

    _, have = catalogs
    # English fragments that must not show on a Chinese page: each message's longest literal part
    english = set()
    for (_, text), message in have.items():
        if any(s == text for s in strings(message)):
            continue  # the same in both languages (API, AlgoLink)
        longest = max(re.split(r"\{[^}]*\}|%\d", text), key=len).strip()
        if len(longest) >= 12 and " " in longest:
            english.add(longest)
    s = sign_in(hub, "zh-CN,zh;q=0.9")
    pages = [
        "/projects",
        "/projects/zh-demo",
        "/projects/zh-demo/services/echo",
        "/projects/zh-demo/services/echo/edit",
        "/projects/zh-demo/services/echo/docs",
        "/tokens",
        "/users",
        "/account",
        "/projects/zh-demo/services/nothing-here",
    ]
    for page in pages:
        r = s.get(hub.url + page, timeout=30)
        assert r.status_code in (200, 404), (page, r.status_code)
        assert '<html lang="zh-CN">' in r.text, page
        text = visible(r.text)
        assert re.search(CJK, text), page
        shown = sorted(e for e in english if e in text)
        assert not shown, f"{page} shows English: {shown}"
    assert "分组：表格模型" in visible(s.get(hub.url + "/projects/zh-demo", timeout=30).text)


OLD_PY = """
MESSAGES = {"en": {"sign_in": "Sign in"}, "zh_CN": {"sign_in": "登录"}}
MESSAGES["en"].update({"image_button": "Use this image as {name}"})
MESSAGES["zh_CN"].update({"image_button": "把这张图片用作 {name}"})
"""
OLD_TS = """
const MESSAGES = {
  'copy-image': { en: 'Copy the image of {0} ({1})', zh: '复制 {0} 的图片（{1}）' },
  'cmd-refresh': { en: 'AlgoLink: Refresh', zh: 'AlgoLink：刷新' }
} as const;
"""


def test_port_turns_keys_added_the_old_way_into_catalog_entries(tmp_path):
    """What the integrator runs for a branch that added messages to the old tables: the call sites
    become English messages and the Chinese lands in zh_CN.po, for the pages and the extension."""
    import shutil
    import subprocess
    import sys

    for part in (
        "scripts",
        "algolink_jupyter/hub",
        "algolink_jupyter/client",
        "algolink_jupyter/serverext",
        "algolink_jupyter/widgets",
        "algolink_jupyter/kernel",
        "algolink_jupyter/locale",
        "js/src",
    ):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("vendor"))
    for single in ("magics.py", "translation.py"):
        shutil.copy(ROOT / "algolink_jupyter" / single, tmp_path / "algolink_jupyter" / single)
    page = tmp_path / "algolink_jupyter/hub/handlers/templates/service.html"
    page.write_text(
        page.read_text() + '<button>{{ t("image_button", name=service.name) }}</button>\n'
    )
    panel = tmp_path / "js/src/panel.ts"
    panel.write_text(
        panel.read_text()
        + "\nexport const copyImage = (n: string) => t('copy-image', [n, `${n}.png`]);\n"
    )
    (tmp_path / "old_i18n.py").write_text(OLD_PY)
    (tmp_path / "old_i18n.ts").write_text(OLD_TS)
    r = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "scripts/i18n.py"),
            "port",
            str(tmp_path / "old_i18n.py"),
            "--ts",
            str(tmp_path / "old_i18n.ts"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert '{{ t("Use this image as {name}", name=service.name) }}' in page.read_text()
    ported = panel.read_text()
    assert "trans.__('Copy the image of %1 (%2)', n, `${n}.png`)" in ported
    assert "import { listText, roleLabel, statusLabel, trans } from './i18n';" in ported
    spec = importlib.util.spec_from_file_location("ported_tool", tmp_path / "scripts/i18n.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    po = {msgid(m): strings(m)[0] for m in tool.read(tool.po_path("zh_CN"), "zh_CN") if m.id}
    assert po["Use this image as {name}"] == "把这张图片用作 {name}"
    assert po["Copy the image of %1 (%2)"] == "复制 %1 的图片（%2）"
    assert po["Sign in"] == "登录" and "untranslated: " not in r.stdout


def test_no_message_hides_inside_an_f_string():
    """Babel (on Python 3.11) reads an f-string as one token: a ``tr("...")`` inside
    ``f"<i>{tr('...')}</i>"`` is never extracted, so it would show English in every language. Every
    Python file extraction scans."""
    import ast

    tool = catalog_tool()
    files = [p for folder in tool.HUB_PY + tool.KERNEL_PY for p in folder.rglob("*.py")]
    files += tool.KERNEL_PY_FILES
    names = set(tool.PY_KEYWORDS)
    hidden = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.JoinedStr):
                continue
            for inner in ast.walk(node):
                func = getattr(inner, "func", None) if isinstance(inner, ast.Call) else None
                name = getattr(func, "id", None) or getattr(func, "attr", None)
                if name in names and inner.args and isinstance(inner.args[0], ast.Constant):
                    hidden.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert not hidden, f"a message inside an f-string is never extracted: {hidden}"
