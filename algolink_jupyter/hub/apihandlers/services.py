"""Services (模型服务): register a bundle, show a service, publish (上线) and take offline.

Registering takes a multipart form: the ``bundle`` file (.tar.gz or .zip), ``name``, ``group``,
``metadata`` (JSON, optional), ``public`` (optional) and any number of gallery ``images``. Instead of a
file, ``path`` may name a bundle folder on the hub's machine. There is no port to give: the hub picks
a free one for every process it starts, and clients reach services through ``/serve`` only.

``DELETE`` removes a service (its processes stopped first, its versions, aliases, logs and working
copies with it); what nothing else uses is collected (``collect.py``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from tornado.ioloop import IOLoop

from .. import devmode, orm
from ..bundles import BundleError, bundle_root, read_config, store, unpack_archive
from ..publisher import store_image
from .base import APIHandler
from .common import APIError, check_name, parse_version_number
from .models import current_version, default_publish_version

_TRUE = {"1", "true", "yes", "on"}


class BundleReceiver(APIHandler):
    """Reads the registration form and receives the bundle it carries."""

    #: Whether this route takes a bundle (and gallery images): its body may be as large as the
    #: hub's upload limit, spooled to disk as it comes.
    takes_bundle = False

    def body_limit(self) -> int:
        return self.hub.max_upload_bytes if self.takes_bundle else super().body_limit()

    def form(self) -> dict:
        """The fields, from a multipart or urlencoded form or from a JSON body."""
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            return self.json_body()
        return {k: self.get_body_argument(k) for k in self.request.body_arguments}

    def metadata_field(self, form: dict) -> dict:
        raw = form.get("metadata")
        if raw is None or raw == "":
            return {}
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as e:
                raise APIError(
                    400, f"The metadata field is not valid JSON ({e}).", "metadata_json"
                ) from None
        if not isinstance(raw, dict):
            raise APIError(
                400,
                'The metadata must be a JSON object such as {"tagline": "...", "license": "MIT"}.',
                "metadata_type",
            )
        for key in ("name", "tagline", "description", "license", "performance_notes"):
            if key in raw and raw[key] is not None and not isinstance(raw[key], str):
                raise APIError(
                    400,
                    f"The metadata field {key!r} must be text, got {raw[key]!r}.",
                    "metadata_text",
                    field=key,
                )
        links = raw.get("links")
        if links is not None and (
            not isinstance(links, list)
            or not all(
                isinstance(link, str)
                or (isinstance(link, dict) and isinstance(link.get("url"), str))
                for link in links
            )
        ):
            raise APIError(
                400,
                'The metadata field \'links\' must be a list such as [{"title": "Paper", '
                '"url": "https://..."}].',
                "metadata_links",
            )
        return raw

    def refuse_port(self, form: dict) -> None:
        """A ``port`` is no longer taken: say so rather than ignore it."""
        if form.get("port") not in (None, ""):
            raise APIError(
                400,
                f"The hub no longer takes a port (got {form.get('port')!r}): it picks a free one "
                "for each process it starts, and clients reach the service at /serve/{project}/"
                "{service}/. Leave port out.",
                "port_gone",
                value=str(form.get("port")),
            )

    def images(self, keep: bool = True) -> list:
        """The uploaded gallery images, checked, and stored when ``keep`` (kept from the collector
        until the request ends: its row is committed by then)."""
        stored = []
        collector = self.hub.collector
        for part in self.request.files.get("images", []) + self.request.files.get("image", []):
            try:
                with collector.store_lock:
                    image = store_image(
                        part.body, self.hub.data / "gallery", part.filename, keep=keep
                    )
                    if keep:
                        collector.pin(image["file"])
                        self.pins.append(image["file"])
                stored.append(image)
            except ValueError as e:
                raise APIError(400, str(e), "image_bad", name=part.filename) from None
        return stored

    @property
    def pins(self) -> list:
        """What this request stored for a row it has not committed yet (see collect.py)."""
        if not hasattr(self, "_pins"):
            self._pins: list = []
        return self._pins

    def on_finish(self) -> None:
        for name in getattr(self, "_pins", ()):
            self.hub.collector.unpin(name)
        self._pins = []
        super().on_finish()

    async def receive_bundle(self, form: dict) -> tuple[str, Any]:
        """Unpack (or read) the bundle, check it, store it by content; ``(hash, config)``."""
        upload = (self.request.files.get("bundle") or [None])[0]
        path = form.get("path")
        if path and upload is None:
            self.require("admin", what="Taking a bundle from a folder on the hub's machine")
        if upload is None and not path:
            raise APIError(
                400,
                "No bundle: upload it as the multipart file field 'bundle' (.tar.gz or .zip), or "
                "give 'path', a bundle folder on the hub's machine.",
                "no_bundle",
            )
        hub = self.hub
        pins = self.pins

        def receive() -> tuple[str, Any]:
            tmp = Path(tempfile.mkdtemp(prefix="bundle-", dir=hub.data / "tmp"))
            try:
                if upload is not None:
                    archive = tmp / "upload"
                    upload.save_as(archive)
                    unpack_archive(
                        archive,
                        tmp / "bundle",
                        max_bytes=hub.max_bundle_bytes,
                        max_files=hub.max_bundle_files,
                    )
                    root = bundle_root(tmp / "bundle")
                else:
                    folder = Path(str(path)).expanduser()
                    if not folder.is_absolute() or not folder.is_dir():
                        raise BundleError(
                            f"{path} is not a folder on the hub's machine: give the absolute path "
                            "of a bundle folder, or upload the bundle as a .tar.gz or .zip file.",
                            "folder_bad",
                            path=str(path),
                        )
                    root = bundle_root(folder)
                config = read_config(root)
                with hub.collector.store_lock:
                    digest, _ = store(root, hub.data / "bundles")
                    hub.collector.pin(digest)
                pins.append(digest)
                return digest, config
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        try:
            return await IOLoop.current().run_in_executor(None, receive)
        except BundleError as e:
            key = getattr(e, "key", None)
            params = dict(getattr(e, "params", None) or {}, detail=str(e))
            raise APIError(
                400, f"The bundle was refused: {e}", key or "bundle_refused", **params
            ) from None

    def answer_service(self, service: orm.Service, status: int = 200, **extra: Any) -> None:
        self.db.expire_all()
        model = self.service_json(self.db.get(orm.Service, service.id))
        model.update(extra)
        self.write_json(model, status)


class ServiceListAPIHandler(BundleReceiver):
    takes_bundle = True

    def get(self, project_name: str) -> None:
        caller = self.caller
        if caller.service_id is None:
            project = self.find_project(project_name)
        else:  # a token limited to one service lists that one
            project = self.visible_project(project_name)
            if "read" not in caller.scopes or caller.project_id != project.id:
                self.require("view", project)
        services = [s for s in project.services if caller.reaches(project.id, s.id)]
        self.write_json([self.service_json(s) for s in services])

    async def post(self, project_name: str) -> None:
        """Register a service: its version 1 from the uploaded bundle (developers and owners; a
        folder on the hub's machine: hub admins)."""
        form = self.form()
        project = self.find_project(project_name, "change")
        name = check_name("service", form.get("name"))
        group = self.find_group(project, check_name("group", form.get("group")))
        if form.get("dev_url"):  # development mode: a running server instead of a bundle
            return await self.register_dev(project, group, name, form)
        if any(s.name == name for s in project.services):
            raise APIError(
                409,
                f"Project {project.name!r} already has a service {name!r}: upload a new version "
                f"with POST /api/v1/projects/{project.name}/services/{name}/versions (or "
                f"`algolink push DIR {project.name}/{name}`).",
                "service_exists",
                project=project.name,
                name=name,
            )
        self.refuse_port(form)
        metadata = self.metadata_field(form)
        public = str(form.get("public", "")).lower() in _TRUE
        self.images(keep=False)  # refused before anything is stored
        digest, config = await self.receive_bundle(form)
        images = self.images()
        service = orm.Service(
            project=project,
            group=group,
            name=name,
            public=public,
            status="registered",
            message="",
            meta=metadata,
            created_by=self.token_name,
            created_by_token=self.token_id,
            last_version=1,
        )
        version = orm.Version(
            service=service, number=1, bundle_hash=digest, meta={}, gallery=images, error=""
        )
        self.db.add_all([service, version])
        try:
            self.db.commit()
        except IntegrityError:
            self.db.rollback()
            raise APIError(
                409,
                f"Project {project.name!r} already has a service {name!r}.",
                "service_exists",
                project=project.name,
                name=name,
            ) from None
        self.hub.publisher.route(service)
        self.hub.publisher.prepare(version.id)
        self.answer_service(service, 201)

    async def register_dev(
        self, project: orm.Project, group: orm.Group, name: str, form: dict
    ) -> None:
        """A development-mode service from ``dev_url`` (and ``dev_token``): 201 when new; for a
        development service of that name already there, its URL and token are replaced (200)."""
        service = next((s for s in project.services if s.name == name), None)
        if service is not None and not service.dev_url:
            raise APIError(
                409,
                f"{project.name}/{name} is a published service, not a development one: choose "
                "another name for the development service.",
            )
        who = self.token_name or ""
        mine = service is None or service.created_by in (None, who) or self.caller.admin
        if not mine:
            raise APIError(
                403,
                f"{project.name}/{name} was connected by {service.created_by!r}: only that user "
                "(or a hub admin) may connect it again; choose another name.",
                "dev_not_yours",
            )
        try:
            self.hub.dev_connects.check(str(self.token_id or who))
            url = devmode.check_url(form.get("dev_url"))
            token = str(form.get("dev_token") or "").strip() or None
            manifest = await devmode.fetch_manifest(self.hub, url, token, devmode.REGISTER_TIMEOUT)
        except devmode.DevServerError as e:
            raise APIError(
                429 if e.key == "dev_too_many" else 400, str(e), e.key, **e.params
            ) from None
        created = service is None
        if created:
            service = orm.Service(
                project=project,
                name=name,
                meta={},
                message="",
                created_by=who or None,
                created_by_token=self.token_id,
            )
            self.db.add(service)
        service.group = group
        service.status = devmode.STATUS
        service.dev_url, service.dev_manifest = url, manifest
        service.dev_token = self.hub.sealer.seal(token)
        service.dev_error, service.dev_checked_at = None, orm.utcnow()
        if "public" in form:
            service.public = str(form.get("public", "")).lower() in _TRUE
        metadata = self.metadata_field(form)
        if metadata:
            service.meta = metadata
        try:
            self.db.commit()
        except IntegrityError:
            self.db.rollback()
            raise APIError(
                409, f"Project {project.name!r} already has a service {name!r}."
            ) from None
        self.hub.upstreams.forget(url)
        self.hub.publisher.route(service)
        self.answer_service(service, 201 if created else 200)


def refuse_dev(service: orm.Service, what: str) -> None:
    """A development-mode service is never published: a 409 sentence for ``what``."""
    if service.dev_url:
        raise APIError(
            409,
            f"{service.project.name}/{service.name} is in development mode (served by "
            f"{service.dev_url}) and cannot {what}: export the model as a bundle and register "
            "it under another name to publish it.",
        )


class ServiceAPIHandler(BundleReceiver):
    async def get(self, project_name: str, name: str) -> None:
        service = self.find_service(project_name, name)
        if service.dev_url:  # is the development server still there? (a short check)
            await devmode.refresh(self.hub, service.id)
            self.db.expire_all()
        self.write_json(self.service_json(self.find_service(project_name, name)))

    def patch(self, project_name: str, name: str) -> None:
        """Change ``public``, ``metadata`` (the registration's, over the bundle's) or ``keep_warm``."""
        service = self.find_service(project_name, name, "change")
        data = self.json_body()
        self.refuse_port(data)
        unknown = sorted(set(data) - {"public", "metadata", "keep_warm", "port"})
        if unknown:
            raise APIError(
                400,
                f"Cannot change {', '.join(unknown)}: only public, metadata and keep_warm can.",
            )
        if "public" in data:
            if not isinstance(data["public"], bool):
                raise APIError(400, "public must be true or false.")
            service.public = data["public"]
        if "metadata" in data:
            service.meta = self.metadata_field(data)
        if "keep_warm" in data:
            service.keep_warm = check_keep_warm(data["keep_warm"])
        self.db.commit()
        self.hub.publisher.route(service)
        self.answer_service(service)

    async def delete(self, project_name: str, name: str) -> None:
        """Remove the service: its processes stopped, its versions, aliases, logs and working copies
        gone; bundles, files and environments no other service uses collected (owners and hub
        admins)."""
        service = self.find_service(project_name, name, "manage")
        service_id = service.id
        self.db.close()
        del self._db
        await self.hub.publisher.delete_service(service_id)
        self.write_json({"deleted": f"{project_name}/{name}"})


def check_keep_warm(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 7 * 86400:
        raise APIError(
            400,
            f"keep_warm must be whole seconds from 0 to 604800 (a week), got {value!r}: how long a "
            "version that is not online keeps running after its last request; 0 keeps it running.",
            "keep_warm_bad",
        )
    return value


class PublishAPIHandler(BundleReceiver):
    def post(self, project_name: str, name: str) -> None:
        """上线: build, start and health-check a version; 202. Without ``version``: see
        :func:`.models.default_publish_version` (a rollback stays a rollback)."""
        service = self.find_service(project_name, name)
        refuse_dev(service, "be published")
        if not service.versions:
            raise APIError(
                400,
                f"{project_name}/{name} has no version to publish: upload one with POST "
                f"/api/v1/projects/{project_name}/services/{name}/versions.",
            )
        number = self.json_body().get("version")
        if number is None:
            version = default_publish_version(service)
        else:
            version = self.find_version(service, parse_version_number(number))
        started = self.hub.publisher.request_publish(self.db, service, version, self.token_name)
        self.answer_service(
            service,
            202 if started or version.status != "online" else 200,
            publishing=version.number,
        )


class OfflineAPIHandler(BundleReceiver):
    async def post(self, project_name: str, name: str) -> None:
        """Stop serving the service (its versions and settings stay)."""
        service = self.find_service(project_name, name)
        refuse_dev(service, "be taken offline (stop the development server instead)")
        await self.hub.publisher.offline(service.id)
        self.answer_service(service)


class ServiceLogsRedirect(BundleReceiver):
    def get(self, project_name: str, name: str) -> None:
        """The logs of the published version, or else of the newest one."""
        service = self.find_service(project_name, name, "inspect")
        version = current_version(service)
        if version is None:  # a development-mode service: its log is the server's own console
            raise APIError(
                404,
                f"{project_name}/{name} has no versions and so no log: it is in development mode, "
                "so read the log where its server runs.",
            )
        query = f"?{self.request.query}" if self.request.query else ""
        self.redirect(
            f"/api/v1/projects/{project_name}/services/{name}/versions/{version.number}/logs{query}"
        )


default_handlers = [
    (r"/api/v1/projects/([^/]+)/services", ServiceListAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)", ServiceAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/publish", PublishAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/offline", OfflineAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/logs", ServiceLogsRedirect),
]
