"""Call a model from Python: :class:`Client` runs a command of a service on a hub (``/serve/P/S/...``)
or of a bare model server (``python cloud_model.py``), with its inputs encoded by the command's declared
types and its outputs decoded the same way.

>>> from algolink_jupyter.client import Client
>>> Client("http://127.0.0.1:8800").run("vision/digits", "classify", photo="digit.png", k=3)
>>> Client(url="http://127.0.0.1:9000").run("classify", photo=PIL.Image.open("digit.png"))
>>> for event in client.stream("vision/gen", "paint", prompt="a cat"):  # Server-Sent Events
...     print(event.progress, event.outputs)
>>> job = client.submit("vision/gen", "paint", prompt="a cat")  # an async job
>>> job.wait()

Only the standard library is needed to send JSON values and files; Pillow and numpy are imported when
an image is given as a ``PIL.Image`` or an array, or when outputs are decoded into them. A file input
given as a path (or an open file) larger than ``multipart_threshold`` bytes makes the request a
``multipart/form-data`` body whose file parts are read from disk as they are sent (no base64, never the
whole file in memory); smaller ones travel inside JSON as data URIs.
"""

from __future__ import annotations

import base64
import io
import json
import mimetypes
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import CLIError
from .core import DEFAULT_URL, hub_settings

#: Types whose values travel as a file's content (a data URI), not as plain JSON.
FILE_TYPES = frozenset({"image", "segmentation", "file", "directory"})
_DATA_URI = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),", re.IGNORECASE)
#: File inputs larger than this (bytes) go as streamed multipart parts instead of base64 in JSON.
MULTIPART_THRESHOLD = 1 << 20
#: Types whose value a multipart part carries as a file (``directory`` stays a data URI: it is zipped).
_PART_TYPES = frozenset({"image", "segmentation", "file"})
#: Types whose multipart fields the server takes as text as they are (others are read as JSON).
_TEXT_FIELD_TYPES = frozenset({"text", "category", "image", "segmentation", "file", "directory"})
_CHUNK = 256 * 1024


class PredictError(CLIError):
    """A call that did not succeed. ``status`` is the server's HTTP status (None when no answer came:
    the server was not reachable, or an input could not be encoded here), ``message`` its sentence
    and ``field`` the input at fault, when it named one."""

    def __init__(self, status: Optional[int], message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass
class StreamEvent:
    """One event of :meth:`Client.stream`: ``event`` is ``progress``, ``output`` (a yield with
    outputs) or ``succeeded`` (the last one: the command's final outputs); ``progress`` in 0..1 or
    None; ``outputs`` decoded by their declared types (None for a progress-only event)."""

    event: str
    progress: Optional[float] = None
    outputs: Optional[dict] = None


class Job:
    """An async job (:meth:`Client.submit`): ``id``, ``url``, and its last known ``status``
    (``queued``, ``running``, ``succeeded``, ``failed`` or ``canceled``), ``progress`` and
    ``outputs`` (decoded; the latest partial ones while it runs) as of the last :meth:`refresh`."""

    def __init__(self, client: Client, spec: dict, url: str, data: dict) -> None:
        self.client = client
        self.spec = spec
        self.url = url
        self.data = data

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status}>"

    @property
    def id(self) -> str:
        return self.data.get("id", "")

    @property
    def status(self) -> str:
        return self.data.get("status", "")

    @property
    def progress(self) -> Optional[float]:
        return self.data.get("progress")

    @property
    def outputs(self) -> Optional[dict]:
        outputs = self.data.get("outputs")
        return None if outputs is None else decode_outputs(self.spec, outputs)

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "canceled")

    def refresh(self) -> Job:
        """Ask the server for the job's state now."""
        if self.url and not self.done:
            self.data = self.client.request("GET", self.url)
        return self

    def cancel(self) -> Job:
        """Cancel it: a command that yields stops at its next yield; a plain one finishes, its
        result dropped. (A finished job is forgotten by the server.)"""
        if self.url:
            self.data = self.client.request("DELETE", self.url)
        return self

    def wait(self, timeout: Optional[float] = None, interval: float = 0.1) -> dict:
        """Poll until the job ends (at most ``timeout`` seconds): its outputs, decoded; a
        :class:`PredictError` with the server's sentence if it failed or was canceled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.refresh().done:
            if deadline is not None and time.monotonic() >= deadline:
                raise PredictError(
                    None,
                    f"Job {self.id} is still {self.status} after {timeout:g} s: wait longer, "
                    "or cancel it.",
                )
            time.sleep(interval)
            interval = min(interval * 1.5, 2.0)
        if self.status == "failed":
            raise PredictError(
                500, self.data.get("error") or "The job failed.", self.data.get("field")
            )
        if self.status == "canceled":
            raise PredictError(None, f"Job {self.id} was canceled.")
        return self.outputs or {}


class Client:
    """Run commands of a model service.

    ``Client(hub_url, token)`` talks to a hub: ``run("PROJECT/SERVICE", "command", **inputs)``; the hub's
    URL and token default to ``$ALGOLINK_HUB_URL`` / ``$ALGOLINK_TOKEN``, else the config file that
    ``algolink login`` writes. ``Client(url=...)`` talks to a bare model server:
    ``run("command", **inputs)``, with ``token`` only when the server was started with one.
    """

    def __init__(
        self,
        hub_url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        url: Optional[str] = None,
        timeout: Optional[float] = 300,
        multipart_threshold: int = MULTIPART_THRESHOLD,
    ) -> None:
        if url and hub_url:
            raise ValueError("give hub_url (a hub) or url (a model server), not both")
        self.direct = bool(url)
        if url:
            self.url = url.rstrip("/")
            self.token = token
        else:
            found_url, found_token = None, None
            if not hub_url or token is None:
                found_url, found_token, _ = hub_settings()
            self.url = (hub_url or found_url or DEFAULT_URL).rstrip("/")
            self.token = token if token is not None else found_token
        self.timeout = timeout
        self.multipart_threshold = multipart_threshold
        self._specs: dict = {}

    # --- the public calls ------------------------------------------------------------------------

    def run(self, *names: str, **inputs: Any) -> dict:
        """Run a command and return its outputs, decoded: ``run("P/S", "command", **inputs)`` on a hub,
        ``run("command", **inputs)`` on a model server. An ``image`` comes back as a ``PIL.Image``, a
        ``vector`` as a numpy array, a ``file`` or ``directory`` as bytes (a directory zipped)."""
        return decode_outputs(self.spec(*names), self.run_raw(*names, **inputs))

    def run_raw(self, *names: str, **inputs: Any) -> dict:
        """Like :meth:`run`, with the outputs as the server sent them (JSON; files as data URIs)."""
        base, command = self._target(names)
        spec = self.spec(*names)
        streamed = large_files(spec, inputs, self.multipart_threshold)
        if streamed:
            form = MultipartBody(spec, inputs, streamed)
            return self._request("POST", f"{base}/{command}", form, form.content_type)
        body = encode_inputs(spec, inputs)
        return self._request("POST", f"{base}/{command}", json.dumps(body).encode())

    def stream(self, *names: str, **inputs: Any) -> Iterator[StreamEvent]:
        """Run a command and follow it as it runs (Server-Sent Events): one :class:`StreamEvent`
        per yield of the command, its outputs decoded, the last one ``succeeded`` with the final
        outputs. A failure raises :class:`PredictError`; leaving the loop early (``break``)
        closes the connection, which stops the command at its next yield."""
        spec = self.spec(*names)
        for event in self.stream_raw(*names, **inputs):
            if event.outputs is not None:
                event.outputs = decode_outputs(spec, event.outputs)
            yield event

    def stream_raw(self, *names: str, **inputs: Any) -> Iterator[StreamEvent]:
        """Like :meth:`stream`, with the outputs as the server sent them."""
        base, command = self._target(names)
        body = json.dumps(encode_inputs(self.spec(*names), inputs)).encode()
        response = self._open("POST", f"{base}/{command}", body, {"Accept": "text/event-stream"})
        try:
            if "text/event-stream" not in response.headers.get("Content-Type", ""):
                # A server without streaming answered plainly: that is the one and last event.
                yield StreamEvent("succeeded", 1.0, json.loads(response.read() or b"null"))
                return
            for name, data in _sse_events(response):
                if name == "failed":
                    raise PredictError(
                        500, data.get("error") or "The command failed.", data.get("field")
                    )
                if name in ("progress", "output", "succeeded"):
                    progress = 1.0 if name == "succeeded" else data.get("progress")
                    yield StreamEvent(name, progress, data.get("outputs"))
                if name == "succeeded":
                    return
            raise PredictError(
                None, "The stream ended before the command finished (the connection closed)."
            )
        finally:
            response.close()

    def submit(self, *names: str, **inputs: Any) -> Job:
        """Start a command as an async job (``Prefer: respond-async``) and return its
        :class:`Job` at once: ``job.wait()`` for the outputs, ``job.refresh()`` for its status,
        progress and partial outputs, ``job.cancel()`` to stop it."""
        spec = self.spec(*names)
        base, command = self._target(names)
        body = json.dumps(encode_inputs(spec, inputs)).encode()
        with self._open("POST", f"{base}/{command}", body, {"Prefer": "respond-async"}) as response:
            data = json.loads(response.read() or b"null")
            if response.status != 202:  # a server without jobs ran it at once
                return Job(
                    self, spec, "", {"status": "succeeded", "progress": 1.0, "outputs": data}
                )
            location = response.headers.get("Location") or data.get("url") or ""
        return Job(self, spec, location, data)

    def job(self, *names: str, job_id: str) -> Job:
        """The job ``job_id`` of this service (a bare server: ``job(job_id=...)``), as the server
        has it now. On a hub, a job lives in the version that runs it: pass that version, as
        ``P/S/v2``, or keep the :class:`Job` that :meth:`submit` returned."""
        service = names[0] if names else None
        spec = {}
        url = f"{self._base(service)}/jobs/{urllib.parse.quote(job_id)}"
        job = Job(self, spec, url, {"id": job_id})
        job.data = self.request("GET", url)
        command = job.data.get("command")
        if command:
            job.spec = self.spec(*([service] if service else []), command)
        return job

    def spec(self, *names: str) -> dict:
        """A command's declaration: ``{"name", "description", "inputs", "outputs"}``, each input and
        output ``{"type", ...}`` as the server's ``GET /meta`` lists it. Asked once per client."""
        base, command = self._target(names)
        key = f"{base}/{command}"
        if key not in self._specs:
            self._specs[key] = self._request("GET", key)
        return self._specs[key]

    def meta(self, service: Optional[str] = None) -> dict:
        """The server's manifest (``GET /meta``): its commands, options and metadata."""
        base = self._base(service)
        return self._request("GET", f"{base}/meta")

    # --- helpers -----------------------------------------------------------------------------------

    def _base(self, service: Optional[str]) -> str:
        if self.direct:
            if service:
                raise ValueError("a model server has no services: call run('command', ...)")
            return ""
        if not service:
            raise ValueError("name the service: run('PROJECT/SERVICE', 'command', ...)")
        return service_base(service)

    def _target(self, names: tuple) -> tuple:
        wanted = 1 if self.direct else 2
        if len(names) != wanted:
            shape = (
                "run('command', ...)" if self.direct else "run('PROJECT/SERVICE', 'command', ...)"
            )
            raise TypeError(f"name the command as {shape}, got {len(names)} names")
        command = names[-1]
        return self._base(names[0] if not self.direct else None), urllib.parse.quote(command)

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        with self._open(method, path, body, content_type=content_type) as response:
            return json.loads(response.read() or b"null")

    def request(self, method: str, path: str, body: Optional[bytes] = None) -> Any:
        """``method path`` on the server (a path under its URL), the JSON answer; a
        :class:`PredictError` with the server's sentence when it is not a success."""
        return self._request(method, path, body)

    def _open(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Optional[dict] = None,
        content_type: str = "application/json",
    ) -> Any:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if self.token:
            request.add_header("Authorization", f"token {self.token}")
        if body is not None:
            request.add_header("Content-Type", content_type)
        if isinstance(body, MultipartBody):  # an iterable: its length is known, no chunked upload
            request.add_header("Content-Length", str(body.length))
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                answer = json.loads(raw)
                message, field = answer["error"], answer.get("field")
            except (ValueError, KeyError, TypeError):
                message, field = raw.decode(errors="replace").strip() or str(e.reason), None
            if e.code == 401 and not self.token:
                message += " (give a token: Client(..., token=...) or set ALGOLINK_TOKEN)"
            raise PredictError(e.code, message, field) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            what = "the model server" if self.direct else "the hub"
            if body is not None and isinstance(reason, (BrokenPipeError, ConnectionResetError)):
                # Answered before the body was all sent: most often a 413 for a body over its limit.
                limit = "ALGOLINK_MAX_BODY_SIZE" if self.direct else "64 MiB through /serve"
                raise PredictError(
                    None,
                    f"{what.capitalize()} at {self.url} closed the connection while the request "
                    f"was being sent ({reason}): the body may be over its size limit ({limit}); "
                    "send smaller inputs.",
                ) from None
            raise PredictError(None, f"Cannot reach {what} at {self.url} ({reason}).") from None


def _sse_events(response: Any) -> Iterator[tuple]:
    """``(event, data)`` of a Server-Sent Events answer, as each arrives."""
    name, data = "message", []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                try:
                    yield name, json.loads("\n".join(data))
                except ValueError:
                    pass
            name, data = "message", []
        elif line.startswith(":"):
            continue  # a keep-alive comment
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


def declared(spec: dict, side: str) -> dict:
    """A command's ``inputs`` or ``outputs`` as name -> type (``/meta`` lists them in order)."""
    items = spec.get(side) or []
    if isinstance(items, dict):
        return items
    return {item["name"]: item for item in items if isinstance(item, dict) and "name" in item}


_PIN = re.compile(r"^(v[0-9]+|@[A-Za-z0-9_.-]+)$")


def service_base(service: str) -> str:
    """``/serve/P/S`` for ``P/S``; a version pinned as ``P/S/v2`` or an alias as ``P/S@stable``."""
    pin = ""
    head, slash, tail = service.rpartition("/")
    if slash and head.count("/") == 1 and _PIN.match(tail):
        service, pin = head, tail
    elif "@" in service:
        service, _, alias = service.partition("@")
        pin = "@" + alias
        if not _PIN.match(pin):
            raise CLIError(f"{alias!r} is not an alias name: give PROJECT/SERVICE@ALIAS.")
    project, _, name = service.partition("/")
    if not project or not name or "/" in name:
        raise CLIError(
            f"{service!r} is not PROJECT/SERVICE: name a service as project/service, a version of "
            "it as project/service/v2, an alias as project/service@stable."
        )
    base = f"/serve/{urllib.parse.quote(project)}/{urllib.parse.quote(name)}"
    return f"{base}/{urllib.parse.quote(pin, safe='@')}" if pin else base


# --- inputs ------------------------------------------------------------------------------------------


def encode_inputs(spec: dict, inputs: dict) -> dict:
    """The JSON body for ``inputs`` by the command's declared input types."""
    types = declared(spec, "inputs")
    body = {}
    for name, value in inputs.items():
        if name not in types:
            known = ", ".join(types) or "none"
            raise PredictError(
                None, f"{spec.get('name')!r} has no input {name!r}; its inputs are: {known}.", name
            )
        try:
            body[name] = encode_value(types[name], value)
        except (OSError, ValueError, TypeError) as e:
            raise PredictError(None, f"Input {name!r}: {e}", name) from None
    return body


def encode_value(kind: dict, value: Any) -> Any:
    """One value as the wire wants it for its type (``kind`` as ``/meta`` declares it)."""
    name = kind.get("type")
    if value is None:
        return None
    if name in ("image", "segmentation"):
        return _image_uri(value)
    if name == "file":
        return _file_value(value)
    if name == "directory":
        return _directory_uri(value)
    if name == "array":
        return [encode_value(kind.get("itemType") or {}, v) for v in _as_list(value)]
    return _plain(value)


def _plain(value: Any) -> Any:
    """JSON from numpy arrays and scalars, tuples and the rest of plain Python."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _as_list(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value)
    raise TypeError(f"must be a list, got a {type(value).__name__}")


def _read(value: Any) -> tuple:
    """``(bytes, file name or '')`` from a path, bytes, or an open file."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), ""
    if hasattr(value, "read"):
        data = value.read()
        name = os.path.basename(str(getattr(value, "name", "") or ""))
        return (data.encode() if isinstance(data, str) else data), name
    if isinstance(value, (str, os.PathLike)):
        path = os.path.expanduser(os.fspath(value))
        if not os.path.isfile(path):
            raise ValueError(f"{os.fspath(value)!r} is not a file here")
        with open(path, "rb") as f:
            return f.read(), os.path.basename(path)
    raise TypeError(f"must be a path, bytes or an open file, got a {type(value).__name__}")


def _is_data_uri(value: Any) -> bool:
    return isinstance(value, str) and value[:5].lower() == "data:"


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _image_uri(value: Any) -> str:
    if _is_data_uri(value):
        return value
    if type(value).__module__.startswith("PIL.") or hasattr(value, "__array_interface__"):
        from PIL import Image

        img = value if isinstance(value, Image.Image) else Image.fromarray(_uint8(value))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return _uri(buf.getvalue(), "image/png")
    data, name = _read(value)
    return _uri(data, mimetypes.guess_type(name)[0] or "application/octet-stream")


def _uint8(value: Any) -> Any:
    import numpy as np

    arr = np.asarray(value)
    if arr.dtype != np.uint8:
        if arr.dtype.kind == "f" and arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def _file_value(value: Any) -> Any:
    if _is_data_uri(value) or isinstance(value, dict):  # {"filename", "data"} as the wire has it
        return value
    data, name = _read(value)
    if not name:
        return _uri(data, "application/octet-stream")
    return {"filename": name, "data": base64.b64encode(data).decode("ascii")}


def _directory_uri(value: Any) -> str:
    if _is_data_uri(value):
        return value
    if isinstance(value, (str, os.PathLike)) and os.path.isdir(os.path.expanduser(value)):
        root = os.path.expanduser(os.fspath(value))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for folder, _dirs, files in os.walk(root):
                for name in files:
                    full = os.path.join(folder, name)
                    zf.write(full, os.path.relpath(full, root))
        return _uri(buf.getvalue(), "application/zip")
    data, _name = _read(value)  # a .zip or .tar.gz of the directory
    return _uri(data, "application/octet-stream")


# --- large files: multipart/form-data streamed from disk -------------------------------------------


def _file_size(value: Any) -> Optional[int]:
    """The size of a path or an open file on disk, or None for anything else (bytes, images...)."""
    if isinstance(value, (str, os.PathLike)) and not _is_data_uri(value):
        path = os.path.expanduser(os.fspath(value))
        return os.path.getsize(path) if os.path.isfile(path) else None
    if hasattr(value, "read") and hasattr(value, "fileno") and hasattr(value, "seek"):
        try:
            return os.fstat(value.fileno()).st_size - value.tell()
        except (OSError, ValueError, io.UnsupportedOperation):
            return None
    return None


def large_files(spec: dict, inputs: dict, threshold: int) -> dict:
    """The inputs to send as streamed multipart parts: name -> size, for each image, segmentation or
    file input given as a path (or an open file) over ``threshold`` bytes."""
    types = declared(spec, "inputs")
    found = {}
    for name, value in inputs.items():
        if (types.get(name) or {}).get("type") in _PART_TYPES:
            size = _file_size(value)
            if size is not None and size > threshold:
                found[name] = size
    return found


def _quoted(text: str) -> str:
    """A header parameter value: quotes, backslashes and line breaks cannot break out of it."""
    return re.sub(r'[\\"\r\n]', "_", text)


class MultipartBody:
    """A ``multipart/form-data`` request body that reads its file parts from disk as it is sent.

    Every image, segmentation or file input given as a path or an open file is a file part (``large``
    says which ones made the body multipart); the other inputs are form fields (text, category and
    file contents as they are, the rest as JSON). Iterating yields the body in chunks; ``length`` is
    its exact size, sent as Content-Length."""

    def __init__(self, spec: dict, inputs: dict, large: dict) -> None:
        self.boundary = "algolink-" + uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        types = declared(spec, "inputs")
        on_disk = dict(large)
        on_disk.update(large_files(spec, inputs, -1))  # the small files on disk stream all the same
        small = encode_inputs(spec, {k: v for k, v in inputs.items() if k not in on_disk})
        self.parts: list = []  # (head bytes, bytes | (source, size))
        for name, value in small.items():
            kind = (types.get(name) or {}).get("type")
            if kind == "file" and isinstance(
                value, dict
            ):  # {"filename", "data"}: a part of its own
                data = base64.b64decode(value.get("data") or "")
                self.parts.append((self._file_head(name, value.get("filename") or name), data))
                continue
            as_text = kind in _TEXT_FIELD_TYPES and isinstance(value, str)
            data = (value if as_text else json.dumps(value)).encode("utf-8")
            head = f'Content-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'
            self.parts.append((head.encode("utf-8"), data))
        for name, size in on_disk.items():
            value = inputs[name]
            if hasattr(value, "read"):
                filename = os.path.basename(str(getattr(value, "name", "") or "")) or name
            else:
                filename = os.path.basename(os.path.expanduser(os.fspath(value)))
            self.parts.append((self._file_head(name, filename), (value, size)))
        self.length = sum(
            len(self._open_line()) + len(head) + (len(data) if isinstance(data, bytes) else data[1])
            for head, data in self.parts
        )
        self.length += len(self.parts) * 2 + len(self._close_line())

    @staticmethod
    def _file_head(name: str, filename: str) -> bytes:
        mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return (
            f'Content-Disposition: form-data; name="{_quoted(name)}"; '
            f'filename="{_quoted(filename)}"\r\nContent-Type: {mime}\r\n\r\n'
        ).encode()

    def _open_line(self) -> bytes:
        return f"--{self.boundary}\r\n".encode()

    def _close_line(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()

    def __iter__(self) -> Iterator[bytes]:
        for head, data in self.parts:
            yield self._open_line() + head
            if isinstance(data, bytes):
                yield data
            else:
                yield from self._file_chunks(*data)
            yield b"\r\n"
        yield self._close_line()

    @staticmethod
    def _file_chunks(source: Any, size: int) -> Iterator[bytes]:
        """Exactly ``size`` bytes of a path or an open file, a chunk at a time."""
        opened = None
        if not hasattr(source, "read"):
            opened = source = open(os.path.expanduser(os.fspath(source)), "rb")  # noqa: SIM115
        try:
            left = size
            while left > 0:
                chunk = source.read(min(_CHUNK, left))
                if not chunk:
                    raise PredictError(None, "A file input got shorter while it was being sent.")
                left -= len(chunk)
                yield chunk
        finally:
            if opened is not None:
                opened.close()


# --- outputs -----------------------------------------------------------------------------------------


def data_uri_bytes(value: str) -> tuple:
    """``(bytes, mime type)`` of a data URI (or bare base64)."""
    mime, payload = "", value
    m = _DATA_URI.match(value)
    if m:
        mime, payload = m.group(1).strip().lower(), value[m.end() :]
    return base64.b64decode(payload + "=" * (-len(payload) % 4)), mime


def decode_outputs(spec: dict, outputs: Any) -> dict:
    """The server's JSON outputs as Python values by the declared output types."""
    if not isinstance(outputs, dict):
        return outputs
    types = declared(spec, "outputs")
    return {name: decode_value(types.get(name) or {}, v) for name, v in outputs.items()}


def decode_value(kind: dict, value: Any) -> Any:
    name = kind.get("type")
    if value is None:
        return None
    if name in ("image", "segmentation") and isinstance(value, str):
        from PIL import Image

        img = Image.open(io.BytesIO(data_uri_bytes(value)[0]))
        img.load()
        return img
    if name in ("file", "directory") and isinstance(value, str):
        return data_uri_bytes(value)[0]
    if name == "vector" and isinstance(value, list):
        try:
            import numpy as np
        except ImportError:  # pragma: no cover - numpy is optional here
            return value
        return np.asarray([np.nan if v is None else v for v in value], dtype=np.float32)
    if name == "array" and isinstance(value, list):
        return [decode_value(kind.get("itemType") or {}, v) for v in value]
    return value
