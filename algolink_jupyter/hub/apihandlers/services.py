"""Services (模型服务): register a bundle, show a service, publish (上线) and take offline.

Registering takes a multipart form: the ``bundle`` file (.tar.gz or .zip), ``name``, ``group``,
``port`` (optional), ``metadata`` (JSON, optional), ``public`` (optional) and any number of gallery
``images``. Instead of a file, ``path`` may name a bundle folder on the hub's machine.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from sqlalchemy.exc import IntegrityError
from tornado.ioloop import IOLoop

from .. import devmode, orm
from ..bundles import BundleError, bundle_root, read_config, store, unpack_archive
from ..publisher import store_image
from .base import APIHandler
from .common import APIError, check_name, parse_version_number
from .models import current_version

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

    def port_field(self, form: dict) -> Optional[int]:
        raw = form.get("port")
        if raw is None or raw == "":
            return None
        try:
            port = int(raw)
        except (TypeError, ValueError):
            port = -1
        if isinstance(raw, bool) or not 1024 <= port <= 65535:
            raise APIError(
                400,
                f"The port must be a whole number between 1024 and 65535, got {raw!r}.",
                "port_bad",
                value=str(raw),
            )
        if port == self.hub.port:
            raise APIError(
                409,
                f"Port {port} is the hub's own port: choose another one.",
                "port_hub",
                port=port,
            )
        return port

    def images(self, keep: bool = True) -> list:
        """The uploaded gallery images, checked, and stored when ``keep``."""
        stored = []
        for part in self.request.files.get("images", []) + self.request.files.get("image", []):
            try:
                stored.append(
                    store_image(part.body, self.hub.data / "gallery", part.filename, keep=keep)
                )
            except ValueError as e:
                raise APIError(400, str(e), "image_bad", name=part.filename) from None
        return stored

    async def receive_bundle(self, form: dict) -> tuple[str, Any]:
        """Unpack (or read) the bundle, check it, store it by content; ``(hash, config)``."""
        upload = (self.request.files.get("bundle") or [None])[0]
        path = form.get("path")
        if upload is None and not path:
            raise APIError(
                400,
                "No bundle: upload it as the multipart file field 'bundle' (.tar.gz or .zip), or "
                "give 'path', a bundle folder on the hub's machine.",
                "no_bundle",
            )
        hub = self.hub

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
                digest, _ = store(root, hub.data / "bundles")
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
        project = self.find_project(project_name)
        self.write_json([self.service_json(s) for s in project.services])

    async def post(self, project_name: str) -> None:
        """Register a service: its version 1 from the uploaded bundle."""
        form = self.form()
        project = self.find_project(project_name)
        name = check_name("service", form.get("name"))
        group = self.find_group(project, check_name("group", form.get("group")))
        if form.get("dev_url"):  # development mode: a running server instead of a bundle
            return await self.register_dev(project, group, name, form)
        if any(s.name == name for s in project.services):
            raise APIError(
                409,
                f"Project {project.name!r} already has a service {name!r}: upload a new version "
                f"with POST /api/v1/projects/{project.name}/services/{name}/versions.",
                "service_exists",
                project=project.name,
                name=name,
            )
        port = self.port_field(form)
        if port is not None:
            self.check_port_unused(port)
        metadata = self.metadata_field(form)
        public = str(form.get("public", "")).lower() in _TRUE
        self.images(keep=False)  # refused before anything is stored
        digest, config = await self.receive_bundle(form)
        images = self.images()
        if port is None and config.port is not None and config.port != self.hub.port:
            port = config.port
        service = orm.Service(
            project=project,
            group=group,
            name=name,
            port=port or self.unused_port(),
            public=public,
            status="registered",
            message="",
            meta=metadata,
            created_by=self.token_name,
            created_by_token=self.token_id,
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
        mine = self.token_id is not None and self.token_id in (
            service.created_by_token if service is not None else None,
            self.hub.admin_token_id,
        )
        if service is not None and service.created_by_token is not None and not mine:
            raise APIError(
                403,
                f"{project.name}/{name} was connected by the token {service.created_by!r}: only "
                "that token (or the admin's) may connect it again; choose another name.",
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

    def check_port_unused(self, port: int) -> None:
        other = self.db.query(orm.Service).filter_by(port=port).first()
        if other is not None:
            raise APIError(
                409,
                f"Port {port} is already the port of {other.project.name}/{other.name}: choose "
                "another one, or leave it out and the hub assigns a free one.",
                "port_taken",
                port=port,
                other=f"{other.project.name}/{other.name}",
            )

    def unused_port(self) -> int:
        taken = {p for (p,) in self.db.query(orm.Service.port)}
        while True:
            port = self.hub.free_port()
            if port not in taken:
                return port


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
        """Change ``public``, ``metadata`` (the registration's, over the bundle's) or ``port``."""
        service = self.find_service(project_name, name)
        data = self.json_body()
        unknown = sorted(set(data) - {"public", "metadata", "port"})
        if unknown:
            raise APIError(
                400, f"Cannot change {', '.join(unknown)}: only public, metadata and port can."
            )
        if "public" in data:
            if not isinstance(data["public"], bool):
                raise APIError(400, "public must be true or false.")
            service.public = data["public"]
        if "metadata" in data:
            service.meta = self.metadata_field(data)
        if "port" in data:
            port = self.port_field(data)
            if port is not None and port != service.port:
                self.check_port_unused(port)
            service.port = port
        self.db.commit()
        self.hub.publisher.route(service)
        self.answer_service(service)


class PublishAPIHandler(BundleReceiver):
    def post(self, project_name: str, name: str) -> None:
        """上线: build, start and health-check a version (the newest when none is given); 202."""
        service = self.find_service(project_name, name)
        refuse_dev(service, "be published")
        if not service.versions:  # pragma: no cover - registration always makes version 1
            raise APIError(400, f"{project_name}/{name} has no version to publish.")
        number = self.json_body().get("version")
        if number is None:
            version = service.versions[-1]
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
        service = self.find_service(project_name, name)
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
