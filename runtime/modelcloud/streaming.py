"""Commands that yield: what one yield means, and a run that can be followed and canceled.

A command function may ``yield`` (or return an iterator). Each yield is one of:

- a dict of outputs (checked and serialized exactly like a returned value);
- Runway 0.5's ``(outputs, progress)`` tuple;
- a number in 0..1: progress only;
- a dict with a ``progress`` key (when no output is called ``progress``) plus outputs, or only
  ``progress``.

The last outputs yielded (or the generator's ``return`` value) are the command's answer. A run is
canceled between yields: the generator is closed at its next yield (``GeneratorExit`` there), so its
``finally`` blocks run.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Optional

from .errors import InferenceError, ModelCloudError


class Canceled(ModelCloudError):
    """The run was canceled (by its client, or because its client went away)."""

    status = 499


def is_stream(result: Any) -> bool:
    """Whether a command's return value is an iterator to follow (not a value to serialize)."""
    if isinstance(result, (dict, str, bytes, bytearray, list, tuple)):
        return False
    return hasattr(result, "__next__") and hasattr(result, "__iter__")


def split_yield(cmd: Any, item: Any) -> tuple:
    """``(progress or None, values or None)`` of one yield of ``cmd``; an InferenceError (one
    sentence) for a progress out of 0..1."""
    progress = None
    values = item
    if isinstance(item, tuple) and len(item) == 2:
        values, progress = item
    elif isinstance(item, (int, float)) and not isinstance(item, bool):
        # A bare number is progress, unless the command's only output is a number (then it is
        # that output: yield {"progress": p} for progress).
        types = list(cmd.outputs.values())
        if not (len(types) == 1 and types[0].type_name == "number"):
            values, progress = None, item
    elif isinstance(item, dict) and "progress" in item and "progress" not in cmd.outputs:
        progress = item["progress"]
        values = {k: v for k, v in item.items() if k != "progress"} or None
    if progress is not None:
        if (
            isinstance(progress, bool)
            or not isinstance(progress, (int, float))
            or not 0 <= progress <= 1
        ):
            raise InferenceError(
                f"Command {cmd.name!r} yielded the progress {progress!r}: yield a number between "
                "0 and 1."
            )
        progress = float(progress)
    return progress, values


#: Events a run may have waiting for its reader before its generator is held at its next yield.
MAX_PENDING = 64


class RunEvents:
    """The events of one run, handed from the worker thread that runs it to the I/O loop.

    The worker calls :meth:`emit`; the loop awaits :meth:`next`. ``cancel()`` (from either side)
    stops the generator at its next yield."""

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.canceled = threading.Event()
        #: Outputs sent but not yet taken by the loop: a generator faster than its client waits
        #: (at its yield) once MAX_PENDING are waiting, instead of filling the server's memory.
        self.room = threading.Semaphore(MAX_PENDING)

    def cancel(self) -> None:
        self.canceled.set()

    def is_canceled(self) -> bool:
        return self.canceled.is_set()

    def emit(self, kind: str, data: Any = None) -> None:
        """From any thread: ``kind`` is ``started``, ``output`` (data: progress and outputs),
        ``succeeded`` (data: the last outputs) or ``failed`` (data: the ModelCloudError)."""
        if kind == "output" and not self.room.acquire(blocking=False):
            while not self.room.acquire(timeout=0.1):
                if self.canceled.is_set():
                    return  # nobody reads any more: the run stops at its next step
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, data))
        except RuntimeError:  # the loop closed (the server stopped)
            pass

    def _taken(self, item: tuple) -> tuple:
        if item[0] == "output":
            self.room.release()
        return item

    def drain(self) -> list:
        """The events already waiting, without waiting for more."""
        items = []
        while not self.queue.empty():
            items.append(self._taken(self.queue.get_nowait()))
        return items

    async def next(self, timeout: Optional[float] = None) -> Optional[tuple]:
        """The next ``(kind, data)``, or None after ``timeout`` seconds without one."""
        try:
            return self._taken(await asyncio.wait_for(self.queue.get(), timeout))
        except asyncio.TimeoutError:
            return None


def event_payload(progress: Optional[float], outputs: Optional[dict]) -> dict:
    body: dict = {}
    if progress is not None:
        body["progress"] = progress
    if outputs is not None:
        body["outputs"] = outputs
    return body


def run_with_events(
    execute: Callable[[Callable, Callable], dict], events: RunEvents
) -> Optional[dict]:
    """On a worker: ``execute(on_event, is_canceled)`` with its events sent to ``events``; the
    terminal event (``succeeded``, ``failed`` or ``canceled``) is always the last one."""
    try:
        result = execute(
            lambda progress, outputs: events.emit("output", event_payload(progress, outputs)),
            events.is_canceled,
        )
    except Canceled:
        events.emit("canceled")
        return None
    except ModelCloudError as e:
        events.emit("failed", e)
        return None
    except BaseException as e:  # noqa: BLE001 - reported as the run's failure, never lost
        events.emit("failed", InferenceError(f"Error during inference: {type(e).__name__}: {e}"))
        return None
    events.emit("succeeded", result)
    return result
