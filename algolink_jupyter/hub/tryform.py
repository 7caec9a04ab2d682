"""The service page's try-it form, from each command's declared inputs: which control an input gets,
the HTML attributes that carry its rules (``min``/``max``/``step``, ``minlength``/``maxlength``,
``accept``), its default, a hint in the page's language that says what it takes, and the examples
recorded in the bundle (``examples/<command>/NNN.json``) that fill the form in one click.

The browser checks the attributes as the user types; the service checks everything again on Run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..translation import N_

#: An image input's channels, as its hint names them.
CHANNELS = {1: N_("grayscale"), 3: N_("RGB"), 4: N_("RGBA")}

#: The examples offered per command, the largest example file embedded in the page, and the most
#: bytes of examples one command's form carries.
MAX_EXAMPLES = 5
MAX_EXAMPLE_BYTES = 512 << 10
MAX_EXAMPLES_BYTES = 1 << 20

_IMAGES = ("image", "segmentation")
_JSON_KINDS = ("vector", "array", "image_point", "image_bounding_box", "image_landmarks", "any")


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _bounds(lo: Any, hi: Any, t: Callable) -> str:
    """ "1 to 5", "at least 1", "at most 5" or ""."""
    if lo is not None and hi is not None:
        return t("{lo} to {hi}", lo=_num(lo), hi=_num(hi))
    if lo is not None:
        return t("at least {n}", n=_num(lo))
    if hi is not None:
        return t("at most {n}", n=_num(hi))
    return ""


def hint(spec: dict, t: Callable) -> str:
    """What the input takes, in a few words: its bounds, step, size, choices' count..."""
    kind = spec.get("type")
    parts: list = []
    if kind == "number":
        parts.append(_bounds(spec.get("min"), spec.get("max"), t))
        if spec.get("step") is not None:
            parts.append(t("step {step}", step=_num(spec["step"])))
    elif kind == "text":
        lo = spec.get("minLength") or None
        span = _bounds(lo, spec.get("maxLength"), t)
        if span:
            parts.append(t("{span} characters", span=span))
    elif kind in _IMAGES:
        if kind == "image" and spec.get("channels") in (1, 3, 4):
            parts.append(t(CHANNELS[spec["channels"]]))
        w, h = spec.get("width"), spec.get("height")
        if w and h:
            parts.append(t("{width}×{height} pixels", width=w, height=h))
        else:
            wide = _bounds(spec.get("minWidth"), spec.get("maxWidth"), t)
            high = _bounds(spec.get("minHeight"), spec.get("maxHeight"), t)
            if w:
                parts.append(t("width {span} pixels", span=w))
            elif wide:
                parts.append(t("width {span} pixels", span=wide))
            if h:
                parts.append(t("height {span} pixels", span=h))
            elif high:
                parts.append(t("height {span} pixels", span=high))
    elif kind == "file" and spec.get("extension"):
        parts.append(t("a {names} file", names=", ".join(spec["extension"])))
    elif kind == "directory":
        parts.append(t("a .zip or .tar.gz of the folder"))
    elif kind == "vector":
        parts.append(t("{n} numbers, as JSON", n=spec.get("length")))
    elif kind == "array":
        item = (spec.get("itemType") or {}).get("type", "any")
        span = _bounds(spec.get("minLength") or None, spec.get("maxLength"), t)
        parts.append(t("a JSON list of {item} values", item=item) + (f" ({span})" if span else ""))
    elif kind == "image_point":
        parts.append(t("[x, y] from 0 to 1, as JSON"))
    elif kind == "image_bounding_box":
        parts.append(t("[xmin, ymin, xmax, ymax] from 0 to 1, as JSON"))
    elif kind == "image_landmarks":
        parts.append(t("{n} points [x, y] from 0 to 1, as JSON", n=spec.get("length")))
    elif kind == "any":
        parts.append(t("any JSON value"))
    if spec.get("default") is not None and kind not in _IMAGES + ("file", "directory"):
        parts.append(t("default: {value}", value=_shown(spec["default"])))
    return " · ".join(p for p in parts if p)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def field(command: str, spec: dict, t: Callable) -> dict:
    """How the form shows one input: ``control`` (file, checkbox, select, number, text, json),
    ``attrs`` (name -> value, escaped by the template), ``value``, ``choices``, ``hint``."""
    kind = spec.get("type")
    name = spec["name"]
    attrs: dict = {"id": f"try-{command}-{name}", "name": name, "data-type": kind or "any"}
    out: dict = {
        "control": "text",
        "attrs": attrs,
        "value": "",
        "choices": [],
        "hint": hint(spec, t),
    }
    default = spec.get("default")
    if kind in _IMAGES or kind in ("file", "directory"):
        out["control"] = "file"
        if kind in _IMAGES:
            attrs["accept"] = "image/*"
        elif kind == "file" and spec.get("extension"):
            attrs["accept"] = ",".join(spec["extension"])
        elif kind == "directory":
            attrs["accept"] = ".zip,.tar,.tar.gz,.tgz"
    elif kind == "boolean":
        out["control"] = "checkbox"
        out["value"] = bool(default)
    elif kind == "category":
        out["control"] = "select"
        out["choices"] = list(spec.get("oneOf") or spec.get("choices") or [])
        out["value"] = default if default in out["choices"] else None
    elif kind == "number":
        out["control"] = "number"
        for key in ("min", "max"):
            if spec.get(key) is not None:
                attrs[key] = _num(spec[key])
        attrs["step"] = _num(spec["step"]) if spec.get("step") is not None else "any"
        out["value"] = _num(default) if default is not None else ""
    elif kind == "text":
        if spec.get("minLength"):
            attrs["minlength"] = spec["minLength"]
        if spec.get("maxLength") is not None:
            attrs["maxlength"] = spec["maxLength"]
        out["value"] = default if isinstance(default, str) else ""
    elif kind in _JSON_KINDS or kind not in ("text",):
        out["control"] = "json"
        attrs["placeholder"] = out["hint"] or "JSON"
        out["value"] = json.dumps(default) if default is not None else ""
    return out


def recorded_examples(bundle_dir: Path, command: str) -> list:
    """The inputs of the examples recorded for ``command`` in the bundle (at most MAX_EXAMPLES, each
    file at most MAX_EXAMPLE_BYTES, MAX_EXAMPLES_BYTES in all), oldest first."""
    folder = Path(bundle_dir) / "examples" / command
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix == ".json" and p.is_file())
    except OSError:
        return []
    found = []
    total = 0
    for path in files:
        try:
            size = path.stat().st_size
            if size > MAX_EXAMPLE_BYTES or total + size > MAX_EXAMPLES_BYTES:
                continue
            inputs = json.loads(path.read_text(encoding="utf-8")).get("inputs")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(inputs, dict):
            found.append(inputs)
            total += size
        if len(found) == MAX_EXAMPLES:
            break
    return found
