"""The hub's web UI: server-rendered pages on the hub's Tornado, in English and 简体中文.

Sign-in takes an API token and keeps a signed cookie (the token's hash, never the token); every form
carries Tornado's XSRF token, checked here for the page handlers only, so the REST API under
``/api/v1`` keeps working with ``Authorization: token``. Markdown descriptions are rendered with
raw HTML escaped and then sanitised (nh3); every other user string is escaped by the templates.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote, unquote, urlencode, urlsplit

from sqlalchemy.exc import IntegrityError
from tornado import web
from tornado.escape import json_encode, xhtml_escape

from ...markdown import render_markdown
from .. import access, devmode, orm
from ..apihandlers.base import HubHandler
from ..apihandlers.common import APIError, check_name, check_version_string
from ..apihandlers.models import current_version, default_publish_version, service_model
from ..apihandlers.services import ServiceListAPIHandler
from ..apihandlers.users import audit_model
from ..apihandlers.versions import public_service
from ..images import image_builds
from ..metrics import MAX_RECORD_LIMIT
from ..results import form_inputs, image_uri
from ..snippets import curl_line, example_inputs, recorded_example
from ..tryform import field, recorded_examples
from . import i18n

HERE = Path(__file__).resolve().parent
TEMPLATES = str(HERE / "templates")
STATIC = str(HERE / "static")

PROJECT_TYPES = ("model", "dataset", "application", "other")
SETTLED = ("registered", "online", "failed", "offline")
#: Types whose form fields a model server takes as text as they are (others are read as JSON).
TEXT_FIELDS = ("text", "category", "image", "segmentation", "file", "directory")

CSP = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def safe_url(url: Any) -> Optional[str]:
    """An http(s) URL or a site path, else None (no ``javascript:`` links)."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if re.match(r"^https?://", url, re.I) or (url.startswith("/") and not url.startswith("//")):
        return url
    return None


def safe_next(target: Any, default: str = "/projects") -> str:
    """A path on this hub to go to after signing in or switching language, else ``default``.

    Refused: anything with a scheme or host, ``//`` or ``\\`` at the start, and any control
    character or space, which browsers drop (``/<TAB>/evil.example`` is ``//evil.example`` to
    them)."""
    if not isinstance(target, str) or not target.startswith("/"):
        return default
    for text in (target, unquote(target)):  # as it is, and as a browser may decode it
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text) or "\\" in text:
            return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return default
    return target


def cookie_secret(data: Path) -> bytes:
    """The secret that signs session cookies: ``<data>/cookie_secret`` (mode 600), made once."""
    path = Path(data) / "cookie_secret"
    if path.is_file() and path.read_text().strip():
        os.chmod(path, 0o600)
        return path.read_text().strip().encode()
    secret = secrets.token_hex(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)
    return secret.encode()


def app_settings(data: Path) -> dict:
    """What the Tornado application needs for the pages (the API ignores these)."""
    return {
        "cookie_secret": cookie_secret(data),
        "static_path": STATIC,
        "static_url_prefix": "/static/",
    }


class FormError(Exception):
    """A refused form: re-render the page with this (translated) message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PageHandler(HubHandler):
    """A page: language, sign-in, XSRF on every POST, and safe headers."""

    needs_user = True

    def get_template_path(self) -> str:
        return TEMPLATES

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Cache-Control", "no-store")

    def prepare(self) -> None:
        self.lang = i18n.pick(
            self.get_cookie("lang"), self.request.headers.get("Accept-Language", "")
        )
        self.t = i18n.translator(self.lang)
        self.set_header("Content-Language", self.lang.replace("_", "-"))
        self.caller = self.session_caller()
        if self.needs_user and self.caller.anonymous:
            if self.request.method in ("GET", "HEAD"):
                self.redirect("/login?" + urlencode({"next": self.request.uri}))
                return
            raise web.HTTPError(403)
        # What the shared API code records as "by", and the token a session was signed in with.
        self.token_name, self.token_id = self.caller.name, self.caller.token_id
        self.begin_body()

    def body_received(self) -> None:
        """Every form carries the XSRF token (in its body or the X-XSRFToken header)."""
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            self.check_xsrf_cookie()

    def get_current_user(self) -> Optional[str]:
        return self.caller.name

    def get_template_namespace(self) -> dict:
        ns = super().get_template_namespace()
        here = self.request.uri or "/"
        ns.update(
            t=self.t,
            lang=self.lang,
            languages=i18n.LANGUAGES,
            switch_url=lambda code: "/lang?" + urlencode({"to": code, "next": here}),
            user=self.current_user,
            caller=self.caller,
            can=self.can,
            json_encode=json_encode,
            status_label=lambda status: i18n.label(self.t, i18n.STATUS, status),
            role_label=lambda role: i18n.label(self.t, i18n.ROLES, role),
            type_label=lambda kind: i18n.label(self.t, i18n.TYPES, kind),
            scope_label=lambda scope: i18n.label(self.t, i18n.SCOPES, scope),
            process_label=lambda state: i18n.label(self.t, i18n.PROCESSES, state),
            quote=lambda s: quote(str(s), safe=""),
            hub_backend=self.hub.runner.name,
            when=self.when,
            error=None,
        )
        return ns

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        t = getattr(self, "t", None) or i18n.translator(i18n.DEFAULT)
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, APIError):
            message = self.error_text(exc) if hasattr(self, "t") else exc.message
        elif status_code == 403 and exc is not None and "xsrf" in str(exc).lower():
            message = t(
                "The form expired or came from another site: reload the page and try again."
            )
        elif status_code == 403:
            message = t("Sign in to continue.")
        elif status_code == 404:
            message = t("Not found")
        else:
            message = t("Something went wrong")
        if not hasattr(self, "t"):
            self.lang, self.t = i18n.DEFAULT, t
        self.render("error.html", status=status_code, message=message)

    def when(self, value: Any, empty: str = "") -> str:
        """A time as HTML: how long ago (or how soon) in the page's language, the exact UTC time on
        hover and in ``datetime`` ("3 minutes ago"; past 30 days, the date). ``value``: a datetime
        (naive: UTC), an ISO string, or None (``empty``)."""
        if not value:
            return xhtml_escape(empty)
        if isinstance(value, str):
            try:
                value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return xhtml_escape(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        now = datetime.datetime.now(datetime.timezone.utc)
        exact = value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        words = i18n.relative_time((now - value).total_seconds(), self.t) or exact[:10]
        iso = value.astimezone(datetime.timezone.utc).isoformat(timespec="seconds")
        return (
            f'<time datetime="{xhtml_escape(iso)}" title="{xhtml_escape(exact)}">'
            f"{xhtml_escape(words)}</time>"
        )

    def error_text(self, error: Exception) -> str:
        """An error of the hub's shared logic (``APIError`` or ``BundleError`` with a ``key``) as
        one sentence in the page's language; the API keeps its English ``message``."""
        text = i18n.error_message(
            self.t, getattr(error, "key", None), getattr(error, "params", None)
        )
        if text is not None:
            return text
        return self.t(
            "The form was refused: {message}", message=getattr(error, "message", None) or str(error)
        )

    def validated(self, kind: str, value: str) -> str:
        try:
            return check_version_string(value) if kind == "version" else check_name(kind, value)
        except APIError as e:
            raise FormError(self.error_text(e)) from None

    def base_url(self) -> str:
        return f"{self.request.protocol}://{self.request.host}"

    def service_shown(self, project_name: str, name: str) -> Optional[orm.Service]:
        """The service to show, or None when the visitor was sent to sign in."""
        caller = self.caller
        service = public_service(self.db, project_name, name)
        if service is not None and not caller.may("view", service.project_id, service.id):
            return service  # its public face: to anyone who may not see more of it
        if caller.anonymous:
            self.redirect("/login?" + urlencode({"next": self.request.uri}))
            return None
        return self.find_service(project_name, name)

    def can(self, action: str, project: Any = None, service: Any = None) -> bool:
        """Whether the signed-in user may do ``action`` there (the pages show only what they may)."""
        if service is not None:
            return self.caller.may(action, service.project_id, service.id)
        return self.caller.may(action, project.id if project is not None else None)


class LoginPage(PageHandler):
    """登录: a user's name and password (locked for a while after repeated failures), or an API
    token (the session then has the token's scopes and limits)."""

    needs_user = False

    def get(self) -> None:
        self.render("login.html", next=self.next_url(), name="")

    def next_url(self) -> str:
        return safe_next(self.get_argument("next", "/projects"))

    def refuse(self, message: str, name: str = "", status: int = 403) -> None:
        self.set_status(status)
        self.render("login.html", next=self.next_url(), error=message, name=name)

    async def post(self) -> None:
        hub = self.hub
        token = self.get_body_argument("token", "").strip()
        if token:
            if not hub.sign_ins.allow(self.request.remote_ip or ""):
                return self.refuse(
                    self.t(
                        "Too many sign-in attempts from your address: wait a minute and try again."
                    ),
                    status=429,
                )
            try:
                caller = hub.gate.from_token(token, self.request.remote_ip or "")
            except access.Refused:
                hub.sign_ins.failed(self.request.remote_ip or "")
                return self.refuse(self.t("That token is not valid: it is unknown or was revoked."))
            self.start_session(orm.hash_token(token))
            hub.audit(caller.name, caller.token_id, "sign in (token)", None, None, "", self)
            return self.redirect(self.next_url())
        name = self.get_body_argument("name", "").strip()
        try:
            user_id = await self.check_password(name, self.get_body_argument("password", ""))
        except APIError as e:
            return self.refuse(self.error_text(e), name, e.status_code)
        with hub.session() as db:
            user = db.get(orm.User, user_id)
            self.start_user_session(user)
            hub.audit(user.name, None, "sign in", None, None, "", self)
        self.redirect(self.next_url())


class LogoutPage(PageHandler):
    needs_user = False

    def post(self) -> None:
        self.end_session()
        self.redirect("/login")


class LanguageSwitch(PageHandler):
    needs_user = False

    def get(self) -> None:
        code = self.get_argument("to", "")
        if code in i18n.LANGUAGES:
            self.set_cookie("lang", code, expires_days=365, samesite="Lax")
        self.redirect(safe_next(self.get_argument("next", "/projects")))


class ProjectsPage(PageHandler):
    def get(self, error: Optional[str] = None, form: Optional[dict] = None) -> None:
        caller = self.caller
        projects = [
            p
            for p in self.db.query(orm.Project).order_by(orm.Project.name)
            if caller.may("view", p.id, caller.service_id)
        ]
        self.render(
            "projects.html",
            projects=projects,
            types=PROJECT_TYPES,
            error=error,
            form=form or {},
        )

    def post(self) -> None:
        form = {
            k: self.get_body_argument(k, "") for k in ("name", "type", "version", "description")
        }
        try:
            if "write" not in self.caller.scopes or self.caller.limited():
                raise FormError(
                    self.t(
                        "This needs a token with the '{scope}' scope: sign in with your password or use a token that has it.",
                        scope="write",
                    )
                )
            name = self.validated("project", form["name"])
            version = self.validated("version", form["version"] or "1.0")
            kind = form["type"] if form["type"] in PROJECT_TYPES else "model"
            project = orm.Project(
                name=name, type=kind, version=version, description=form["description"]
            )
            self.db.add(project)
            self.db.add(orm.Membership(project=project, user_id=self.caller.user_id, role="owner"))
            try:
                self.db.commit()
            except IntegrityError:
                self.db.rollback()
                raise FormError(
                    self.t("{name} already exists: choose another name.", name=name)
                ) from None
        except FormError as e:
            self.set_status(400)
            self.get(error=e.message, form=form)
            return
        self.hub.forget_user(self.caller.user_id)
        self.redirect(f"/projects/{quote(name, safe='')}")


class ProjectPage(PageHandler):
    def get(self, name: str, error: Optional[str] = None) -> None:
        project = self.find_project(name)
        by_group: dict = {g.id: [] for g in project.groups}
        for service in project.services:
            by_group.setdefault(service.group_id, []).append(service)
        self.render(
            "project.html",
            project=project,
            by_group=by_group,
            error=error,
            default_of=default_publish_version,
            roles=access.ROLES,
        )


class GroupCreate(PageHandler):
    def post(self, name: str) -> None:
        project = self.find_project(name, "change")
        try:
            group_name = self.validated("group", self.get_body_argument("name", ""))
            self.db.add(orm.Group(project=project, name=group_name))
            try:
                self.db.commit()
            except IntegrityError:
                self.db.rollback()
                raise FormError(
                    self.t("{name} already exists: choose another name.", name=group_name)
                ) from None
        except FormError as e:
            self.set_status(400)
            ProjectPage.get(self, name, error=e.message)  # type: ignore[arg-type]
            return
        self.redirect(f"/projects/{quote(name, safe='')}")


class RegisterAction(PageHandler, ServiceListAPIHandler):
    """注册: the registration form (a bundle upload or a folder on the hub's machine), checked by
    the same code as ``POST /api/v1/projects/{project}/services``."""

    META_FIELDS = ("tagline", "description", "license", "performance_notes")

    def form(self) -> dict:
        fields = {
            k: self.get_body_argument(k, "").strip()
            for k in ("name", "group", "path", "links", *self.META_FIELDS)
        }
        meta = {k: fields[k] for k in self.META_FIELDS if fields[k]}
        links = []
        for line in fields["links"].splitlines():
            title, sep, url = line.strip().rpartition(" ")
            if url:
                links.append({"title": title.strip() or url, "url": url})
        if links:
            meta["links"] = links
        return {
            "name": fields["name"],
            "group": fields["group"],
            "path": fields["path"],
            "metadata": meta,
            # development mode (devmode.py): the project page's "connect" form
            "dev_url": self.get_body_argument("dev_url", "").strip(),
            "dev_token": self.get_body_argument("dev_token", "").strip(),
        }

    async def post(self, project_name: str) -> None:  # type: ignore[override]
        form = self.form()
        try:
            self.validated("service", form["name"])
            await ServiceListAPIHandler.post(self, project_name)
        except FormError as e:
            self.render_refusal(project_name, e.message)
        except APIError as e:
            self.render_refusal(project_name, self.error_text(e), e.status_code)

    def render_refusal(self, project_name: str, message: str, status: int = 400) -> None:
        self.db.rollback()
        self.set_status(status)
        ProjectPage.get(self, project_name, error=message)  # type: ignore[arg-type]

    def answer_service(self, service: orm.Service, status: int = 200, **extra: Any) -> None:
        self.redirect(
            f"/projects/{quote(service.project.name, safe='')}/services/"
            f"{quote(service.name, safe='')}"
        )


def curl_lines(
    handler: PageHandler,
    service: orm.Service,
    version: Optional[orm.Version],
    specs: list,
    endpoint: str,
) -> list:
    """``(command, line)`` for each command of the version shown: runnable as given."""
    if version is None or service.dev_url:
        return []
    bundle = handler.hub.data / "bundles" / version.bundle_hash
    api = f"{handler.base_url()}/api/v1/projects/{quote(service.project.name, safe='')}/services/"
    api += f"{quote(service.name, safe='')}/versions/{version.number}/examples/"
    lines = []
    for spec in specs:
        body = example_inputs(spec, recorded_example(bundle, spec["name"]))
        line = curl_line(
            endpoint + quote(spec["name"], safe=""),
            body,
            public=service.public,
            body_url=api + quote(spec["name"], safe=""),
        )
        lines.append((spec["name"], line))
    return lines


def try_forms(handler: Any, service: orm.Service, version: Any, specs: list) -> list:
    """The try-it form of each command: its fields (control, rules as attributes, hint), its output
    types, and the examples recorded in the bundle of the version shown."""
    bundle = handler.hub.data / "bundles" / version.bundle_hash if version is not None else None
    forms = []
    for spec in specs:
        fields = []
        for item in spec.get("inputs") or []:
            if isinstance(item, dict) and item.get("name"):
                f = field(spec["name"], item, handler.t)
                f["description"] = item.get("description") or ""
                fields.append(f)
        outputs = {o["name"]: o.get("type") for o in spec.get("outputs") or [] if "name" in o}
        examples = recorded_examples(bundle, spec["name"]) if bundle is not None else []
        forms.append({**spec, "fields": fields, "outputs": outputs, "examples": examples})
    return forms


class ServicePage(PageHandler):
    """A service's page. Signed in: what the user's role allows; anonymous: a public service's
    card, API panel and try-it form only (anything else: the sign-in page)."""

    needs_user = False

    async def prepare(self) -> None:  # type: ignore[override]
        super().prepare()
        if self._finished or self.request.method != "GET" or len(self.path_args) != 2:
            return
        service = self.service_shown(*self.path_args)
        if service is None:
            return
        if service.dev_url:  # development mode: is its server still there? (devmode.py)
            await devmode.refresh(self.hub, service.id)
            self.db.expire_all()
        if self.hub.meter is not None and self.can("inspect", service=service):
            await self.hub.meter.flush()  # the request log as it is now

    def get(self, project_name: str, name: str, error: Optional[str] = None) -> None:
        service = self.service_shown(project_name, name)
        if service is None:
            return
        running = self.hub.publisher.running(project_name, name)
        replicas = self.hub.publisher.replicas(project_name, name, running)
        model = service_model(service, self.base_url(), self.hub.serve_origin, running, replicas)
        meta = model["metadata"] or {}
        links = []
        for link in meta.get("links") or []:
            if isinstance(link, dict):
                title, url = link.get("title") or link.get("url"), link.get("url")
            else:
                title, url = link, link
            links.append({"title": str(title), "url": safe_url(url)})
        specs = [c for c in ((model.get("manifest") or {}).get("commands") or []) if c.get("name")]
        version = current_version(service)
        endpoint = model["urls"]["api"] or model["urls"]["serve"]
        curls = curl_lines(self, service, version, specs, endpoint)
        tries = try_forms(self, service, version, specs)
        # The log shown live: the version being built or started, else the current one.
        active = [v for v in service.versions if v.status in ("building", "starting")]
        log_version = active[-1] if active else version
        problem = None
        if service.message:  # the publisher's English sentence, said in the page's language
            failed = [v.number for v in service.versions if v.status == "failed"]
            named = re.match(r"Publishing version (\d+) failed", service.message)
            if service.message.startswith("Restarting"):
                problem = self.t(
                    "The service's process stopped and is being restarted: read the log below."
                )
            elif named:
                problem = self.t(
                    "Publishing version {version} failed: read the build and run log below, fix the bundle and upload a new version.",
                    version=named.group(1),
                )
            elif failed and failed[-1] != service.published_version:
                problem = self.t(
                    "Publishing version {version} failed: read the build and run log below, fix the bundle and upload a new version.",
                    version=failed[-1],
                )
            else:
                problem = self.t("The service failed: read the build and run log below.")
        default = model["publish_default"]
        audit = []
        if self.can("inspect", service=service):
            entries = (
                self.db.query(orm.AuditEntry)
                .filter_by(project=project_name, service=name)
                .order_by(orm.AuditEntry.id.desc())
                .limit(20)
            )
            audit = [audit_model(e) for e in entries]
        meter = self.hub.meter
        records = []
        if meter is not None and self.can("inspect", service=service):
            records = meter.records(self.db, service.id, 50)
        self.render(
            "service.html",
            metrics_on=meter is not None,
            records=records,
            log_size=min(50, meter.log_size) if meter is not None else 0,
            chart_labels={k: self.t(v) for k, v in i18n.CHART_LABELS.items()},
            error=error,
            problem=problem,
            service=service,
            model=model,
            meta=meta,
            description_html=render_markdown(meta.get("description") or ""),
            links=links,
            specs=specs,
            endpoint=endpoint,
            curls=curls,
            tries=tries,
            share_days=f"{self.hub.results.ttl / 86400:g}" if self.hub.results.enabled else "",
            try_labels={k: self.t(v) for k, v in i18n.TRY_LABELS.items()},
            api=f"/api/v1/projects/{quote(project_name, safe='')}/services/{quote(name, safe='')}",
            log_number=log_version.number if log_version is not None else None,
            audit=audit,
            images=version_images(self, service),
            version=version,
            default=default,
            serving=service.status == "online" and default == service.published_version,
            labels={
                s: i18n.label(self.t, i18n.STATUS, s)
                for s in ("registered", "building", "starting", "online", "failed", "offline")
            },
        )


def version_images(handler: PageHandler, service: orm.Service) -> dict:
    """number -> what is known of the version's container image, for the project's developers."""
    if not handler.can("inspect", service=service):
        return {}
    builds = image_builds(handler.hub)
    project = service.project.name
    found = {v.number: builds.info(project, service.name, v.number) for v in service.versions}
    return {n: info for n, info in found.items() if info}


class RecordingAction(PageHandler):
    """The request log's "keep inputs and outputs" form (an owner's)."""

    def post(self, project_name: str, name: str) -> None:
        service = self.find_service(project_name, name, "manage")
        on = self.get_body_argument("record_bodies", "") in ("1", "on", "true")
        raw = self.get_body_argument("record_limit", "").strip()
        limit = service.record_limit
        if raw:
            if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_RECORD_LIMIT:
                self.set_status(400)
                ServicePage.get(
                    self,  # type: ignore[arg-type]
                    project_name,
                    name,
                    error=self.t(
                        "The size is a whole number of bytes from 1 to {most}.",
                        most=MAX_RECORD_LIMIT,
                    ),
                )
                return
            limit = int(raw)
        service.record_bodies, service.record_limit = on, limit
        self.db.commit()
        if self.hub.meter is not None:
            self.hub.meter.set_recording(service.id, on, limit)
        path = f"/projects/{quote(project_name, safe='')}/services/{quote(name, safe='')}"
        self.redirect(path + "#requests")


class PublishAction(PageHandler):
    def post(self, project_name: str, name: str) -> None:
        """上线 the version the button names: the one the versions table gives (an older one:
        rollback), else the one online last (a rollback stays a rollback), else the newest."""
        service = self.find_service(project_name, name)
        number = self.get_body_argument("version", "")
        chosen = [v for v in service.versions if str(v.number) == number.strip()]
        if number and not chosen:
            raise web.HTTPError(404)
        if service.versions:
            version = chosen[-1] if chosen else default_publish_version(service)
            self.hub.publisher.request_publish(self.db, service, version, self.current_user)
        self.redirect(f"/projects/{quote(project_name, safe='')}/services/{quote(name, safe='')}")


class OfflineAction(PageHandler):
    async def post(self, project_name: str, name: str) -> None:
        service = self.find_service(project_name, name)
        await self.hub.publisher.offline(service.id)
        self.redirect(f"/projects/{quote(project_name, safe='')}/services/{quote(name, safe='')}")


class TryAction(PageHandler):
    """试用: the service page's "try it" form, relayed to the published version's process (a
    signed-in user and the XSRF header, so a non-public service needs no token in the browser).

    Only the service's own commands are relayed (never ``setup``), to the address the hub checked
    (a development server's URL may not lead to the hub or its services), and no redirect is
    followed."""

    max_body = 64 << 20  # what /serve takes
    parse_forms = False  # relayed as it came
    needs_user = False  # a public service's page can be tried by anyone
    audited = False  # a call, not a change

    async def post(self, project_name: str, name: str, command: str) -> None:
        service = self.tried_service(project_name, name)
        route = self.hub.publisher.route(service)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if not route.dev and (service.status != "online" or not route.url):
            self.set_status(409)
            self.finish({"error": self.t("Not published yet: press Publish.")})
            return
        if command not in route.commands:
            raise web.HTTPError(404)
        content_type = self.request.headers.get("Content-Type", "application/json")
        status, body = await self.relay(
            route, "POST", quote(command, safe=""), self.request.body, content_type
        )
        self.set_status(status)
        if status == 200 and self.get_query_argument("share", "") == "1":
            self.share(service, command, content_type, body)
        self.finish(body)

    def share(self, service: orm.Service, command: str, content_type: str, body: bytes) -> None:
        """Keep the answer behind a shareable link: a public service's only, when asked. The link
        goes back in ``X-AlgoLink-Result`` (``X-AlgoLink-Result-Kept: no`` when it was not kept),
        and the key that deletes it in ``X-AlgoLink-Result-Delete-Key`` (for the one who asked)."""
        if not service.public or service.dev_url or not self.hub.results.enabled:
            return
        try:
            outputs = json.loads(body)
        except ValueError:
            outputs = None
        inputs = form_inputs(content_type, self.request.body)
        version = current_version(service)
        spec = next(
            (
                c
                for c in ((version.manifest or {}).get("commands") or [] if version else [])
                if c.get("name") == command
            ),
            {},
        )
        kept = None
        kinds = {i["name"]: i.get("type") for i in spec.get("inputs") or [] if "name" in i}
        for name, value in (inputs or {}).items():  # form fields read as the service reads them
            if isinstance(value, str) and kinds.get(name) not in TEXT_FIELDS:
                try:
                    inputs[name] = json.loads(value)
                except ValueError:
                    pass
        if isinstance(outputs, dict) and inputs is not None:
            kept = self.hub.results.keep(
                {
                    "service_id": service.id,
                    "service_created": service.created.isoformat() if service.created else "",
                    "project": service.project.name,
                    "service": service.name,
                    "command": command,
                    "version": version.number if version else None,
                    "inputs": inputs,
                    "outputs": outputs,
                    "types": {
                        side: {
                            i["name"]: i.get("type") for i in spec.get(side) or [] if "name" in i
                        }
                        for side in ("inputs", "outputs")
                    },
                }
            )
        if kept:
            self.set_header("X-AlgoLink-Result", f"/results/{kept[0]}")
            self.set_header("X-AlgoLink-Result-Delete-Key", kept[1])
        else:
            self.set_header("X-AlgoLink-Result-Kept", "no")

    def tried_service(self, project_name: str, name: str) -> orm.Service:
        """A public service, or one the caller may invoke."""
        return public_service(self.db, project_name, name) or self.find_service(
            project_name, name, "invoke"
        )

    async def relay(
        self, route: Any, method: str, path: str, body: Optional[bytes], content_type: str
    ) -> tuple:
        """``(status, body)`` of ``method path`` asked of the service's process (or development
        server) at the address the hub checked, following no redirect; a 502 with a sentence when
        nothing answers."""
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        headers = {"Content-Type": content_type, devmode.HOP_HEADER: self.hub.hop_id}
        url = route.url.rstrip("/")
        if route.dev:  # development mode: the checked address, and the token that server needs
            try:
                ip, port = await devmode.target_address(self.hub, url)
            except devmode.DevServerError as e:
                return 502, json_encode({"error": self.error_text(e)})
            if route.dev_token:
                headers["Authorization"] = f"token {route.dev_token}"
            parts = urlsplit(url)
            if parts.scheme == "http":
                headers["Host"] = parts.netloc
                host = f"[{ip}]" if ":" in ip else ip
                url = f"http://{host}:{port}{parts.path.rstrip('/')}"
        try:
            answer = await AsyncHTTPClient().fetch(
                f"{url}/{path}",
                method=method,
                body=body if method == "POST" else None,
                headers=headers,
                request_timeout=300,
                follow_redirects=False,
                raise_error=False,
            )
            if answer.code == 599:  # no answer at all
                raise OSError(str(answer.error))
        except (OSError, HTTPClientError):
            if route.dev:
                return 502, json_encode(
                    {
                        "error": self.t(
                            "The development server at {url} is not answering: start it again (or run %algolink connect again in the notebook) and reconnect.",
                            url=route.url,
                        )
                    }
                )
            return 502, json_encode(
                {"error": self.t("The service did not answer: read its log below, then try again.")}
            )
        status = answer.code if 200 <= answer.code < 300 or answer.code >= 400 else 502
        return status, answer.body or b"{}"


class DocsSpec(TryAction):
    """The OpenAPI document of the API docs page: the service's own (from its process), its commands
    only, sent to this page's try-it route (the page's session and XSRF token, no token)."""

    async def get(self, project_name: str, name: str) -> None:
        service = self.tried_service(project_name, name)
        route = self.hub.publisher.route(service)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if not route.dev and (service.status != "online" or not route.url):
            self.set_status(409)
            self.finish({"error": self.t("Not published yet: press Publish.")})
            return
        status, body = await self.relay(route, "GET", "openapi.json", None, "application/json")
        try:
            doc = json.loads(body) if status == 200 else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
            self.set_status(502 if status == 200 else status)
            self.finish(
                body
                if status != 200
                else {
                    "error": self.t(
                        "The service did not answer: read its log below, then try again."
                    )
                }
            )
            return
        base = f"/projects/{quote(project_name, safe='')}/services/{quote(name, safe='')}/try"
        doc["servers"] = [{"url": base, "description": self.t("this page's try-it route")}]
        doc["paths"] = {
            path: {"post": ops["post"]}
            for path, ops in doc["paths"].items()
            if isinstance(ops, dict) and "post" in ops and path.strip("/") in route.commands
        }
        self.finish(doc)


class DocsPage(PageHandler):
    """API 文档: Swagger UI (shipped with the hub, no CDN) over :class:`DocsSpec`, "Try it out"
    answered through the try-it route."""

    needs_user = False  # a public service's docs, like its page

    def get(self, project_name: str, name: str) -> None:
        service = self.service_shown(project_name, name)
        if service is None:
            return
        path = f"/projects/{quote(project_name, safe='')}/services/{quote(name, safe='')}"
        serve = self.hub.serve_origin or self.base_url()
        self.render(
            "docs.html",
            service=service,
            spec_url=path + "/openapi.json",
            serve_url=f"{serve}/serve/{project_name}/{name}/",
            xsrf=self.xsrf_token.decode(),
        )


def shown_value(kind: Optional[str], value: Any) -> dict:
    """How the result page shows one value: an image, a download, text or JSON."""
    if image_uri(value):
        return {"image": value}
    files = ("file", "directory", "segmentation", "image")
    if isinstance(value, str) and kind in files and re.match(r"data:[^,]*;base64,", value):
        payload = value.split(",", 1)[-1]  # served as bytes to save, never as a page to open
        uri = "data:application/octet-stream;base64," + payload
        return {"download": uri, "size": len(payload) * 3 // 4}
    if isinstance(value, dict) and kind == "file" and isinstance(value.get("data"), str):
        size = len(value["data"]) * 3 // 4
        uri = "data:application/octet-stream;base64," + value["data"]
        return {"download": uri, "size": size, "filename": str(value.get("filename") or "")}
    if isinstance(value, str) and kind in ("text", "category", None):
        return {"text": value}
    return {"json": json.dumps(value, indent=2, ensure_ascii=False)}


class ResultPage(PageHandler):
    """分享的结果: a try-it result kept behind an unguessable link. Anyone with the link sees it, as
    long as it has not expired and its service exists and is still public (otherwise: not found)."""

    needs_user = False

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Referrer-Policy", "no-referrer")  # the link is the secret: never sent on
        self.set_header("X-Robots-Tag", "noindex, nofollow")

    def get(self, result_id: str) -> None:
        record = self.hub.results.get(result_id)
        service = self.db.get(orm.Service, record.get("service_id")) if record else None
        if (
            record is None
            or service is None
            or not service.public
            or service.project.name != record.get("project")
            or service.name != record.get("service")
            or (service.created.isoformat() if service.created else "")
            != record.get("service_created")  # a service made anew under a reused id: not it
        ):
            raise web.HTTPError(404)
        types = record.get("types") or {}
        sides = {}
        for side in ("inputs", "outputs"):
            values = record.get(side) or {}
            kinds = types.get(side) or {}
            names = [k for k in kinds if k in values] + [k for k in values if k not in kinds]
            sides[side] = [(k, kinds.get(k), shown_value(kinds.get(k), values[k])) for k in names]

        def stamp(seconds: float) -> str:
            moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
            return moment.strftime("%Y-%m-%d %H:%M UTC")

        self.render(
            "result.html",
            record=record,
            service=service,
            sides=sides,
            made=stamp(record["created"]),
            expires=stamp(record["expires"]),
        )


class ResultDelete(PageHandler):
    """Deletes a shared result before it expires, for whoever holds its delete key (the person who
    made the link: the try-it form got it with the link). 404 for an unknown id or a wrong key."""

    needs_user = False
    audited = False

    def post(self, result_id: str) -> None:
        if not self.hub.results.delete(result_id, self.get_body_argument("key", "")):
            raise web.HTTPError(404)
        self.set_status(204)
        self.finish()


page_handlers = [
    (r"/login", LoginPage),
    (r"/logout", LogoutPage),
    (r"/lang", LanguageSwitch),
    (r"/projects/?", ProjectsPage),
    (r"/projects/([^/]+)", ProjectPage),
    (r"/projects/([^/]+)/groups", GroupCreate),
    (r"/projects/([^/]+)/services", RegisterAction),
    (r"/projects/([^/]+)/services/([^/]+)", ServicePage),
    (r"/projects/([^/]+)/services/([^/]+)/publish", PublishAction),
    (r"/projects/([^/]+)/services/([^/]+)/offline", OfflineAction),
    (r"/projects/([^/]+)/services/([^/]+)/recording", RecordingAction),
    (r"/projects/([^/]+)/services/([^/]+)/try/([^/]+)", TryAction),
    (r"/projects/([^/]+)/services/([^/]+)/docs", DocsPage),
    (r"/projects/([^/]+)/services/([^/]+)/openapi.json", DocsSpec),
    (r"/results/([^/]+)", ResultPage),
    (r"/results/([^/]+)/delete", ResultDelete),
]

__all__ = ["app_settings", "page_handlers", "render_markdown"]
