"""The publish form (``%algolink publish``) against a real hub process.

The whole flow runs in a real kernel through nbclient, the way a notebook runs it: declare a command,
show an image, open the form with the magic, fill the model card, tick the image, press Publish (the
form's ``publish()`` is the button's action, waited for), and the hub's ``/serve`` answers. The saved
notebook, widget state included, never holds the token. The checks as the user types (bad name, name
taken, no hub, unreachable hub, bad token) drive the form in-process through its traitlets.
"""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from hub_process import Hub, free_port, make_bundle
from nbclient import NotebookClient

from algolink_jupyter.client import HubClient, config_path, hub_settings
from algolink_jupyter.widgets.publish import build_publish_form, curl_line
from modelcloud import Registry
from modelcloud.data_types import text
from support import Kernel

COMMAND = (
    '%%algolink_command shout --inputs "text=text(max_length=100)" --outputs "text=text" '
    '--description "Shout the text"\n'
    "def shout(model, inputs):\n"
    '    return {"text": inputs["text"].upper() + "!"}'
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("publish-hub")).start()
    yield h
    h.stop()


def registry() -> Registry:
    reg = Registry()

    @reg.command("shout", inputs={"text": text()}, outputs={"text": text()})
    def shout(model, inputs):
        return inputs["text"].upper()

    return reg


def test_the_notebook_publishes_through_the_form_and_the_hub_serves_it(hub, tmp_path):
    cells = [
        "%load_ext algolink_jupyter",
        COMMAND,
        "from PIL import Image\n\nImage.new('RGB', (16, 16), (20, 160, 60))",
        "%algolink publish --project widget-test --group demo --name shout",
        "from algolink_jupyter.widgets.publish import latest\n\n"
        "form = latest()\n"
        "form.tagline.value = 'Shouts your text'\n"
        "form.description.value = '# Shout\\nMakes text **loud**.'\n"
        "form.links.value = 'Code | https://example.org/shout'\n"
        "form.gallery_picks[-1][0].value = True\n"
        "print('state:', form.publish())\n"
        "print('message:', form.message)\n"
        "print('api:', form.api_url)\n"
        "print('classes:', form._dom_classes)\n"
        "print('result:', form.result.value)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path),
        "ALGOLINK_HUB_URL": hub.url,
        "ALGOLINK_TOKEN": hub.token,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    assert "state: online" in out, out + hub.output[-3000:]
    assert "algolink-publish-online" in out
    assert f"api: {hub.url}/serve/widget-test/shout/v1/" in out
    assert "curl -X POST -H &quot;Authorization: token $ALGOLINK_TOKEN&quot;" in out or (
        'Authorization: token $ALGOLINK_TOKEN"' in out
    )
    # The form was shown by the magic, as a widget.
    shown = [o for o in nb.cells[3].outputs if o.output_type == "display_data"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0]["data"]

    # The published service answers through the hub.
    r = hub.serve("widget-test/shout/shout", json={"text": "hi"})
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "HI!"}
    service = hub.service("widget-test", "shout")
    assert service["status"] == "online"
    assert service["metadata"]["tagline"] == "Shouts your text"
    assert service["metadata"]["links"] == [{"title": "Code", "url": "https://example.org/shout"}]
    assert service["metadata"]["license"] == "MIT"
    assert len(service["gallery"]) == 1

    # The saved notebook keeps the widgets' state, and never the token.
    path = tmp_path / "published.ipynb"
    nbformat.write(nb, path)
    saved = path.read_text()
    assert "application/vnd.jupyter.widget-state+json" in saved
    assert "Shouts your text" in saved  # the state really is there
    assert hub.token not in saved


def test_a_bad_name_shows_the_rule_and_publish_stays_disabled(hub):
    form = build_publish_form(registry(), HubClient(hub.url, hub.token), name="shout")
    assert form.publish_button.disabled is False, form.where_error.value
    form.name.value = "my model"
    assert "has a space: a name allows no spaces" in form.name_error.value
    assert form.publish_button.disabled is True
    form.name.value = "my/model"
    assert "has '/': a name allows only letters, digits, '_' and '-'" in form.name_error.value
    assert form.publish_button.disabled is True
    assert form.start("publish") is False
    assert form.state == "failed" and "has '/'" in form.status.value
    form.name.value = "my-model_2"
    assert form.name_error.value == ""
    assert form.publish_button.disabled is False
    form.version.value = "1_0"
    assert "no '_'" in form.where_error.value and form.publish_button.disabled


def test_a_taken_name_says_to_pick_the_service(hub, tmp_path):
    hub.ensure_group("taken", "g")
    r = hub.register("taken", "g", "echo", make_bundle(tmp_path / "b"))
    assert r.status_code == 201, r.text
    form = build_publish_form(
        registry(), HubClient(hub.url, hub.token), project="taken", group="g", name="fresh"
    )
    assert form.project.value == "taken" and form.group.value == "g"
    assert form.name.value == "fresh"  # filling the Service list does not rename the model
    assert ("echo", "echo") in form.service.options
    assert form.service.value == "new…"
    form.name.value = "echo"
    assert "The name 'echo' is taken" in form.name_error.value
    assert "pick it under Service" in form.name_error.value
    assert form.publish_button.disabled
    form.service.value = "echo"
    assert form.name.value == "echo" and form.name_error.value == ""
    assert not form.publish_button.disabled


def test_no_hub_configured_says_how_to_configure_one(tmp_path, monkeypatch):
    monkeypatch.delenv("ALGOLINK_HUB_URL", raising=False)
    monkeypatch.delenv("ALGOLINK_TOKEN", raising=False)
    monkeypatch.delenv("ALGOLINK_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    from algolink_jupyter.widgets import publish

    form = publish.for_kernel(None, name="shout")
    assert "No hub is configured: set ALGOLINK_HUB_URL and ALGOLINK_TOKEN" in form.hub_line.value
    assert str(tmp_path / "config" / "algolink" / "config.json") in form.hub_line.value
    assert form.publish_button.disabled
    assert form.start("publish") is False
    assert "No hub is configured" in form.status.value


def test_the_config_file_names_the_hub_and_the_environment_wins(hub, tmp_path, monkeypatch):
    monkeypatch.delenv("ALGOLINK_HUB_URL", raising=False)
    monkeypatch.delenv("ALGOLINK_TOKEN", raising=False)
    monkeypatch.delenv("ALGOLINK_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = config_path()
    assert path == tmp_path / "algolink" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"hub_url": hub.url, "token": hub.token}))
    assert hub_settings()[:2] == (hub.url, hub.token)
    from algolink_jupyter.widgets import publish

    form = publish.for_kernel(None, name="shout")
    assert form.client_ok, form.hub_line.value
    assert hub.url in form.hub_line.value
    monkeypatch.setenv("ALGOLINK_TOKEN", "from-env")
    assert hub_settings()[:2] == (hub.url, "from-env")
    path.write_text("{not json")
    with pytest.raises(Exception, match="is not valid JSON"):
        hub_settings()


def test_an_unreachable_hub_and_a_bad_token_are_sentences(hub):
    down = f"http://127.0.0.1:{free_port()}"
    form = build_publish_form(registry(), HubClient(down, "x"), name="shout")
    assert f"Cannot reach the hub at {down}" in form.hub_line.value
    assert "start it with `algolink hub`" in form.hub_line.value
    assert form.publish_button.disabled
    form = build_publish_form(registry(), HubClient(hub.url, "not-a-token"), name="shout")
    assert f"The hub at {hub.url} refused the token" in form.hub_line.value
    assert "set ALGOLINK_TOKEN" in form.hub_line.value
    assert form.publish_button.disabled


def test_the_preview_renders_markdown_as_the_hub_does_and_curl_lines():
    form = build_publish_form(registry(), None, name="shout", no_hub_reason="No hub.")
    form.description.value = (
        "# Title\n\n**bold** <script>alert(1)</script> [x](javascript:alert(1))"
    )
    assert "<h1>Title</h1>" in form.preview.value
    assert "<strong>bold</strong>" in form.preview.value
    assert "<script>" not in form.preview.value and "javascript:" not in form.preview.value
    form.license.value = "other…"
    assert form.license_other.layout.display == ""
    form.license_other.value = "CC-BY-4.0"
    form.links.value = "Paper | https://arxiv.org/abs/1\nnot a link"
    assert "Link line 2 ('not a link') has no http(s) URL" in form.where_error.value
    form.links.value = "Paper | https://arxiv.org/abs/1"
    assert form.metadata()["license"] == "CC-BY-4.0"
    assert form.metadata()["links"] == [{"title": "Paper", "url": "https://arxiv.org/abs/1"}]
    spec = {"name": "shout", "inputs": [{"name": "text", "type": "text"}]}
    assert curl_line("http://h/serve/p/s/v1/", spec) == (
        'curl -X POST -H "Authorization: token $ALGOLINK_TOKEN" -H \'Content-Type: '
        'application/json\' -d \'{"text": "hello"}\' http://h/serve/p/s/v1/shout'
    )
    spec = {"name": "classify", "inputs": [{"name": "photo", "type": "image"}]}
    assert "-F photo=@photo.png http://h/serve/p/s/v1/classify" in curl_line(
        "http://h/serve/p/s/v1", spec
    )


def test_export_then_a_verify_that_names_the_example_that_differed(tmp_path, monkeypatch):
    monkeypatch.delenv("ALGOLINK_HUB_URL", raising=False)
    monkeypatch.delenv("ALGOLINK_TOKEN", raising=False)
    k = Kernel(
        tmp_path,
        env={"JUPYTER_RUNTIME_DIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")},
    )
    try:
        k.run("%load_ext algolink_jupyter")
        k.run(COMMAND)
        k.run(
            "%algolink publish --name shout --bundle out/shout\n"
            "from algolink_jupyter.widgets.publish import latest\n"
            "form = latest()"
        )
        assert "No hub is configured" in k.eval("form.hub_line.value")
        k.run("form.export_button.click()\nform.wait(300)")
        assert k.eval("[form.state, form.message]") == [
            "exported",
            f"Exported to {tmp_path / 'out' / 'shout'}.",
        ]
        assert (tmp_path / "out" / "shout" / "cloud_model.py").is_file()
        assert "Exporting the notebook to out/shout" in k.eval("form.log_box.value")
        # A recorded example the bundle will not reproduce: the notebook said "HI?".
        k.run(
            "from algolink_jupyter import examples\n"
            "examples.save('shout', {'text': 'hi'}, {'text': 'HI?'})"
        )
        k.run("form.verify_button.click()\nform.wait(600)")
        state, message = k.eval("[form.state, form.message]")
        assert state == "failed", message
        assert message.startswith("Verification failed: 1 of ")
        assert "examples/shout/" in message
        assert 'the bundle\'s output \'text\' is "HI!", the notebook answered "HI?"' in message
        assert message.endswith("or record that example again.")
        assert "algolink-error" in k.eval("form.status.value")
        assert k.eval("form.progress.bar_style") == "danger"
        assert not k.eval("form.verify_button.disabled")  # ready for another try
    finally:
        k.shutdown()


def test_a_service_that_fails_to_start_says_so_with_the_log_tail(hub, tmp_path):
    """The setup refuses to run on a real port (verification runs the bundle on port 0, the hub on
    the service's own): the bundle verifies, then fails on the hub, and the form says so."""
    k = Kernel(
        tmp_path,
        env={
            "JUPYTER_RUNTIME_DIR": str(tmp_path),
            "ALGOLINK_HUB_URL": hub.url,
            "ALGOLINK_TOKEN": hub.token,
        },
    )
    try:
        k.run("%load_ext algolink_jupyter")
        k.run(
            "%%algolink_setup\n"
            "def setup():\n"
            "    import os\n"
            "    if os.environ.get('ALGOLINK_PORT', '0') != '0':\n"
            "        raise RuntimeError('the weights server is unreachable from here')\n"
            "    return 'ok'"
        )
        k.run(COMMAND)
        k.run(
            "%algolink publish --project failing --group g --name shout\n"
            "from algolink_jupyter.widgets.publish import latest\n"
            "form = latest()"
        )
        k.run("form.publish_button.click()\nform.wait(600)", timeout=660)
        state, message, log = k.eval("[form.state, form.message, form.log_box.value]")
        assert state == "failed", message
        assert message.startswith("The build or start of failing/shout version 1 failed (")
        assert message.endswith("fix what it names and press Publish again.")
        assert "the weights server is unreachable from here" in message
        assert "the weights server is unreachable from here" in log  # the streamed run log
        assert "same answer as the notebook" in log  # it did verify first
        assert "algolink-publish-failed" in k.eval("list(form._dom_classes)")
        assert hub.version("failing", "shout", 1)["status"] == "failed"
    finally:
        k.shutdown()


@pytest.mark.parametrize("bad", ["my model", "my/model", "x" * 65, ""])
def test_the_form_checks_names_with_the_hubs_own_sentences(hub, bad):
    from algolink_jupyter.widgets.publish import name_problem

    r = hub.post("/api/v1/projects", json={"name": bad, "type": "model", "version": "1.0"})
    assert r.status_code == 400
    assert r.json()["error"] == name_problem("project", bad)


def test_connect_serves_the_live_kernel_on_the_hub_in_development_mode(hub, tmp_path):
    """Connect (development) starts the kernel's server when it is stopped and registers it under the
    project, group and name of the form; the hub's /serve then answers through the kernel."""
    hub.ensure_group("devconn", "g")
    r = hub.register("devconn", "g", "bundled", make_bundle(tmp_path / "b"))
    assert r.status_code == 201, r.text
    k = Kernel(
        tmp_path,
        env={
            "JUPYTER_RUNTIME_DIR": str(tmp_path),
            "ALGOLINK_HUB_URL": hub.url,
            "ALGOLINK_TOKEN": hub.token,
            "ALGOLINK_CONFIG": str(tmp_path / "no-config.json"),
        },
    )
    try:
        k.run("%load_ext algolink_jupyter\nimport algolink_jupyter")
        k.run(COMMAND)
        k.run("%algolink stop")
        assert k.eval("algolink_jupyter.serving_info()") is None
        k.run(
            "%algolink publish --project devconn --group nb --name live\n"
            "from algolink_jupyter.widgets.publish import latest\n"
            "form = latest()"
        )
        assert k.eval("form.connect_button.description") == "Connect (development)"
        assert "algolink-publish-connect-button" in k.eval("list(form.connect_button._dom_classes)")
        k.run("form.connect_button.click()\nform.wait(120)", timeout=180)
        state, message, result, log, classes = k.eval(
            "[form.state, form.message, form.result.value, form.log_box.value, "
            "list(form._dom_classes)]"
        )
        assert state == "connected", message + log
        assert message.startswith("Connected devconn/live in development mode:")
        assert "nothing is published" in message
        assert "algolink-publish-connected" in classes
        assert "algolink-publish-online" not in classes
        info = k.eval("algolink_jupyter.serving_info()")
        assert info is not None  # the button started the kernel's server
        assert f"Started serving this kernel's model at {info['url']}." in log
        assert "Created group nb in devconn." in log
        assert f"{hub.url}/projects/devconn/services/live" in result
        assert f"{hub.url}/serve/devconn/live/&lt;command&gt;" in result
        assert "Development mode" in result
        assert info["token"] not in result + log + message

        svc = hub.service("devconn", "live")
        assert svc["mode"] == "development" and svc["dev_url"] == info["url"]
        assert svc["group"] == "nb" and svc["reachable"] is True
        r = hub.serve("devconn/live/shout", json={"text": "hi"})
        assert r.status_code == 200, r.text
        assert r.json() == {"text": "HI!"}
        # Live: the cell edited in the notebook answers on the hub at once.
        k.run(COMMAND.replace('"!"', '"?"'))
        assert hub.serve("devconn/live/shout", json={"text": "hi"}).json() == {"text": "HI?"}

        # A name taken by a published (bundle) service: one sentence, nothing replaced.
        k.run("form.name.value = 'bundled'\nform.connect_button.click()\nform.wait(120)")
        state, message = k.eval("[form.state, form.message]")
        assert state == "failed", message
        assert message == (
            "The name 'bundled' is taken: devconn/bundled on the hub is a published service "
            "(from a bundle), not a development one, so type another name under Name and press "
            "Connect (development) again."
        )
        assert "algolink-publish-connected" not in k.eval("list(form._dom_classes)")
        assert hub.service("devconn", "bundled").get("mode") != "development"

        # A token the hub refuses.
        k.run(
            "from algolink_jupyter.client import HubClient\n"
            f"form.client = HubClient({hub.url!r}, 'not-a-token')\n"
            "form.name.value = 'live'\nform.connect_button.click()\nform.wait(120)"
        )
        state, message = k.eval("[form.state, form.message]")
        assert state == "failed" and f"The hub at {hub.url} refused the token" in message
    finally:
        k.shutdown()


def test_connect_without_a_hub_says_how_to_configure_one():
    form = build_publish_form(registry(), None, name="shout", no_hub_reason="No hub is configured.")
    assert form.connect_button.disabled
    assert form.start("connect") is False
    assert form.state == "failed" and "No hub is configured" in form.status.value
