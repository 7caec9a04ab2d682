"""Setup options (设置项) and the files they take.

- ``GET .../services/{s}/options[?version=N]``: the options the version's manifest declares (type,
  default, limits, description) with the values the version gives them; by default the published
  version's (else the newest).
- ``PUT`` (or ``POST``) ``.../services/{s}/options`` ``{"values": {name: value}, "version": N,
  "publish": false}``: every value is checked against its option's rule (a 400 names the option), and
  a NEW version is made from version N (the newest by default): the same bundle, the new values. It is
  published like any other (``"publish": true`` does it at once), so going back is publishing the
  older version.
- ``POST .../services/{s}/uploads`` ``{"option", "filename", "size"}``: start an upload for a
  ``file`` or ``directory`` option (its extension and size are checked first); 201 with its ``url``.
- ``PUT /api/v1/uploads/{id}[?offset=N]``: the file's bytes, streamed to disk (never held in memory)
  from ``offset`` (0 when absent: a restart; ``Content-Range: bytes N-M/T`` works too). When the last
  byte is in, the file is kept once by content and the answer's ``value`` is what the option takes.
  An upload cut short resumes: ``GET /api/v1/uploads/{id}`` says the ``offset`` to send from.

These routes take a token, or the web UI's signed-in session with its XSRF header, so the service
page uploads through the same streaming route.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from tornado import web

from .. import options as opts
from .. import orm
from ..handlers import i18n
from .base import APIHandler
from .common import APIError, human_size, parse_version_number
from .models import current_version

#: Upload id -> (bytes hashed so far, the sha256 object): a resumed upload continues its hash.
_HASHERS: dict = {}
_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)?/(\d+|\*)$")


def uploads_dir(hub: Any) -> Path:
    path = hub.data / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def max_file_bytes(hub: Any) -> int:
    return int(getattr(hub, "max_option_file_bytes", opts.DEFAULT_MAX_FILE_BYTES))


class SessionAPIHandler(APIHandler):
    """The options and uploads routes, which the web UI calls too: their refusals in the page's
    language when it does (the API keeps English)."""

    def option_error(self, e: opts.OptionError) -> APIError:
        return APIError(e.status, e.message, e.key, **e.params)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The sentence in the page's language when the web UI asked (the API keeps English)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        key = getattr(exc, "key", None)
        if getattr(self, "via_session", False) and key in i18n.ERRORS:
            lang = i18n.pick(
                self.get_cookie("lang"), self.request.headers.get("Accept-Language", "")
            )
            message = i18n.error_message(i18n.translator(lang), key, exc.params)
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps({"error": message}))
            return
        super().write_error(status_code, **kwargs)

    def base_version(self, service: orm.Service, number: Any) -> orm.Version:
        if number is not None and number != "":
            return self.find_version(service, parse_version_number(number))
        if not service.versions:
            raise APIError(
                409, f"{service.project.name}/{service.name} has no version: register a bundle."
            )
        # The newest whose options are known (a version still building has none yet).
        built = [v for v in service.versions if v.manifest is not None]
        return built[-1] if built else service.versions[-1]

    def manifest_of(self, version: orm.Version) -> dict:
        if version.manifest is None:
            raise APIError(
                409,
                f"The options of version {version.number} are not known yet: its bundle is still "
                "being built (or failed to build); wait for the build, see its log, and try again.",
                "opt_not_known",
                version=version.number,
            )
        return version.manifest


class OptionsAPIHandler(SessionAPIHandler):
    def get(self, project_name: str, name: str) -> None:
        service = self.find_service(project_name, name, "inspect")
        number = self.get_query_argument("version", None)
        version = (
            self.base_version(service, number) if number is not None else current_version(service)
        )
        if version is None:
            raise APIError(
                404,
                f"{project_name}/{name} has no version with options: register a bundle for it "
                "(a development-mode service takes no setup options on the hub).",
            )
        self.write_json(self.model(version))

    def model(self, version: orm.Version) -> dict:
        return {
            "version": version.number,
            "status": version.status,
            "known": version.manifest is not None,
            "values": version.options or {},
            "options": opts.options_model(version.manifest, version.options),
            "max_file_bytes": max_file_bytes(self.hub),
        }

    def put(self, project_name: str, name: str) -> None:
        """New values: a new version (same bundle), published when ``publish`` is true."""
        service = self.find_service(project_name, name)
        body = self.json_body()
        unknown = sorted(set(body) - {"values", "version", "publish"})
        if unknown:
            raise APIError(
                400,
                f"Unknown field {unknown[0]!r}: send values (option -> value), and optionally "
                "version and publish.",
            )
        base = self.base_version(service, body.get("version"))
        manifest = self.manifest_of(base)
        if "values" not in body:
            raise APIError(
                400, 'No values: send {"values": {"option": value}} with the options to set.'
            )

        def stored(sha: str) -> bool:
            return self.db.get(orm.StoredFile, sha) is not None and (
                opts.file_path(self.hub.data, sha).is_file()
            )

        try:
            changes = opts.check_values(manifest, body["values"], stored)
        except opts.OptionError as e:
            raise self.option_error(e) from None
        values = opts.merged_values(base.options, changes)
        version = self.add_version(
            service,
            "set the values again.",
            bundle_hash=base.bundle_hash,
            manifest=base.manifest,
            meta=dict(base.meta or {}),
            gallery=list(base.gallery or []),
            options=values or None,
        )
        publish = body.get("publish") is True
        if publish:
            self.hub.publisher.request_publish(self.db, service, version, self.token_name)
        model = self.version_json(version)
        model.update(self.model(version), version=version.number, publishing=publish)
        model["status"] = version.status
        self.write_json(model, 201)

    post = put


class UploadListAPIHandler(SessionAPIHandler):
    def post(self, project_name: str, name: str) -> None:
        """Start an upload for a file option: the name and size are checked before any byte."""
        service = self.find_service(project_name, name)
        body = self.json_body()
        version = self.base_version(service, body.get("version"))
        manifest = self.manifest_of(version)
        option_name = body.get("option")
        if not isinstance(option_name, str) or not option_name:
            raise APIError(400, "No option: name the setup option the file is for ('option').")
        try:
            option = opts.find_option(manifest, option_name)
            filename = opts.check_upload_name(option, body.get("filename"))
        except opts.OptionError as e:
            raise self.option_error(e) from None
        size = body.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise APIError(
                400, f"The size of the upload must be its length in bytes, got {size!r}."
            )
        limit = max_file_bytes(self.hub)
        if size > limit:
            raise APIError(
                413,
                f"The file {filename!r} for option {option_name!r} is {human_size(size)}, over "
                f"this hub's limit of {human_size(limit)}: make it smaller, or start the hub with "
                "a larger --max-file-size.",
                "opt_too_large",
                option=option_name,
                filename=filename,
                size=human_size(size),
                limit=human_size(limit),
            )
        upload = orm.Upload(
            id=secrets.token_hex(16),
            service_id=service.id,
            option=option_name,
            filename=filename,
            size=size,
        )
        self.db.add(upload)
        self.db.commit()
        (uploads_dir(self.hub) / f"{upload.id}.part").touch()
        self.write_json(upload_model(upload, 0, self.url("")), 201)


def upload_model(upload: orm.Upload, offset: int, base: str = "") -> dict:
    return {
        "id": upload.id,
        "option": upload.option,
        "filename": upload.filename,
        "size": upload.size,
        "offset": offset,
        "complete": False,
        "url": f"{base}/api/v1/uploads/{upload.id}",
    }


@web.stream_request_body
class UploadAPIHandler(SessionAPIHandler):
    """The bytes of one upload, streamed to ``<data>/uploads/<id>.part`` while they are hashed."""

    streams_body = True

    def find_upload(self, upload_id: str) -> orm.Upload:
        """The upload, for a caller who may change its service (else as if it were not there)."""
        upload = self.db.get(orm.Upload, upload_id)
        service = self.db.get(orm.Service, upload.service_id) if upload is not None else None
        if service is None or not self.caller.may("change", service.project_id, service.id):
            if service is not None and self.caller.may("view", service.project_id, service.id):
                self.require("change", service=service)  # a 403 that says why
            raise APIError(
                404,
                f"There is no upload {upload_id!r}: it finished or was never started; start one "
                "with POST .../services/{service}/uploads.",
            )
        return upload

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.request.method == "PUT" and self._file is None:
            # Refused before its body was read: the connection cannot carry another request.
            self.set_header("Connection", "close")
        super().write_error(status_code, **kwargs)

    def part(self, upload_id: str) -> Path:
        return uploads_dir(self.hub) / f"{upload_id}.part"

    def received(self, upload_id: str) -> int:
        try:
            return self.part(upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    async def prepare(self) -> None:  # type: ignore[override]
        self._file = None
        super().prepare()
        if self._finished or self.request.method != "PUT":
            return
        upload_id = self.path_args[0]
        upload = self.find_upload(upload_id)
        self.upload_id, self.size = upload.id, upload.size
        offset = self.start_offset()
        have = self.received(upload_id)
        if offset > have:
            raise APIError(
                409,
                f"The upload {upload.filename!r} has {have} bytes so far, not {offset}: resume "
                f"from offset {have}.",
            )
        length = self.request.headers.get("Content-Length")
        if (
            length is not None
            and length.isascii()
            and length.isdigit()
            and offset + int(length) > upload.size
        ):
            raise APIError(
                400,
                f"The upload {upload.filename!r} was started with a size of {upload.size} bytes; "
                f"{int(length)} bytes from offset {offset} go past it: send the rest of the same "
                "file.",
            )
        self.request.connection.set_max_body_size(max(upload.size - offset, 0) + 1)
        cached = _HASHERS.pop(upload_id, None)
        if cached is not None and cached[0] == offset:
            hasher = cached[1]
        elif offset == 0:
            hasher = hashlib.sha256()
        else:
            hasher = await asyncio.to_thread(opts.hash_prefix, self.part(upload_id), offset)
        self.hasher = hasher
        self.offset = offset
        self.too_long = False
        self._file = open(self.part(upload_id), "r+b")  # noqa: SIM115 - closed in put/on_finish
        self._file.truncate(offset)
        self._file.seek(offset)
        self.db.close()
        del self._db

    def start_offset(self) -> int:
        raw = self.get_query_argument("offset", None)
        content_range = self.request.headers.get("Content-Range")
        if raw is None and content_range:
            m = _RANGE.match(content_range.strip())
            if not m:
                raise APIError(
                    400,
                    f"The Content-Range {content_range!r} is not 'bytes START-END/TOTAL': send "
                    "that, or ?offset=START.",
                )
            raw = m.group(1)
        if raw is None:
            return 0
        if not (raw.isascii() and raw.isdigit()):
            raise APIError(400, f"The offset {raw!r} is not a whole number of bytes.")
        return int(raw)

    def data_received(self, chunk: bytes) -> None:
        if self._file is None or self.too_long:
            return
        if self.offset + len(chunk) > self.size:
            self.too_long = True
            return
        self._file.write(chunk)
        self.hasher.update(chunk)
        self.offset += len(chunk)

    def close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def on_connection_close(self) -> None:
        """Cut short: keep what came (the next PUT resumes from it) and the hash so far."""
        if self._file is not None:
            self._file.flush()
            _HASHERS[self.upload_id] = (self.offset, self.hasher)
            self.close_file()
        super().on_connection_close()

    def on_finish(self) -> None:
        self.close_file()
        super().on_finish()

    def get(self, upload_id: str) -> None:
        upload = self.find_upload(upload_id)
        self.write_json(upload_model(upload, self.received(upload_id), self.url("")))

    def delete(self, upload_id: str) -> None:
        upload = self.find_upload(upload_id)
        self.db.delete(upload)
        self.db.commit()
        _HASHERS.pop(upload_id, None)
        self.part(upload_id).unlink(missing_ok=True)
        self.set_status(204)
        self.finish()

    async def put(self, upload_id: str) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self.close_file()
        if self.too_long:
            _HASHERS.pop(upload_id, None)
            raise APIError(
                400,
                f"More bytes came than the {self.size} the upload was started with: start a new "
                "upload with the file's real size.",
            )
        upload = self.find_upload(upload_id)
        if self.offset < upload.size:
            _HASHERS[upload_id] = (self.offset, self.hasher)
            self.write_json(upload_model(upload, self.offset, self.url("")))
            return
        digest = self.hasher.hexdigest()
        new = await asyncio.to_thread(opts.keep_file, self.hub.data, self.part(upload_id), digest)
        if self.db.get(orm.StoredFile, digest) is None:
            self.db.add(orm.StoredFile(sha256=digest, size=upload.size))
        model = upload_model(upload, upload.size, self.url(""))
        self.db.delete(upload)
        try:
            self.db.commit()
        except IntegrityError:  # the same file, finished at the same moment by another upload
            self.db.rollback()
        model.update(
            complete=True,
            sha256=digest,
            stored="new" if new else "existing",
            value={"file": digest, "filename": model["filename"]},
        )
        self.write_json(model)


default_handlers = [
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/options", OptionsAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/uploads", UploadListAPIHandler),
    (r"/api/v1/uploads/([0-9a-f]+)", UploadAPIHandler),
]
