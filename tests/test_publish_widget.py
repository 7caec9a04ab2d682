"""The publish form (``%algolink publish``) against a real hub process.

The whole flow runs in a real kernel through nbclient, the way a notebook runs it: declare a command,
show an image, open the form with the magic, fill the model card, tick the image, press Publish (the
form's ``publish()`` is the button's action, waited for), and the hub's ``/serve`` answers. The saved
notebook, widget state included, never holds the token. The checks as the user types (bad name, name
taken, no hub, unreachable hub, bad token) drive the form in-process through its traitlets.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import time

import nbformat
import pytest
from hub_process import Hub, free_port, make_bundle
from nbclient import NotebookClient

from algolink_jupyter.client import HubClient, config_path, hub_settings
from algolink_jupyter.widgets import curl
from algolink_jupyter.widgets.publish import build_publish_form
from algolink_jupyter.widgets.publishing import taken_sentence
from modelcloud import Registry
from modelcloud.data_types import any as any_type
from modelcloud.data_types import file, image, segmentation, text
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


#: A command whose recorded example is over 4 KB (a noisy photo): its curl line posts a file.
SIZE = (
    '%%algolink_command size --inputs "photo=image" --outputs "width=number, height=number"\n'
    "def size(model, inputs):\n"
    '    return {"width": inputs["photo"].width, "height": inputs["photo"].height}'
)
#: A text the shell would mangle if the curl line were not quoted right.
TRICKY = 'it\'s "loud" $HOME `id` \\n'
RECORD = (
    "import base64, io\n"
    "import numpy as np\n"
    "from algolink_jupyter import examples\n"
    "buf = io.BytesIO()\n"
    "noise = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)\n"
    "Image.fromarray(noise).save(buf, format='PNG')\n"
    "photo = 'data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode()\n"
    "examples.save('size', {'photo': photo}, {'width': 48, 'height': 40})\n"
    f"examples.save('shout', {{'text': {TRICKY!r}}}, {{'text': {TRICKY.upper() + '!'!r}}})"
)
SHOW = (
    "print('state:', {state})\n"
    "print('message:', form.message)\n"
    "print('api:', form.api_url)\n"
    "print('classes:', form._dom_classes)\n"
    "print('lists:', json.dumps([form.project.value, form.group.value, form.service.value, "
    "[v for _l, v in form.service.options]]))\n"
    "print('result:', form.result.value)"
)


def printed(cell) -> dict:
    """``{label: text}`` of the ``label: text`` lines a cell printed."""
    out = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


@pytest.fixture(scope="module")
def notebook(hub, tmp_path_factory):
    """The notebook as a user runs it: two commands, a shown image, recorded examples, the form; then
    Publish pressed twice on the same form (no cell run again): version 1, then version 2."""
    tmp_path = tmp_path_factory.mktemp("notebook")
    cells = [
        "%load_ext algolink_jupyter\nimport json",
        COMMAND,
        SIZE,
        "from PIL import Image\n\nImage.new('RGB', (16, 16), (20, 160, 60))",
        RECORD,
        "%algolink publish --project widget-test --group demo --name shout",
        "from algolink_jupyter.widgets.publish import latest\n\n"
        "form = latest()\n"
        "form.tagline.value = 'Shouts your text'\n"
        "form.description.value = '# Shout\\nMakes text **loud**.'\n"
        "form.links.value = 'Code | https://example.org/shout'\n"
        "form.gallery_picks[-1][0].value = True\n" + SHOW.format(state="form.publish()"),
        "import time\n\nstarted = time.monotonic()\n"
        "form.publish_button.click()\n"
        + SHOW.format(state="form.wait(600)")
        + "\nprint('seconds:', time.monotonic() - started)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "ALGOLINK_HUB_URL": hub.url,
        "ALGOLINK_TOKEN": hub.token,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)
    return {
        "nb": nb,
        "path": tmp_path,
        "first": printed(nb.cells[-2]),
        "again": printed(nb.cells[-1]),
    }


def test_the_notebook_publishes_through_the_form_and_the_hub_serves_it(hub, notebook):
    nb, out = notebook["nb"], notebook["first"]
    assert out.get("state") == "online", f"{out}\n{hub.output[-3000:]}"
    assert "algolink-publish-online" in out["classes"]
    assert out["api"] == f"{hub.url}/serve/widget-test/shout/v1/"
    assert out["message"].startswith("widget-test/shout version 1 is online as v1")
    # The form was shown by the magic, as a widget.
    shown = [o for o in nb.cells[5].outputs if o.output_type == "display_data"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0]["data"]

    # The published service answers through the hub.
    r = hub.serve("widget-test/shout/shout", json={"text": "hi"})
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "HI!"}
    service = hub.service("widget-test", "shout")
    assert service["metadata"]["tagline"] == "Shouts your text"
    assert service["metadata"]["links"] == [{"title": "Code", "url": "https://example.org/shout"}]
    assert service["metadata"]["license"] == "MIT"
    assert len(service["gallery"]) == 1

    # The saved notebook keeps the widgets' state, and never the token.
    path = notebook["path"] / "published.ipynb"
    nbformat.write(nb, path)
    saved = path.read_text()
    assert "application/vnd.jupyter.widget-state+json" in saved
    assert "Shouts your text" in saved  # the state really is there
    assert "export ALGOLINK_TOKEN=" in saved  # how to set it is there...
    assert hub.token not in saved  # ...the token is not


def test_publish_again_on_the_same_form_makes_the_next_version(hub, notebook):
    first, again = notebook["first"], notebook["again"]
    # After the first publish the lists come from the hub again, the service selected.
    project, group, service, services = json.loads(first["lists"])
    assert (project, group, service) == ("widget-test", "demo", "shout"), first["lists"]
    assert "shout" in services
    # Pressing Publish again (no cell run again) made version 2 of the same service.
    assert again.get("state") == "online", f"{again}\n{hub.output[-3000:]}"
    assert re.match(
        r"widget-test/shout version 2 is online as v\d+; press Publish again", again["message"]
    )
    assert json.loads(again["lists"])[:3] == ["widget-test", "demo", "shout"]
    service = hub.service("widget-test", "shout")
    assert [v["number"] for v in service["versions"]] == [1, 2]
    assert service["published_version"] == 2
    assert hub.version("widget-test", "shout", 2)["status"] == "online"
    assert hub.service("widget-test", "shout")["metadata"]["tagline"] == "Shouts your text"
    assert hub.serve("widget-test/shout/shout", json={"text": "hi"}).json() == {"text": "HI!"}


def shown_lines(result_html: str, cls: str) -> list:
    """The text of every ``<code class="cls">`` in the form's result, as a user copies it."""
    found = re.findall(rf'<code class="{cls}"[^>]*>(.*?)</code>', result_html, re.S)
    return [html.unescape(line) for line in found]


def run_as_given(setup: str, line: str, cwd) -> tuple:
    """``setup`` then ``line`` in bash, as pasted in a terminal that has no ALGOLINK_TOKEN: the
    HTTP status and the body curl received."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGOLINK_")}
    script = f"{setup}\n{line} -o answer.json -w '%{{http_code}}'"
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, (cwd / "answer.json").read_text()


def test_every_curl_line_the_form_shows_runs_as_given(hub, notebook, tmp_path):
    result = notebook["again"]["result"]
    (setup,) = shown_lines(result, "algolink-publish-token-line")
    assert hub.token not in result
    runtime = notebook["path"] / "runtime"
    assert setup.startswith('export ALGOLINK_TOKEN="$(cat ') and str(runtime) in setup
    lines = shown_lines(result, "algolink-publish-curl")
    assert len(lines) == 2, result
    (shout,) = [line for line in lines if line.endswith("/shout")]
    (size,) = [line for line in lines if line.endswith("/size")]
    api = notebook["again"]["api"]  # the version just published
    assert api.startswith(f"{hub.url}/serve/widget-test/shout/")
    assert shout.endswith(f" {api}shout") and size.endswith(f" {api}size")
    assert '-H "Authorization: token $ALGOLINK_TOKEN"' in shout
    # The shout line carries its recorded example inline, quoted for the shell.
    assert "-d '" in shout and "$HOME" in shout
    # The size example (a noisy photo, over 4 KB) is posted from a file beside the bundle.
    body = notebook["path"] / "bundles" / "shout.requests" / "size.json"
    assert f"-d @{body} " in size and body.stat().st_size > 4096
    assert "-F " not in shout + size  # no file the user would not have

    status, answer = run_as_given(setup, shout, tmp_path)
    assert status == "200", answer
    assert json.loads(answer) == {"text": TRICKY.upper() + "!"}
    status, answer = run_as_given(setup, size, tmp_path)
    assert status == "200", answer
    assert json.loads(answer) == {"width": 48, "height": 40}
    # Without the token line the same call is refused: the line really sets what the call needs.
    status, _answer = run_as_given("true", shout, tmp_path)
    assert status == "401"


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


def test_a_taken_name_is_said_at_once_with_a_button_to_publish_a_new_version(hub, tmp_path):
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
    assert form.new_version_button.layout.display == "none"
    # "New project" and "New group" hidden (both are on the hub), and nothing else with them.
    assert form.new_project.layout.display == form.new_group.layout.display == "none"
    assert {form.name.layout.display, form.version.layout.display} == {None}
    form.name.value = "echo"
    assert html.escape(taken_sentence("taken", "echo"), quote=False) in form.name_error.value
    assert "Publish as a new version of taken/echo" in form.name_error.value
    assert form.publish_button.disabled
    assert form.new_version_button.layout.display == ""
    assert form.new_version_button.description == "Publish as a new version of taken/echo"
    assert not form.new_version_button.disabled
    # Publish pressed anyway: refused at once, nothing exported.
    assert form.start("publish") is False
    assert form.state == "failed" and form.message == taken_sentence("taken", "echo")
    assert form.log_box.value == ""
    # Picking the service under Service is the same as the button's first half.
    form.service.value = "echo"
    assert form.name.value == "echo" and form.name_error.value == ""
    assert form.new_version_button.layout.display == "none"
    assert not form.publish_button.disabled
    # Typing another name leaves that service: a new one.
    form.name.value = "echo2"
    assert form.service.value == "new…" and form.name_error.value == ""


def test_a_name_taken_after_the_form_opened_is_found_before_the_export(hub, tmp_path):
    """The form's lists are stale (the service was made after the form opened): pressing Publish
    asks the hub again and refuses at once, with the button; the button publishes version 2."""
    hub.ensure_group("clash", "g")
    k = Kernel(
        tmp_path,
        env={
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
            "ALGOLINK_HUB_URL": hub.url,
            "ALGOLINK_TOKEN": hub.token,
            "ALGOLINK_CONFIG": str(tmp_path / "no-config.json"),
        },
    )
    try:
        k.run("%load_ext algolink_jupyter")
        k.run(COMMAND)
        k.run(
            "%algolink publish --project clash --group g --name shout\n"
            "from algolink_jupyter.widgets.publish import latest\n"
            "form = latest()"
        )
        assert k.eval("[form.service.value, form.publish_button.disabled]") == ["new…", False]
        r = hub.register("clash", "g", "shout", make_bundle(tmp_path / "b"))
        assert r.status_code == 201, r.text

        started = time.monotonic()
        k.run("form.publish_button.click()\nform.wait(60)")
        seconds = time.monotonic() - started
        state, message, log, button = k.eval(
            "[form.state, form.message, form.log_box.value, "
            "[form.new_version_button.layout.display, form.new_version_button.description]]"
        )
        assert state == "failed" and message == taken_sentence("clash", "shout"), message
        assert seconds < 3, seconds  # no export first (that takes seconds)
        assert log == "" and not (tmp_path / "bundles" / "shout").exists()
        assert button == ["", "Publish as a new version of clash/shout"]

        k.run("form.new_version_button.click()\nform.wait(600)", timeout=660)
        state, message, service = k.eval("[form.state, form.message, form.service.value]")
        assert state == "online", message + hub.output[-3000:]
        assert message.startswith("clash/shout version 2 is online"), message
        assert service == "shout"
        assert hub.service("clash", "shout")["published_version"] == 2
        assert hub.version("clash", "shout", 2)["status"] == "online"
        assert hub.serve("clash/shout/shout", json={"text": "hi"}).json() == {"text": "HI!"}
    finally:
        k.shutdown()


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
    # The curl lines' token comes from this very file, read by the line that sets it.
    line = curl.token_setup(hub.url, hub.token)
    assert str(path) in line and hub.token not in line
    assert set_by(line, tmp_path) == hub.token
    monkeypatch.setenv("ALGOLINK_TOKEN", "from-env")
    assert hub_settings()[:2] == (hub.url, "from-env")
    path.write_text("{not json")
    with pytest.raises(Exception, match="is not valid JSON"):
        hub_settings()


def set_by(line: str, cwd) -> str:
    """What ``$ALGOLINK_TOKEN`` holds after ``line`` runs in bash in a terminal without it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGOLINK_")}
    done = subprocess.run(
        ["bash", "-c", f'{line}\nprintf %s "$ALGOLINK_TOKEN"'],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_token_from_the_environment_is_set_from_a_private_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("ALGOLINK_CONFIG", str(tmp_path / "none.json"))
    line = curl.token_setup("http://127.0.0.1:1", "tok'en $x")
    copy = curl.token_file("http://127.0.0.1:1")
    assert line == f'export ALGOLINK_TOKEN="$(cat {copy})"'
    assert copy.parent == tmp_path / "runtime"
    assert copy.stat().st_mode & 0o777 == 0o600
    assert set_by(line, tmp_path) == "tok'en $x"
    assert curl.token_setup("http://127.0.0.1:1", None) is None


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


def test_the_form_says_who_is_signed_in_and_offers_only_what_they_may(hub):
    """A developer sees their name and the projects they may publish to (and "new…"); a viewer whose
    token may make no project gets one plain sentence instead of a Publish button the hub would
    refuse; a viewer with a token of all their say may publish to a new project only."""
    hub.ensure_group("team", "g")
    dev = hub.add_user("dana", {"team": "developer", "looking": "viewer"})
    r = hub.api("PATCH", "/api/v1/users/dana", json={"display_name": "Dana Dev"})
    assert r.status_code == 200, r.text
    form = build_publish_form(registry(), HubClient(hub.url, dev), project="team", name="shout")
    assert form.signed_in == f"Signed in to {hub.url} as Dana Dev (dana)."
    assert f"<code>{hub.url}</code> as <b>Dana Dev (dana)</b>" in form.hub_line.value
    assert "algolink-publish-token" not in form.hub_line.value  # a token of all her say
    assert form.project.options == ("team", "new…") and form.project.value == "team"
    assert form.group.value == "g"
    assert "You are a viewer of looking: publishing there needs the developer role" in (
        form.hub_line.value
    )
    assert form.may_publish and form.cannot_publish == ""
    assert form.publish_button.layout.display == "" and not form.publish_button.disabled
    assert form.connect_button.layout.display == ""

    # A viewer of team whose token is limited to team: no Publish, no Connect, no lists; a sentence.
    limited = hub.add_user("vera", {"team": "viewer"}, token_name="nb", project="team")
    form = build_publish_form(registry(), HubClient(hub.url, limited), project="team", name="shout")
    assert form.signed_in == f"Signed in to {hub.url} as vera."
    assert "Token nb: limited to the project team." in form.hub_line.value
    assert form.cannot_publish == (
        "You are a viewer of team (this token is limited to the project team): you may call its "
        "services but not publish. To publish there, ask a project owner to make you a developer."
    )
    assert "algolink-publish-cannot" in form.hub_line.value
    assert not form.may_publish
    for w in (form.publish_button, form.connect_button, form.project, form.service):
        assert w.layout.display == "none"
    assert form.publish_button.disabled and form.connect_button.disabled
    assert form.start("publish") is False and form.message == form.cannot_publish
    assert form.start("connect") is False and form.message == form.cannot_publish
    assert not form.export_button.disabled  # exporting stays this user's to do

    # A viewer with a token of all her say: only a new project of her own, and team refused at once.
    viewer = hub.add_user("vic", {"team": "viewer"})
    form = build_publish_form(registry(), HubClient(hub.url, viewer), project="team", name="shout")
    assert form.project.options == ("new…",) and form.new_project.value == "team"
    assert "You are a viewer of team: publishing there needs the developer role" in (
        form.where_error.value
    )
    assert form.publish_button.disabled
    form.new_project.value = "vics-own"
    assert form.where_error.value == "" and not form.publish_button.disabled

    # No token at all: how to sign in.
    form = build_publish_form(registry(), HubClient(hub.url, ""), name="shout")
    assert f"Not signed in to the hub at {hub.url}: run `algolink login --hub {hub.url}`" in (
        form.hub_line.value
    )
    assert form.publish_button.disabled


def test_the_preview_renders_markdown_as_the_hub_does():
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


def test_curl_bodies_are_real_inputs_and_public_services_need_no_token(tmp_path):
    reg = Registry()

    @reg.command(
        "look",
        inputs={
            "photo": image(channels=1, width=20, height=10),
            "text": text(max_length=3),
            "mask": segmentation(label_to_id={"sky": 3, "sea": 7}),
            "weights": file(extension=".pt"),
        },
        outputs={"seen": any_type()},
    )
    def look(model, inputs):
        return {"seen": [inputs["photo"].size, inputs["text"], os.path.basename(inputs["weights"])]}

    reg.run_setup()
    body = curl.request_body(reg.get_command("look"), [])
    assert body["photo"].startswith("data:image/png;base64,")
    assert reg.run_command("look", body) == {"seen": [[20, 10], "hel", "example.pt"]}
    recorded = [{"command": "look", "inputs": {"text": "abc"}, "outputs": {}}]
    assert curl.request_body(reg.get_command("look"), recorded) == {"text": "abc"}

    line = curl.curl_line("http://h/serve/p/s/v1/", "shout", {"text": "hi"}, public=True)
    assert line == (
        "curl -sS -H 'Content-Type: application/json' -d '{\"text\": \"hi\"}' "
        "http://h/serve/p/s/v1/shout"
    )
    line = curl.curl_line("http://h/x/", "big", {"t": "x" * 5000}, body_dir=tmp_path / "b c")
    assert line.endswith(f"-d '@{tmp_path / 'b c' / 'big.json'}' http://h/x/big")
    assert json.loads((tmp_path / "b c" / "big.json").read_text()) == {"t": "x" * 5000}


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
        # The lists come from the hub again with the development service selected; Publish would
        # need a name of its own, and the form says so.
        assert k.eval("[form.project.value, form.group.value, form.service.value]") == [
            "devconn",
            "nb",
            "live",
        ]
        assert k.eval("form.publish_button.disabled") is True
        assert "devconn/live is a development service" in k.eval("form.name_error.value")
        # Its curl line (no example recorded: an input made up from the types) runs as given.
        (setup,) = shown_lines(result, "algolink-publish-token-line")
        (line,) = shown_lines(result, "algolink-publish-curl")
        assert line.endswith(f"{hub.url}/serve/devconn/live/shout")
        status, answer = run_as_given(setup, line, tmp_path)
        assert status == "200" and json.loads(answer) == {"text": "HELLO!"}, answer
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
