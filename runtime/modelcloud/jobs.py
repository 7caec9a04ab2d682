"""Async jobs: ``Prefer: respond-async`` on a command's POST answers 202 with a job to poll.

A job is ``queued`` until a worker takes it, then ``running`` (its latest partial outputs and
progress readable), then ``succeeded``, ``failed`` or ``canceled``. Finished jobs are kept for
``ttl`` seconds and at most ``keep`` of them (the oldest go first); job ids are random and
unguessable, the only key to a job's outputs.
"""

from __future__ import annotations

import collections
import secrets
import time
from datetime import datetime, timezone
from typing import Any, Optional

from .streaming import RunEvents

DEFAULT_JOBS_KEEP = 100
DEFAULT_JOBS_TTL = 3600

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "canceled",
)
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELED})


def _iso(t: Optional[float]) -> Optional[str]:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


class Job:
    def __init__(self, command: str, events: RunEvents) -> None:
        self.id = secrets.token_urlsafe(16)
        self.command = command
        self.events = events
        self.status = QUEUED
        self.progress: Optional[float] = None
        self.outputs: Optional[dict] = None
        self.error: Optional[dict] = None
        self.created_at = time.time()
        self.started_at: Optional[float] = None
        self.finished_at: Optional[float] = None
        self.task: Any = None  # the loop's task that follows its events (kept referenced)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_json(self, prefix: str = "") -> dict:
        body: dict = {
            "id": self.id,
            "command": self.command,
            "status": self.status,
            "progress": self.progress,
            "outputs": self.outputs,
            "error": None,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "url": f"{prefix}/jobs/{self.id}",
        }
        if self.error is not None:
            body["error"] = self.error.get("error")
            if self.error.get("field") is not None:
                body["field"] = self.error["field"]
        return body

    def finish(self, status: str) -> None:
        if not self.finished:
            self.status = status
            self.finished_at = time.time()

    def cancel(self) -> None:
        """Stop it: the generator at its next yield; a plain function finishes, its result dropped."""
        self.events.cancel()
        self.finish(CANCELED)


class JobStore:
    """The jobs of one server, all touched on its I/O loop only."""

    def __init__(self, keep: int = DEFAULT_JOBS_KEEP, ttl: float = DEFAULT_JOBS_TTL) -> None:
        self.keep = keep
        self.ttl = ttl
        self.jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()

    def create(self, command: str) -> Job:
        self.prune()
        job = Job(command, RunEvents())
        self.jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Optional[Job]:
        self.prune()
        return self.jobs.get(job_id)

    def remove(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)

    def prune(self) -> None:
        now = time.time()
        finished = [j for j in self.jobs.values() if j.finished]
        finished.sort(key=lambda j: j.finished_at or 0)
        excess = len(finished) - self.keep
        for i, job in enumerate(finished):
            if i < excess or now - (job.finished_at or now) > self.ttl:
                del self.jobs[job.id]

    async def follow(self, job: Job) -> None:
        """Keep ``job`` up to date with its run's events until the run ends."""
        while True:
            kind, data = await job.events.next()
            if kind == "started":
                if job.status == QUEUED:
                    job.status = RUNNING
                    job.started_at = time.time()
            elif kind == "output":
                if not job.finished:
                    if job.status == QUEUED:
                        job.status, job.started_at = RUNNING, time.time()
                    if data.get("progress") is not None:
                        job.progress = data["progress"]
                    if data.get("outputs") is not None:
                        job.outputs = data["outputs"]
            elif kind == "succeeded":
                if not job.finished:
                    job.outputs = data
                    job.progress = 1.0
                    job.finish(SUCCEEDED)
                break
            elif kind == "failed":
                if not job.finished:
                    job.error = {"error": data.message, "field": data.field}
                    job.finish(FAILED)
                break
            else:  # canceled
                job.finish(CANCELED)
                break
        self.prune()
