"""The base of every API handler: tokens, JSON in and out, one error shape, and the row -> JSON models.

Errors are always ``{"error": "<one sentence>"}``. ``find_*`` helpers answer 404 with a sentence that
names what is missing; ``*_model`` functions turn rows into the JSON the API returns.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote

from sqlalchemy.exc import IntegrityError
from tornado import httputil, web
from tornado.log import app_log

from ... import names
from .. import access, orm
from ..multipart import FormError, FormParser, boundary_of
from .common import APIError, check_name, human_size, parse_version_number, redact
from .models import service_model, version_model

#: The web UI's session cookie: the hash of the token it signed in with (never the token), signed.
SESSION_COOKIE = "algolink-session"
SESSION_DAYS = 7
#: The paths the session cookie is sent to (one cookie per path): the pages and the API the pages
#: call. Never ``/serve`` (a service's code must not see it), ``/gallery`` or ``/static``.
SESSION_PATHS = ("/projects", "/tokens", "/users", "/account", "/preview", "/logout", "/api/v1")

#: Methods whose requests carry a body.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALL = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
#: The largest body a route takes unless it says otherwise.
DEFAULT_MAX_BODY = 1 << 20


def _after_body(method: Any) -> Any:
    """``method`` run once the request's body is in and parsed (see :class:`HubHandler`)."""
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def run(self: HubHandler, *args: Any, **kwargs: Any) -> Any:
            self._in_method = True
            if not self.body_ready():
                return None
            return await method(self, *args, **kwargs)

    else:

        @functools.wraps(method)
        def run(self: HubHandler, *args: Any, **kwargs: Any) -> Any:
            self._in_method = True
            if not self.body_ready():
                return None
            return method(self, *args, **kwargs)

    run._after_body = True  # type: ignore[attr-defined]
    return run


@web.stream_request_body
class HubHandler(web.RequestHandler):
    """What every hub handler has, API or page: the hub, a database session closed at the end, and
    bodies read only once the caller may send one.

    Every route streams its request body: ``prepare()``, where the caller's token or session is
    checked, runs before a byte of the body is read, so a request that is refused costs the hub its
    headers only (the rest is read and dropped). The body is then gathered up to :attr:`max_body`
    bytes (a 413 past it, or at once when Content-Length says so); a ``multipart/form-data`` body is
    parsed as it arrives, its files spooled to disk (:mod:`..multipart`). The method runs once it is
    all in, with ``request.body`` (other bodies), ``body_arguments`` and ``files`` as Tornado gives
    them. Routes that write the body elsewhere as it comes (uploads) set :attr:`streams_body` and
    have their own ``data_received``.
    """

    #: The largest request body this route takes, in bytes.
    max_body = DEFAULT_MAX_BODY
    #: The route reads its body itself, in ``data_received``.
    streams_body = False
    #: Whether a form body is parsed (files spooled to disk); a route that relays the body as it
    #: came (the try-it form) keeps it whole in ``request.body``.
    parse_forms = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in (m.lower() for m in ALL):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_after_body", False):
                setattr(cls, name, _after_body(method))

    @property
    def hub(self) -> Any:
        return self.settings["hub"]

    def session_value(self) -> Optional[str]:
        """The signed session cookie's value: ``u:<user id>:<session version>`` (signed in with a
        password) or ``t:<token sha256>`` (with a token)."""
        value = self.get_signed_cookie(SESSION_COOKIE, max_age_days=SESSION_DAYS)
        return value.decode() if value else None

    def session_caller(self, check_xsrf: bool = False) -> access.Caller:
        """The signed-in user of the pages, or an anonymous caller. With ``check_xsrf``, a call that
        changes something must carry the page's XSRF token too."""
        value = self.session_value()
        if value and re.fullmatch(r"[0-9a-f]{64}", value):  # an older hub's: a token's hash
            value = "t:" + value
        kind, _, rest = (value or "").partition(":")
        try:
            if kind == "u":
                user_id, _, version = rest.partition(":")
                caller = self.hub.gate.from_user(int(user_id), int(version))
            elif kind == "t":
                caller = self.hub.gate.from_hash(rest, self.request.remote_ip or "")
            else:  # no session: an authenticator's hook may name the user (a proxy's header)
                caller = self.request_user()
        except (access.Refused, ValueError):
            return access.Caller()
        if caller.anonymous:
            return caller
        if check_xsrf and self.request.method not in ("GET", "HEAD", "OPTIONS"):
            try:
                self.check_xsrf_cookie()
            except web.HTTPError:
                raise APIError(
                    403,
                    "The page's form has expired (its XSRF token is missing or wrong): "
                    "reload the page and try again.",
                ) from None
        self.via_session = True
        return caller

    def request_user(self) -> access.Caller:
        """The user an authenticator's ``request_user`` hook names for this request, or nobody."""
        hook = getattr(self.hub.authenticator, "request_user", None)
        name = hook(self) if hook is not None else None
        if not name:
            return access.Caller()
        with self.hub.session() as db:
            user = db.query(orm.User).filter_by(name=name).one_or_none()
            if user is None:
                user = orm.User(name=name, display_name=name)
                db.add(user)
                db.commit()
            user_id = user.id
        try:
            return self.hub.gate.from_user(user_id)
        except access.Refused:
            return access.Caller()

    async def check_password(self, name: str, password: str) -> int:
        """The id of the user a name and password sign in (through the hub's authenticator), or an
        :class:`APIError` whose key is ``sign_in_throttled`` (too many failures from this address),
        ``sign_in_locked`` (too many for this user: :data:`access.LOCK_AFTER`), ``sign_in_bad`` or
        ``sign_in_disabled``. A user an external authenticator names is made when missing."""
        hub, address = self.hub, self.request.remote_ip or ""
        if not hub.sign_ins.allow(address):
            raise APIError(
                429,
                "Too many failed sign-ins from this address: wait a minute.",
                "sign_in_throttled",
            )
        bad = APIError(403, "That user name and password do not match: check both.", "sign_in_bad")
        with hub.session() as db:
            user = db.query(orm.User).filter_by(name=name).one_or_none()
            if user is not None and user.locked_until and user.locked_until > orm.utcnow():
                raise APIError(
                    403,
                    f"Too many wrong passwords: {name} is locked for {access.LOCK_MINUTES} minutes.",
                    "sign_in_locked",
                    minutes=access.LOCK_MINUTES,
                )
        checked = hub.authenticator.authenticate(self, name, password) if name else None
        if inspect.isawaitable(checked):
            checked = await checked
        with hub.session() as db:
            user = db.query(orm.User).filter_by(name=checked or name).one_or_none()
            if not checked:
                hub.sign_ins.failed(address)
                if user is not None:
                    user.failed_logins += 1
                    if user.failed_logins >= access.LOCK_AFTER:
                        user.locked_until = orm.utcnow() + datetime.timedelta(
                            minutes=access.LOCK_MINUTES
                        )
                        user.failed_logins = 0
                    db.commit()
                hub.audit(name or None, None, "sign in failed", None, None, "", self, 403)
                raise bad
            if user is None:  # an external authenticator's new user
                try:
                    check_name("user", checked)
                except APIError:
                    raise bad from None
                user = orm.User(name=checked, display_name=checked)
                db.add(user)
            if user.disabled:
                raise APIError(
                    403, f"{user.name} is disabled: ask a hub admin.", "sign_in_disabled"
                )
            user.failed_logins, user.locked_until = 0, None
            user.last_login = orm.utcnow()
            db.commit()
            hub.forget_user(user.id)
            return user.id

    def caller_of_token(self, token: str) -> access.Caller:
        try:
            return self.hub.gate.from_token(token, self.request.remote_ip or "")
        except access.Refused as e:
            raise APIError(e.status, e.message, "token_refused") from None

    def start_session(self, token_hash: str) -> None:
        """A session from a token (signed in with an API token)."""
        self._start_session(f"t:{token_hash}")

    def start_user_session(self, user: Any) -> None:
        """A session of a user signed in with their password (ended by a new password)."""
        self._start_session(f"u:{user.id}:{user.session_version}")

    def _start_session(self, value: str) -> None:
        """The session cookie, once for each of :data:`SESSION_PATHS` (Tornado keeps one cookie
        per name, so the headers are written here)."""
        signed = self.create_signed_value(SESSION_COOKIE, value).decode()
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
            days=SESSION_DAYS
        )
        self._session_cookies(signed, httputil.format_timestamp(expires))

    # --- finding rows ---------------------------------------------------------------------------

    def default_action(self) -> str:
        """What a call does when its handler does not say: ``view`` for a read, ``change`` else."""
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    def find_project(self, name: str, action: Optional[str] = None) -> orm.Project:
        """The project, if the caller may do ``action`` on it (see :meth:`require`)."""
        project = self.visible_project(name)
        self.require(action or self.default_action(), project)
        return project

    def visible_project(self, name: str) -> orm.Project:
        """The project: a 401 for nobody, a 404 for a project the caller's user has no role in
        (as if it were not there); what the caller may do in it is :meth:`require`'s to say."""
        caller = self.caller
        if caller.anonymous:
            self.require("view")  # a 401 before anything is told
        project = self.db.query(orm.Project).filter_by(name=name).one_or_none()
        if project is None or caller.role(project.id) is None:
            raise APIError(
                404,
                f"There is no project {name!r}: create it with POST /api/v1/projects.",
                "project_missing",
            )
        return project

    def find_group(self, project: orm.Project, name: str) -> orm.Group:
        name = names.normal("group", name)
        for group in project.groups:
            if group.name == name:
                return group
        raise APIError(
            404,
            f"Project {project.name!r} has no group {name!r}: create it with "
            f"POST /api/v1/projects/{project.name}/groups.",
            "group_missing",
            project=project.name,
            name=name,
        )

    def find_service(
        self, project_name: str, name: str, action: Optional[str] = None
    ) -> orm.Service:
        """The service, if the caller may do ``action`` on it (see :meth:`require`)."""
        project = self.visible_project(project_name)
        for service in project.services:
            if service.name == name:
                self.require(action or self.default_action(), service=service)
                return service
        raise APIError(
            404,
            f"Project {project.name!r} has no service {name!r}: register it with "
            f"POST /api/v1/projects/{project.name}/services.",
        )

    def find_version(self, service: orm.Service, number: Any) -> orm.Version:
        n = parse_version_number(number)
        version = service.version(n)
        if version is None:
            have = ", ".join(str(v.number) for v in service.versions) or "none"
            raise APIError(
                404,
                f"{service.project.name}/{service.name} has no version {number}: "
                f"its versions are {have}.",
            )
        return version

    # --- who may ----------------------------------------------------------------------------------

    #: Who the request comes from (set in ``prepare``).
    caller: access.Caller = access.Caller()
    via_session = False

    def require(
        self, action: str, project: Any = None, service: Any = None, what: str = ""
    ) -> None:
        """A 401, 403 or 404 unless the caller may do ``action`` (access.py) on the project or
        service; a project the caller may not see is a 404, as if it were not there."""
        caller = self.caller
        if service is not None:
            project = service.project
        project_id = project.id if project is not None else None
        service_id = service.id if service is not None else None
        if caller.may(action, project_id, service_id):
            return
        if caller.anonymous:
            raise APIError(
                401,
                "This needs a signed-in user or a token: send 'Authorization: token <token>'.",
                "sign_in_needed",
            )
        least, scope = access.ACTIONS[action]
        if project is not None and caller.role(project_id) is None:
            raise APIError(404, f"There is no project {project.name!r}.", "project_missing")
        doing = (
            what
            or {
                "admin": "This",
                "manage": "Managing members and deleting",
                "change": "Changing things",
                "inspect": "Reading logs, option values and the audit",
                "invoke": "Calling its services",
                "view": "Seeing it",
            }[action]
        )
        if scope not in caller.scopes:
            raise APIError(
                403,
                f"{doing} needs a token with the {scope!r} scope; this one has "
                f"{', '.join(sorted(caller.scopes)) or 'none'}.",
                "scope_missing",
                scope=scope,
            )
        if caller.limited() and not caller.reaches(project_id, service_id):
            raise APIError(
                403,
                "This token is limited to one "
                + ("service" if caller.service_id is not None else "project")
                + ": it cannot do this. Use a token that is not limited.",
                "token_limited",
            )
        if action == "admin" or project is None:
            raise APIError(403, f"{doing} needs a hub admin.", "admin_needed")
        role = caller.role(project_id)
        raise APIError(
            403,
            f"{doing} in project {project.name!r} needs the {least} role; you are "
            f"{'a ' + role if role else 'not a member'}: ask an owner of the project.",
            "role_needed",
            role=least,
            project=project.name,
        )

    def require_full(self, doing: str) -> None:
        """A 403 unless the caller acts with all of its user's say: a page session, or a token
        with the ``write`` scope limited to no project or service (a user's own account, tokens)."""
        caller = self.caller
        if caller.limited() or "write" not in caller.scopes:
            raise APIError(
                403,
                f"{doing} needs a token with the 'write' scope that is not limited to one project "
                "or service (or the web page, signed in).",
                "scope_missing",
                scope="write",
            )

    def end_session(self) -> None:
        self._session_cookies("", "Thu, 01 Jan 1970 00:00:00 GMT", also_root=True)

    def _session_cookies(self, value: str, expires: str, also_root: bool = False) -> None:
        secure = "; Secure" if self.request.protocol == "https" else ""
        for path in (*SESSION_PATHS, *(["/"] if also_root else [])):  # "/": an older hub's
            self.add_header(
                "Set-Cookie",
                f"{SESSION_COOKIE}={value}; Expires={expires}; Path={path}; HttpOnly; "
                f"SameSite=Lax{secure}",
            )

    @property
    def db(self) -> Any:
        if not hasattr(self, "_db"):
            self._db = self.hub.session()
        return self._db

    def body_limit(self) -> int:
        """The largest body this request may have (a route may depend on the hub's settings)."""
        return self.max_body

    def prepare(self) -> Any:
        self.begin_body()

    def begin_body(self) -> None:
        """After the caller was checked: refuse a body over the limit before it is read
        (Content-Length), and get ready to take it."""
        self._chunks: list = []
        self._size = 0
        self._form: Optional[FormParser] = None
        self._body_error: Optional[APIError] = None
        if self.request.method not in BODY_METHODS or self.streams_body:
            return
        limit = self.body_limit()
        length = self.request.headers.get("Content-Length", "")
        if length.isascii() and length.isdigit() and int(length) > limit:
            raise self.too_large(limit)
        boundary = boundary_of(self.request.headers.get("Content-Type", ""))
        if boundary is not None and self.parse_forms:
            spool = Path(tempfile.mkdtemp(prefix="form-", dir=self.hub.data / "tmp"))
            self._form = FormParser(boundary, spool)

    def too_large(self, limit: int) -> APIError:
        return APIError(
            413,
            f"The body is over this route's limit of {human_size(limit)}: send less"
            + (" (large files go through the upload routes)." if limit < 64 << 20 else "."),
            "body_too_large",
            limit=human_size(limit),
        )

    def data_received(self, chunk: bytes) -> None:
        if self._finished or getattr(self, "_body_error", None) is not None:
            return  # refused already: the rest is read and dropped
        self._size += len(chunk)
        try:
            if self._size > self.body_limit():
                raise self.too_large(self.body_limit())
            if self._form is not None:
                self._form.feed(chunk)
            else:
                self._chunks.append(chunk)
        except FormError as e:
            self._body_error = APIError(400, f"The form could not be read: {e}", "form_bad")
        except APIError as e:
            self._body_error = e
        if self._body_error is not None:
            self._chunks = []
            self.send_error(
                self._body_error.status_code, exc_info=(APIError, self._body_error, None)
            )

    def body_ready(self) -> bool:
        """Put the body where Tornado's handlers find it; False when it was refused (answered)."""
        if self._finished:
            return False
        if getattr(self, "_body_done", False) or self.request.method not in BODY_METHODS:
            return True
        if self.streams_body:
            return True
        self._body_done = True
        request = self.request
        if self._form is not None:
            try:
                self._form.close()
            except FormError as e:
                raise APIError(400, f"The form could not be read: {e}", "form_bad") from None
            request.body = b""
            for name, values in self._form.arguments.items():
                request.body_arguments.setdefault(name, []).extend(values)
                request.arguments.setdefault(name, []).extend(values)
            for name, files in self._form.files.items():
                request.files.setdefault(name, []).extend(files)
        else:
            request.body = b"".join(self._chunks)
            self._chunks = []
            content_type = request.headers.get("Content-Type", "")
            if (
                request.body
                and self.parse_forms
                and not content_type.startswith("application/json")
            ):
                try:
                    httputil.parse_body_arguments(
                        request.headers.get("Content-Type", ""),
                        request.body,
                        request.body_arguments,
                        request.files,
                        request.headers,
                    )
                except httputil.HTTPInputError as e:  # a form without its boundary, say
                    raise APIError(400, f"The form could not be read: {e}.", "form_bad") from None
                for name, values in request.body_arguments.items():
                    request.arguments.setdefault(name, []).extend(values)
        self.body_received()
        return True

    def body_received(self) -> None:
        """Called once the body is in, before the method (pages check their XSRF token here)."""

    def allowed_methods(self) -> list:
        """The methods this route answers (for 405's ``Allow``)."""
        return [
            m
            for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
            if getattr(type(self), m.lower()) is not getattr(web.RequestHandler, m.lower())
        ]

    def finish(self, chunk: Any = None) -> Any:
        self._drop_form()  # before the answer leaves: a client that got it finds nothing left
        if not getattr(self, "_in_method", False) and not self._headers_written:
            # Answered in prepare(), before the request was read to its end (a redirect to the
            # sign-in page, a 401): Tornado closes such a connection, so the client must not send
            # another request on it.
            self.set_header("Connection", "close")
        return super().finish(chunk)

    def on_finish(self) -> None:
        if hasattr(self, "_db"):
            self._db.close()
        self._drop_form()
        if self.request.method in BODY_METHODS and not self.caller.anonymous and self.audited:
            self.write_audit()

    #: Whether a change through this route is written to the audit log.
    audited = True

    def write_audit(self) -> None:
        """The audit log's line for this change: the caller, the handler's name as the action, the
        project and service it was on (from the path), the path and the status."""
        words = re.sub(r"(APIHandler|Action|Page|Handler)$", "", type(self).__name__)
        action = f"{self.request.method} " + re.sub(r"(?<!^)([A-Z])", r" \1", words).lower()
        path = self.request.path
        parts = path.split("/")
        project = service = None
        if path.startswith(("/api/v1/projects/", "/projects/")):
            offset = 4 if path.startswith("/api/") else 2
            project = unquote(parts[offset]) if len(parts) > offset else None
            if len(parts) > offset + 2 and parts[offset + 1] == "services":
                service = unquote(parts[offset + 2])
        self.hub.audit(
            self.caller.name,
            self.caller.token_id,
            action,
            project,
            service,
            path,
            self,
            self.get_status(),
        )

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self._drop_form()

    def _drop_form(self) -> None:
        """Remove the files a form spooled (those the handler kept were moved away)."""
        form = getattr(self, "_form", None)
        if form is not None:
            self._form = None
            form.cleanup()
            shutil.rmtree(form.spool_dir, ignore_errors=True)


class APIHandler(HubHandler):
    """JSON in and out under ``/api/v1``; a token, or the web UI's signed-in session (with its XSRF
    header for a call that changes something), on every call."""

    #: Whether GET needs a caller too (every route but the API's root does).
    read_needs_token = True
    #: Methods that check who the caller is themselves (a token asked for with a password).
    anonymous_methods: tuple = ()

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")

    # --- authentication -------------------------------------------------------------------------

    def get_token(self) -> Optional[str]:
        auth = self.request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            return value.strip()
        return self.get_query_argument("token", None)

    def prepare(self) -> None:
        token = self.get_token()
        if token:
            self.caller = self.caller_of_token(token)
        else:
            self.caller = self.session_caller(check_xsrf=True)
        self.token_name, self.token_id = self.caller.name, self.caller.token_id
        needs = self.request.method not in ("GET", "HEAD", "OPTIONS") or self.read_needs_token
        if needs and self.caller.anonymous and self.request.method not in self.anonymous_methods:
            raise APIError(
                401,
                "This call needs a token: send 'Authorization: token <token>' (`algolink login` "
                "keeps one for the CLI and the notebook; make others on the hub's Tokens page).",
                "sign_in_needed",
            )
        self.begin_body()

    # --- JSON -----------------------------------------------------------------------------------

    def add_version(self, service: orm.Service, again: str, **fields: Any) -> orm.Version:
        """The service's next version (numbered after its newest), committed and handed to the
        publisher to prepare; a 409 that ends with ``again`` when another request took the number."""
        self.db.refresh(service)
        number = 1 + max([service.last_version or 0, *(v.number for v in service.versions)])
        version = orm.Version(service=service, number=number, error="", **fields)
        service.last_version = number
        self.db.add(version)
        try:
            self.db.commit()
        except IntegrityError:
            self.db.rollback()
            raise APIError(409, f"Another version was made at the same moment: {again}") from None
        self.hub.publisher.prepare(version.id)
        return version

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body))

    def json_body(self) -> dict:
        """The request's JSON object; an empty body is ``{}``."""
        raw = self.request.body
        if not raw or not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise APIError(400, f"The body is not valid JSON ({e}): send a JSON object.") from None
        except RecursionError:
            raise APIError(
                400, "The body's JSON is nested too deeply: send a flat object."
            ) from None
        if not isinstance(data, dict):
            raise APIError(400, 'The body must be a JSON object such as {"name": "demo"}.')
        return data

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if status_code == 401:
            self.set_header("WWW-Authenticate", access.CHALLENGE)
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, APIError):
            message = exc.message
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif status_code == 405:
            allowed = self.allowed_methods()
            self.set_header("Allow", ", ".join(allowed))
            message = (
                f"{self.request.method} is not allowed on {self.request.path}: use "
                f"{' or '.join(allowed) or 'another path'}."
            )
        elif status_code == 413:
            message = self.too_large(self.body_limit()).message
        elif status_code >= 500:
            message = "The hub failed to answer this request; its log says why."
        else:
            message = self._reason
        self.finish(json.dumps({"error": message}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, APIError):
            app_log.info(
                "%s %s: %d %s",
                self.request.method,
                redact(self.request.uri or ""),
                value.status_code,
                value.message,
            )
        else:
            super().log_exception(typ, value, tb)

    # --- models ---------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.request.protocol}://{self.request.host}{path}"

    def service_json(self, service: orm.Service) -> dict:
        running = self.hub.publisher.running(service.project.name, service.name)
        replicas = self.hub.publisher.replicas(service.project.name, service.name, running)
        return service_model(service, self.url(""), self.hub.serve_origin, running, replicas)

    def version_json(self, version: orm.Version) -> dict:
        service = version.service
        running = self.hub.publisher.running(service.project.name, service.name)
        replicas = self.hub.publisher.replicas(service.project.name, service.name, [version.number])
        return version_model(
            version,
            self.url(""),
            self.hub.serve_origin,
            running.get(version.number),
            replicas[version.number],
        )


class NotFoundHandler(APIHandler):
    """Any path no route matches: a JSON 404."""

    def prepare(self) -> None:
        raise APIError(
            404, f"There is no {self.request.path} on this hub: the API lives under /api/v1."
        )
