"""The test form shown under every command cell (and by ``%algolink test NAME``).

The form is a pure function of a command's spec (``Command.to_dict()``: name, description, inputs and
outputs as type dicts): one editor per input, a Run button, the outputs rendered by type, the latency and
errors as a sentence. Every editor turns its widget's value into the WIRE value an HTTP client would send
(a data URI for an image, ``{"filename", "data"}`` for a file, JSON for the rest), and ``run`` takes
those, so the form exercises the same validation as a request. Nothing here needs a browser: tests set
widget values (or ``set_state`` as the frontend does), ``click()`` the buttons and read the widgets.
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

import ipywidgets as widgets
import numpy as np

from modelcloud.data_types import decode_base64
from modelcloud.errors import InferenceError, InputError, ModelCloudError

from .. import examples
from ..translation import N_, Translator, kernel_translator

#: What an editor returns when its input should not be sent at all (no file chosen, an empty JSON
#: box): the registry then uses the input's default or says that it is missing, as it would over HTTP.
OMIT: Any = object()

_INVALID_CLASS = "algolink-invalid"
_INVALID_BORDER = "2px solid #d93025"
_ERROR_STYLE = "color: #b3261e; margin: 4px 0"

_IMAGE_TYPES = ("image", "segmentation")
_UPLOAD_TYPES = ("image", "segmentation", "file", "directory")
_SCALAR_OUTPUTS = ("text", "number", "boolean", "category")
_ARCHIVES = ".zip,.tar,.tar.gz,.tgz"
_CHANNELS = {1: N_("grayscale"), 3: N_("RGB"), 4: N_("RGBA")}
#: The English of the forms built outside a kernel's language choice (``build_form(tr=...)``).
ENGLISH = Translator("en")


# -- helpers ---------------------------------------------------------------------------------------------
def _esc(value: Any) -> str:
    return html.escape(str(value), quote=False)


def _is_whole(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()


def _format_latency(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 1000 else f"{seconds:.2f} s"


def _decimals(step: float) -> int:
    """How many decimals a slider shows for ``step`` (0.25 -> 2, 1 -> 0, 1e-3 -> 3)."""
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def sample_value(ty: dict) -> Any:
    """A valid-looking wire value to prefill a JSON editor with, or OMIT when there is none."""
    if ty.get("default") is not None:
        return ty["default"]
    kind = ty.get("type")
    if kind == "text":
        return "x" * (ty.get("minLength") or 0)
    if kind == "number":
        for key in ("min", "max"):
            if ty.get(key) is not None:
                return ty[key]
        return 0
    if kind == "boolean":
        return False
    if kind == "category":
        return (ty.get("oneOf") or [None])[0]
    if kind == "vector":
        return [0] * int(ty.get("length") or 0)
    if kind == "image_point":
        return [0.5, 0.5]
    if kind == "image_bounding_box":
        return [0.25, 0.25, 0.75, 0.75]
    if kind == "image_landmarks":
        return [[0.5, 0.5] for _ in range(int(ty.get("length") or 0))]
    if kind == "array":
        item = sample_value(ty.get("itemType") or {})
        return [] if item is OMIT else [item] * int(ty.get("minLength") or 0)
    return OMIT


def _hint(ty: dict, tr: Translator = ENGLISH) -> str:
    """A short note of what the type accepts, shown beside the input's name."""
    kind = ty.get("type")
    parts: list = []
    if kind == "text":
        lo, hi = ty.get("minLength") or 0, ty.get("maxLength")
        if hi is not None:
            parts.append(
                tr("{lo} to {hi} characters", lo=lo, hi=hi)
                if lo
                else tr("at most {hi} characters", hi=hi)
            )
        elif lo:
            parts.append(tr("at least {lo} characters", lo=lo))
    elif kind == "number":
        lo, hi, step = ty.get("min"), ty.get("max"), ty.get("step")
        if lo is not None and hi is not None:
            parts.append(tr("{lo} to {hi}", lo=format(lo, "g"), hi=format(hi, "g")))
        elif lo is not None:
            parts.append(tr("at least {lo}", lo=format(lo, "g")))
        elif hi is not None:
            parts.append(tr("at most {hi}", hi=format(hi, "g")))
        if step is not None:
            parts.append(tr("step {step}", step=format(step, "g")))
    elif kind in _IMAGE_TYPES:
        if kind == "image" and ty.get("channels") in _CHANNELS:
            parts.append(tr(_CHANNELS[ty["channels"]]))
        w, h = ty.get("width"), ty.get("height")
        if w and h:
            parts.append(tr("{width}x{height} pixels", width=w, height=h))
        else:
            sizes = (
                ("width", N_("{n} pixels wide")),
                ("height", N_("{n} pixels high")),
                ("minWidth", N_("at least {n} pixels wide")),
                ("minHeight", N_("at least {n} pixels high")),
                ("maxWidth", N_("at most {n} pixels wide")),
                ("maxHeight", N_("at most {n} pixels high")),
            )
            for key, what in sizes:
                if ty.get(key):
                    parts.append(tr(what, n=ty[key]))
    elif kind == "file" and ty.get("extension"):
        parts.append(tr("{extensions} file", extensions=tr(" or ").join(ty["extension"])))
    elif kind == "directory":
        parts.append(tr("a .zip or .tar.gz of the directory"))
    elif kind == "vector":
        parts.append(tr("{length} numbers, JSON", length=ty.get("length")))
    elif kind == "array":
        item = (ty.get("itemType") or {}).get("type", "any")
        lo, hi = ty.get("minLength") or 0, ty.get("maxLength")
        if hi is not None:
            parts.append(tr("a JSON list of {lo} to {hi} {item} values", lo=lo, hi=hi, item=item))
        elif lo:
            parts.append(tr("a JSON list of at least {lo} {item} values", lo=lo, item=item))
        else:
            parts.append(tr("a JSON list of {item} values", item=item))
    elif kind == "image_point":
        parts.append(tr("[x, y] from 0 to 1, JSON"))
    elif kind == "image_bounding_box":
        parts.append(tr("[xmin, ymin, xmax, ymax] from 0 to 1, JSON"))
    elif kind == "image_landmarks":
        labels = ty.get("labels")
        if labels:
            parts.append(
                tr(
                    "{length} points [x, y] from 0 to 1, JSON: {labels}",
                    length=ty.get("length"),
                    labels=tr(", ").join(labels),
                )
            )
        else:
            parts.append(tr("{length} points [x, y] from 0 to 1, JSON", length=ty.get("length")))
    elif kind == "any":
        parts.append(tr("any JSON value"))
    return tr(", ").join(p for p in parts if p)


def _legend(ty: dict) -> str:
    """Colour swatches of a segmentation's labels."""
    colors = ty.get("labelToColor") or {}
    items = []
    for label, i in (ty.get("labelToId") or {}).items():
        r, g, b = colors.get(label, [0, 0, 0])
        items.append(
            f'<span style="white-space: nowrap; margin-right: 8px">'
            f'<span style="display: inline-block; width: 10px; height: 10px; '
            f'background: rgb({r},{g},{b}); border: 1px solid #888"></span> '
            f"{_esc(label)} = {i}</span>"
        )
    return " ".join(items)


def _image_layout(height: str, **kw: Any) -> widgets.Layout:
    """An image at most ``height`` high, its aspect kept, never stretched to the cell's width."""
    return widgets.Layout(
        width="auto",
        height="auto",
        max_width="100%",
        max_height=height,
        object_fit="contain",
        align_self="flex-start",
        **kw,
    )


def _data_uri_bytes(uri: str) -> tuple:
    """``(bytes, image format)`` of an image data URI, as ``widgets.Image`` wants them."""
    data, mime = decode_base64(uri)
    fmt = mime.split("/", 1)[1] if mime.startswith("image/") else "png"
    return data, fmt


# -- editors: one per input, widget value -> wire value ---------------------------------------------------
class _Editor:
    """The widgets of one input and how its value goes on the wire."""

    def __init__(self, name: str, ty: dict, widget: widgets.Widget, extras: Optional[list] = None):
        self.name = name
        self.type = ty
        self.widget = widget
        self.extras = extras or []
        #: The language of its messages (set by :func:`_editor`).
        self.tr: Translator = ENGLISH

    def wire(self) -> Any:
        return self.widget.value

    def fill(self, value: Any) -> None:
        """Show a recorded example's wire value in the widget."""
        if isinstance(self.widget, widgets.Dropdown) and value not in self.widget.options:
            return
        if isinstance(self.widget, widgets.Checkbox):
            value = value is True or value == "true"
        self.widget.value = value if not isinstance(self.widget, widgets.Textarea) else str(value)


class _NumberEditor(_Editor):
    def fill(self, value: Any) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return
        if isinstance(self.widget, widgets.IntSlider):
            value = int(value) if float(value).is_integer() else value
        self.widget.value = value

    def wire(self) -> Any:
        value = self.widget.value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)  # what a browser's JSON.stringify sends for a whole number
        return value


class _JSONEditor(_Editor):
    def fill(self, value: Any) -> None:
        self.widget.value = json.dumps(value, ensure_ascii=False)

    def wire(self) -> Any:
        text = self.widget.value.strip()
        if not text:
            return OMIT
        try:
            return json.loads(text)
        except ValueError as e:
            tr = self.tr
            where = (
                tr(" (line {line}, column {column})", line=e.lineno, column=e.colno)
                if hasattr(e, "lineno")
                else ""
            )
            example = sample_value(self.type)
            like = (
                tr(", like {example}", example=json.dumps(example)[:60])
                if example is not OMIT
                else ""
            )
            raise InputError(
                tr(
                    "Input {name} is not valid JSON{where}: write it as JSON{like}.",
                    name=repr(self.name),
                    where=where,
                    like=like,
                ),
                field=self.name,
            ) from None


class _UploadEditor(_Editor):
    def __init__(self, name: str, ty: dict, widget: widgets.FileUpload, preview: widgets.Widget):
        super().__init__(name, ty, widget, [preview])
        self.preview = preview
        #: A recorded example's wire value, sent until a file is chosen.
        self.example: Any = None
        widget.observe(self._uploaded_now, names="value")

    def _uploaded_now(self, _change: Any = None) -> None:
        self.example = None
        self._show_preview()

    def fill(self, value: Any) -> None:
        """Take an example's file (a data URI, or ``{"filename", "data"}``) as if it were chosen."""
        self.example = value
        if isinstance(value, dict):
            data = base64.b64decode(value.get("data") or "")
            name = str(value.get("filename") or "example")
        else:
            try:
                data, mime = decode_base64(str(value))
            except ModelCloudError:
                return
            name = "example" + (mimetypes.guess_extension(mime) or "")
        if isinstance(self.preview, widgets.Image):
            fmt = name.rsplit(".", 1)[-1] if "." in name else "png"
            self.preview.format = "jpeg" if fmt == "jpg" else fmt
            self.preview.value = data
            self.preview.layout.display = ""
        else:
            self.preview.value = f"{_esc(name)} ({len(data):,} bytes)"

    def _uploaded(self) -> Optional[dict]:
        value = self.widget.value
        return value[-1] if value else None

    @staticmethod
    def _mime(upload: dict) -> str:
        guessed = mimetypes.guess_type(upload.get("name") or "")[0]
        return upload.get("type") or guessed or "application/octet-stream"

    def _show_preview(self, _change: Any = None) -> None:
        upload = self._uploaded()
        if upload is None:
            if isinstance(self.preview, widgets.Image):
                self.preview.value = b""
                self.preview.layout.display = "none"
            else:
                self.preview.value = ""
            return
        content = bytes(upload["content"])
        if isinstance(self.preview, widgets.Image):
            mime = self._mime(upload)
            self.preview.format = mime.split("/", 1)[1] if mime.startswith("image/") else "png"
            self.preview.value = content
            self.preview.layout.display = ""
        else:
            self.preview.value = f"{_esc(upload.get('name') or 'upload')} ({len(content):,} bytes)"

    def wire(self) -> Any:
        upload = self._uploaded()
        if upload is None:
            return self.example if self.example is not None else OMIT
        content = bytes(upload["content"])
        if self.type.get("type") in _IMAGE_TYPES:
            return f"data:{self._mime(upload)};base64,{base64.b64encode(content).decode('ascii')}"
        return {
            "filename": upload.get("name") or "upload",
            "data": base64.b64encode(content).decode("ascii"),
        }


def _slider_or_box(name: str, ty: dict) -> widgets.Widget:
    lo, hi, step, default = ty.get("min"), ty.get("max"), ty.get("step"), ty.get("default")
    start = default if default is not None else (lo if lo is not None else (hi or 0))
    common = {"continuous_update": False}
    if lo is not None and hi is not None:
        if step is not None and all(_is_whole(v) for v in (lo, hi, step, start)):
            return widgets.IntSlider(
                value=int(start), min=int(lo), max=int(hi), step=int(step), **common
            )
        step = step if step is not None else (hi - lo) / 100 or 1
        return widgets.FloatSlider(
            value=float(start),
            min=float(lo),
            max=float(hi),
            step=float(step),
            readout_format=f".{min(_decimals(step), 6)}f",
            **common,
        )
    # Without both bounds a box takes any number; the registry checks min, max and step on Run.
    box = widgets.FloatText(value=float(start), **common)
    if step is not None:
        box.step = float(step)
    return box


def _editor(name: str, ty: dict, tr: Translator = ENGLISH) -> _Editor:
    editor = _new_editor(name, ty, tr)
    editor.tr = tr
    return editor


def _new_editor(name: str, ty: dict, tr: Translator) -> _Editor:
    kind = ty.get("type")
    default = ty.get("default")
    if kind in _UPLOAD_TYPES:
        if kind in _IMAGE_TYPES:
            accept = "image/*"
            preview: widgets.Widget = widgets.Image(
                format="png", layout=_image_layout("160px", display="none")
            )
        else:
            accept = ",".join(ty.get("extension") or []) if kind == "file" else _ARCHIVES
            preview = widgets.HTML()
        upload = widgets.FileUpload(accept=accept, multiple=False, description=tr("Upload"))
        return _UploadEditor(name, ty, upload, preview)
    if kind == "text":
        return _Editor(
            name,
            ty,
            widgets.Textarea(
                value=default if isinstance(default, str) else "",
                placeholder=_hint(ty, tr) or tr("text"),
                rows=2,
                layout=widgets.Layout(width="100%"),
            ),
        )
    if kind == "number":
        return _NumberEditor(name, ty, _slider_or_box(name, ty))
    if kind == "boolean":
        return _Editor(name, ty, widgets.Checkbox(value=bool(default), indent=False))
    if kind == "category":
        choices = list(ty.get("oneOf") or [])
        return _Editor(
            name,
            ty,
            widgets.Dropdown(options=choices, value=default if default in choices else choices[0]),
        )
    # vector, array, the geometry types, any and whatever comes later: JSON.
    sample = sample_value(ty)
    rows = 2 if kind in ("vector", "image_point", "image_bounding_box") else 4
    box = widgets.Textarea(
        value="" if sample is OMIT else json.dumps(sample),
        placeholder=_hint(ty, tr) or "JSON",
        rows=rows,
        layout=widgets.Layout(width="100%"),
    )
    editor = _JSONEditor(name, ty, box)
    if kind == "vector":
        random = widgets.Button(
            description=tr("Random"), tooltip=tr("Sample N(samplingMean, samplingStd)")
        )

        def draw(_button: Any) -> None:
            mean, std = ty.get("samplingMean", 0), ty.get("samplingStd", 1)
            z = np.random.default_rng().normal(mean, std, int(ty.get("length") or 0))
            box.value = json.dumps([round(float(v), 4) for v in z])

        random.on_click(draw)
        editor.extras.append(random)
    return editor


# -- outputs -------------------------------------------------------------------------------------------
def _output_widget(ty: dict, value: Any, tr: Translator = ENGLISH) -> widgets.Widget:
    kind = ty.get("type")
    if kind in _IMAGE_TYPES and isinstance(value, str):
        try:
            data, fmt = _data_uri_bytes(value)
            return widgets.Image(value=data, format=fmt, layout=_image_layout("320px"))
        except ModelCloudError:
            pass  # not a data URI after all: show it as JSON below
    if kind in _SCALAR_OUTPUTS:
        if kind == "text":
            return widgets.HTML(f'<div style="white-space: pre-wrap">{_esc(value)}</div>')
        return widgets.HTML(f"<code>{_esc(json.dumps(value))}</code>")
    if kind in ("file", "directory") and isinstance(value, str) and value.startswith("data:"):
        size = len(value.split(",", 1)[-1]) * 3 // 4
        link = tr("Download the file") if kind == "file" else tr("Download the directory")
        return widgets.HTML(
            f'<a download="{kind}" href="{html.escape(value)}">{_esc(link)}</a> '
            + _esc(tr("(about {size} bytes)", size=format(size, ",")))
        )
    return widgets.HTML(f"<pre>{_esc(json.dumps(value, indent=2, ensure_ascii=False))}</pre>")


# -- the form --------------------------------------------------------------------------------------------
class CommandForm(widgets.VBox):
    """A command's test form. Build it with :func:`build_form` or :func:`for_command`.

    ``input_widgets``: input name -> the widget that holds its value; ``run_button``, ``save_button``;
    ``output_box`` and ``output_widgets`` (output name -> widget, after a successful run); ``latency``;
    ``error`` (HTML, empty when fine) with ``error_message`` and ``error_field``; ``last_inputs`` and
    ``last_outputs``, the wire values of the last successful run; ``saved`` says where the example went.
    """

    def __init__(
        self,
        spec: dict,
        run: Callable[[dict], dict],
        save: Optional[Callable[[dict, dict], Any]] = None,
        stream: Optional[Callable[[dict, Callable], dict]] = None,
        examples: Optional[list] = None,
        tr: Optional[Translator] = None,
    ):
        #: The language of its texts: the kernel's (:func:`~algolink_jupyter.translation.kernel_language`).
        self.tr = tr if tr is not None else kernel_translator()
        tr = self.tr
        self.spec = spec
        self._run = run
        self._save = save
        self._stream = stream if spec.get("streams") else None
        self._editors = {ty["name"]: _editor(ty["name"], ty, tr) for ty in spec.get("inputs") or []}
        self.input_widgets: dict = {name: e.widget for name, e in self._editors.items()}
        self.previews: dict = {
            name: e.preview for name, e in self._editors.items() if isinstance(e, _UploadEditor)
        }
        self.output_widgets: dict = {}
        self.last_inputs: Optional[dict] = None
        self.last_outputs: Optional[dict] = None
        self.error_message = ""
        self.error_field: Optional[str] = None
        self._marked: list = []

        title = f"<b>{_esc(spec.get('name', ''))}</b>"
        if spec.get("description"):
            title += f" &mdash; {_esc(spec['description'])}"
        rows = [widgets.HTML(title)]
        #: The recorded examples' inputs; a button per example fills the form with them.
        self.examples: list = []
        self.examples_box = widgets.HBox([], layout=widgets.Layout(flex_flow="row wrap"))
        self.examples_box.add_class("algolink-examples")
        self.set_examples(examples or [])
        for name, editor in self._editors.items():
            rows.append(self._input_row(name, editor))
        if not self._editors:
            rows.append(widgets.HTML("<i>" + _esc(tr("This command takes no inputs.")) + "</i>"))

        self.run_button = widgets.Button(description=tr("Run"), button_style="primary", icon="play")
        self.save_button = widgets.Button(
            description=tr("Save as example"),
            icon="save",
            disabled=True,
            tooltip=tr("Record these inputs and outputs; export replays them to verify the bundle"),
        )
        if save is None:
            self.save_button.layout.display = "none"
        self.latency = widgets.Label("")
        self.saved = widgets.HTML("")
        self.error = widgets.HTML("")
        self.output_box = widgets.VBox([])
        #: A command that yields: its progress and its outputs as they come (``progress.value``
        #: in 0..1; ``events``: how many yields the last run showed).
        self.progress = widgets.FloatProgress(
            value=0, min=0, max=1, description="", layout=widgets.Layout(display="none")
        )
        self.events = 0
        self.run_button.on_click(lambda _b: self.run())
        self.save_button.on_click(lambda _b: self.save_example())
        rows += [
            self.examples_box,
            widgets.HBox([self.run_button, self.save_button, self.latency]),
            self.progress,
            self.error,
            self.output_box,
            self.saved,
        ]
        super().__init__(rows)
        self.add_class("algolink-test-form")

    def _input_row(self, name: str, editor: _Editor) -> widgets.Widget:
        ty, tr = editor.type, self.tr
        hint = _hint(ty, tr)
        if ty.get("default") is not None and ty.get("type") not in _UPLOAD_TYPES:
            shown = ty["default"] if isinstance(ty["default"], str) else json.dumps(ty["default"])
            hint = (
                tr("{hint}, default {value}", hint=hint, value=shown)
                if hint
                else tr("default {value}", value=shown)
            )
        label = f"<b>{_esc(name)}</b> <code>{_esc(ty.get('type'))}</code>"
        if hint:
            label += f' <span style="color: #666">{_esc(hint)}</span>'
        if ty.get("description"):
            label += f"<br><span>{_esc(ty['description'])}</span>"
            editor.widget.tooltip = ty["description"]
        parts: list = [widgets.HTML(label), editor.widget, *editor.extras]
        if ty.get("type") == "segmentation" and ty.get("labelToId"):
            parts.append(widgets.HTML(_legend(ty)))
        return widgets.VBox(parts, layout=widgets.Layout(margin="0 0 8px 0"))

    # -- examples ----------------------------------------------------------------------------------
    def set_examples(self, examples: list) -> None:
        """Offer these recorded examples (their inputs, wire values) one click away."""
        self.examples = [e for e in examples if isinstance(e, dict)]
        buttons = []
        for i in range(len(self.examples)):
            button = widgets.Button(
                description=self.tr("Example {n}", n=i + 1),
                tooltip=self.tr("Fill the form with this recorded example's inputs"),
                layout=widgets.Layout(width="auto"),
            )
            button.on_click(lambda _b, i=i: self.fill_example(i))
            buttons.append(button)
        self.example_buttons: list = buttons
        label = widgets.HTML('<span style="color: #666">' + _esc(self.tr("Examples:")) + "</span>")
        self.examples_box.children = (label, *buttons) if buttons else ()

    def fill_example(self, index: int) -> None:
        """What an example's button does: put its inputs in the editors (Run sends them)."""
        self._clear_error()
        for name, value in self.examples[index].items():
            editor = self._editors.get(name)
            if editor is not None and value is not None:
                editor.fill(value)
        for i, button in enumerate(self.example_buttons):
            button.button_style = "info" if i == index else ""

    # -- actions -----------------------------------------------------------------------------------
    def wire_inputs(self) -> dict:
        """The inputs as an HTTP client would POST them; raises InputError for JSON that does not parse."""
        raw = {}
        for name, editor in self._editors.items():
            value = editor.wire()
            if value is not OMIT:
                raw[name] = value
        return raw

    def run(self) -> None:
        """What the Run button does: call the command and show its outputs, or the error."""
        self._clear_error()
        self.saved.value = ""
        self.run_button.disabled = True
        self.run_button.description = self.tr("Running...")
        self.latency.value = ""
        started = None
        try:
            raw = self.wire_inputs()
            started = time.perf_counter()
            outputs = self._run_streaming(raw) if self._stream is not None else self._run(raw)
            elapsed = time.perf_counter() - started
        except Exception as e:  # shown in the form: a click handler has nowhere else to report
            if started is not None:
                self.latency.value = _format_latency(time.perf_counter() - started)
            self._show_error(e)
            self._show_outputs(None)
            self.save_button.disabled = True
            return
        finally:
            self.run_button.disabled = False
            self.run_button.description = self.tr("Run")
        self.latency.value = _format_latency(elapsed)
        self.last_inputs, self.last_outputs = raw, outputs
        self._show_outputs(outputs)
        self.save_button.disabled = self._save is None

    def _run_streaming(self, raw: dict) -> dict:
        """A command that yields: the progress bar and the outputs follow each yield."""
        self.events = 0
        self.progress.value = 0
        self.progress.bar_style = ""
        self.progress.layout.display = None
        self._show_outputs(None)

        def on_event(progress: Optional[float], outputs: Optional[dict]) -> None:
            self.events += 1
            if progress is not None:
                self.progress.value = progress
            if outputs is not None:
                self._show_outputs(outputs)

        try:
            outputs = self._stream(raw, on_event)  # type: ignore[misc]
        except Exception:
            self.progress.bar_style = "danger"
            raise
        self.progress.value = 1
        self.progress.bar_style = "success"
        return outputs

    def save_example(self) -> Optional[Any]:
        """What "Save as example" does: record the last successful run's inputs and outputs."""
        if self._save is None or self.last_inputs is None or self.save_button.disabled:
            return None
        try:
            where = self._save(self.last_inputs, self.last_outputs)
        except Exception as e:
            self._show_error(e)
            return None
        self.save_button.disabled = True  # once per run: a second click would only duplicate it
        self.saved.value = _esc(self.tr("Saved as an example: {where}", where="\0")).replace(
            "\0", f"<code>{_esc(where)}</code>"
        )
        self.set_examples([*self.examples, self.last_inputs])
        return where

    # -- display -----------------------------------------------------------------------------------
    def _show_outputs(self, outputs: Optional[dict]) -> None:
        self.output_widgets = {}
        if outputs is None:
            self.output_box.children = ()
            return
        types = {ty["name"]: ty for ty in self.spec.get("outputs") or []}
        if not isinstance(outputs, dict):
            outputs = {"output": outputs}
        rows = []
        for name in [*types, *(k for k in outputs if k not in types)]:
            if name not in outputs:
                continue
            ty = types.get(name, {"type": "any"})
            w = _output_widget(ty, outputs[name], self.tr)
            self.output_widgets[name] = w
            label = f"<b>{_esc(name)}</b> <code>{_esc(ty.get('type'))}</code>"
            rows.append(widgets.VBox([widgets.HTML(label), w]))
        if not rows:
            rows.append(
                widgets.HTML("<i>" + _esc(self.tr("Done: this command has no outputs.")) + "</i>")
            )
        self.output_box.children = tuple(rows)

    def _show_error(self, e: Exception) -> None:
        if isinstance(e, ModelCloudError):
            message, field = e.message, e.field
        else:
            message, field = f"{type(e).__name__}: {e}", None
        self.error_message, self.error_field = message, field
        body = f'<div class="algolink-error" style="{_ERROR_STYLE}">{_esc(message)}</div>'
        tb = getattr(e, "traceback", None) if isinstance(e, InferenceError) else None
        if tb:
            body += (
                "<details><summary>"
                + _esc(self.tr("Traceback"))
                + f"</summary><pre>{_esc(tb)}</pre></details>"
            )
        self.error.value = body
        widget = self.input_widgets.get(field) if field else None
        if widget is not None:
            widget.add_class(_INVALID_CLASS)
            widget.layout.border = _INVALID_BORDER
            self._marked.append(widget)

    def _clear_error(self) -> None:
        self.error.value = ""
        self.error_message, self.error_field = "", None
        for widget in self._marked:
            widget.remove_class(_INVALID_CLASS)
            widget.layout.border = None
        self._marked = []


def build_form(
    spec: dict,
    run: Callable[[dict], dict],
    save: Optional[Callable[[dict, dict], Any]] = None,
    stream: Optional[Callable[[dict, Callable], dict]] = None,
    examples: Optional[list] = None,
    tr: Optional[Translator] = None,
) -> CommandForm:
    """The test form of the command ``spec`` describes; a pure function of the spec (and of the
    recorded ``examples``' inputs, offered as buttons that fill the form).

    ``run(raw_inputs) -> outputs`` takes and returns wire values and raises ``ModelCloudError`` on a bad
    input or a failing command; ``save(inputs, outputs)`` records an example (no Save button without it);
    ``stream(raw_inputs, on_event) -> outputs`` runs a command that yields (``"streams"`` in its spec),
    calling ``on_event(progress, outputs)`` per yield: the form shows a progress bar and the outputs
    as they come. ``tr``: the language of its texts, the kernel's when not given (README, "The
    language of the notebook's forms").
    """
    return CommandForm(spec, run, save, stream, examples, tr)


def for_command(
    registry: Any,
    name: str,
    examples_dir: Union[str, Path] = examples.DEFAULT_DIR,
) -> CommandForm:
    """The form of ``registry``'s command ``name``, run in-process through the same checks as HTTP.

    The command is looked up on every Run, so a re-declared command runs its new function.
    """
    spec = registry.get_command(name).to_dict()

    def run(raw: dict) -> dict:
        return registry.run_command(name, raw)

    def stream(raw: dict, on_event: Callable) -> dict:
        return registry.run_command(name, raw, on_event=on_event)

    def save(inputs: dict, outputs: dict) -> Path:
        return examples.save(name, inputs, outputs, examples_dir)

    try:
        recorded = [e.get("inputs") for e in examples.load(name, examples_dir)]
    except (OSError, ValueError):  # an unreadable example file: the form works without examples
        recorded = []
    return build_form(spec, run, save, stream, recorded)
