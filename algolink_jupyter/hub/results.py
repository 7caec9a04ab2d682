"""Shared results: what a public service's try-it form answered, kept for a while under an unguessable
id so that a link (``/results/<id>``) shows it to anyone who has it.

A result is kept only when the person trying asked for a link (the form's "shareable link" box) and
only for a public service. Each is one JSON file in the data folder's ``results/``: the service, the
command, the version, the inputs as the form sent them (files as data URIs) and the outputs as the
service answered. Bounds: a result larger than :data:`MAX_RESULT` bytes is not kept; all of them
together take at most ``budget`` bytes and :data:`MAX_COUNT` files (the oldest go first); each expires
``days`` after it was made. The page that shows one checks again that the service exists and is still
public, so that a service made private takes its shared results with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any, Optional

#: The largest result kept (inputs and outputs as JSON).
MAX_RESULT = 8 << 20
#: The most results kept at once.
MAX_COUNT = 2000
#: An id: 24 URL-safe characters (144 random bits).
ID_RE = re.compile(r"^[A-Za-z0-9_-]{24}$")


def form_inputs(content_type: str, body: bytes) -> Optional[dict]:
    """The inputs of a try-it request (a multipart or urlencoded form, or JSON) as wire values:
    fields as text, files as data URIs; None when the body cannot be read."""
    import tornado.httputil

    base = content_type.split(";", 1)[0].strip().lower()
    if base in ("multipart/form-data", "application/x-www-form-urlencoded"):
        args: dict = {}
        files: dict = {}
        try:
            tornado.httputil.parse_body_arguments(content_type, body, args, files)
        except Exception:
            return None
        out: dict = {}
        for name, values in args.items():
            out[name] = values[-1].decode("utf-8", errors="replace")
        for name, parts in files.items():
            part = parts[-1]
            mime = part.content_type or "application/octet-stream"
            out[name] = f"data:{mime};base64,{base64.b64encode(part.body).decode('ascii')}"
        return out
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class ResultStore:
    """The shared results in ``folder``; ``days`` <= 0 turns sharing off."""

    def __init__(self, folder: Path, days: float = 7.0, budget: int = 256 << 20) -> None:
        self.folder = Path(folder)
        self.ttl = days * 86400
        self.budget = budget

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def path(self, result_id: str) -> Optional[Path]:
        return self.folder / f"{result_id}.json" if ID_RE.match(result_id or "") else None

    def keep(self, record: dict) -> Optional[tuple]:
        """Store ``record`` (service_id, project, service, command, version, inputs, outputs, types)
        and return ``(id, delete key)``: the key (kept only as its hash) deletes it before it expires.
        None when sharing is off or the result is too large to keep."""
        if not self.enabled:
            return None
        now = time.time()
        result_id = secrets.token_urlsafe(18)
        key = secrets.token_urlsafe(18)
        text = json.dumps(
            {
                **record,
                "id": result_id,
                "created": now,
                "expires": now + self.ttl,
                "delete_hash": _digest(key),
            },
            ensure_ascii=False,
        ).encode("utf-8")
        if len(text) > min(MAX_RESULT, self.budget):
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prune(room=len(text))
        path = self.path(result_id)
        assert path is not None
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(text)
        os.replace(tmp, path)
        return result_id, key

    def delete(self, result_id: str, key: str) -> bool:
        """Remove a result given its delete key; False when there is none or the key is wrong."""
        record = self.get(result_id)
        if record is None or not hmac.compare_digest(
            str(record.get("delete_hash") or ""), _digest(key or "")
        ):
            return False
        path = self.path(result_id)
        assert path is not None
        path.unlink(missing_ok=True)
        return True

    def get(self, result_id: str) -> Optional[dict]:
        """The record, or None when there is none (or it expired: then it is removed)."""
        path = self.path(result_id)
        if path is None:
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("expires", 0) <= time.time():
            path.unlink(missing_ok=True)
            return None
        return record

    def prune(self, room: int = 0) -> None:
        """Remove the expired results, then the oldest until ``room`` more bytes and one more
        result fit the bounds."""
        try:
            entries = []
            for p in self.folder.glob("*.json"):
                st = p.stat()
                entries.append((st.st_mtime, st.st_size, p))
        except OSError:
            return
        entries.sort()
        cutoff = time.time() - self.ttl
        kept = []
        for mtime, size, p in entries:
            if mtime < cutoff:
                p.unlink(missing_ok=True)
            else:
                kept.append((mtime, size, p))
        total = sum(size for _m, size, _p in kept)
        while kept and (total + room > self.budget or len(kept) + 1 > MAX_COUNT):
            _m, size, p = kept.pop(0)
            p.unlink(missing_ok=True)
            total -= size


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", errors="replace")).hexdigest()


_IMAGE_URI = re.compile(r"data:image/(?:png|jpeg|gif|webp|bmp);base64,[A-Za-z0-9+/=\s]*", re.I)


def image_uri(value: Any) -> Optional[str]:
    """A raster image data URI fit for an ``<img src>`` (no SVG, no HTML), else None."""
    return value if isinstance(value, str) and _IMAGE_URI.fullmatch(value) else None
