"""A service's versions and aliases: list, upload a new bundle, show, delete; the build and run log.

``GET .../versions/{n}/logs`` answers the version's log: its build log and run log (with the run log's
rotated files) merged in time order, every line stamped ``[YYYY-MM-DD HH:MM:SS]``. With ``?follow=1``
it then streams what is written to them (chunked); it ends when the version is ``failed``,
``offline`` or merely ``registered`` (nothing more will be written), with ``&until=online`` also once
it is online, and otherwise when the client leaves.

``DELETE .../versions/{n}`` removes a version that is not online (its process stopped when one runs
warm, its logs and working copy with it). ``PUT .../aliases/{name}`` with ``{"version": N}`` names a
version, callable at ``/serve/{project}/{service}/@{name}/``; ``DELETE`` removes the name.
"""

from __future__ import annotations

import asyncio
import heapq
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from sqlalchemy.exc import IntegrityError
from tornado.iostream import StreamClosedError

from .. import orm
from ..images import image_builds
from ..snippets import example_inputs, recorded_example
from .base import APIHandler
from .common import APIError, check_name, parse_version_number
from .models import alias_model
from .services import BundleReceiver, refuse_dev

_TRUE = {"1", "true", "yes", "on"}
POLL = 0.2
CHUNK = 1 << 16
_STAMP = re.compile(rb"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\]")


class VersionListAPIHandler(BundleReceiver):
    takes_bundle = True

    def get(self, project_name: str, name: str) -> None:
        service = self.find_service(project_name, name)
        self.write_json([self.version_json(v) for v in service.versions])

    async def post(self, project_name: str, name: str) -> None:
        """A new bundle for the service: its next version (published separately)."""
        service = self.find_service(project_name, name)
        refuse_dev(service, "take a bundle")
        form = self.form()
        self.refuse_port(form)
        metadata = self.metadata_field(form)
        self.images(keep=False)
        digest, _config = await self.receive_bundle(form)
        images = self.images()
        version = self.add_version(
            service, "upload again.", bundle_hash=digest, meta=metadata, gallery=images
        )
        self.write_json(self.version_json(version), 201)


class VersionAPIHandler(APIHandler):
    def get(self, project_name: str, name: str, number: str) -> None:
        version = self.find_version(self.find_service(project_name, name), number)
        self.write_json(self.version_json(version))

    async def delete(self, project_name: str, name: str, number: str) -> None:
        """Remove a version that is not online, nor being published, nor named by an alias."""
        service = self.find_service(project_name, name, "change")
        version = self.find_version(service, number)
        what = f"Version {version.number} of {project_name}/{name}"
        online = service.published_version == version.number and service.status in (
            "online",
            "starting",
        )
        if online:
            raise APIError(
                409,
                f"{what} is online: publish another version (or take the service offline) "
                "before deleting it.",
                "version_online",
                number=version.number,
            )
        if version.status in ("building", "starting") or self.hub.publisher.preparing(version.id):
            raise APIError(
                409,
                f"{what} is being built or started: wait until it is done, then delete it.",
                "version_busy",
                number=version.number,
            )
        named = [a.name for a in service.aliases if a.version_number == version.number]
        if named:
            raise APIError(
                409,
                f"{what} is named by the alias(es) {', '.join(named)}: point them at another "
                "version or delete them first.",
                "version_aliased",
                number=version.number,
                aliases=", ".join(named),
            )
        service_id, n = service.id, version.number
        self.db.close()
        del self._db
        await self.hub.publisher.delete_version(service_id, n)
        await image_builds(self.hub).forget(project_name, name, n)
        self.write_json({"deleted": f"{project_name}/{name} version {n}"})


def public_service(db: Any, project_name: str, name: str) -> Optional[orm.Service]:
    """The service if it is public (anyone may call it, and see what its page shows), else None."""
    service = (
        db.query(orm.Service)
        .join(orm.Project)
        .filter(orm.Project.name == project_name, orm.Service.name == name)
        .one_or_none()
    )
    return service if service is not None and service.public else None


class ExampleAPIHandler(APIHandler):
    """``GET .../versions/{n}/examples/{command}``: the body the page's curl line sends (the
    example recorded for the command, else one made from its inputs). Like ``/serve``, a public
    service's example needs no token."""

    read_needs_token = False

    def get(self, project_name: str, name: str, number: str, command: str) -> None:
        service = public_service(self.db, project_name, name) or self.find_service(
            project_name, name, "view"
        )
        version = self.find_version(service, number)
        spec = next(
            (c for c in (version.manifest or {}).get("commands") or [] if c.get("name") == command),
            None,
        )
        if spec is None:
            raise APIError(
                404,
                f"Version {version.number} of {project_name}/{name} has no command {command!r}.",
            )
        bundle = self.hub.data / "bundles" / version.bundle_hash
        self.write_json(example_inputs(spec, recorded_example(bundle, command)))


class AliasListAPIHandler(APIHandler):
    def get(self, project_name: str, name: str) -> None:
        service = self.find_service(project_name, name)
        self.write_json(
            [alias_model(a, self.url(""), self.hub.serve_origin) for a in service.aliases]
        )


class AliasAPIHandler(APIHandler):
    def get(self, project_name: str, name: str, alias: str) -> None:
        self.write_json(
            alias_model(
                self.find_alias(project_name, name, alias), self.url(""), self.hub.serve_origin
            )
        )

    def find_alias(self, project_name: str, name: str, alias: str) -> orm.Alias:
        service = self.find_service(project_name, name)
        for row in service.aliases:
            if row.name == alias:
                return row
        have = ", ".join(a.name for a in service.aliases) or "none"
        raise APIError(
            404,
            f"{project_name}/{name} has no alias {alias!r} (its aliases: {have}): make it with "
            f'PUT /api/v1/projects/{project_name}/services/{name}/aliases/{alias} {{"version": N}}.',
        )

    def put(self, project_name: str, name: str, alias: str) -> None:
        """Name a version: ``{"version": N}`` (a version number; v1, v2, ... are API versions)."""
        self.name_version(project_name, name, alias, self.json_body())

    def name_version(self, project_name: str, name: str, alias: str, body: dict) -> None:
        check_name("alias", alias)
        service = self.find_service(project_name, name)
        refuse_dev(service, "have aliases")
        if body.get("version") in (None, ""):
            raise APIError(
                400, f'No version: send {{"version": N}}, the version {alias!r} should name.'
            )
        version = self.find_version(service, parse_version_number(body["version"]))
        if version.manifest is None:
            raise APIError(
                409,
                f"Version {version.number} of {project_name}/{name} has not been built yet"
                + (f" ({version.error})" if version.error else "")
                + ": an alias names a version that can run.",
                "alias_unbuilt",
            )
        row = next((a for a in service.aliases if a.name == alias), None)
        created = row is None
        if created:
            row = orm.Alias(service=service, name=alias, version_number=version.number)
            self.db.add(row)
        row.version_number = version.number
        row.updated_by = self.token_name
        try:
            self.db.commit()
        except IntegrityError:
            self.db.rollback()
            raise APIError(
                409, f"The alias {alias!r} was made at the same moment: try again."
            ) from None
        self.db.refresh(service)
        self.hub.publisher.route(service)
        self.write_json(
            alias_model(row, self.url(""), self.hub.serve_origin), 201 if created else 200
        )

    def delete(self, project_name: str, name: str, alias: str) -> None:
        row = self.find_alias(project_name, name, alias)
        service = row.service
        self.db.delete(row)
        self.db.commit()
        self.db.refresh(service)
        self.hub.publisher.route(service)
        self.write_json({"deleted": f"{project_name}/{name}@{alias}"})


# --- the log ------------------------------------------------------------------------------------


def log_files(build_log: Path, run_log: Path) -> list:
    """A version's log files, each in time order: the build log, then the run log's rotated files
    (oldest first) and the run log."""
    rotated = sorted(
        (
            p
            for p in run_log.parent.glob(run_log.name + ".*")
            if p.suffix[1:].isascii() and p.suffix[1:].isdigit()
        ),
        key=lambda p: -int(p.suffix[1:]),
    )
    return [build_log, *rotated, run_log]


def _entries(path: Path, order: int) -> Iterator[tuple]:
    """``(stamp, order, line)`` for each line of ``path``; a line without a stamp (a traceback's)
    takes the one before it, so it stays with its line."""
    stamp = b""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return
    with f:
        for line in f:
            m = _STAMP.match(line)
            if m:
                stamp = m.group(1)
            yield stamp, order, line if line.endswith(b"\n") else line + b"\n"


def merged_lines(paths: list) -> Iterator[bytes]:
    """The lines of ``paths`` merged by their stamps (equal stamps: in the order of ``paths``)."""
    streams = [_entries(path, i) for i, path in enumerate(paths)]
    for _stamp, _order, line in heapq.merge(*streams, key=lambda e: (e[0], e[1])):
        yield line


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


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

    async def send(self, data: bytes) -> bool:
        self.write(data)
        try:
            await self.flush()
        except StreamClosedError:
            return False
        return not self._gone

    async def get(self, project_name: str, name: str, number: str) -> None:
        service = self.find_service(project_name, name, "inspect")
        version = self.find_version(service, number)
        build_log, run_log = self.hub.publisher.log_paths(project_name, name, version.number)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        follow = self.get_query_argument("follow", "").lower() in _TRUE
        until_online = self.get_query_argument("until", "") == "online"
        version_id = version.id
        self.db.close()
        del self._db
        self._gone = False
        if follow:
            self.set_header("X-Accel-Buffering", "no")
        # Where the live part starts: what the files hold now is sent merged, the rest as it comes.
        offsets = {build_log: file_size(build_log), run_log: file_size(run_log)}
        block: list = []
        size = 0
        for line in merged_lines(log_files(build_log, run_log)):
            block.append(line)
            size += len(line)
            if size >= CHUNK:
                if not await self.send(b"".join(block)):
                    return
                block, size = [], 0
        if block and not await self.send(b"".join(block)):
            return
        if not follow:
            return self.finish()
        while not self._gone:
            sent = False
            for path in (build_log, run_log):
                data, offsets[path] = read_from(path, offsets[path])
                if data:
                    sent = True
                    if not await self.send(data):
                        return
            if sent:
                continue
            status = self.status(version_id)
            busy = status == "building" or self.hub.publisher.preparing(version_id)
            if not busy and (
                status in ("failed", "offline", "registered")
                or (until_online and status == "online")
            ):
                for path in (build_log, run_log):  # what was written as the status changed
                    data, offsets[path] = read_from(path, offsets[path])
                    if data and not await self.send(data):
                        return
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
    (
        r"/api/v1/projects/([^/]+)/services/([^/]+)/versions/([^/]+)/examples/([^/]+)",
        ExampleAPIHandler,
    ),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/aliases", AliasListAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/aliases/([^/]+)", AliasAPIHandler),
]
