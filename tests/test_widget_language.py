"""The language of the notebook's forms, in a real kernel: ``ALGOLINK_LANG``, else JupyterLab's own
language setting (its user settings file under the Jupyter config directory), else the kernel's locale,
else English; the test form's buttons, hints and errors then come from the zh_CN catalog."""

from __future__ import annotations

import json

import pytest

from support import Kernel

DECLARE = """
%%algolink_command scale --inputs "k=number(min=1, max=10, step=1, default=3), name=text(max_length=5), z=vector(length=2)" --outputs "y=number"
def scale(model, inputs):
    return {"y": inputs["k"] * 2}
"""

#: What the kernel reports of a fresh test form of ``scale`` (built as ``%algolink test`` builds it).
SHOW = """
from algolink_jupyter.widgets import for_command as _for_command
_f = _for_command(modelcloud.default_registry, "scale", examples_dir=_examples)
_rows = [r.children[0].value for r in _f.children[1:4]]
_f.input_widgets["z"].value = "[1,"
_f.run()
print(json.dumps({"run": _f.run_button.description, "save": _f.save_button.description,
                  "save_tip": _f.save_button.tooltip, "rows": _rows, "error": _f.error_message,
                  "placeholder": _f.input_widgets["name"].placeholder}))
"""

#: Nothing inherited from the machine that runs the tests chooses the language.
NEUTRAL = {
    "ALGOLINK_LANG": "",
    "JUPYTERLAB_SETTINGS_DIR": "",
    "LANG": "C.UTF-8",
    "LANGUAGE": "",
    "LC_ALL": "",
    "LC_MESSAGES": "",
}


def start(tmp_path, env: dict) -> Kernel:
    config = tmp_path / "jupyter-config"
    config.mkdir(exist_ok=True)
    k = Kernel(
        tmp_path,
        env={
            **NEUTRAL,
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_RUNTIME_DIR": str(tmp_path),
            **env,
        },
    )
    k.run("%load_ext algolink_jupyter")
    k.run(
        f"import algolink_jupyter.widgets.publish, modelcloud, json, os; _examples = {str(tmp_path / 'examples')!r}"
    )
    k.run(DECLARE)
    return k


def form(kernel: Kernel) -> dict:
    return json.loads(kernel.run(SHOW)["stdout"].strip().splitlines()[-1])


def assert_chinese(shown: dict) -> None:
    assert shown["run"] == "运行" and shown["save"] == "保存为示例", shown
    assert shown["save_tip"] == "记录这组输入和输出；导出时会重放它们以验证包"
    k, name, z = shown["rows"]
    assert "1 至 10，步长 1，默认 3" in k, k
    assert "至多 5 个字符" in name and shown["placeholder"] == "至多 5 个字符", name
    assert "2 个数字（JSON）" in z, z
    assert shown["error"].startswith(
        "输入 'z' 不是有效的 JSON（第 1 行第 4 列）：请按 JSON 书写，例如 [0, 0]。"
    ), shown["error"]


def assert_english(shown: dict) -> None:
    assert shown["run"] == "Run" and shown["save"] == "Save as example", shown
    k, name, z = shown["rows"]
    assert "1 to 10, step 1, default 3" in k, k
    assert "at most 5 characters" in name and shown["placeholder"] == "at most 5 characters"
    assert "2 numbers, JSON" in z, z
    assert shown["error"].startswith(
        "Input 'z' is not valid JSON (line 1, column 4): write it as JSON, like [0, 0]."
    )


def write_lab_language(tmp_path, text: str) -> None:
    folder = (
        tmp_path
        / "jupyter-config"
        / "lab"
        / "user-settings"
        / "@jupyterlab"
        / "translation-extension"
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.jupyterlab-settings").write_text(text, encoding="utf-8")


def test_nothing_chosen_means_english(tmp_path):
    k = start(tmp_path, {})
    try:
        assert_english(form(k))
        status = k.run("%algolink status")["stdout"]
        assert "Server: serving at http://127.0.0.1:" in status and "Commands: scale" in status
    finally:
        k.shutdown()


def test_algolink_lang_chooses_chinese(tmp_path):
    k = start(tmp_path, {"ALGOLINK_LANG": "zh_CN"})
    try:
        assert_chinese(form(k))
        # the magics' own lines too
        status = k.run("%algolink status")["stdout"]
        assert "服务器：正在 http://127.0.0.1:" in status and "命令：scale" in status, status
        out = k.run("%algolink test nope", check=False)
        assert "%algolink test：没有命令 'nope'；现有的命令：scale。" in out["stderr"], out
        # English when asked, whatever else says Chinese
        k.run("os.environ['ALGOLINK_LANG'] = 'en'; os.environ['LANG'] = 'zh_CN.UTF-8'")
        assert_english(form(k))
    finally:
        k.shutdown()


def test_the_publish_form_speaks_the_kernel_language_too(tmp_path):
    k = start(
        tmp_path,
        {
            "ALGOLINK_LANG": "zh-CN",
            "ALGOLINK_HUB_URL": "",
            "ALGOLINK_TOKEN": "",
            "ALGOLINK_CONFIG": str(tmp_path / "no-config.json"),
        },
    )
    try:
        k.run("%algolink publish --name scale")
        shown = k.eval(
            "(lambda f: [f.export_button.description, f.publish_button.description, "
            "f.connect_button.description, f.project.description, f.hub_line.value, "
            "f.start('publish'), f.message])(algolink_jupyter.widgets.publish.latest())"
        )
        export, publish, connect, project, hub_line, started, message = shown
        assert (export, publish, connect, project) == ("导出", "上线", "连接（开发模式）", "项目")
        assert "尚未配置 hub：" in hub_line and "no-config.json" in hub_line, hub_line
        assert started is False and message.startswith("尚未配置 hub："), message
        # the name rules, as the hub's Chinese pages say them
        k.run("algolink_jupyter.widgets.publish.latest().name.value = 'my model'")
        error = k.eval("algolink_jupyter.widgets.publish.latest().name_error.value")
        assert "服务名称“my model”包含空格：" in error, error
    finally:
        k.shutdown()


def test_jupyterlab_language_setting_is_followed_and_read_again(tmp_path):
    # as JupyterLab's settings editor writes it: JSON with comments, its locale as zh-CN
    write_lab_language(
        tmp_path,
        '{\n    // Language\n    // Language settings.\n    "locale": "zh-CN", /* the pack */\n'
        '    "stringsPrefix": "!!"\n}\n',
    )
    k = start(tmp_path, {})
    try:
        assert_chinese(form(k))
        # the user switches JupyterLab back to English: the next form follows, no restart
        write_lab_language(tmp_path, '{\n    "locale": "en"\n}\n')
        assert_english(form(k))
        # "default" is JupyterLab's server locale: the kernel's, here Chinese
        write_lab_language(tmp_path, '{\n    "locale": "default"\n}\n')
        k.run("os.environ['LANG'] = 'zh_CN.UTF-8'")
        assert_chinese(form(k))
        # a language we have no catalog for: English
        write_lab_language(tmp_path, '{"locale": "fr_FR"}')
        assert_english(form(k))
    finally:
        k.shutdown()


@pytest.mark.parametrize(
    "tag, expected",
    [("zh-CN", "zh_CN"), ("zh_CN.UTF-8", "zh_CN"), ("en_US", "en"), ("C.UTF-8", None), ("", None)],
)
def test_locale_tags(tag, expected):
    from algolink_jupyter.translation import language_of

    assert language_of(tag) == expected
