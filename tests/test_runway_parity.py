"""Runway parity: models written for Runway's model SDK (runway-python 0.6.1) run on modelcloud unchanged.

The declarations Runway accepted import and work, setup options get Runway's implicit defaults (or
refuse to start, naming the option), outputs are checked rather than coerced, gzip bodies are read
(bounded after decompression), ``X-Runway-Output-Format`` is honoured, custom ``BaseType`` types,
Runway's exception API and its ``RW_*`` variables work, and ``runway`` resolves to modelcloud inside
``algolink serve`` and the hub, never over a real installed ``runway``. Real server processes, a real
hub; nothing of ours is mocked.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from hub_process import ALGOLINK, Hub, rss_kb
from openapi_spec_validator import validate
from PIL import Image

import modelcloud
from modelcloud import data_types as dt
from modelcloud import errors
from modelcloud.compat import enable_runway_alias, runway_alias_dir
from modelcloud.model import Registry
from modelcloud.runner import ConfigError, resolve_settings
from support import REPO, ServerProcess

EXAMPLE = REPO / "examples" / "runway" / "runway_model.py"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def runway():
    """``import runway`` as `algolink serve` sees it (no real runway-python is installed here)."""
    enable_runway_alias()
    import runway as rw

    assert rw.__file__.startswith(runway_alias_dir()), rw.__file__
    return rw


def serve(path: Path, env: dict | None = None, wait: bool = True) -> ServerProcess:
    """``algolink serve PATH`` as a real process on a free port."""
    server = ServerProcess([*ALGOLINK, "serve", str(path)], cwd=path.parent, env=env)
    if wait:
        server.wait_started()
    return server


@pytest.fixture
def served(tmp_path):
    started: list = []

    def start(source: str, env: dict | None = None, wait: bool = True, name: str = "model.py"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        server = serve(path, env=env, wait=wait)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# -- item 3: declarations Runway accepts --------------------------------------------------------------


def test_every_runway_declaration_imports_with_runways_argument_order(runway):
    from runway import data_types as rdt

    # a positional description, as Runway's signatures have it
    assert rdt.text("The prompt").description == "The prompt"
    assert not rdt.text("The prompt").has_default
    n = rdt.number("Steps", 5, 1, 0, 10)  # description, default, step, min, max
    assert (n.description, n.default, n.step, n.min, n.max) == ("Steps", 5, 1, 0, 10)
    c = rdt.category("Pick", ["a", "b"])
    assert (c.description, c.choices) == ("Pick", ["a", "b"])
    img = rdt.image("A photo", 4)
    assert (img.description, img.channels) == ("A photo", 4)
    v = rdt.vector(3, "A latent")
    assert (v.length, v.description) == (3, "A latent")
    assert rdt.file("Weights", extension=".pt").description == "Weights"
    assert rdt.boolean("Flip").description == "Flip"
    assert rdt.any("Anything").description == "Anything"
    assert rdt.array(rdt.text, "Words").description == "Words"
    assert rdt.segmentation({"bg": 0, "cat": 1}, "Mask").description == "Mask"
    assert rdt.image_landmarks(2, "Eyes").description == "Eyes"
    assert rdt.image_point("Nose").description == "Nose"
    assert rdt.image_bounding_box("Face").description == "Face"
    assert rdt.directory("Folder").description == "Folder"
    # every one is modelcloud's type of that name
    assert isinstance(rdt.text(), dt.text) and isinstance(rdt.image(), dt.image)
    # the rest of item 3, through Runway's names
    assert rdt.category(choices=[1, 2, 3]).choices == [1, 2, 3]
    assert rdt.number(default=0.25, min=0, max=1, step=0.1).default == 0.25
    assert isinstance(rdt.file(is_directory=True), dt.directory)
    assert rdt.vector(default=[0.5, 1.5]).length == 2
    assert runway.image is rdt.image and runway.setup is modelcloud.setup


def test_item_3_declarations_import_in_modelcloud_too():
    assert dt.category([10, 25, 2.5]).choices == [10, 25, 2.5]
    assert dt.number(default=0.25, min=0, step=0.1).default == 0.25
    d = dt.file(is_directory=True, description="Checkpoints")
    assert isinstance(d, dt.directory) and d.description == "Checkpoints"
    with pytest.raises(ValueError, match="takes no extension"):
        dt.file(".pt", is_directory=True)
    assert dt.vector(default=np.zeros(4)).length == 4
    with pytest.raises(ValueError, match="exactly 3 numbers"):
        dt.vector(3, default=[1, 2])
    with pytest.raises(ValueError, match="give a default to take it from"):
        dt.vector()
    reg = Registry()
    reg.command("go", inputs={"my input": dt.text()}, outputs={"the output": dt.text()})(
        lambda m, i: i["my input"]
    )
    assert reg.manifest()["commands"][0]["inputs"][0]["name"] == "my input"
    for bad in ("", " padded", 'say "hi"', "back\\slash", "new\nline", "x" * 101):
        with pytest.raises(ValueError, match="must be 1 to 100 characters"):
            reg.command("bad", inputs={bad: dt.text()}, outputs={"x": dt.text()})(lambda m, i: "")
    with pytest.raises(ValueError, match="letters, digits"):  # a command name is a URL path
        reg.command("with space", inputs={"x": dt.text()}, outputs={"x": dt.text()})(
            lambda m, i: ""
        )


def test_a_category_of_numbers_answers_numbers():
    t = dt.category([10, 25, 2.5])
    assert t.deserialize(25) == 25 and type(t.deserialize(25)) is int
    assert t.deserialize(25.0) == 25 and type(t.deserialize(25.0)) is int  # the declared choice
    assert t.deserialize("2.5") == 2.5  # a multipart field arrives as text
    assert t.deserialize(np.int64(10)) == 10
    for wrong in (11, "eleven", True, None, [10]):
        with pytest.raises(errors.ValidationError, match="must be one of 10, 25, 2.5"):
            t.deserialize(wrong)
    assert t.serialize(np.float32(2.5)) == 2.5 and type(t.serialize(10.0)) is int
    with pytest.raises(TypeError, match="must be one of"):
        t.serialize("10")  # text for a number choice is a wrong answer, not coerced
    assert t.json_schema()["type"] == "number" and t.json_schema()["enum"] == [10, 25, 2.5]
    mixed = dt.category(["auto", 1, 2])
    assert mixed.deserialize("auto") == "auto" and mixed.deserialize("1") == 1
    assert mixed.json_schema()["type"] == ["string", "number"]


def test_an_off_grid_default_is_one_more_allowed_value():
    t = dt.number(default=0.25, min=0, max=1, step=0.1)
    assert t.deserialize(0.25) == 0.25 and t.deserialize(0.3) == 0.3
    with pytest.raises(errors.ValidationError, match="multiple of 0.1"):
        t.deserialize(0.35)
    with pytest.raises(ValueError, match="at least 0"):
        dt.number(default=-1, min=0, step=0.1)  # off its bounds is still a bug in the code


# -- item 1: setup options without a default --------------------------------------------------------


def setup_with(options: dict, raw: dict | None = None) -> dict:
    reg = Registry()
    seen = {}
    reg.setup(options=options)(lambda opts: seen.update(opts))
    reg.run_setup(raw or {})
    return seen


def test_options_without_a_default_get_runways_implicit_defaults(runway):
    from runway import data_types as rdt

    got = setup_with(
        {
            "prompt": dt.text(),
            "n": dt.number(),
            "low": dt.number(min=2, max=9),
            "zero_min": dt.number(min=0, max=9),  # Runway's `or` skipped a 0 min; it counts here
            "high": dt.number(max=-3),
            "flag": dt.boolean(),
            "style": dt.category(["oil", "ink"]),
            "steps": dt.category([50, 100]),
            "runway_text": rdt.text("A Runway text"),
            "runway_number": rdt.number("A Runway number", min=1, max=3),
        }
    )
    assert got == {
        "prompt": "",
        "n": 0,
        "low": 2,
        "zero_min": 0,
        "high": -3,
        "flag": False,
        "style": "oil",
        "steps": 50,
        "runway_text": "",
        "runway_number": 1,
    }
    assert setup_with({"n": dt.number(min=2)}, {"n": 7}) == {"n": 7}  # a given value wins
    reg = Registry()
    reg.setup(options={"n": dt.number(min=2), "t": dt.text(default="x")})(lambda o: o)
    assert [o.get("default") for o in reg.manifest()["options"]] == [2, "x"]


@pytest.mark.parametrize(
    "option",
    [
        dt.file(extension=".pt"),
        dt.directory(),
        dt.vector(3),
        dt.image(),
        dt.any(),
        dt.array(dt.text),
        dt.text(min_length=3),  # '' would break its own rule
    ],
    ids=lambda t: t.type_name,
)
def test_an_option_without_a_safe_default_is_refused_by_name(option):
    with pytest.raises(errors.MissingOptionError) as e:
        setup_with({"weights": option})
    assert e.value.field == "weights" and e.value.code == 400
    assert "Setup option 'weights' has no value and no default" in e.value.message


def test_a_model_with_an_option_without_default_does_not_start(served):
    server = served(
        """
        import runway
        from runway.data_types import file, text

        @runway.setup(options={"checkpoint": file(extension=".pt")})
        def setup(opts):
            return opts

        @runway.command("echo", inputs={"t": text()}, outputs={"t": text()})
        def echo(model, inputs):
            return inputs["t"]

        if __name__ == "__main__":
            runway.run()
        """,
        wait=False,
    )
    assert server.wait_exit(60) == 1
    assert "Setup option 'checkpoint' has no value and no default" in server.output
    assert "Starting model server" not in server.output


# -- item 4: outputs checked, never coerced ----------------------------------------------------------

WRONG_OUTPUTS = """
import numpy as np
import modelcloud
from modelcloud.data_types import array, boolean, category, number, text, vector

CASES = {
    "flag": (boolean(), "False"),
    "flag_int": (boolean(), 0),
    "words": (array(text()), "abc"),
    "vec": (vector(2), ["1.5", "2"]),
    "vec_bool": (vector(2), [True, False]),
    "caption": (text(), b"\\xff\\xfe"),
    "caption_bool": (text(), True),
    "steps": (category([1, 2]), "1"),
}

for name, (t, value) in CASES.items():
    def fn(model, inputs, value=value):
        return value
    modelcloud.command(name, inputs={}, outputs={"out": t})(fn)

@modelcloud.command("right", inputs={}, outputs={"flag": boolean(), "n": category([1, 2])})
def right(model, inputs):
    return {"flag": np.bool_(False), "n": np.int64(2)}

if __name__ == "__main__":
    modelcloud.run()
"""


def test_a_wrong_output_is_a_500_naming_it_never_a_coerced_answer(model_server):
    server = model_server(WRONG_OUTPUTS)
    for name, fragment in [
        ("flag", "a boolean output must be True or False, got the text 'False'"),
        ("flag_int", "a boolean output must be True or False, got the number 0"),
        ("words", "an array output must be a list, got the text 'abc'"),
        ("vec", "a vector output must hold numbers, got the text '1.5' at index 0"),
        ("vec_bool", "a vector output must hold numbers, got a boolean at index 0"),
        ("caption", "a text output must be a string, got bytes that are not UTF-8"),
        ("caption_bool", "a text output must be a string, got a bool"),
        ("steps", "a category output must be one of [1, 2], got '1'"),
    ]:
        r = server.post(f"/{name}", json={})
        assert r.status_code == 500, (name, r.text)
        assert r.json()["error"] == (f"Command {name!r} returned an invalid 'out': {fragment}."), (
            r.text
        )
    assert server.post("/right", json={}).json() == {"flag": False, "n": 2}


# -- item 5: gzip request bodies ---------------------------------------------------------------------

ECHO = """
import modelcloud
from modelcloud.data_types import category, file, text

@modelcloud.command("echo", inputs={"label text": text(), "steps": category([2, 4])},
                    outputs={"label text": text(), "steps": category([2, 4])})
def echo(model, inputs):
    return dict(inputs)

@modelcloud.command("size", inputs={"blob": file()}, outputs={"n": text()})
def size(model, inputs):
    import os
    return str(os.path.getsize(inputs["blob"]))

if __name__ == "__main__":
    modelcloud.run()
"""


def test_gzip_bodies_json_and_multipart(model_server):
    server = model_server(ECHO)
    body = gzip.compress(json.dumps({"label text": "hi there", "steps": 4}).encode())
    r = server.post("/echo", data=body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.json() == {"label text": "hi there", "steps": 4}
    # multipart, field names with spaces, a number choice sent as a form field
    req = requests.Request(
        "POST", server.url + "/echo", data={"label text": "form", "steps": "2"}
    ).prepare()
    r = server.post(
        "/echo",
        data=gzip.compress(req.body.encode() if isinstance(req.body, str) else req.body),
        headers={"Content-Type": req.headers["Content-Type"], "Content-Encoding": "gzip"},
    )
    assert r.json() == {"label text": "form", "steps": 2}, r.text
    req = requests.Request(
        "POST", server.url + "/size", files={"blob": ("b.bin", b"z" * 100_000)}
    ).prepare()
    r = server.post(
        "/size",
        data=gzip.compress(req.body),
        headers={"Content-Type": req.headers["Content-Type"], "Content-Encoding": "gzip"},
    )
    assert r.json() == {"n": "100000"}, r.text
    doc = server.get("/openapi.json").json()
    validate(doc)
    body_schema = doc["paths"]["/echo"]["post"]["requestBody"]["content"]["application/json"]
    props = body_schema["schema"]["properties"]
    assert props["steps"] == {"type": "number", "enum": [2, 4]} and "label text" in props
    # damaged, truncated, and other encodings: one sentence each
    r = server.post("/echo", data=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "not valid gzip data" in r.json()["error"]
    r = server.post("/echo", data=body[: len(body) // 2], headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "not valid gzip data" in r.json()["error"]
    r = server.post("/echo", data=b"{}", headers={"Content-Encoding": "br"})
    assert r.status_code == 415
    assert r.json()["error"].startswith("Content-Encoding 'br' is not supported")


def test_a_gzip_bomb_is_a_413_and_memory_stays_bounded(model_server):
    limit = 2 * 1024 * 1024
    server = model_server(ECHO, env={"ALGOLINK_MAX_BODY_SIZE": str(limit)})
    pid = server.proc.pid
    before = rss_kb(pid)
    # 1 GiB of zeros, about 1 MB compressed: under the limit as sent, 500x over it decompressed
    z = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    bomb = z * 16  # concatenated members are one valid gzip stream of 1 GiB
    assert len(bomb) < limit
    t0 = time.monotonic()
    r = server.post("/echo", data=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413, r.text
    assert r.json()["error"].startswith(
        f"The body is over the limit of {limit:,} bytes once decompressed"
    )
    assert time.monotonic() - t0 < 20
    assert rss_kb(pid) - before < 64 * 1024, "the bomb was decompressed into memory"
    # the server keeps serving
    r = server.post("/echo", json={"label text": "ok", "steps": 2})
    assert r.status_code == 200


# -- item 6: output formats --------------------------------------------------------------------------

IMAGES = """
import numpy as np
import modelcloud
from modelcloud.data_types import image, text

@modelcloud.command("draw", inputs={"t": text()},
                    outputs={"photo": image(), "mask": image(channels=1), "caption": text()})
def draw(model, inputs):
    pixels = np.full((8, 8, 3), 200, dtype=np.uint8)
    return {"photo": pixels, "mask": pixels[:, :, 0], "caption": inputs["t"]}

if __name__ == "__main__":
    modelcloud.run()
"""


def mime_of(uri: str) -> str:
    head, data = uri.split(",", 1)
    Image.open(io.BytesIO(base64.b64decode(data))).load()  # a real image of that format
    return head


def test_default_output_format_and_x_runway_output_format(model_server):
    assert dt.image(channels=3).default_output_format == "JPEG"
    assert dt.image(channels=3).to_dict()["defaultOutputFormat"] == "JPEG"
    assert dt.image(channels=4).default_output_format == "PNG"
    assert dt.image(channels=1, default_output_format="jpg").default_output_format == "JPEG"
    server = model_server(IMAGES)
    r = server.post("/draw", json={"t": "x"})
    assert mime_of(r.json()["photo"]) == "data:image/jpeg;base64"
    assert mime_of(r.json()["mask"]) == "data:image/png;base64"
    r = server.post(
        "/draw", json={"t": "x"}, headers={"X-Runway-Output-Format": "photo=PNG; mask=jpeg"}
    )
    assert r.status_code == 200, r.text
    assert mime_of(r.json()["photo"]) == "data:image/png;base64"
    assert mime_of(r.json()["mask"]) == "data:image/jpeg;base64"
    r = server.post("/draw", json={"t": "x"}, headers={"X-Runway-Output-Format": "photo=WEBP"})
    assert mime_of(r.json()["photo"]) == "data:image/webp;base64"
    for header, error in [
        ("photo=EXR", "The output format for 'photo' must be PNG, JPEG or WEBP, got 'EXR'"),
        ("caption=PNG", "names 'caption', a text output: only image outputs have a format"),
        ("nothing=PNG", "names 'nothing', which is not an output of 'draw'"),
        ("photo", "must be output=FORMAT pairs"),
    ]:
        r = server.post("/draw", json={"t": "x"}, headers={"X-Runway-Output-Format": header})
        assert r.status_code == 400 and error in r.json()["error"], (header, r.text)
    r = requests.options(server.url + "/draw", timeout=10)
    allowed = r.headers["Access-Control-Allow-Headers"]
    assert "X-Runway-Output-Format" in allowed and "Content-Encoding" in allowed


# -- item 7: BaseType, exceptions, RW_*, no_serve ----------------------------------------------------

CUSTOM = """
import runway
from runway.data_types import BaseType, text
from runway.exceptions import InvalidArgumentError


class color(BaseType):
    def __init__(self, description=None, default=None):
        super(color, self).__init__("color", description=description)
        if default is not None:
            self.default = default

    def deserialize(self, value):
        if value == "boom":
            raise ValueError("cannot parse boom")
        if not (isinstance(value, str) and len(value) == 7 and value[0] == "#"):
            raise InvalidArgumentError(self.name, "a colour is written like #ff8800")
        return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))

    def serialize(self, value, output_format=None):
        return "#%02x%02x%02x" % tuple(value)

    def to_dict(self):
        ret = super(color, self).to_dict()
        ret["pattern"] = "#rrggbb"
        return ret


@runway.setup(options={"tint": color(default="#000010")})
def setup(opts):
    return opts["tint"]


@runway.command("invert", inputs={"fill": color(description="A colour")},
                outputs={"inverse": color()})
def invert(tint, inputs):
    return {"inverse": [255 - c for c in inputs["fill"]]}


@runway.command("check", inputs={"word": text()}, outputs={"word": text()})
def check(model, inputs):
    if inputs["word"] != "yes":
        raise InvalidArgumentError("word", "say yes")
    return inputs["word"]


if __name__ == "__main__":
    runway.run()
"""


def test_a_custom_basetype_works_as_input_output_option_and_in_the_manifest(served):
    server = served(CUSTOM)
    meta = server.get("/meta").json()
    assert meta["options"] == [
        {
            "name": "tint",
            "type": "color",
            "description": None,
            "default": "#000010",
            "pattern": "#rrggbb",
        }
    ]
    inputs = meta["commands"][0]["inputs"]
    assert inputs == [
        {"name": "fill", "type": "color", "description": "A colour", "pattern": "#rrggbb"}
    ]
    r = server.post("/invert", json={"fill": "#ff8000"})
    assert r.json() == {"inverse": "#007fff"}, r.text
    r = server.post("/invert", data={"fill": "#000000"})  # multipart / form
    assert r.json() == {"inverse": "#ffffff"}, r.text
    r = server.post("/invert", json={"fill": "red"})
    assert r.status_code == 400
    assert r.json() == {
        "error": "Invalid argument 'fill': a colour is written like #ff8800.",
        "field": "fill",
    }
    r = server.post("/invert", json={"fill": "boom"})
    assert r.status_code == 400
    assert r.json()["error"] == "Input 'fill' is not a valid color: ValueError: cannot parse boom."
    # a command raising Runway's InvalidArgumentError: the client's fault, a 400 with its words
    r = server.post("/check", json={"word": "no"})
    assert r.status_code == 400 and r.json() == {
        "error": "Invalid argument 'word': say yes.",
        "field": "word",
    }
    doc = server.get("/openapi.json").json()
    validate(doc)
    assert "fill" in json.dumps(doc["paths"]["/invert"])


def test_runways_exception_api():
    enable_runway_alias()
    from runway import exceptions as rex

    assert rex.RunwayError is errors.ModelCloudError
    e = rex.RunwayError()
    assert (e.code, e.message) == (500, "An unknown error occurred.")
    assert e.to_response() == {"error": "An unknown error occurred."}
    cases = [
        (rex.MissingOptionError("ckpt"), 400, "ckpt"),
        (rex.MissingInputError("photo"), 400, "photo"),
        (rex.InvalidArgumentError("k", "too big"), 400, "k"),
        (rex.UnknownCommandError("nope"), 404, None),
        (rex.InferenceError("bad"), 500, None),
        (rex.SetupError("bad"), 500, None),
        (rex.MissingArgumentError("choices"), 500, None),
    ]
    for err, code, field in cases:
        assert isinstance(err, errors.ModelCloudError) and err.code == code == err.status
        body = err.to_response()
        assert body.get("field") == field and body["error"] == err.message
        assert "traceback" not in body
    assert rex.InvalidArgumentError("k", "too big").message == "Invalid argument 'k': too big."
    assert isinstance(rex.UnknownCommandError("x"), errors.UnknownCommand)
    try:
        raise rex.InferenceError("x")
    except rex.InferenceError as caught:
        assert caught.get_traceback() and "raise rex.InferenceError" in caught.get_traceback()[-1]


def test_rw_variables_are_aliases_of_algolink_ones(monkeypatch):
    for name in [
        "ALGOLINK_HOST",
        "ALGOLINK_PORT",
        "ALGOLINK_MODEL_OPTIONS",
        "ALGOLINK_DEBUG",
        "ALGOLINK_META",
        "ALGOLINK_NO_SERVE",
    ]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RW_HOST", "127.0.0.2")
    monkeypatch.setenv("RW_PORT", "9123")
    monkeypatch.setenv("RW_MODEL_OPTIONS", '{"k": 3}')
    monkeypatch.setenv("RW_DEBUG", "1")
    monkeypatch.setenv("RW_META", "0")
    monkeypatch.setenv("RW_NO_SERVE", "1")
    s = resolve_settings("0.0.0.0", 9000, None, False, True)
    assert (s["host"], s["port"], s["model_options"], s["debug"], s["meta"], s["no_serve"]) == (
        "127.0.0.2",
        9123,
        {"k": 3},
        True,
        False,
        True,
    )
    monkeypatch.setenv("ALGOLINK_PORT", "9456")  # ALGOLINK_* wins when both are set
    monkeypatch.setenv("ALGOLINK_DEBUG", "0")
    s = resolve_settings("0.0.0.0", 9000, None, False, False)
    assert (s["port"], s["debug"]) == (9456, False)
    monkeypatch.delenv("ALGOLINK_PORT")
    monkeypatch.setenv("RW_PORT", "nine")
    with pytest.raises(ConfigError, match="RW_PORT='nine' is not a whole number"):
        resolve_settings("0.0.0.0", 9000, None, False, False)
    monkeypatch.setenv("RW_PORT", "9000")
    monkeypatch.setenv("RW_MODEL_OPTIONS", "{oops")
    with pytest.raises(ConfigError, match="RW_MODEL_OPTIONS is not valid JSON"):
        resolve_settings("0.0.0.0", 9000, None, False, False)


def test_rw_meta_rw_no_serve_and_rw_model_options_in_a_real_process(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(CUSTOM)
    env = {**os.environ, "RW_META": "1"}
    env.pop("ALGOLINK_META", None)
    out = subprocess.run(
        [*ALGOLINK, "serve", str(path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert [c["name"] for c in json.loads(out.stdout)["commands"]] == ["invert", "check"]
    env = {**os.environ, "RW_NO_SERVE": "1", "RW_MODEL_OPTIONS": '{"tint": "#zz"}'}
    out = subprocess.run(
        [*ALGOLINK, "serve", str(path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    assert "Invalid argument 'tint': a colour is written like #ff8800." in out.stderr
    env["RW_MODEL_OPTIONS"] = '{"tint": "#102030"}'
    t0 = time.monotonic()
    out = subprocess.run(
        [*ALGOLINK, "serve", str(path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "not serving (no_serve)" in out.stdout and "Starting model server" not in out.stdout
    assert time.monotonic() - t0 < 60


def test_a_setup_raising_invalid_argument_is_a_400_and_keeps_the_model(model_server):
    server = model_server(
        """
        import modelcloud
        from modelcloud.data_types import number, text
        from modelcloud.errors import InvalidArgumentError

        @modelcloud.setup(options={"k": number(default=1)})
        def setup(opts):
            if opts["k"] > 5:
                raise InvalidArgumentError("k", "this model has 5 heads")
            return opts["k"]

        @modelcloud.command("k", inputs={"t": text()}, outputs={"k": number()})
        def k(model, inputs):
            return model

        if __name__ == "__main__":
            modelcloud.run()
        """
    )
    assert server.post("/setup", json={"k": 3}).json() == {"success": True}
    r = server.post("/setup", json={"k": 9})
    assert r.status_code == 400
    assert r.json() == {"error": "Invalid argument 'k': this model has 5 heads.", "field": "k"}
    assert server.post("/k", json={"t": ""}).json() == {"k": 3}  # the model in place still answers
    assert server.get("/healthcheck").json() == {"status": "RUNNING", "ongoing": 0}


def test_run_no_serve_sets_up_and_returns():
    reg = Registry()
    reg.setup(options={"n": dt.number(min=3)})(lambda opts: opts["n"] * 2)
    modelcloud.run(no_serve=True, registry=reg, model_options={"n": 5})
    assert reg.model == 10 and reg.status == "RUNNING"


# -- item 8: `runway` resolves to modelcloud, never over a real one -----------------------------------


def test_a_real_installed_runway_is_never_shadowed(tmp_path):
    real = tmp_path / "site" / "runway"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\n")
    code = (
        "from modelcloud.compat import enable_runway_alias; enable_runway_alias(); "
        "import runway; print(getattr(runway, 'REAL', False), runway.__file__)"
    )
    env = {**os.environ}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split()[0] == "False" and runway_alias_dir() in out.stdout, out.stderr
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["True", str(real / "__init__.py")], out.stderr
    # without `algolink serve` (a plain python), `runway` is not made up
    out = subprocess.run(
        [sys.executable, "-c", "import runway"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and "No module named 'runway'" in out.stderr


def test_the_export_pins_nothing_for_modelclouds_runway(runway):
    from algolink_jupyter.export import requirements as reqs

    assert reqs.is_runway_alias("runway")  # the alias: the runtime provides it, nothing to pin
    assert not reqs.is_runway_alias("numpy") and not reqs.is_runway_alias("modelcloud")


def test_the_build_log_notes_a_bundle_that_would_replace_the_hubs_runway(tmp_path):
    from algolink_jupyter.hub.builder import runway_note

    req = tmp_path / "requirements.txt"
    assert runway_note(tmp_path, []) is None
    req.write_text("numpy==1.26.4\nrunway-python==0.6.1\n")
    assert "installs runway-python (Runway's own SDK)" in runway_note(tmp_path, [])
    req.write_text("Runway>=2.0 ; python_version > '3'\n")
    assert "names `runway`, which on PyPI is another project" in runway_note(tmp_path, [])
    req.write_text("runway-utils==1\nmy-runway-python-thing==2\n")
    assert runway_note(tmp_path, ["pip install -r requirements.txt"]) is None
    assert "runway-python" in runway_note(tmp_path, ["pip install runway-python==0.6.1"])


def test_algolink_serve_takes_a_runway_models_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "runway_model.py")
    (folder / "runway.yml").write_text("python: 3.6\nentrypoint: python runway_model.py\n")
    server = serve(folder)
    try:
        assert server.get("/healthcheck").json() == {"status": "RUNNING", "ongoing": 0}
    finally:
        server.stop()


# -- end to end: the example written for Runway ------------------------------------------------------


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runway-example")
    shutil.copy(EXAMPLE, folder / "runway_model.py")
    server = serve(folder / "runway_model.py")
    yield server
    server.stop()


def test_the_runway_example_is_served_unchanged_as_runways_docs_say(example):
    code = EXAMPLE.read_text().split('"""', 2)[2]  # after the module's docstring
    assert "modelcloud" not in code and "algolink" not in code.lower()
    assert example.get("/healthcheck").json() == {"status": "RUNNING", "ongoing": 0}
    meta = example.get("/meta").json()
    options = {o["name"]: o for o in meta["options"]}
    assert {k: o["default"] for k, o in options.items()} == {
        "greeting": "",
        "scale": 1,
        "shout": False,
        "size": 8,
    }
    assert options["size"]["oneOf"] == [8, 16, 32]
    commands = {c["name"]: c for c in meta["commands"]}
    assert [i["name"] for i in commands["paint"]["inputs"]] == ["fill", "label text"]
    assert commands["paint"]["inputs"][0]["type"] == "color"
    assert commands["count"]["inputs"][0]["oneOf"] == [2, 4, 8]
    # POST /<command> with the inputs as JSON answers the outputs as JSON (Runway's protocol)
    r = example.post("/paint", json={"fill": "#3366cc", "label text": "sky"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["caption"] == "sky" and out["dark"] is True and out["complement"] == "#cc9933"
    assert out["image"].startswith("data:image/jpeg;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(out["image"].split(",", 1)[1])))
    assert img.size == (8, 8)  # size 8 x scale 1, the implicit defaults
    r = example.post(
        "/paint",
        json={"fill": "#3366cc", "label text": "sky"},
        headers={"X-Runway-Output-Format": "image=PNG"},
    )
    assert r.json()["image"].startswith("data:image/png;base64,")
    r = example.post("/paint", json={"fill": "blue", "label text": "sky"})
    assert r.status_code == 400 and r.json()["field"] == "fill"
    r = example.post(
        "/paint",
        data=gzip.compress(b'{"fill": "#ffffff", "label text": "snow"}'),
        headers={"Content-Encoding": "gzip"},
    )
    assert r.json()["dark"] is False and r.json()["caption"] == "snow"
    # POST /setup with new options, as Runway's app does
    r = example.post("/setup", json={"greeting": "hello", "shout": True, "size": 16, "scale": 2})
    assert r.json() == {"success": True}, r.text
    out = example.post("/paint", json={"fill": "#000000", "label text": "night"}).json()
    assert out["caption"] == "HELLO NIGHT"
    assert Image.open(io.BytesIO(base64.b64decode(out["image"].split(",", 1)[1]))).size == (32, 32)
    r = example.post("/setup", json={"size": 12})
    assert r.status_code == 400 and r.json()["field"] == "size"


def test_the_runway_examples_generator_answers_its_last_outputs_to_a_plain_post(example):
    """Runway's documented behaviour for a command that yields: a plain POST gets the outputs of the
    last yield. (Generator commands are built on the i17s branch: this passes once it is merged.)"""
    r = example.post("/count", json={"steps": 4})
    assert r.status_code == 200, r.text
    assert r.json() == {"count": 4, "done": True}


def test_the_runway_example_runs_on_a_hub_unchanged(tmp_path):
    # the model's folder as Runway laid it out: runway_model.py (and a runway.yml the hub does not read)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(EXAMPLE, bundle / "runway_model.py")
    (bundle / "runway.yml").write_text(
        "version: 0.1\npython: 3.6\nentrypoint: python runway_model.py\n"
    )
    hub = Hub(tmp_path / "hub").start()
    try:
        hub.ensure_group("rw", "g")
        r = hub.register("rw", "g", "painter", bundle)
        assert r.status_code == 201, r.text
        assert hub.publish("rw", "painter").status_code == 202
        hub.wait_version("rw", "painter", 1, timeout=120)
        r = hub.serve(
            "rw/painter/paint",
            data=gzip.compress(b'{"fill": "#3366cc", "label text": "sky"}'),
            headers={"Content-Encoding": "gzip", "X-Runway-Output-Format": "image=PNG"},
        )
        assert r.status_code == 200, r.text + hub.logs("rw", "painter", 1)
        out = r.json()
        assert out["caption"] == "sky" and out["complement"] == "#cc9933"
        assert out["image"].startswith("data:image/png;base64,")
        # multipart through the hub, a field name with a space
        r = hub.serve(
            "rw/painter/paint", files={"fill": (None, "#ffffff"), "label text": (None, "form")}
        )
        assert r.json()["caption"] == "form" and r.json()["dark"] is False, r.text
        r = hub.serve("rw/painter/paint", json={"fill": "nope", "label text": "x"})
        assert r.status_code == 400 and r.json()["field"] == "fill"
        assert hub.version("rw", "painter", 1)["manifest"]["options"][3]["oneOf"] == [8, 16, 32]
    finally:
        hub.stop()
