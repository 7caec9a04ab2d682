"""The test form, driven headlessly: build it from a real command's spec, set the widgets as a browser
would, click Run and read what it shows. ipywidgets needs no frontend for this (outside a kernel its
comm is a no-op), so these tests run without a browser or a kernel.
"""

from __future__ import annotations

import base64
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pytest
from PIL import Image

import modelcloud
from algolink_jupyter import examples
from algolink_jupyter.widgets import CommandForm, build_form, for_command
from modelcloud import Registry
from modelcloud.data_types import number

#: Commands declared on a registry; the HTTP replay test runs the very same source in a subprocess.
DECLARE = """
import os
import numpy as np
from PIL import Image, ImageOps
from modelcloud.data_types import (any as any_type, array, boolean, category, directory, file, image,
    image_bounding_box, image_landmarks, image_point, number, segmentation, text, vector)

LABELS = {"background": 0, "cat": 1, "dog": 2}
COLORS = {"background": [0, 0, 0], "cat": [255, 0, 0], "dog": [0, 0, 255]}


def declare(reg):
    @reg.command("invert", inputs={"photo": image(channels=3, description="Any photo")},
                 outputs={"photo": image(channels=3, default_output_format="PNG"),
                          "size": text()},
                 description="Invert the colours")
    def invert(model, inputs):
        img = inputs["photo"]
        return {"photo": ImageOps.invert(img), "size": f"{img.width}x{img.height}"}

    @reg.command("everything", inputs={
        "name": text(default="Ada", max_length=5, description="Who to greet"),
        "k": number(default=3, min=1, max=10, step=1),
        "ratio": number(default=0.5, min=0, max=1, step=0.25),
        "scale": number(default=2.5, max=100),
        "loud": boolean(default=False),
        "style": category(choices=["plain", "fancy"], default="plain"),
        "z": vector(length=4, sampling_mean=10, sampling_std=0.001),
        "tags": array(item_type=text(), min_length=1, max_length=3, default=["a"]),
        "point": image_point(),
        "box": image_bounding_box(),
        "pose": image_landmarks(2, labels=["left", "right"]),
        "extra": any_type(default=None),
        "photo": image(channels=1),
        "mask": segmentation(label_to_id=LABELS, label_to_color=COLORS),
        "weights": file(extension=".txt"),
        "folder": directory(),
    }, outputs={"summary": any_type(), "greeting": text(), "twice": number(),
                "loud": boolean(), "style": category(choices=["plain", "fancy"])})
    def everything(model, inputs):
        greeting = f"Hello, {inputs['name']}!"
        with open(inputs["weights"]) as f:
            weights = f.read()
        summary = {
            "k": inputs["k"], "ratio": inputs["ratio"], "scale": inputs["scale"],
            "z_sum": round(float(np.sum(inputs["z"])), 3), "tags": inputs["tags"],
            "point": inputs["point"], "box": inputs["box"], "pose": inputs["pose"],
            "extra": inputs["extra"], "photo": [inputs["photo"].mode, *inputs["photo"].size],
            "mask_ids": sorted(np.unique(inputs["mask"]).tolist()),
            "weights": weights,
            "weights_name": os.path.basename(inputs["weights"]),
            "folder": sorted(os.listdir(inputs["folder"])),
        }
        return {"summary": summary, "greeting": greeting.upper() if inputs["loud"] else greeting,
                "twice": inputs["k"] * 2, "loud": inputs["loud"], "style": inputs["style"]}

    @reg.command("segment", inputs={"photo": image()},
                 outputs={"mask": segmentation(label_to_id=LABELS, label_to_color=COLORS),
                          "report": file(), "html": text()})
    def segment(model, inputs):
        ids = np.zeros((inputs["photo"].height, inputs["photo"].width), dtype=np.uint8)
        ids[:, 1:] = 2
        path = os.path.join(model, "report.txt")
        with open(path, "w") as f:
            f.write("two labels")
        return {"mask": ids, "report": path, "html": "<b>bold</b> & co"}

    @reg.command("boom", inputs={"x": number(default=1)}, outputs={"y": number()})
    def boom(model, inputs):
        raise ValueError("the model broke")

    @reg.command("nothing", inputs={}, outputs={})
    def nothing(model, inputs):
        return None
"""


def declare(registry: Registry) -> Registry:
    namespace: dict = {}
    exec(compile(DECLARE, "declare_commands.py", "exec"), namespace)
    namespace["declare"](registry)
    return registry


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = declare(Registry())
    reg.set_model(str(tmp_path))  # the "model" of these commands is a scratch folder
    return reg


# -- building blocks -------------------------------------------------------------------------------------
def png(size=(4, 3), color=(10, 20, 30), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def upload(widget: widgets.FileUpload, name: str, content: bytes, mime: str = "") -> None:
    """What the browser sends when a file is chosen: FileUpload's frontend state."""
    widget.set_state(
        {
            "value": [
                {
                    "name": name,
                    "type": mime,
                    "size": len(content),
                    "content": memoryview(content),
                    "last_modified": 1_700_000_000_000,
                }
            ]
        }
    )


def zip_of(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def image_of(widget: widgets.Image) -> Image.Image:
    img = Image.open(io.BytesIO(widget.value))
    img.load()
    return img


def structure(w: widgets.Widget) -> tuple:
    """A widget tree as comparable data: class, the traits a user sees, and children."""
    keys = (
        "description",
        "value",
        "options",
        "min",
        "max",
        "step",
        "accept",
        "placeholder",
        "tooltip",
        "disabled",
        "format",
    )
    traits = tuple((k, repr(getattr(w, k))) for k in keys if w.has_trait(k))
    children = tuple(structure(c) for c in getattr(w, "children", ()))
    return (type(w).__name__, traits, children)


def fill_everything(form: CommandForm) -> None:
    w = form.input_widgets
    w["z"].value = json.dumps([1, 2, 3, 4])
    w["point"].value = "[0.1, 0.9]"
    w["box"].value = "[0.1, 0.2, 0.3, 0.4]"
    w["pose"].value = "[[0, 0], [1, 1]]"
    w["extra"].value = '{"nested": [1, {"deep": true}]}'
    upload(w["photo"], "gray.png", png((5, 7), 128, "L"), "image/png")
    mask = Image.new("RGB", (3, 2), (0, 0, 0))
    mask.putpixel((0, 0), (255, 0, 0))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    upload(w["mask"], "mask.png", buf.getvalue(), "image/png")
    upload(w["weights"], "weights.txt", b"w=1", "text/plain")
    upload(w["folder"], "data.zip", zip_of({"a.txt": "1", "sub/b.txt": "2"}), "application/zip")


# -- the form as a function of the spec --------------------------------------------------------------
def test_widgets_follow_the_input_types(registry: Registry) -> None:
    form = for_command(registry, "everything")
    w = form.input_widgets
    assert list(w) == [t["name"] for t in registry.get_command("everything").to_dict()["inputs"]]

    assert isinstance(w["name"], widgets.Textarea) and w["name"].value == "Ada"
    assert w["name"].tooltip == "Who to greet"
    assert "at most 5 characters" in w["name"].placeholder

    assert isinstance(w["k"], widgets.IntSlider)
    assert (w["k"].value, w["k"].min, w["k"].max, w["k"].step) == (3, 1, 10, 1)
    assert isinstance(w["ratio"], widgets.FloatSlider)
    assert (w["ratio"].value, w["ratio"].min, w["ratio"].max, w["ratio"].step) == (0.5, 0, 1, 0.25)
    assert isinstance(w["scale"], widgets.FloatText) and w["scale"].value == 2.5  # only a max

    assert isinstance(w["loud"], widgets.Checkbox) and w["loud"].value is False
    assert isinstance(w["style"], widgets.Dropdown)
    assert (w["style"].options, w["style"].value) == (("plain", "fancy"), "plain")

    assert isinstance(w["z"], widgets.Textarea) and json.loads(w["z"].value) == [0, 0, 0, 0]
    assert json.loads(w["tags"].value) == ["a"]
    assert json.loads(w["point"].value) == [0.5, 0.5]
    assert json.loads(w["box"].value) == [0.25, 0.25, 0.75, 0.75]
    assert json.loads(w["pose"].value) == [[0.5, 0.5], [0.5, 0.5]]
    assert w["extra"].value == ""  # default None: left empty, the input is omitted

    for name in ("photo", "mask"):
        assert isinstance(w[name], widgets.FileUpload) and w[name].accept == "image/*"
        assert isinstance(form.previews[name], widgets.Image)
    assert w["weights"].accept == ".txt"
    assert ".zip" in w["folder"].accept
    assert not w["photo"].multiple

    assert form.run_button.description == "Run"
    assert form.save_button.disabled  # nothing to save before a run
    assert form.error.value == "" and form.latency.value == ""
    assert form.output_widgets == {} and form.output_box.children == ()


def test_the_form_is_a_pure_function_of_the_spec(registry: Registry) -> None:
    for name in registry.commands:
        spec = registry.get_command(name).to_dict()
        spec_copy = json.loads(json.dumps(spec))  # the spec as the manifest carries it

        def run(raw: dict) -> dict:
            raise AssertionError("building a form must not run the command")

        first = build_form(spec, run, lambda i, o: None)
        second = build_form(spec_copy, lambda raw: {}, lambda i, o: None)
        assert structure(first) == structure(second), name
        assert list(first.input_widgets) == list(second.input_widgets)
        assert first.model_id != second.model_id  # two forms, not one shared widget


def test_a_form_without_save_has_no_save_button(registry: Registry) -> None:
    spec = registry.get_command("nothing").to_dict()
    form = build_form(spec, lambda raw: registry.run_command("nothing", raw))
    assert form.save_button.layout.display == "none"
    assert "takes no inputs" in form.children[1].value
    form.run_button.click()
    assert form.error.value == ""
    assert "no outputs" in form.output_box.children[0].value
    assert form.save_example() is None


# -- running ----------------------------------------------------------------------------------------------
def test_an_image_runs_and_comes_back_as_an_image(registry: Registry) -> None:
    form = for_command(registry, "invert")
    content = png((4, 3), (10, 20, 30))
    upload(form.input_widgets["photo"], "small.png", content, "image/png")
    assert form.previews["photo"].value == content  # the preview shows the upload at once
    assert form.previews["photo"].format == "png"

    form.run_button.click()

    assert form.error.value == "", form.error_message
    out = form.output_widgets["photo"]
    assert isinstance(out, widgets.Image) and out.format == "png"
    img = image_of(out)
    assert img.size == (4, 3)
    assert (np.asarray(img.convert("RGB")) == (245, 235, 225)).all()
    assert form.output_widgets["size"].value.endswith(">4x3</div>")
    assert re.fullmatch(r"\d+\.\d ms|\d+\.\d\d s", form.latency.value)
    assert form.last_inputs["photo"].startswith("data:image/png;base64,")
    assert base64.b64decode(form.last_inputs["photo"].split(",", 1)[1]) == content
    assert form.last_outputs["photo"].startswith("data:image/png;base64,")
    assert not form.save_button.disabled
    assert form.run_button.description == "Run" and not form.run_button.disabled


def test_every_input_type_reaches_the_command(registry: Registry) -> None:
    form = for_command(registry, "everything")
    fill_everything(form)
    form.input_widgets["k"].value = 4
    form.input_widgets["ratio"].value = 0.75
    form.input_widgets["scale"].value = 7.0
    form.input_widgets["loud"].value = True
    form.input_widgets["style"].value = "fancy"
    form.input_widgets["name"].set_state({"value": "Grace"})  # as the browser sends a keystroke

    form.run_button.click()

    assert form.error.value == "", form.error_message
    summary = form.last_outputs["summary"]
    assert summary == {
        "k": 4,
        "ratio": 0.75,
        "scale": 7,
        "z_sum": 10.0,
        "tags": ["a"],
        "point": [0.1, 0.9],
        "box": [0.1, 0.2, 0.3, 0.4],
        "pose": [[0.0, 0.0], [1.0, 1.0]],
        "extra": {"nested": [1, {"deep": True}]},
        "photo": ["L", 5, 7],
        "mask_ids": [0, 1],
        "weights": "w=1",
        "weights_name": "weights.txt",
        "folder": ["a.txt", "sub"],
    }
    # The wire values are what an HTTP client sends: plain JSON.
    assert json.loads(json.dumps(form.last_inputs)) == form.last_inputs
    assert isinstance(form.last_inputs["k"], int) and isinstance(form.last_inputs["scale"], int)
    assert form.last_inputs["ratio"] == 0.75
    assert form.last_inputs["weights"]["filename"] == "weights.txt"
    assert base64.b64decode(form.last_inputs["weights"]["data"]) == b"w=1"

    shown = form.output_widgets
    assert shown["greeting"].value == '<div style="white-space: pre-wrap">HELLO, GRACE!</div>'
    assert shown["twice"].value == "<code>8</code>"
    assert shown["loud"].value == "<code>true</code>"
    assert shown["style"].value == '<code>"fancy"</code>'
    pretty = shown["summary"].value
    assert pretty.startswith("<pre>") and "&quot;" not in pretty
    assert json.loads(pretty[len("<pre>") : -len("</pre>")]) == summary
    assert len(form.output_box.children) == 5


def test_outputs_render_by_type_and_are_escaped(registry: Registry) -> None:
    form = for_command(registry, "segment")
    upload(form.input_widgets["photo"], "p.png", png((3, 2)), "image/png")
    form.run_button.click()
    assert form.error.value == "", form.error_message

    mask = image_of(form.output_widgets["mask"])
    assert mask.mode == "P"
    assert np.asarray(mask).tolist() == [[0, 2, 2], [0, 2, 2]]  # the ids survive
    assert mask.convert("RGB").getpixel((1, 0)) == (0, 0, 255)  # painted with the dog's colour

    assert form.output_widgets["html"].value == (
        '<div style="white-space: pre-wrap">&lt;b&gt;bold&lt;/b&gt; &amp; co</div>'
    )
    link = form.output_widgets["report"].value
    assert link.startswith('<a download="file" href="data:text/plain;base64,')
    assert base64.b64encode(b"two labels").decode() in link


def test_an_input_widget_set_like_the_browser_does(registry: Registry) -> None:
    form = for_command(registry, "everything")
    fill_everything(form)
    form.input_widgets["k"].set_state({"value": 9})
    form.input_widgets["style"].set_state({"index": 1})
    form.input_widgets["loud"].set_state({"value": True})
    form.run_button.click()
    assert form.error.value == "", form.error_message
    assert form.last_outputs["twice"] == 18
    assert form.last_outputs["style"] == "fancy"
    assert form.last_outputs["greeting"] == "HELLO, ADA!"


# -- errors -----------------------------------------------------------------------------------------------
def test_an_invalid_input_shows_the_sentence_and_marks_the_field(registry: Registry) -> None:
    form = for_command(registry, "everything")
    fill_everything(form)
    form.input_widgets["name"].value = "Bartholomew"
    form.run_button.click()

    sentence = "Input 'name' must be at most 5 characters long, got 11."
    assert form.error_message == sentence
    assert form.error_field == "name"
    assert sentence in form.error.value
    assert "algolink-invalid" in form.input_widgets["name"]._dom_classes
    assert form.input_widgets["name"].layout.border
    assert form.input_widgets["k"].layout.border is None  # only the field at fault
    assert form.output_widgets == {} and form.save_button.disabled

    form.input_widgets["name"].value = "Bart"
    form.run_button.click()
    assert form.error.value == "" and form.error_field is None
    assert "algolink-invalid" not in form.input_widgets["name"]._dom_classes
    assert form.input_widgets["name"].layout.border is None
    assert form.last_outputs["greeting"] == "Hello, Bart!"


def test_a_number_out_of_range_is_refused_by_the_same_validation_as_http(
    registry: Registry,
) -> None:
    form = for_command(registry, "everything")
    fill_everything(form)
    form.input_widgets["scale"].value = 250
    form.run_button.click()
    assert form.error_message == "Input 'scale' must be at most 100, got 250."
    assert form.error_field == "scale"


def test_json_that_does_not_parse_names_the_input(registry: Registry) -> None:
    form = for_command(registry, "everything")
    fill_everything(form)
    form.input_widgets["z"].value = "[1, 2,"
    form.run_button.click()
    assert form.error_message.startswith("Input 'z' is not valid JSON (line 1, column 7)")
    assert "[0, 0, 0, 0]" in form.error_message  # says what to write
    assert form.error_field == "z"
    assert form.input_widgets["z"].layout.border
    assert registry.last_command_at is None  # refused before the command was called
    assert form.latency.value == ""


def test_a_missing_upload_says_the_input_is_missing(registry: Registry) -> None:
    form = for_command(registry, "invert")
    form.run_button.click()
    assert form.error_message.startswith("Input 'photo' is missing")
    assert form.error_field == "photo"
    assert "algolink-invalid" in form.input_widgets["photo"]._dom_classes


def test_bytes_that_are_not_an_image_are_refused(registry: Registry) -> None:
    form = for_command(registry, "invert")
    upload(form.input_widgets["photo"], "notes.png", b"not a png at all", "image/png")
    form.run_button.click()
    assert form.error_message.startswith("Input 'photo' is not an image that can be read")


def test_a_raising_command_shows_error_during_inference(registry: Registry) -> None:
    form = for_command(registry, "boom")
    form.run_button.click()
    assert form.error_message == "Error during inference: ValueError: the model broke"
    assert form.error_field is None
    assert "Error during inference: ValueError: the model broke" in form.error.value
    assert "<details><summary>Traceback</summary>" in form.error.value
    assert "the model broke" in form.error.value.split("<details>")[1]
    assert form.save_button.disabled and form.output_widgets == {}
    assert form.latency.value  # it ran, and took this long to fail


def test_a_failure_after_a_success_clears_the_outputs(registry: Registry) -> None:
    form = for_command(registry, "invert")
    upload(form.input_widgets["photo"], "a.png", png(), "image/png")
    form.run_button.click()
    assert form.output_widgets and not form.save_button.disabled
    good_inputs = form.last_inputs

    upload(form.input_widgets["photo"], "b.png", b"garbage", "image/png")
    form.run_button.click()
    assert form.error_message
    assert form.output_widgets == {} and form.output_box.children == ()
    assert form.save_button.disabled
    assert form.last_inputs == good_inputs  # the last SUCCESSFUL run


def test_any_other_exception_shows_its_type_and_message(registry: Registry) -> None:
    spec = registry.get_command("boom").to_dict()

    def run(raw: dict) -> dict:
        raise ConnectionError("the kernel went away")

    form = build_form(spec, run)
    form.run_button.click()
    assert form.error_message == "ConnectionError: the kernel went away"
    assert "<details>" not in form.error.value


def test_a_model_that_is_not_set_up_says_so(tmp_path: Path) -> None:
    reg = declare(Registry())  # no setup has run: the registry is STARTING
    form = for_command(reg, "boom", examples_dir=tmp_path)
    form.run_button.click()
    assert form.error_message.startswith("The model is still setting up")


def test_a_redeclared_command_runs_its_new_function(registry: Registry) -> None:
    form = for_command(registry, "boom")

    @registry.command("boom", inputs={"x": number(default=1)}, outputs={"y": number()})
    def fixed(model, inputs):
        return inputs["x"] + 41

    form.run_button.click()
    assert form.error.value == "" and form.last_outputs == {"y": 42}


def test_unknown_command_raises_the_registry_error(registry: Registry) -> None:
    with pytest.raises(modelcloud.ModelCloudError, match="There is no command 'nope'"):
        for_command(registry, "nope")


# -- vectors ----------------------------------------------------------------------------------------------
def test_random_vector_samples_the_declared_distribution(registry: Registry) -> None:
    form = for_command(registry, "everything")
    row = next(
        c
        for c in form.children
        if isinstance(c, widgets.VBox) and form.input_widgets["z"] in c.children
    )
    random = next(c for c in row.children if isinstance(c, widgets.Button))
    assert random.description == "Random"
    random.click()
    z = json.loads(form.input_widgets["z"].value)
    assert len(z) == 4 and all(abs(v - 10) < 0.1 for v in z)
    random.click()
    assert json.loads(form.input_widgets["z"].value) != z


# -- examples ---------------------------------------------------------------------------------------------
def test_save_as_example_records_what_ran(registry: Registry, tmp_path: Path) -> None:
    where = tmp_path / "examples"
    form = for_command(registry, "everything", examples_dir=where)
    fill_everything(form)
    form.save_button.click()  # disabled: nothing ran yet
    assert not where.exists()

    form.run_button.click()
    assert form.error.value == "", form.error_message
    assert not form.save_button.disabled
    form.save_button.click()

    path = where / "everything" / "001.json"
    assert path.is_file()
    assert str(path) in form.saved.value
    assert form.save_button.disabled  # saved once per run
    (saved,) = examples.load("everything", where)
    assert saved["command"] == "everything"
    assert saved["inputs"] == form.last_inputs
    assert saved["outputs"] == form.last_outputs
    assert re.match(r"\d{4}-\d\d-\d\dT", saved["created"])

    form.input_widgets["k"].value = 5
    form.run_button.click()
    assert form.saved.value == ""
    form.save_button.click()
    assert (where / "everything" / "002.json").is_file()
    assert [e["outputs"]["twice"] for e in examples.load("everything", where)] == [6, 10]

    other = for_command(registry, "invert", examples_dir=where)
    upload(other.input_widgets["photo"], "a.png", png(), "image/png")
    other.run_button.click()
    other.save_button.click()
    assert [e["command"] for e in examples.load(directory=where)] == [
        "everything",
        "everything",
        "invert",
    ]


def test_recorded_examples_fill_the_form_in_one_click(registry: Registry, tmp_path: Path) -> None:
    where = tmp_path / "examples"
    first = for_command(registry, "everything", examples_dir=where)
    assert first.examples_box.children == ()  # none recorded yet: no buttons
    fill_everything(first)
    first.run_button.click()
    first.save_button.click()
    assert [b.description for b in first.example_buttons] == ["Example 1"]  # offered at once
    (recorded,) = examples.load("everything", where)

    form = for_command(registry, "everything", examples_dir=where)
    assert [b.description for b in form.example_buttons] == ["Example 1"]
    form.input_widgets["k"].value = 7
    form.input_widgets["name"].value = "Bo"
    form.example_buttons[0].click()
    # Every input is back as recorded, files and images included (previewed as if chosen).
    assert form.wire_inputs() == recorded["inputs"]
    assert form.previews["photo"].layout.display == "" and form.previews["photo"].value
    assert "bytes" in form.previews["weights"].value
    form.run_button.click()
    assert form.error.value == "", form.error_message
    assert form.last_outputs == recorded["outputs"]
    # A file chosen afterwards wins over the example's.
    upload(form.input_widgets["photo"], "b.png", png((6, 2), 128, mode="L"), "image/png")
    assert form.wire_inputs()["photo"] != recorded["inputs"]["photo"]
    form.run_button.click()
    assert form.last_outputs["summary"]["photo"] == ["L", 6, 2]


def test_a_failing_save_shows_its_error(registry: Registry, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the examples folder should be")
    form = for_command(registry, "boom", examples_dir=blocker)

    @registry.command("boom", inputs={"x": number(default=1)}, outputs={"y": number()})
    def ok(model, inputs):
        return 1

    form.run_button.click()
    form.save_button.click()
    assert form.error_message.startswith(("FileExistsError", "NotADirectoryError"))
    assert form.saved.value == ""


def test_examples_are_numbered_without_overwriting(tmp_path: Path) -> None:
    assert examples.load(directory=tmp_path / "none") == []
    assert examples.load("cmd", tmp_path / "none") == []
    first = examples.save("cmd", {"x": 1}, {"y": 2}, tmp_path)
    (tmp_path / "cmd" / "007.json").write_text(
        json.dumps({"command": "cmd", "inputs": {"x": 7}, "outputs": {}, "created": "then"})
    )
    (tmp_path / "cmd" / "notes.txt").write_text("not an example")
    after = examples.save("cmd", {"x": 8}, {"y": 16}, str(tmp_path))
    assert (first.name, after.name) == ("001.json", "008.json")
    assert [e["inputs"]["x"] for e in examples.load("cmd", tmp_path)] == [1, 7, 8]
    (tmp_path / "cmd" / "999.json").write_text(
        json.dumps({"command": "cmd", "inputs": {"x": 999}, "outputs": {}, "created": "then"})
    )
    assert examples.save("cmd", {"x": 1000}, {}, tmp_path).name == "1000.json"
    # Numeric order, not text order ("1000" < "999" as text).
    assert [e["inputs"]["x"] for e in examples.load("cmd", tmp_path)] == [1, 7, 8, 999, 1000]
    with pytest.raises(ValueError, match="letters, digits"):
        examples.save("../escape", {}, {}, tmp_path)
    with pytest.raises(TypeError):
        examples.save("cmd", {"x": object()}, {}, tmp_path)


def test_examples_default_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = examples.save("cmd", {"a": "b"}, {"c": [1]})
    assert path == Path("algolink_examples") / "cmd" / "001.json"
    (example,) = examples.load()
    assert (example["command"], example["inputs"], example["outputs"]) == (
        "cmd",
        {"a": "b"},
        {"c": [1]},
    )


def test_a_saved_example_replays_over_http(
    registry: Registry, tmp_path: Path, model_server
) -> None:
    """The recorded wire values are exactly what a real server takes and answers."""
    where = tmp_path / "examples"
    for name, fill in (
        ("everything", fill_everything),
        ("invert", lambda f: upload(f.input_widgets["photo"], "a.png", png((6, 5)), "image/png")),
    ):
        form = for_command(registry, name, examples_dir=where)
        fill(form)
        form.run_button.click()
        assert form.error.value == "", form.error_message
        form.save_button.click()

    server = model_server(
        DECLARE
        + "\nimport modelcloud, tempfile\n"
        + "modelcloud.setup(lambda: tempfile.mkdtemp())\n"
        + "declare(modelcloud.default_registry)\n"
        + "modelcloud.run(host='127.0.0.1')\n"
    )
    for example in examples.load(directory=where):
        answer = server.post("/" + example["command"], json=example["inputs"])
        assert answer.status_code == 200, answer.text
        assert answer.json() == example["outputs"]


def test_tar_archives_upload_as_directories(registry: Registry) -> None:
    form = for_command(registry, "everything")
    fill_everything(form)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"hi"
        info = tarfile.TarInfo("only.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    upload(form.input_widgets["folder"], "data.tar.gz", buf.getvalue())
    assert "data.tar.gz" in form.previews["folder"].value
    form.run_button.click()
    assert form.error.value == "", form.error_message
    assert form.last_outputs["summary"]["folder"] == ["only.txt"]
