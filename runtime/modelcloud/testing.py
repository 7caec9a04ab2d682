"""An in-process test client for a model's own unit tests: no port, no server, the same checks.

.. code-block:: python

    from modelcloud.testing import TestClient
    import cloud_model  # declares the setup and commands

    def test_classify():
        client = TestClient(options={"checkpoint": "tiny.pt"})  # runs setup
        assert client.run("classify", photo="data:image/png;base64,...")["label"] == "7"

    def test_bad_input():
        answer = client.call("classify", {"photo": 3})
        assert answer.status == 400 and answer.field == "photo"

    def test_progress():
        events = list(client.stream("paint", prompt="a cat"))
        assert events[-1].event == "succeeded"

Inputs are given as a client sends them (JSON values; an image as a data URI) and go through JSON,
so what passes here passes over HTTP; outputs come back as a client receives them.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import ModelCloudError
from .model import Registry, default_registry
from .openapi import openapi_document
from .streaming import Canceled

__all__ = ["Answer", "Event", "TestClient"]


@dataclass
class Answer:
    """What an HTTP client would get: ``status`` (200 on success), ``outputs`` (on success), or
    ``error`` (the one-sentence message) and ``field`` (the input at fault, if any)."""

    status: int
    outputs: Optional[dict] = None
    error: Optional[str] = None
    field: Optional[str] = None
    traceback: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def json(self) -> dict:
        """The body a client would read."""
        if self.ok:
            return dict(self.outputs or {})
        body: dict = {"error": self.error}
        if self.field is not None:
            body["field"] = self.field
        return body


@dataclass
class Event:
    """One event of :meth:`TestClient.stream`, as Server-Sent Events carry them: ``event`` is
    ``progress``, ``output``, ``succeeded`` (``outputs``: the final ones) or ``failed`` (``error``
    and ``status``)."""

    event: str
    progress: Optional[float] = None
    outputs: Optional[dict] = None
    error: Optional[str] = None
    status: Optional[int] = None
    data: dict = field(default_factory=dict)


def _wire(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{what} must be JSON values as a client sends them (an image as a data URI): {e}"
        ) from None


class TestClient:
    """Drive a registry (the one ``modelcloud.setup``/``command`` fill, by default) in-process.

    ``TestClient(options={...})`` runs setup with those options at once (``setup=False`` to leave it
    to :meth:`setup`); option values may name files here, as ``ALGOLINK_MODEL_OPTIONS`` may."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        registry: Optional[Registry] = None,
        *,
        options: Optional[dict] = None,
        setup: bool = True,
    ) -> None:
        self.registry = registry or default_registry
        if setup:
            self.setup(options)

    def setup(self, options: Optional[dict] = None, **more: Any) -> None:
        """Run setup with ``options`` (and keyword options); raises the setup's error."""
        self.registry.run_setup({**(options or {}), **more} or None, True)

    def meta(self) -> dict:
        """The manifest, as ``GET /meta`` answers it."""
        return _wire(self.registry.manifest(), "the manifest")

    def openapi(self) -> dict:
        """The OpenAPI document, as ``GET /openapi.json`` answers it."""
        return openapi_document(self.registry)

    def call(self, command: str, inputs: Optional[dict] = None) -> Answer:
        """Run ``command`` as a POST would; never raises for what a request could cause."""
        try:
            outputs = self.registry.run_command(command, _wire(inputs or {}, "inputs"))
        except ModelCloudError as e:
            return Answer(e.status, error=e.message, field=e.field, traceback=_tb(e))
        return Answer(200, outputs=_wire(outputs, "outputs"))

    def run(self, command: str, **inputs: Any) -> dict:
        """The outputs of ``command``; its error (a ``ModelCloudError`` with ``status``,
        ``message`` and ``field``) raised when it does not succeed."""
        outputs = self.registry.run_command(command, _wire(inputs, "inputs"))
        return _wire(outputs, "outputs")

    def stream(self, command: str, **inputs: Any) -> Iterator[Event]:
        """The events of ``command`` as they happen (one per yield, then ``succeeded`` or
        ``failed``). Leaving the loop early cancels the command at its next yield, as a client
        that goes away does."""
        raw = _wire(inputs, "inputs")
        events: queue.Queue = queue.Queue()
        canceled = threading.Event()
        taken = threading.Semaphore(0)  # in step: the command goes on once its event is taken

        def on_event(progress: Optional[float], outputs: Optional[dict]) -> None:
            kind = "progress" if outputs is None else "output"
            events.put(Event(kind, progress, outputs))
            taken.acquire()

        def work() -> None:
            try:
                outputs = self.registry.run_command(
                    command, raw, on_event=on_event, is_canceled=canceled.is_set
                )
            except Canceled:
                events.put(None)
                return
            except ModelCloudError as e:
                events.put(Event("failed", error=e.message, status=e.status, data=e.to_json()))
                return
            except BaseException as e:  # noqa: BLE001 - reported, never lost
                events.put(Event("failed", error=f"{type(e).__name__}: {e}", status=500))
                return
            events.put(Event("succeeded", 1.0, outputs))

        worker = threading.Thread(target=work, name=f"modelcloud-test-{command}", daemon=True)
        worker.start()
        try:
            while True:
                event = events.get()
                if event is None:
                    return
                yield event
                if event.event in ("succeeded", "failed"):
                    return
                taken.release()
        finally:
            canceled.set()
            taken.release()
            worker.join()


def _tb(e: ModelCloudError) -> Optional[str]:
    return getattr(e, "traceback", None)
