"""``multipart/form-data`` read as it arrives: fields in memory, files spooled to disk.

Tornado parses a form only once the whole body is in memory; a bundle upload can be a gigabyte. A
:class:`FormParser` is fed the body chunk by chunk (from a handler's ``data_received``): each part's
headers are read, a field (a part without a file name) is kept in memory up to ``max_field`` bytes,
and a file is written to a temporary file in ``spool_dir`` as its bytes come, so the hub holds at most
one chunk and one boundary of it. The result has the shapes Tornado uses (``arguments``: name -> list
of bytes; ``files``: name -> list of :class:`FormFile`), so handlers read it as they read Tornado's.
"""

from __future__ import annotations

import email.message
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

__all__ = ["FormError", "FormFile", "FormParser", "boundary_of"]

MAX_HEAD = 16 * 1024
MAX_PARTS = 1000


class FormError(ValueError):
    """A form that cannot be read; the message says why."""


class FormFile:
    """An uploaded file: its name, type and bytes, on disk (``path``) when spooled."""

    def __init__(self, filename: str, content_type: str, path: Path, size: int) -> None:
        self.filename = filename
        self.content_type = content_type
        self.path = path
        self.size = size

    @property
    def body(self) -> bytes:
        """Its bytes (read from disk: for small files such as gallery images)."""
        return self.path.read_bytes()

    def save_as(self, target: Path) -> None:
        """Move it to ``target`` (on the same file system: a rename)."""
        try:
            os.replace(self.path, target)
        except OSError:
            shutil.copyfile(self.path, target)
        self.path = Path(target)


def boundary_of(content_type: str) -> Optional[bytes]:
    """The boundary of a ``multipart/form-data`` Content-Type, or None."""
    msg = email.message.Message()
    msg["content-type"] = content_type
    if msg.get_content_type() != "multipart/form-data":
        return None
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 200:
        return None
    return boundary.encode("latin1", "replace")


class FormParser:
    """Feed it the body with :meth:`feed`, then :meth:`close`; read ``arguments`` and ``files``.

    Raises :class:`FormError` on a malformed form, a field over ``max_field`` bytes or more than
    :data:`MAX_PARTS` parts. :meth:`cleanup` removes the spooled files that were not saved elsewhere.
    """

    def __init__(self, boundary: bytes, spool_dir: Path, max_field: int = 1 << 20) -> None:
        self.delimiter = b"\r\n--" + boundary
        self.spool_dir = Path(spool_dir)
        self.max_field = max_field
        self.arguments: dict[str, list] = {}
        self.files: dict[str, list] = {}
        self._buf = b"\r\n"  # the first boundary has no CRLF before it: the same search finds it
        self._state = "preamble"
        self._parts = 0
        self._name = ""
        self._file: Any = None
        self._field: Optional[bytearray] = None
        self._current: Optional[FormFile] = None
        self._spooled: list = []

    # --- feeding ----------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        while self._step():
            pass

    def close(self) -> None:
        if self._state != "done":
            self.cleanup()
            raise FormError(
                "The form ends before its closing boundary: the upload was cut short or the "
                "multipart body is malformed; send it again."
            )

    def cleanup(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        for form_file in self._spooled:
            if form_file.path.parent == self.spool_dir:
                form_file.path.unlink(missing_ok=True)

    # --- the states ---------------------------------------------------------------------------------

    def _step(self) -> bool:
        """One step of the state machine; False when it needs more bytes."""
        if self._state == "preamble":
            at = self._buf.find(self.delimiter)
            if at < 0:
                self._buf = self._buf[-len(self.delimiter) :]
                return False
            self._buf = self._buf[at + len(self.delimiter) :]
            self._state = "after-boundary"
            return True
        if self._state == "after-boundary":
            if len(self._buf) < 2:
                return False
            if self._buf.startswith(b"--"):
                self._state = "done"
                self._buf = b""
                return False
            if not self._buf.startswith(b"\r\n"):
                raise FormError("The multipart body is malformed (no line break after a boundary).")
            self._buf = self._buf[2:]
            self._state = "headers"
            return True
        if self._state == "headers":
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise FormError("A part of the form has headers over 16 KB.")
                return False
            self._begin_part(self._buf[:end].decode("utf-8", "replace"))
            self._buf = self._buf[end + 4 :]
            self._state = "body"
            return True
        if self._state == "body":
            at = self._buf.find(self.delimiter)
            if at < 0:
                keep = len(self.delimiter) - 1  # a delimiter may begin at the end of this chunk
                if len(self._buf) > keep:
                    self._write(self._buf[:-keep])
                    self._buf = self._buf[-keep:]
                return False
            self._write(self._buf[:at])
            self._end_part()
            self._buf = self._buf[at + len(self.delimiter) :]
            self._state = "after-boundary"
            return True
        self._buf = b""  # "done": what follows the closing boundary is ignored
        return False

    def _begin_part(self, head: str) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise FormError(f"The form has more than {MAX_PARTS} parts.")
        msg = email.message.Message()
        for line in head.split("\r\n"):
            key, sep, value = line.partition(":")
            if sep:
                msg[key.strip()] = value.strip()
        disposition = msg.get("content-disposition", "")
        if not disposition.lower().startswith("form-data"):
            raise FormError("A part of the form has no 'Content-Disposition: form-data' header.")
        name = msg.get_param("name", header="content-disposition")
        filename = msg.get_param("filename", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise FormError("A part of the form has no name.")
        self._name = name
        if isinstance(filename, str) and filename:  # an empty file input sends filename="": a field
            fd, path = tempfile.mkstemp(prefix="part-", dir=self.spool_dir)
            self._file = os.fdopen(fd, "wb")
            self._current = FormFile(
                Path(filename).name or filename,
                msg.get("content-type", "application/octet-stream"),
                Path(path),
                0,
            )
            self._spooled.append(self._current)
        else:
            self._field = bytearray()

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self._file is not None:
            self._file.write(data)
            assert self._current is not None
            self._current.size += len(data)
            return
        assert self._field is not None
        self._field += data
        if len(self._field) > self.max_field:
            raise FormError(
                f"The form field {self._name!r} is over {self.max_field // 1024} KB: send large "
                "content as a file part."
            )

    def _end_part(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self.files.setdefault(self._name, []).append(self._current)
            self._current = None
        else:
            self.arguments.setdefault(self._name, []).append(bytes(self._field or b""))
            self._field = None
