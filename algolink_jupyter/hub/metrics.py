"""What ``/serve`` does, measured: live figures for ``GET /metrics``, per-minute roll-ups and the
request log in the database, and the charts' figures read back from them.

Every ``/serve`` request to a service the hub has is measured when it ends (a streamed answer when its
last byte is sent): by project, service, version and command, its status, its latency to the answer's
first byte and to its end, the bytes in and out, and, from the model server's ``Server-Timing`` header
(``queue;dur=...``, ``model;dur=...``, in milliseconds), the time the request waited for the model and
the time the model took, so that network, queue and model time can be told apart.

The relay's hook is :meth:`Meter.done`, handed the :class:`~.proxy.ServeRequest` when it ends. It reads
these of the request's attributes: ``measured`` (``(project, service, route)`` once the route is
known, else None: the request is not counted), ``plan`` (``key``, ``command``), ``status``,
``began_at``/``first_at`` (``time.perf_counter()``), ``size`` (bytes in), ``sent`` (bytes out),
``timing`` (the ``Server-Timing`` value), ``caller`` (an ``access.Caller`` or None), ``body`` (the
request's spooled body) and ``tee`` (what :meth:`Meter.tee_for` gave it). The hook costs a few
dictionary updates; nothing touches the database on the request's path: a flush every
``FLUSH_SECONDS`` writes the minutes and the log in one transaction on a worker thread, and removes
what is older than the retention.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime
import logging
import math
import re
import time
from bisect import bisect_left
from typing import Any, Optional

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import delete, insert, select

from . import orm

log = logging.getLogger("algolink.hub")

#: The ``le`` bounds (seconds) of the Prometheus histograms; ``+Inf`` follows.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: The history's finer histogram: bucket 0 holds durations up to FINE_BASE, bucket i > 0 those in
#: (FINE_BASE * FINE_RATIO**(i-1), FINE_BASE * FINE_RATIO**i]: a quantile read from it is off by at
#: most FINE_RATIO - 1 (19%), usually by half of that.
FINE_BASE = 1e-4
FINE_RATIO = 2**0.25
FINE_MAX = 120  # FINE_BASE * FINE_RATIO**120 is over a day
_LOG_RATIO = math.log(FINE_RATIO)
#: Seconds between two flushes of the per-minute figures to the database, and of the request log
#: (whoever reads either flushes first, so what they read is never older than their request).
FLUSH_SECONDS = 5.0
LOG_FLUSH_SECONDS = 30.0
#: Requests of one service kept in its log by default (``--request-log``).
DEFAULT_LOG_SIZE = 1000
#: The default retention of the history (``--metrics-retention``): 7 days.
DEFAULT_RETENTION = 7 * 86400
#: The largest input or output a service may record per request (its ``record_limit``).
MAX_RECORD_LIMIT = 1 << 20
#: The charts' ranges: (seconds shown, seconds a point covers).
RANGES = {"hour": (3600, 60), "day": (86400, 600), "week": (7 * 86400, 3600)}
_TIMING = re.compile(r"(?:^|,)\s*(model|queue)\s*;[^,]*?dur\s*=\s*\"?([0-9.]+)", re.IGNORECASE)
LABELS = ("project", "service", "version", "command")


def fine_index(seconds: float) -> int:
    if seconds <= FINE_BASE:
        return 0
    return min(FINE_MAX, math.ceil(math.log(seconds / FINE_BASE) / _LOG_RATIO - 1e-9))


def fine_bounds(index: int) -> tuple[float, float]:
    if index == 0:
        return 0.0, FINE_BASE
    return FINE_BASE * FINE_RATIO ** (index - 1), FINE_BASE * FINE_RATIO**index


def quantile(buckets: dict, q: float) -> Optional[float]:
    """The ``q`` quantile (seconds) of a fine histogram ``{index: count}``, read by linear
    interpolation inside its bucket; None for an empty one."""
    total = sum(buckets.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for index in sorted(buckets):
        count = buckets[index]
        if seen + count >= rank:
            low, high = fine_bounds(index)
            return low + (high - low) * ((rank - seen) / count if count else 1.0)
        seen += count
    return fine_bounds(max(buckets))[1]


def server_timing(value: Optional[str]) -> tuple[Optional[float], Optional[float]]:
    """``(queue, model)`` in seconds from a ``Server-Timing`` header (durations in ms)."""
    if value and value.startswith("queue;dur="):  # the model server's own, quickly
        queue_ms, sep, model_ms = value[10:].partition(", model;dur=")
        if sep:
            try:
                return float(queue_ms) / 1000.0, float(model_ms) / 1000.0
            except ValueError:
                pass
    queue = model = None
    if value:
        for name, dur in _TIMING.findall(value):
            try:
                seconds = float(dur) / 1000.0
            except ValueError:
                continue
            if name.lower() == "model":
                model = seconds
            else:
                queue = seconds
    return queue, model


class Series:
    """The live figures of one label set (project, service, version, command)."""

    __slots__ = (
        "codes",
        "duration",
        "duration_sum",
        "first_byte",
        "first_byte_sum",
        "model",
        "model_sum",
        "queue",
        "queue_sum",
        "bytes_in",
        "bytes_out",
        "minute",
        "minute_number",
    )

    def __init__(self) -> None:
        n = len(BUCKETS) + 1
        #: This minute's roll-up (of the same labels), while it was not handed to a flush.
        self.minute: Optional[Minute] = None
        self.minute_number = 0
        self.codes: dict = {}
        self.duration = [0] * n
        self.duration_sum = 0.0
        self.first_byte = [0] * n
        self.first_byte_sum = 0.0
        self.model = [0] * n
        self.model_sum = 0.0
        self.queue = [0] * n
        self.queue_sum = 0.0
        self.bytes_in = 0
        self.bytes_out = 0


class Minute:
    """One minute of one version and command of a service, waiting for the next flush."""

    __slots__ = (
        "requests",
        "client_errors",
        "errors",
        "duration_sum",
        "buckets",
        "model_sum",
        "model_count",
        "queue_sum",
        "bytes_in",
        "bytes_out",
        "flushed",
    )

    def __init__(self) -> None:
        self.flushed = False  # handed to a flush: a new one takes what comes next
        self.requests = self.client_errors = self.errors = self.model_count = 0
        self.duration_sum = self.model_sum = self.queue_sum = 0.0
        self.buckets: dict = {}
        self.bytes_in = self.bytes_out = 0


class Tee:
    """The first ``limit`` bytes of an answer as it is sent (its head among them)."""

    __slots__ = ("limit", "parts", "size", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit + MAX_HEAD_GUESS
        self.parts: list = []
        self.size = 0
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if self.size < self.limit:
            piece = bytes(data[: self.limit - self.size])
            self.parts.append(piece)
            self.size += len(piece)


#: Room for the answer's head in what a Tee keeps.
MAX_HEAD_GUESS = 8192


def _text(raw: bytes, limit: int, total: int) -> dict:
    """An input or output as the log keeps it: UTF-8 text, or base64 for other bytes."""
    kept = raw[:limit]
    out: dict = {"bytes": total, "truncated": total > len(kept)}
    # A cut may fall inside a character: up to three bytes less are tried then.
    for cut in range(4 if out["truncated"] else 1):
        try:
            out["text"] = kept[: len(kept) - cut].decode("utf-8")
            return out
        except UnicodeDecodeError:
            continue
    out["base64"] = base64.b64encode(kept).decode("ascii")
    return out


def _answer_body(raw: bytes) -> tuple[bytes, bool]:
    """The body of an answer caught by a Tee (its head dropped, chunks joined); and whether it was
    chunked."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return b"", False
    if b"\r\ntransfer-encoding: chunked" not in head.lower():
        return body, False
    out = bytearray()
    while body:
        size_line, sep, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if not sep or size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out), True


class Meter:
    """The hub's measuring of ``/serve`` (None on a hub started with ``--no-metrics``)."""

    def __init__(
        self,
        hub: Any,
        retention: int = DEFAULT_RETENTION,
        log_size: int = DEFAULT_LOG_SIZE,
    ) -> None:
        self.hub = hub
        self.retention = retention
        self.log_size = log_size
        self.series: dict = {}
        #: Service id -> its services' ``record_limit`` when it records inputs and outputs.
        self.recording: dict = {}
        self._minutes: dict = {}
        self._log: dict = {}
        self._flushing: Optional[asyncio.Future] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._last_retention = 0.0
        self._last_log = time.time()
        self.started = time.time()

    # --- start and stop -------------------------------------------------------------------------

    def start(self) -> None:
        """Read which services record bodies; the first flush (and retention pass) soon."""
        with self.hub.session() as db:
            rows = db.query(orm.Service.id, orm.Service.record_limit).filter(
                orm.Service.record_bodies.is_(True)
            )
            self.recording = {sid: limit for sid, limit in rows}
        self._schedule(0.5)

    def _schedule(self, delay: float = FLUSH_SECONDS) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, lambda: asyncio.ensure_future(self._tick()))

    async def _tick(self) -> None:
        try:
            await self.flush(everything=False)
        except Exception:
            log.exception("writing the request history failed")
        self._schedule()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            await self.flush()
        except Exception:
            log.exception("writing the request history failed")

    def set_recording(self, service_id: int, on: bool, limit: int) -> None:
        if on:
            self.recording[service_id] = limit
        else:
            self.recording.pop(service_id, None)

    # --- the relay's hooks ------------------------------------------------------------------------

    def tee_for(self, request: Any) -> Optional[Tee]:
        """A Tee for the answer of a request to a service that records its inputs and outputs."""
        measured = request.measured
        if measured is None or not self.recording:
            return None
        limit = self.recording.get(measured[2].service_id)
        return Tee(limit) if limit else None

    def done(self, request: Any) -> None:
        """One request ended (see the module's docstring for what is read of it). The hot path:
        written for speed (each line here costs every request)."""
        measured = request.measured
        if measured is None:
            return
        began = request.began_at
        duration = time.perf_counter() - began
        plan = request.plan
        route = measured[2]
        if plan is not None:
            key = plan["key"]
            version = key.rpartition("/")[2] if key else ("dev" if route.dev else "")
            command = plan["command"] or "meta"
        else:
            version = command = ""
        status = request.status or 499  # the client went away before any answer
        labels = (measured[0], measured[1], version, command)
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = Series()
        codes = series.codes
        codes[status] = codes.get(status, 0) + 1
        series.duration[bisect_left(BUCKETS, duration)] += 1
        series.duration_sum += duration
        first_at = request.first_at
        first = None
        if first_at:
            first = first_at - began
            series.first_byte[bisect_left(BUCKETS, first)] += 1
            series.first_byte_sum += first
        timing = request.timing
        queue = model = None
        if timing is not None:
            queue, model = server_timing(timing)
            if model is not None:
                series.model[bisect_left(BUCKETS, model)] += 1
                series.model_sum += model
            if queue is not None:
                series.queue[bisect_left(BUCKETS, queue)] += 1
                series.queue_sum += queue
        size, sent = request.size, request.sent
        series.bytes_in += size
        series.bytes_out += sent
        # The history: this minute's roll-up, and the log.
        wall = time.time()
        minute_number = int(wall // 60)
        minute = series.minute
        if minute is None or series.minute_number != minute_number or minute.flushed:
            number = int(version) if version.isdigit() else 0
            mkey = (route.service_id, minute_number, number, command)
            minute = self._minutes.get(mkey)
            if minute is None:
                minute = self._minutes[mkey] = Minute()
            series.minute, series.minute_number = minute, minute_number
        minute.requests += 1
        if status >= 400:
            if status >= 500:
                minute.errors += 1
            else:
                minute.client_errors += 1
        minute.duration_sum += duration
        buckets = minute.buckets
        f = 0 if duration <= FINE_BASE else fine_index(duration)
        buckets[f] = buckets.get(f, 0) + 1
        if model is not None:
            minute.model_sum += model
            minute.model_count += 1
        if queue is not None:
            minute.queue_sum += queue
        minute.bytes_in += size
        minute.bytes_out += sent
        caller = request.caller
        if caller is not None:
            user, token = caller.name, (caller.token_name if caller.token_id else None)
        else:
            user = token = None
        pending = self._log.get(route.service_id)
        if pending is None:
            pending = self._log[route.service_id] = collections.deque(maxlen=self.log_size)
        pending.append(
            (
                wall,
                version,
                command,
                status,
                duration,
                first,
                model,
                queue,
                size,
                sent,
                user,
                token,
                None if request.tee is None else self._bodies(request, route.service_id),
            )
        )

    def _bodies(self, request: Any, service_id: int) -> Optional[dict]:
        tee = request.tee
        if tee is None:
            return None
        limit = self.recording.get(service_id) or tee.limit - MAX_HEAD_GUESS
        out: dict = {}
        body = request.body
        if body is not None:
            try:
                body.seek(0)
                out["input"] = _text(body.read(limit), limit, request.size)
            except (OSError, ValueError):
                pass
        else:
            out["input"] = _text(b"", limit, 0)
        raw, _ = _answer_body(b"".join(tee.parts))
        head_size = len(b"".join(tee.parts)) - len(raw)
        total = max(len(raw), tee.total - max(head_size, 0))
        out["output"] = _text(raw, limit, total)
        return out

    # --- flushing ---------------------------------------------------------------------------------

    async def flush(self, everything: bool = True) -> None:
        """Write what was measured since the last flush (on a worker thread), then remove what is
        past the retention (at most once a minute). One flush at a time: a second waits for it.
        The timer's flushes (``everything`` False) write the request log only every
        LOG_FLUSH_SECONDS (at a high rate most of it is replaced before long); a reader's flush
        writes all."""
        while self._flushing is not None:
            await asyncio.shield(self._flushing)
        minutes, self._minutes = self._minutes, {}
        for minute in minutes.values():
            minute.flushed = True
        self.forget_deleted()
        now = time.time()
        logged: dict = {}
        if everything or now - self._last_log >= LOG_FLUSH_SECONDS:
            logged, self._log = self._log, {}
            self._last_log = now
        prune = now - self._last_retention >= 60
        if prune:
            self._last_retention = now
        loop = asyncio.get_running_loop()
        self._flushing = loop.run_in_executor(None, self._write, minutes, logged, prune)
        try:
            await asyncio.shield(self._flushing)
        except Exception:
            self._keep(minutes, logged)  # the database refused: kept for the next flush
            raise
        finally:
            self._flushing = None

    def forget_deleted(self) -> None:
        """The live figures of services deleted since: gone from /metrics too."""
        routes = getattr(getattr(self.hub, "publisher", None), "routes", None)
        if routes is None:
            return
        for labels in [k for k in self.series if (k[0], k[1]) not in routes]:
            del self.series[labels]

    def _keep(self, minutes: dict, logged: dict) -> None:
        """Put back what a failed flush was to write, with what came since."""
        for key, old in minutes.items():
            new = self._minutes.get(key)
            if new is None:
                old.flushed = False
                self._minutes[key] = old
                continue
            for name in Minute.__slots__:
                if name not in ("buckets", "flushed"):
                    setattr(new, name, getattr(new, name) + getattr(old, name))
            for index, count in old.buckets.items():
                new.buckets[index] = new.buckets.get(index, 0) + count
        for service_id, entries in logged.items():
            pending = self._log.get(service_id)
            if pending is None:
                self._log[service_id] = entries
            else:
                merged = collections.deque(entries, maxlen=self.log_size)
                merged.extend(pending)
                self._log[service_id] = merged

    def prune_now(self) -> None:
        """Make the next flush remove what is past the retention."""
        self._last_retention = 0.0

    def _write(self, minutes: dict, logged: dict, prune: bool) -> None:
        if not minutes and not logged and not prune:
            return
        with self.hub.session() as db:
            for rows in self._existing(db, minutes).values():
                for (service_id, stamp, version, command), m in rows:
                    row = db.execute(
                        select(orm.ServeMinute).filter_by(
                            service_id=service_id,
                            minute=stamp,
                            version=version,
                            command=command,
                        )
                    ).scalar_one_or_none()
                    if row is None:
                        row = orm.ServeMinute(
                            service_id=service_id,
                            minute=stamp,
                            version=version,
                            command=command[:128],
                            requests=0,
                            client_errors=0,
                            errors=0,
                            duration_sum=0.0,
                            buckets={},
                            model_sum=0.0,
                            model_count=0,
                            queue_sum=0.0,
                            bytes_in=0,
                            bytes_out=0,
                        )
                        db.add(row)
                    row.requests += m.requests
                    row.client_errors += m.client_errors
                    row.errors += m.errors
                    row.duration_sum += m.duration_sum
                    merged = dict(row.buckets or {})
                    for index, count in m.buckets.items():
                        merged[str(index)] = merged.get(str(index), 0) + count
                    row.buckets = merged
                    row.model_sum += m.model_sum
                    row.model_count += m.model_count
                    row.queue_sum += m.queue_sum
                    row.bytes_in += m.bytes_in
                    row.bytes_out += m.bytes_out
            # The log in one executemany (no ORM object a row: at a thousand requests a second
            # this is most of what measuring costs).
            rows = [
                {
                    "service_id": service_id,
                    "at": _utc(e[0]),
                    "version": int(e[1]) if e[1].isdigit() else 0,
                    "command": e[2][:128],
                    "status": e[3],
                    "duration": e[4],
                    "first_byte": e[5],
                    "model": e[6],
                    "queue": e[7],
                    "bytes_in": e[8],
                    "bytes_out": e[9],
                    "user": e[10][:64] if e[10] else None,
                    "token": e[11][:64] if e[11] else None,
                    "bodies": e[12],
                }
                for service_id, entries in logged.items()
                for e in entries
            ]
            if rows:
                db.execute(insert(orm.ServeRecord), rows)
            db.flush()
            for service_id in logged:
                self._trim(db, service_id)
            if prune:
                cutoff = orm.utcnow() - datetime.timedelta(seconds=self.retention)
                db.execute(delete(orm.ServeMinute).where(orm.ServeMinute.minute < cutoff))
                db.execute(delete(orm.ServeRecord).where(orm.ServeRecord.at < cutoff))
            db.commit()

    def _existing(self, db: Any, minutes: dict) -> dict:
        """The minutes to write, by service (SQLite and PostgreSQL both take them as they come)."""
        by_service: dict = collections.defaultdict(list)
        for (service_id, minute, version, command), m in minutes.items():
            by_service[service_id].append(((service_id, _utc(minute * 60), version, command), m))
        known = {sid for (sid,) in db.query(orm.Service.id).filter(orm.Service.id.in_(by_service))}
        return {sid: rows for sid, rows in by_service.items() if sid in known}

    def _trim(self, db: Any, service_id: int) -> None:
        """Keep the service's last ``log_size`` requests."""
        keep_from = db.execute(
            select(orm.ServeRecord.id)
            .where(orm.ServeRecord.service_id == service_id)
            .order_by(orm.ServeRecord.id.desc())
            .offset(self.log_size)
            .limit(1)
        ).scalar_one_or_none()
        if keep_from is not None:
            db.execute(
                delete(orm.ServeRecord).where(
                    orm.ServeRecord.service_id == service_id, orm.ServeRecord.id <= keep_from
                )
            )

    # --- reading ----------------------------------------------------------------------------------

    def chart(self, db: Any, service: orm.Service, span: str, now: Optional[float] = None) -> dict:
        """The service's charts over ``span`` (hour, day or week): per version and in all, for
        each step, requests per minute, p50/p95/p99 latency (seconds) and the share of 5xx and 4xx
        answers. A version's values are null before it was published (or made, if never)."""
        seconds, step = RANGES[span]
        now = time.time() if now is None else now
        end = (int(now) // step + 1) * step
        start = end - seconds
        steps = seconds // step
        times = [start + i * step for i in range(steps)]
        rows = db.execute(
            select(orm.ServeMinute).where(
                orm.ServeMinute.service_id == service.id,
                orm.ServeMinute.minute >= _utc(start),
            )
        ).scalars()
        groups: dict = {}
        for row in rows:
            at = _epoch(row.minute)
            i = int((at - start) // step)
            if not 0 <= i < steps:
                continue
            for key in (row.version, "all"):
                cells = groups.setdefault(key, [None] * steps)
                cell = cells[i]
                if cell is None:
                    cell = cells[i] = [0, 0, 0, 0.0, {}, 0.0, 0]
                cell[0] += row.requests
                cell[1] += row.errors
                cell[2] += row.client_errors
                cell[3] += row.duration_sum
                for index, count in (row.buckets or {}).items():
                    cell[4][int(index)] = cell[4].get(int(index), 0) + count
                cell[5] += row.model_sum
                cell[6] += row.model_count
        versions = {v.number: v for v in service.versions}
        out_versions = []
        for key in sorted(k for k in groups if k != "all") + [
            n for n in sorted(versions) if n not in groups and versions[n].published_at
        ]:
            version = versions.get(key) if isinstance(key, int) else None
            began = None
            if version is not None:
                began = _epoch(version.published_at or version.created)
            out_versions.append(
                {
                    "version": key if key else None,
                    "label": f"#{key}" if key else ("dev" if service.dev_url else "—"),
                    "api_version": f"v{version.api_version}"
                    if version is not None and version.api_version
                    else None,
                    "since": began,
                    **_figures(groups.get(key, [None] * steps), times, step, began),
                }
            )
        return {
            "range": span,
            "step": step,
            "start": start,
            "end": end,
            "times": times,
            "all": _figures(groups.get("all", [None] * steps), times, step, None),
            "versions": out_versions,
            "retention": self.retention,
        }

    def records(self, db: Any, service_id: int, limit: int, before: Optional[int] = None) -> list:
        query = select(orm.ServeRecord).where(orm.ServeRecord.service_id == service_id)
        if before is not None:
            query = query.where(orm.ServeRecord.id < before)
        rows = db.execute(query.order_by(orm.ServeRecord.id.desc()).limit(limit)).scalars()
        return [record_json(r) for r in rows]

    # --- Prometheus -------------------------------------------------------------------------------

    def registry(self, allowed: Any = None) -> CollectorRegistry:
        """A registry with the live figures; ``allowed(project, service)`` picks the series shown
        (None: all, and the hub-wide ones)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self, allowed))
        return registry


def _figures(cells: list, times: list, step: int, began: Optional[float]) -> dict:
    per_minute = step / 60.0
    requests, p50, p95, p99, errors, client_errors, model = [], [], [], [], [], [], []
    for t, cell in zip(times, cells):
        before = began is not None and t + step <= began
        if cell is None or not cell[0]:
            requests.append(None if before else 0)
            for figure in (p50, p95, p99, errors, client_errors, model):
                figure.append(None)
            continue
        n = cell[0]
        requests.append(round(n / per_minute, 4))
        p50.append(_round(quantile(cell[4], 0.50)))
        p95.append(_round(quantile(cell[4], 0.95)))
        p99.append(_round(quantile(cell[4], 0.99)))
        errors.append(round(cell[1] / n, 4))
        client_errors.append(round(cell[2] / n, 4))
        model.append(_round(cell[5] / cell[6]) if cell[6] else None)
    total = sum(c[0] for c in cells if c)
    return {
        "requests_per_minute": requests,
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "error_rate": errors,
        "client_error_rate": client_errors,
        "model_mean": model,
        "requests": total,
        "errors": sum(c[1] for c in cells if c),
        "client_errors": sum(c[2] for c in cells if c),
    }


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 6)


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)


def _epoch(value: datetime.datetime) -> float:
    return value.replace(tzinfo=datetime.timezone.utc).timestamp()


def record_json(row: orm.ServeRecord) -> dict:
    out = {
        "id": row.id,
        "at": row.at.isoformat(timespec="milliseconds") + "Z",
        "version": row.version or None,
        "command": row.command,
        "status": row.status,
        "duration": round(row.duration, 6),
        "first_byte": None if row.first_byte is None else round(row.first_byte, 6),
        "model": None if row.model is None else round(row.model, 6),
        "queue": None if row.queue is None else round(row.queue, 6),
        "bytes_in": row.bytes_in,
        "bytes_out": row.bytes_out,
        "user": row.user,
        "token": row.token,
    }
    if row.bodies:
        out["input"] = row.bodies.get("input")
        out["output"] = row.bodies.get("output")
    return out


class _Collector:
    """The live figures as Prometheus metric families (read at each scrape)."""

    def __init__(self, meter: Meter, allowed: Any) -> None:
        self.meter, self.allowed = meter, allowed

    def collect(self) -> Any:
        allowed = self.allowed
        shown = [
            (labels, s)
            for labels, s in list(self.meter.series.items())
            if allowed is None or allowed(labels[0], labels[1])
        ]
        requests = CounterMetricFamily(
            "algolink_serve_requests",
            "Requests /serve answered, by service, version, command and HTTP status code.",
            labels=[*LABELS, "code"],
        )
        for labels, s in shown:
            for code, count in sorted(s.codes.items()):
                requests.add_metric([*labels, str(code)], count)
        yield requests
        for name, attr, doc in (
            (
                "algolink_serve_request_duration_seconds",
                "duration",
                "Seconds from a /serve request's head to the last byte of its answer.",
            ),
            (
                "algolink_serve_first_byte_seconds",
                "first_byte",
                "Seconds from a /serve request's head to the first byte of its answer.",
            ),
            (
                "algolink_serve_model_duration_seconds",
                "model",
                "Seconds the model took (the model server's Server-Timing model;dur).",
            ),
            (
                "algolink_serve_queue_duration_seconds",
                "queue",
                "Seconds a request waited for the model (the model server's Server-Timing "
                "queue;dur).",
            ),
        ):
            family = HistogramMetricFamily(name, doc, labels=list(LABELS))
            for labels, s in shown:
                counts = getattr(s, attr)
                if not any(counts):
                    continue
                cumulative, running = [], 0
                for le, count in zip((*map(_le, BUCKETS), "+Inf"), counts):
                    running += count
                    cumulative.append((le, running))
                family.add_metric(list(labels), cumulative, getattr(s, attr + "_sum"))
            yield family
        for name, attr, doc in (
            (
                "algolink_serve_request_bytes",
                "bytes_in",
                "Bytes of /serve request bodies received.",
            ),
            (
                "algolink_serve_response_bytes",
                "bytes_out",
                "Bytes of /serve answers sent (heads and bodies).",
            ),
        ):
            family = CounterMetricFamily(name, doc, labels=list(LABELS))
            for labels, s in shown:
                family.add_metric(list(labels), getattr(s, attr))
            yield family
        inflight = GaugeMetricFamily(
            "algolink_serve_requests_in_flight",
            "Requests being forwarded to a version's process now.",
            labels=["project", "service", "version"],
        )
        publisher = getattr(self.meter.hub, "publisher", None)
        routes = getattr(publisher, "routes", None) or {}
        for key, count in sorted((getattr(publisher, "inflight", None) or {}).items()):
            project, _, rest = key.partition("/")
            service, _, version = rest.partition("/")
            if (project, service) not in routes:
                continue  # deleted since
            if allowed is None or allowed(project, service):
                inflight.add_metric([project, service, version], count)
        yield inflight


def _le(bound: float) -> str:
    return repr(float(bound))
