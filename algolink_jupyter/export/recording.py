"""Examples recorded by the export itself, for a command that has none saved.

The command is called in the kernel (``registry.run_command``, the very path a request takes) with an
input built from its declared types: each input's default where it has one, else a small valid value (an
image of the declared size and channels, a number within ``min``/``max`` on the ``step``, the first
category, a vector of the declared length...). The answer is what the bundle must give back for it.
"""

from __future__ import annotations

import base64
import io
import json
import math
from typing import Any, Optional

from modelcloud import data_types as dt


class NoExample(Exception):
    """No valid input can be made up for this type; the message says which."""


def _png(width: int, height: int, channels: int) -> str:
    import numpy as np
    from PIL import Image

    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels, "RGB")
    # A smooth gradient, not a flat colour: a model that looks at the pixels gets something to see.
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    gray = ((x + y) / 2).astype(np.uint8)
    if channels == 1:
        pixels = gray
    else:
        planes = [gray, 255 - gray, np.full_like(gray, 128), np.full_like(gray, 255)]
        pixels = np.stack(planes[:channels], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _size(t: Any, fallback: int = 32) -> tuple:
    def one(exact: Optional[int], low: Optional[int], high: Optional[int]) -> int:
        if exact:
            return exact
        value = max(fallback, low or 1)
        return min(value, high) if high else value

    return (
        one(t.width, t.min_width, t.max_width),
        one(t.height, t.min_height, t.max_height),
    )


def _number(t: Any) -> float:
    low, high, step = t.min, t.max, t.step
    if low is not None and high is not None:
        value = low + (high - low) / 2
    elif low is not None:
        value = low + 1
    elif high is not None:
        value = min(high, 1)
    else:
        value = 1
    if step:
        base = low if low is not None else 0
        value = base + math.floor((value - base) / step) * step
    if float(value).is_integer() and (step is None or float(step).is_integer()):
        return int(value)
    return round(value, 10)


def synthetic(t: Any, name: str) -> Any:
    """A valid wire value for the data type ``t``."""
    if t.has_default and t.default is not None and not isinstance(t, dt.file):
        return t.default
    if isinstance(t, dt.text):
        n = max(t.min_length or 0, 5)
        if t.max_length is not None:
            n = min(n, t.max_length)
        return ("hello" * (n // 5 + 1))[:n]
    if isinstance(t, dt.number):
        return _number(t)
    if isinstance(t, dt.boolean):
        return True
    if isinstance(t, dt.category):
        return t.choices[0]
    if isinstance(t, dt.vector):
        return [float(t.sampling_mean)] * t.length
    if isinstance(t, dt.segmentation):
        import numpy as np
        from PIL import Image

        w, h = _size(t)
        ids = sorted(t.label_to_id.values())
        arr = np.full((h, w), ids[0], dtype=np.uint8)
        arr[h // 2 :, :] = ids[-1]
        buf = io.BytesIO()
        Image.fromarray(arr, "L").save(buf, "PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    if isinstance(t, dt.image):
        w, h = _size(t)
        return _png(w, h, t.channels)
    if isinstance(t, dt.image_point):
        return [0.5, 0.5]
    if isinstance(t, dt.image_bounding_box):
        return [0.25, 0.25, 0.75, 0.75]
    if isinstance(t, dt.image_landmarks):
        return [[(i + 1) / (t.length + 1), 0.5] for i in range(t.length)]
    if isinstance(t, dt.array):
        n = max(t.min_length or 0, 1)
        if t.max_length is not None:
            n = min(n, t.max_length)
        return [synthetic(t.item_type, name) for _ in range(n)]
    if isinstance(t, dt.any):
        return "hello"
    raise NoExample(
        f"no input can be made up for {name!r} (a {t.type_name}): save an example with the test "
        'form\'s "Save as example" to verify this command'
    )


def record(registry: Any, command: str) -> tuple:
    """``(record, None)``: an example of ``command`` run in the kernel, or ``(None, why)``."""
    cmd = registry.get_command(command)
    try:
        inputs = {name: synthetic(t, name) for name, t in cmd.inputs.items()}
    except NoExample as e:
        return None, str(e)
    try:
        outputs = registry.run_command(command, inputs)
    except Exception as e:  # the kernel's own answer failed: nothing to compare with
        return None, (
            f"running {command!r} in the kernel on a made-up input failed "
            f"({type(e).__name__}: {e}): save an example with the test form to verify it"
        )
    result = {"command": command, "inputs": inputs, "outputs": outputs, "recorded_by": "export"}
    try:
        json.dumps(result)
    except (TypeError, ValueError) as e:
        return None, f"the answer of {command!r} is not JSON ({e})"
    return result, None
