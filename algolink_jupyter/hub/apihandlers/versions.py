"""A service's versions: list, upload a new bundle, show one, and its build and run log.

``GET .../versions/{n}/logs`` answers the build log followed by the run log. With ``?follow=1`` it
streams them (chunked) as they are written: the build log while the version builds, then the run
log; it ends when the version is ``failed``, ``offline`` or merely ``registered`` (nothing more will
be written), with ``&until=online`` also once it is online, and otherwise when the client leaves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tornado.iostream import StreamClosedError

from .. import orm
from .base import APIHandler
from .models import version_model
from .services import BundleReceiver, refuse_dev

_TRUE = {"1", "true", "yes", "on"}
POLL = 0.2
CHUNK = 1 << 16


class VersionListAPIHandler(BundleReceiver):
    takes_bundle = True

    def get(self, project_name: str, name: str) -> None:
        service = self.find_service(project_name, name)
        self.write_json([version_model(v, self.url("")) for v in service.versions])

    async def post(self, project_name: str, name: str) -> None:
        """A new bundle for the service: its next version (published separately)."""
        service = self.find_service(project_name, name)
        refuse_dev(service, "take a bundle")
        form = self.form()
        metadata = self.metadata_field(form)
        self.images(keep=False)
        digest, _config = await self.receive_bundle(form)
        images = self.images()
        version = self.add_version(
            service, "upload again.", bundle_hash=digest, meta=metadata, gallery=images
        )
        self.write_json(version_model(version, self.url("")), 201)


class VersionAPIHandler(APIHandler):
    def get(self, project_name: str, name: str, number: str) -> None:
        version = self.find_version(self.find_service(project_name, name), number)
        self.write_json(version_model(version, self.url("")))


def read_from(path: Path, offset: int) -> tuple[bytes, int]:
    """What ``path`` holds past ``offset`` (from the start again if it was rotated or truncated)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() < offset:
                offset = 0
            f.seek(offset)
            data = f.read(CHUNK)
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


class LogsAPIHandler(APIHandler):
    def on_connection_close(self) -> None:
        super().on_connection_close()
        self._gone = True

    async def get(self, project_name: str, name: str, number: str) -> None:
        service = self.find_service(project_name, name)
        version = self.find_version(service, number)
        build_log, run_log = self.hub.publisher.log_paths(project_name, name, version.number)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        follow = self.get_query_argument("follow", "").lower() in _TRUE
        if not follow:  # both logs, a block at a time: never all in memory
            self._gone = False
            for path in (build_log, run_log):
                offset = 0
                while not self._gone:
                    data, offset = read_from(path, offset)
                    if not data:
                        break
                    self.write(data)
                    try:
                        await self.flush()
                    except StreamClosedError:
                        return
            if not self._gone:
                self.finish()
            return
        until_online = self.get_query_argument("until", "") == "online"
        version_id = version.id
        self.db.close()
        del self._db
        self.set_header("X-Accel-Buffering", "no")
        self._gone = False
        current, offset, building = build_log, 0, True
        while not self._gone:
            data, offset = read_from(current, offset)
            if data:
                self.write(data)
                try:
                    await self.flush()
                except StreamClosedError:
                    return
                continue
            status = self.status(version_id)
            if building:
                if status == "building" or self.hub.publisher.preparing(version_id):
                    await asyncio.sleep(POLL)
                else:
                    current, offset, building = run_log, 0, False
                continue
            if status in ("failed", "offline", "registered") or (
                until_online and status == "online"
            ):
                break
            await asyncio.sleep(POLL)
        if not self._gone:
            self.finish()

    def status(self, version_id: int) -> str:
        with self.hub.session() as db:
            version = db.get(orm.Version, version_id)
            return version.status if version is not None else "offline"


default_handlers = [
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/versions", VersionListAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/versions/([^/]+)", VersionAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/versions/([^/]+)/logs", LogsAPIHandler),
]
