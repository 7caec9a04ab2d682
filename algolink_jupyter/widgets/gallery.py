"""The images this kernel has shown, offered as gallery pictures by the publish form.

The approach: every PNG or JPEG that goes through IPython's display publisher (``display(Image(...))``,
matplotlib's inline figures, any object whose ``_repr_png_`` IPython calls for ``display``) is recorded
once ``%load_ext algolink_jupyter`` has run, and the values in ``Out`` (a cell's last expression, such as a
PIL image) are formatted again on demand. Limits: only this kernel session's images since the extension
was loaded (a restarted kernel starts empty, and images saved in the notebook file from an earlier
session are not read), at most :data:`LIMIT` of them, the newest kept; SVG and HTML images are skipped.
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from typing import Any, Optional

LIMIT = 24
_FORMATS = {"image/png": "png", "image/jpeg": "jpeg"}


class ImageCapture:
    """Records the images published through one shell's display publisher."""

    def __init__(self) -> None:
        self.images: OrderedDict = OrderedDict()  # sha1 -> (label, bytes, format)
        self._shell: Any = None
        self._original: Any = None

    def install(self, shell: Any) -> None:
        if self._shell is shell or shell is None or not hasattr(shell, "display_pub"):
            return
        pub = shell.display_pub
        original = pub.publish

        def publish(data: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                self.add_bundle(data, label=f"display {len(self.images) + 1}")
            except Exception:  # pragma: no cover - never let the capture break a display
                pass
            return original(data, *args, **kwargs)

        pub.publish = publish
        self._shell, self._original = shell, original

    def add_bundle(self, data: Any, label: str) -> None:
        if not isinstance(data, dict):
            return
        for mime, fmt in _FORMATS.items():
            raw = data.get(mime)
            if raw is None:
                continue
            content = raw if isinstance(raw, bytes) else base64.b64decode(raw)
            self.add(content, fmt, label)
            return

    def add(self, content: bytes, fmt: str, label: str) -> None:
        key = hashlib.sha1(content).hexdigest()
        if key in self.images:
            self.images.move_to_end(key)
            return
        self.images[key] = (label, content, fmt)
        while len(self.images) > LIMIT:
            self.images.popitem(last=False)


capture = ImageCapture()


def install(shell: Any) -> None:
    """Start recording the images ``shell`` displays (``%load_ext algolink_jupyter`` calls this)."""
    capture.install(shell)


def notebook_images(shell: Optional[Any] = None) -> list:
    """``[(label, bytes, format)]``: the ``Out`` values that render as PNG/JPEG, then the displayed ones."""
    found: OrderedDict = OrderedDict()
    if shell is not None:
        formatter = getattr(shell, "display_formatter", None)
        out = (getattr(shell, "user_ns", None) or {}).get("Out") or {}
        for number, value in list(out.items())[-LIMIT:]:
            if formatter is None:
                break
            try:
                data, _ = formatter.format(value)
            except Exception:
                continue
            for mime, fmt in _FORMATS.items():
                if data.get(mime) is not None:
                    raw = data[mime]
                    content = raw if isinstance(raw, bytes) else base64.b64decode(raw)
                    found[hashlib.sha1(content).hexdigest()] = (f"Out[{number}]", content, fmt)
                    break
    for key, item in capture.images.items():
        found.setdefault(key, item)
    return list(found.values())[-LIMIT:]
