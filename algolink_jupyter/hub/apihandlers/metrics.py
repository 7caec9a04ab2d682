"""What a service does, read back (metrics.py measures it).

- ``GET /metrics``: the live figures in Prometheus' text format, for a token with the ``metrics``
  scope (or a signed-in session): a hub admin's shows every service, anyone else's the services of
  the projects they have a role in (and that the token's limits reach).
- ``GET /api/v1/projects/{p}/services/{s}/metrics?range=hour|day|week``: the service page's charts
  (requests per minute, p50/p95/p99 latency, error rates; per version and in all), for whoever may
  see the service (``read`` scope) or a token with the ``metrics`` scope.
- ``GET .../requests[?limit=N&before=ID]``: the request log, newest first (JSON);
  ``?format=jsonl``: all of it, oldest first, as JSON lines (a download). Developers and owners.
- ``GET``/``PUT .../requests/settings`` ``{"record_bodies": bool, "record_limit": bytes}``: whether
  the log keeps each request's input and output (off by default; owners turn it on), cut at
  ``record_limit`` bytes each.
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import orm
from ..metrics import MAX_RECORD_LIMIT, RANGES, record_json
from .base import APIHandler
from .common import APIError


def _meter(handler: APIHandler) -> Any:
    meter = handler.hub.meter
    if meter is None:
        raise APIError(
            404,
            "This hub measures nothing: it was started with --no-metrics (start it without that "
            "flag to have metrics, charts and the request log).",
            "metrics_off",
        )
    return meter


class PrometheusHandler(APIHandler):
    """``GET /metrics``."""

    def get(self) -> None:
        meter = _meter(self)
        caller = self.caller
        if "metrics" not in caller.scopes:
            raise APIError(
                403,
                "GET /metrics needs a token with the 'metrics' scope; this one has "
                f"{', '.join(sorted(caller.scopes)) or 'none'}: make one on the Tokens page.",
                "scope_missing",
                scope="metrics",
            )
        if caller.admin and not caller.limited():
            allowed = None
        else:
            routes = self.hub.publisher.routes
            shown = {
                key
                for key, route in list(routes.items())
                if caller.may("metrics", route.project_id, route.service_id)
            }

            def allowed(project: str, service: str) -> bool:
                return (project, service) in shown

        meter.forget_deleted()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(meter.registry(allowed)))


class ChartAPIHandler(APIHandler):
    """``GET .../metrics?range=hour|day|week``."""

    async def get(self, project_name: str, name: str) -> None:
        meter = _meter(self)
        project = self.visible_project(project_name)
        service = next((s for s in project.services if s.name == name), None)
        if service is None:
            raise APIError(404, f"Project {project.name!r} has no service {name!r}.")
        if not self.caller.may("metrics", project.id, service.id):
            self.require("view", service=service)
        span = self.get_query_argument("range", "hour")
        if span not in RANGES:
            raise APIError(400, f"range={span!r} is not a range: use one of {', '.join(RANGES)}.")
        await meter.flush()  # what was measured until now, not until the last flush
        self.db.expire_all()
        self.write_json(meter.chart(self.db, service, span))


class RequestLogAPIHandler(APIHandler):
    """``GET .../requests``: the request log."""

    async def get(self, project_name: str, name: str) -> None:
        meter = _meter(self)
        service = self.find_service(project_name, name, "inspect")
        await meter.flush()
        if self.get_query_argument("format", "json") == "jsonl":
            self.set_header("Content-Type", "application/x-ndjson; charset=UTF-8")
            self.set_header(
                "Content-Disposition",
                f'attachment; filename="{project_name}-{name}-requests.jsonl"',
            )
            rows = (
                self.db.query(orm.ServeRecord)
                .filter_by(service_id=service.id)
                .order_by(orm.ServeRecord.id)
                .yield_per(500)
            )
            for row in rows:
                self.write(json.dumps(record_json(row)) + "\n")
            self.finish()
            return
        try:
            limit = int(self.get_query_argument("limit", "100"))
            before_arg = self.get_query_argument("before", None)
            before = int(before_arg) if before_arg else None
        except ValueError:
            raise APIError(
                400, "limit and before must be whole numbers, such as ?limit=50&before=1200."
            ) from None
        limit = max(1, min(limit, meter.log_size))
        self.write_json(
            {
                "requests": meter.records(self.db, service.id, limit, before),
                "record_bodies": bool(service.record_bodies),
                "record_limit": service.record_limit,
                "kept": meter.log_size,
            }
        )


class RecordSettingsAPIHandler(APIHandler):
    """``GET``/``PUT .../requests/settings``."""

    def get(self, project_name: str, name: str) -> None:
        service = self.find_service(project_name, name, "inspect")
        self.write_json(self.current(service))

    def put(self, project_name: str, name: str) -> None:
        meter = _meter(self)
        service = self.find_service(project_name, name, "manage")
        data = self.json_body()
        unknown = sorted(set(data) - {"record_bodies", "record_limit"})
        if unknown:
            raise APIError(
                400,
                f"Unknown field(s) {', '.join(unknown)}: send record_bodies (true or false) and "
                "record_limit (bytes).",
            )
        if "record_bodies" in data:
            if not isinstance(data["record_bodies"], bool):
                raise APIError(400, "record_bodies must be true or false.")
            service.record_bodies = data["record_bodies"]
        if "record_limit" in data:
            limit = data["record_limit"]
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise APIError(
                    400,
                    f"record_limit must be a number of bytes from 1 to {MAX_RECORD_LIMIT}.",
                )
            if limit > MAX_RECORD_LIMIT:
                raise APIError(
                    400,
                    f"record_limit {limit} is over the most a request may keep "
                    f"({MAX_RECORD_LIMIT} bytes): give a smaller one.",
                )
            service.record_limit = limit
        self.db.commit()
        meter.set_recording(service.id, bool(service.record_bodies), service.record_limit)
        self.write_json(self.current(service))

    def current(self, service: orm.Service) -> dict:
        return {
            "record_bodies": bool(service.record_bodies),
            "record_limit": service.record_limit,
        }


default_handlers = [
    (r"/metrics", PrometheusHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/metrics", ChartAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/requests", RequestLogAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/requests/settings", RecordSettingsAPIHandler),
]
