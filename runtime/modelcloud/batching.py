"""Adaptive batching: requests for one command that arrive together reach the model as one call.

A batched command is declared with ``batch=modelcloud.batching(max_size=32, max_latency_ms=10)``; its
function takes a *list* of inputs dicts and returns either a list of outputs (one per input, in order, each
what an unbatched command would return) or one dict of batched values (``{"digit": tensor_of_n, ...}``),
which is split by index.

In the server, each request's inputs are decoded on a pool of threads (Pillow and numpy release the GIL, so
decodes overlap), then queued for the command's :class:`Batcher`. The batcher hands the queue to the model
as one call when it holds ``max_size`` requests, or when waiting any longer would keep the oldest past its
latency budget, or when the next request is not expected soon enough to be worth waiting for: it keeps a
running estimate of how a batch's run time grows with its size (least squares over recent runs) and of
the gap between arrivals, so a lone client is not made to wait (the batch of one leaves at once) while a
crowd is gathered. Outputs are encoded on the same pool, off the model's thread. One bad input fails its
own request before it joins a batch; a batch function that raises fails every request of that batch.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from typing import Any, Callable, Optional

from .errors import InferenceError, ModelCloudError

#: Bounds of ``max_size`` and ``max_latency_ms``.
MAX_BATCH_SIZE = 4096
MAX_LATENCY_MS = 60_000.0
#: Recent batch runs the cost estimate is fitted on.
COST_WINDOW = 64
#: What one more call costs besides the model itself (thread hand-overs, the function's own Python), in
#: seconds: a request joining a batch instead of starting its own call saves at least this much.
CALL_OVERHEAD = 0.0001


class Batching:
    """How a batched command gathers requests: at most ``max_size`` per call, and no request waits
    more than ``max_latency_ms`` milliseconds for its batch to leave (its run time comes on top)."""

    def __init__(self, max_size: int = 32, max_latency_ms: float = 10.0):
        if isinstance(max_size, bool) or not isinstance(max_size, int):
            raise TypeError(f"batching: max_size must be a whole number, got {max_size!r}")
        if not 1 <= max_size <= MAX_BATCH_SIZE:
            raise ValueError(
                f"batching: max_size must be between 1 and {MAX_BATCH_SIZE}, got {max_size}"
            )
        if isinstance(max_latency_ms, bool) or not isinstance(max_latency_ms, (int, float)):
            raise TypeError(f"batching: max_latency_ms must be a number, got {max_latency_ms!r}")
        if not (0 < max_latency_ms <= MAX_LATENCY_MS) or math.isnan(max_latency_ms):
            raise ValueError(
                f"batching: max_latency_ms must be above 0 and at most {MAX_LATENCY_MS:g}, "
                f"got {max_latency_ms}"
            )
        self.max_size = max_size
        self.max_latency_ms = float(max_latency_ms)

    def to_dict(self) -> dict:
        return {"maxSize": self.max_size, "maxLatencyMs": self.max_latency_ms}

    def source(self) -> str:
        """The call that declares these settings, as written in a ``cloud_model.py``."""
        latency = self.max_latency_ms
        shown = int(latency) if latency.is_integer() else latency
        return f"modelcloud.batching(max_size={self.max_size}, max_latency_ms={shown})"

    def __repr__(self) -> str:
        return self.source().replace("modelcloud.", "")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Batching) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.max_size, self.max_latency_ms))


def batching(max_size: int = 32, max_latency_ms: float = 10.0) -> Batching:
    """The settings of a batched command: ``@modelcloud.command(..., batch=modelcloud.batching(...))``."""
    return Batching(max_size, max_latency_ms)


def as_batching(value: Any, where: str) -> Optional[Batching]:
    """A command's ``batch=`` argument: None/False, True (the default settings), a whole number (the
    largest batch) or :func:`batching`'s settings."""
    if value is None or value is False:
        return None
    if value is True:
        return Batching()
    if isinstance(value, Batching):
        return value
    if isinstance(value, int):
        return Batching(max_size=value)
    raise TypeError(
        f"{where}: batch must be modelcloud.batching(max_size=..., max_latency_ms=...), True or a "
        f"whole number, got {value!r}"
    )


def _plain(value: Any) -> Any:
    """One element taken out of a batched array or tensor: a 0-d numpy/torch value becomes a Python
    scalar (what an unbatched command would have returned)."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def split_results(name: str, outputs: dict, result: Any, count: int) -> list:
    """What a batched function returned, as one unbatched result per input (raises InferenceError)."""
    if isinstance(result, dict) and result and set(result) <= set(outputs) and count > 0:
        lengths = {}
        for key, values in result.items():
            try:
                lengths[key] = len(values)
            except TypeError:
                raise InferenceError(
                    f"Batched command {name!r} returned a dict whose {key!r} is a "
                    f"{type(values).__name__}: give one value per input (a list, array or tensor of "
                    f"{count}), or return a list of outputs dicts."
                ) from None
        wrong = {k: n for k, n in lengths.items() if n != count}
        if wrong:
            key, n = next(iter(wrong.items()))
            raise InferenceError(
                f"Batched command {name!r} returned {n} values of {key!r} for a batch of {count}: "
                "give exactly one per input, in order."
            )
        return [{key: _plain(values[i]) for key, values in result.items()} for i in range(count)]
    if isinstance(result, (list, tuple)):
        if len(result) != count:
            raise InferenceError(
                f"Batched command {name!r} returned {len(result)} results for a batch of {count}: "
                "return exactly one outputs dict per input, in order."
            )
        return list(result)
    raise InferenceError(
        f"Batched command {name!r} returned a {type(result).__name__}: it gets a list of inputs dicts "
        "and must return a list with one outputs dict per input (or a dict of per-input lists/arrays)."
    )


class CostModel:
    """A batch's run time as ``fixed + per_item * size``, fitted by least squares over the last
    COST_WINDOW runs. Recording a run costs the same whatever the window (running sums: sizes are whole
    numbers, so their sums are exact; the sums of times are added afresh once per window, so rounding
    cannot build up)."""

    def __init__(self) -> None:
        self.runs: collections.deque = collections.deque()
        self.fixed = 0.0
        self.per_item = 0.0
        self.sum_s = self.sum_ss = 0  # of sizes, of squared sizes
        self.sum_t = self.sum_st = 0.0  # of times, of size * time
        self.recorded = 0

    def record(self, size: int, seconds: float) -> None:
        runs = self.runs
        runs.append((size, seconds))
        self.sum_s += size
        self.sum_ss += size * size
        self.sum_t += seconds
        self.sum_st += size * seconds
        if len(runs) > COST_WINDOW:
            old_s, old_t = runs.popleft()
            self.sum_s -= old_s
            self.sum_ss -= old_s * old_s
            self.sum_t -= old_t
            self.sum_st -= old_s * old_t
        self.recorded += 1
        if self.recorded % COST_WINDOW == 0:
            self.sum_t = sum(t for _, t in runs)
            self.sum_st = sum(s * t for s, t in runs)
        n = len(runs)
        spread = n * self.sum_ss - self.sum_s * self.sum_s  # n^2 times the variance of the sizes
        mean_t = self.sum_t / n
        if spread > 0:
            slope = max((n * self.sum_st - self.sum_s * self.sum_t) / spread, 0.0)
            self.per_item = slope
            self.fixed = max(mean_t - slope * self.sum_s / n, 0.0)
        else:  # one size seen so far: count it all as fixed cost until sizes vary
            self.fixed = mean_t
            self.per_item = 0.0

    def estimate(self, size: int) -> float:
        return self.fixed + self.per_item * size


class _Waiting:
    __slots__ = ("inputs", "future", "arrived", "gone", "formats", "timed")

    def __init__(
        self,
        inputs: dict,
        future: asyncio.Future,
        arrived: float,
        gone: Callable,
        formats: Optional[dict],
        timed: Optional[Callable[[float, float], None]],
    ):
        self.inputs = inputs
        self.future = future
        self.arrived = arrived
        self.gone = gone
        self.formats = formats
        self.timed = timed


class Batcher:
    """The queue of one batched command in one server. ``run`` runs a batch on the model's thread and
    returns its raw results (one per input); ``encode(result, formats)`` serializes one result off
    that thread: it returns the encoded outputs, or an asyncio.Future of them when it encodes
    elsewhere."""

    def __init__(
        self,
        name: str,
        settings: Batching,
        run: Callable[[list], Any],
        encode: Callable[[Any, Optional[dict]], Any],
    ):
        self.name = name
        self.settings = settings
        self.run = run
        self.encode = encode
        self.queue: collections.deque = collections.deque()
        self.arrival = asyncio.Event()
        self.cost = CostModel()
        self.gap: Optional[float] = None  # running mean of the time between two arrivals
        self.last_arrival: Optional[float] = None
        self.task: Optional[asyncio.Task] = None

    async def submit(
        self,
        inputs: dict,
        gone: Callable[[], bool] = lambda: False,
        formats: Optional[dict] = None,
        timed: Optional[Callable[[float, float], None]] = None,
    ) -> Any:
        """Wait for this request's place in a batch; its encoded outputs (``formats``: the output
        formats this client asked for; ``timed(queue_s, model_s)`` is told how long it waited for its
        batch to start and how long the batch ran)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.arrived(now)
        future = loop.create_future()
        self.queue.append(_Waiting(inputs, future, now, gone, formats, timed))
        self.arrival.set()
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._dispatch())
        return await future

    def arrived(self, now: float) -> None:
        """A request arrived at loop time ``now``: the running mean of the gap between two arrivals."""
        if self.last_arrival is not None:
            gap = now - self.last_arrival
            self.gap = gap if self.gap is None else 0.8 * self.gap + 0.2 * gap
        self.last_arrival = now

    def ran_alone(self, seconds: float) -> None:
        """A request was answered as a batch of one outside the queue (a lone client's, see
        ModelServer.can_answer_alone): it counts as an arrival, and what its run took counts for the
        cost estimate."""
        self.arrived(asyncio.get_running_loop().time() - seconds)
        self.cost.record(1, seconds)

    def _ready(self, now: float) -> Optional[float]:
        """0 when the queue should leave now, else how long to wait at most for one more request."""
        n = len(self.queue)
        if n >= self.settings.max_size:
            return 0.0
        waited = now - self.queue[0].arrived
        budget = self.settings.max_latency_ms / 1000 - waited - self.cost.estimate(n + 1)
        if budget <= 0:
            return 0.0
        gap = self.gap
        # Waiting for the next request costs each of the n waiting ones about one gap; letting it join
        # saves one call's fixed cost. No history yet: leave at once.
        if gap is None or n * gap > self.cost.fixed + CALL_OVERHEAD:
            return 0.0
        return min(budget, max(2 * gap, 0.0002))

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while self.queue:
            wait = self._ready(loop.time())
            if wait:
                self.arrival.clear()
                try:
                    await asyncio.wait_for(self.arrival.wait(), wait)
                    continue  # one more came: weigh again (the budget only shrinks)
                except asyncio.TimeoutError:
                    pass  # none came in time: go with what is here
            size = min(len(self.queue), self.settings.max_size)
            batch = [self.queue.popleft() for _ in range(size)]
            batch = [w for w in batch if not w.gone() and not w.future.done()]
            if batch:
                await self._run_batch(batch)

    async def _run_batch(self, batch: list) -> None:
        start = time.perf_counter()
        started = asyncio.get_running_loop().time()
        try:
            results = await self.run([w.inputs for w in batch])
        except ModelCloudError as e:
            for w in batch:
                if not w.future.done():
                    w.future.set_exception(e)
            return
        finally:
            took = time.perf_counter() - start
            self.cost.record(len(batch), took)
            for w in batch:
                if w.timed is not None:
                    w.timed(started - w.arrived, took)
        for w, result in zip(batch, results):
            try:
                body = self.encode(result, w.formats)
            except BaseException as e:
                _fail(w, e)
                continue
            if isinstance(body, asyncio.Future):
                body.add_done_callback(lambda f, w=w: _answer_with(w, f))
            elif not w.future.done():
                w.future.set_result(body)


def _fail(waiting: _Waiting, e: BaseException) -> None:
    """Its outputs could not be encoded: the request fails with a sentence (never without an answer)."""
    if waiting.future.done():
        return
    if not isinstance(e, ModelCloudError):
        e = InferenceError(f"Encoding the outputs failed: {type(e).__name__}: {e}")
    waiting.future.set_exception(e)


def _answer_with(waiting: _Waiting, encoded: asyncio.Future) -> None:
    """Its outputs, encoded on another thread, answer the request."""
    if encoded.cancelled():
        _fail(waiting, RuntimeError("the encoding was canceled"))
    elif encoded.exception() is not None:
        _fail(waiting, encoded.exception())
    elif not waiting.future.done():
        waiting.future.set_result(encoded.result())
