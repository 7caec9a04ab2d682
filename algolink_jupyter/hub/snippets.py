"""The ``curl`` lines the service page shows: one per command, each runnable as it is shown.

The body is a real example: the first example recorded for the command in the version's bundle
(``examples/<command>/NNN.json``, written when the notebook was exported), else one made from the
command's declared inputs (their defaults, an image the input takes, a value within the limits). A
body too long for a line is not pasted in: the line fetches it from the hub's examples route
(``GET /api/v1/projects/P/services/S/versions/N/examples/<command>``) and pipes it on. A service that
is not public needs ``$ALGOLINK_TOKEN``; the page says how to set it.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import shlex
from pathlib import Path
from typing import Any, Optional

from .options import type_from_dict

#: The longest body pasted into a line (longer ones are fetched from the hub).
MAX_INLINE = 1500
#: The largest recorded example file read.
MAX_EXAMPLE_FILE = 16 << 20


def recorded_example(bundle_dir: Path, command: str) -> Optional[dict]:
    """The inputs of the first example recorded for ``command`` in the bundle, or None."""
    folder = Path(bundle_dir) / "examples" / command
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix == ".json" and p.is_file())
    except OSError:
        return None
    for path in files:
        try:
            if path.stat().st_size > MAX_EXAMPLE_FILE:
                continue
            inputs = json.loads(path.read_text(encoding="utf-8")).get("inputs")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(inputs, dict):
            return inputs
    return None


def sample_input(spec: dict) -> Any:
    """A value the input ``spec`` (a manifest's type dict) takes."""
    if spec.get("default") is not None:
        return spec["default"]
    kind = spec.get("type")
    try:
        schema = type_from_dict(spec).json_schema()
    except Exception:
        schema = {}
    if schema.get("examples"):
        return schema["examples"][0]
    if kind == "text":
        low, high = spec.get("minLength") or 0, spec.get("maxLength")
        text = "hello" if high is None or high >= 5 else "x" * high
        return text + "x" * max(0, low - len(text))
    if kind == "number":
        for key in ("min", "max"):
            if spec.get(key) is not None:
                return spec[key]
        return 1
    if kind == "boolean":
        return True
    if kind == "category":
        return (spec.get("oneOf") or [""])[0]
    if kind == "vector":
        return [0.0] * int(spec.get("length") or 1)
    if kind == "image_point":
        return [0.5, 0.5]
    if kind == "image_bounding_box":
        return [0.25, 0.25, 0.75, 0.75]
    if kind == "image_landmarks":
        return [[0.5, 0.5] for _ in range(int(spec.get("length") or 1))]
    if kind == "array":
        item = sample_input(spec.get("itemType") or {"type": "text"})
        return [item] * max(1, int(spec.get("minLength") or 0))
    if kind == "file":
        extensions = spec.get("extension") or spec.get("extensions") or []
        if isinstance(extensions, str):
            extensions = [extensions]
        ext = extensions[0] if extensions else ".txt"
        mime = mimetypes.guess_type("example" + ext)[0] or "application/octet-stream"
        return f"data:{mime};base64," + base64.b64encode(b"example\n").decode()
    return None


def example_inputs(command: dict, recorded: Optional[dict] = None) -> dict:
    """The body for ``command`` (a manifest's command dict): ``recorded`` if given, else samples."""
    if recorded is not None:
        return recorded
    body = {}
    for spec in command.get("inputs") or []:
        if isinstance(spec, dict) and spec.get("name"):
            value = sample_input(spec)
            if value is not None:
                body[spec["name"]] = value
    return body


def curl_line(url: str, body: dict, *, public: bool, body_url: Optional[str] = None) -> str:
    """``curl`` POSTing ``body`` as JSON to ``url``; past :data:`MAX_INLINE` characters the body
    is fetched from ``body_url`` and piped in instead."""
    auth = [] if public else ["-H", '"Authorization: token $ALGOLINK_TOKEN"']
    text = json.dumps(body, separators=(", ", ": "), ensure_ascii=False)
    head = ["curl", "-sS", "-X", "POST", shlex.quote(url), *auth]
    head += ["-H", shlex.quote("Content-Type: application/json")]
    if len(text) <= MAX_INLINE or body_url is None:
        return " ".join([*head, "-d", shlex.quote(text)])
    fetch = ["curl", "-sS", "-f", shlex.quote(body_url), *auth]
    return " ".join(fetch) + " | " + " ".join([*head, "--data-binary", "@-"])
