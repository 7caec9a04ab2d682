"""Who may do what: users' passwords, roles in projects, token scopes, and the check every call makes.

A caller is a user (signed in on the pages, or through one of their tokens) or nobody. What a caller may
do on a project is what its **role** there allows, narrowed by the **scopes** of the token it came with
(a session has every scope of its user):

| action   | who (role in the project)      | token scope | what                                             |
|----------|--------------------------------|-------------|--------------------------------------------------|
| view     | viewer, developer, owner       | read        | the project, its services' cards, versions, aliases |
| invoke   | viewer, developer, owner       | invoke      | ``/serve`` of a service that is not public, try-it |
| inspect  | developer, owner               | read        | build and run logs, setup option values, the audit |
| change   | developer, owner               | write       | register, new versions, publish, offline, options, aliases, delete a version |
| manage   | owner                          | manage      | members, delete a service, a group or the project |
| admin    | (a hub admin)                  | admin       | users, every project, registering a folder of the hub's machine |
| metrics  | viewer, developer, owner       | metrics     | ``GET /metrics``: the figures of the projects' services (a hub admin: all) |

A hub admin has every role in every project. Anyone signed in may create a project (and owns it). A
token may be limited to one project or one service (nothing else exists for it) and may expire.
Anonymous callers may only invoke public services (and see their public page).

Passwords are hashed with scrypt (the standard library's ``hashlib.scrypt``: memory-hard, 2^15 x 8 x 1,
a 16-byte salt), stored as ``scrypt$N$r$p$salt$hash``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from . import orm

ROLES = ("viewer", "developer", "owner")
SCOPES = ("read", "invoke", "write", "manage", "admin", "metrics")
#: The actions of the module's table: the least role each needs, and the token scope.
ACTIONS = {
    "view": ("viewer", "read"),
    "invoke": ("viewer", "invoke"),
    "inspect": ("developer", "read"),
    "change": ("developer", "write"),
    "manage": ("owner", "manage"),
    "admin": (None, "admin"),
    "metrics": ("viewer", "metrics"),
}
RANK = {role: i for i, role in enumerate(ROLES, 1)}

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSWORD = 8
#: Failed sign-ins in a row before an account is locked, and for how long.
LOCK_AFTER = 5
LOCK_MINUTES = 15


# --- passwords -------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: Optional[str]) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant time in the digest)."""
    if not stored or not isinstance(password, str):
        # The same work as a real check, so that a missing account is not told by timing.
        _scrypt(password or "", b"0" * 16, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, maxmem=2**26, dklen=32
    )


def password_problem(password: object) -> Optional[str]:
    """What is wrong with a new password, or None."""
    if not isinstance(password, str) or not password:
        return "The password is missing: give one of at least 8 characters."
    if len(password) < MIN_PASSWORD:
        return f"The password is too short: give one of at least {MIN_PASSWORD} characters."
    if len(password) > 1024:
        return "The password is too long: give one of at most 1024 characters."
    return None


def new_password() -> str:
    """A password to print once: 16 characters from a 62-letter alphabet (about 95 bits)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


# --- callers ---------------------------------------------------------------------------------------


@dataclass
class Caller:
    """Who a request comes from: a user (with the token it used, if any), or nobody."""

    user_id: Optional[int] = None
    name: Optional[str] = None
    admin: bool = False
    #: The token used (None: a page session, or nobody) and what it is limited to.
    token_id: Optional[int] = None
    token_name: Optional[str] = None
    scopes: frozenset = frozenset(SCOPES)
    project_id: Optional[int] = None
    service_id: Optional[int] = None
    #: project id -> role, for this user (loaded once a request, see :func:`roles_of`).
    roles: dict = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return self.user_id is None

    def role(self, project_id: Optional[int]) -> Optional[str]:
        if self.anonymous:
            return None
        if self.admin:
            return "owner"
        return self.roles.get(project_id)

    def may(
        self, action: str, project_id: Optional[int] = None, service_id: Optional[int] = None
    ) -> bool:
        """Whether the caller may do ``action`` (see the module's table) on that project/service."""
        if self.anonymous:
            return False
        least, scope = ACTIONS[action]
        if scope not in self.scopes:
            return False
        if not self.reaches(project_id, service_id):
            return False
        if action == "admin":
            return self.admin
        role = self.role(project_id)
        return role is not None and RANK[role] >= RANK[least]

    def reaches(self, project_id: Optional[int], service_id: Optional[int] = None) -> bool:
        """Whether the token's limits (if any) let it near this project or service."""
        if self.project_id is not None and project_id != self.project_id:
            return False
        return self.service_id is None or service_id == self.service_id

    def limited(self) -> bool:
        return self.project_id is not None or self.service_id is not None


def token_scopes(value: object, admin: bool) -> frozenset:
    """A token's scopes from what was asked (None: all its owner has), or a ValueError saying why."""
    allowed = set(SCOPES) if admin else set(SCOPES) - {"admin"}
    if value is None:
        return frozenset(allowed)
    if isinstance(value, str):
        value = [s.strip() for s in value.split(",") if s.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise ValueError(
            f'scopes must be a list such as ["read", "invoke"]; the scopes are {", ".join(SCOPES)}.'
        )
    unknown = sorted(set(value) - set(SCOPES))
    if unknown:
        raise ValueError(
            f"Unknown scope(s) {', '.join(unknown)}: the scopes are {', '.join(SCOPES)}."
        )
    wider = sorted(set(value) - allowed)
    if wider:
        raise ValueError(
            f"A token cannot have more than its owner: {', '.join(wider)} needs a hub admin."
        )
    return frozenset(value)


# --- the gate: callers from tokens and sessions, cached ------------------------------------------


#: The challenge every 401 of the hub carries (RFC 9110, 11.6.1: a 401 names how to authenticate): a
#: token, sent as ``Authorization: token <token>`` or ``Authorization: Bearer <token>``.
CHALLENGE = 'Bearer realm="AlgoLink"'


class Refused(Exception):
    """A token or session that names nobody any more: its status and sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


#: Seconds a token's caller, or a user's roles, are kept in memory before the database is asked again
#: (a revoke, a disable or a role change forgets them at once; another hub process sees it after this).
CACHE_SECONDS = 30.0


class Gate:
    """Turns tokens and session cookies into :class:`Caller` s, with a small cache (a ``/serve``
    request costs no database query once its token was seen)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._tokens: dict[str, tuple[Caller, float]] = {}
        self._roles: dict[int, tuple[dict, float]] = {}
        self._users: dict[int, tuple[tuple, float]] = {}

    # tokens

    def from_token(self, token: str, ip: str = "") -> Caller:
        """The caller a token stands for, or :class:`Refused`."""
        return self.from_hash(orm.hash_token(token), ip)

    def from_hash(self, hashed: str, ip: str = "") -> Caller:
        """The caller of the token whose SHA-256 is ``hashed`` (a session signed in with it)."""
        now = time.monotonic()
        cached = self._tokens.get(hashed)
        if cached is None or now - cached[1] > CACHE_SECONDS:
            with self.session() as db:
                row = db.query(orm.Token).filter_by(hashed=hashed).one_or_none()
                if row is None or row.revoked_at is not None:
                    raise Refused(403, "The token is not valid: it is unknown or was revoked.")
                user = row.user
                if user is None:
                    raise Refused(403, "The token belongs to no user: make a new one.")
                scopes = token_scopes(row.scopes, user.admin) if row.scopes else None
                base = Caller(
                    user_id=user.id,
                    name=user.name,
                    admin=user.admin,
                    token_id=row.id,
                    token_name=row.name,
                    scopes=scopes
                    if scopes is not None
                    else frozenset(SCOPES if user.admin else set(SCOPES) - {"admin"}),
                    project_id=row.project_id,
                    service_id=row.service_id,
                )
                expires = row.expires_at
                # The same read fills the user's caches (one database session, not three).
                self._users[user.id] = (
                    (user.name, user.admin, user.session_version, user.disabled),
                    now,
                )
                self._roles[user.id] = (
                    {m.project_id: m.role for m in user.memberships},
                    now,
                )
                # Last used: to the minute (a write only when it says something new).
                stamp = orm.utcnow()
                if (
                    row.last_used is None
                    or (stamp - row.last_used).total_seconds() >= 60
                    or (row.last_ip != (ip or None) and ip)
                ):
                    row.last_used, row.last_ip = stamp, (ip or None)
                    db.commit()
            cached = (base, now, expires)
            self._tokens[hashed] = cached  # type: ignore[assignment]
        base, _, expires = cached  # type: ignore[misc]
        if expires is not None and orm.utcnow() >= expires:
            raise Refused(
                401,
                f"The token expired at {expires.isoformat(timespec='seconds')}Z: make a new one.",
            )
        self.check_user(base.user_id)
        caller = Caller(**{**base.__dict__, "roles": self.roles_of(base.user_id)})
        return caller

    def forget_token(self, hashed: str) -> None:
        self._tokens.pop(hashed, None)

    # users

    def check_user(self, user_id: int, session_version: Optional[int] = None) -> tuple:
        """``(name, admin, session_version)`` of an active user, or :class:`Refused`."""
        now = time.monotonic()
        cached = self._users.get(user_id)
        if cached is None or now - cached[1] > CACHE_SECONDS:
            with self.session() as db:
                user = db.get(orm.User, user_id)
                found = (
                    None
                    if user is None
                    else (user.name, user.admin, user.session_version, user.disabled)
                )
            cached = (found, now)
            self._users[user_id] = cached
        found = cached[0]
        if found is None:
            raise Refused(403, "The user is gone: sign in again.")
        if found[3]:
            raise Refused(403, f"The user {found[0]} is disabled: ask a hub admin.")
        if session_version is not None and session_version != found[2]:
            raise Refused(401, "The session ended (the password changed): sign in again.")
        return found

    def from_user(self, user_id: int, session_version: Optional[int] = None) -> Caller:
        name, admin, _version, _disabled = self.check_user(user_id, session_version)
        scopes = frozenset(SCOPES if admin else set(SCOPES) - {"admin"})
        return Caller(
            user_id=user_id, name=name, admin=admin, scopes=scopes, roles=self.roles_of(user_id)
        )

    def roles_of(self, user_id: int) -> dict:
        """project id -> role of a user (cached)."""
        now = time.monotonic()
        cached = self._roles.get(user_id)
        if cached is None or now - cached[1] > CACHE_SECONDS:
            with self.session() as db:
                roles = {
                    m.project_id: m.role
                    for m in db.query(orm.Membership).filter_by(user_id=user_id)
                }
            cached = (roles, now)
            self._roles[user_id] = cached
        return cached[0]

    def forget_user(self, user_id: Optional[int] = None) -> None:
        """A user's roles, flags or tokens changed (None: anybody's)."""
        if user_id is None:
            self._roles.clear()
            self._users.clear()
            self._tokens.clear()
            return
        self._roles.pop(user_id, None)
        self._users.pop(user_id, None)
        for hashed, cached in list(self._tokens.items()):
            if cached[0].user_id == user_id:
                self._tokens.pop(hashed, None)


# --- signing in ------------------------------------------------------------------------------------


class PasswordAuthenticator:
    """Signs users in with the name and password the hub keeps (the default).

    The hook for another way in (``algolink hub --authenticator module:Class``, as JupyterHub's
    authenticators): a class made with the hub (``Class(hub)``) with

    - ``authenticate(handler, name, password)`` -> the user's name, or None (may be ``async``): the
      sign-in form's check; a name the hub has no user for is made a user (not an admin);
    - optionally ``request_user(handler)`` -> a user's name, or None: asked on every page and API
      request that carries no session or token (a reverse proxy's trusted header, say).
    """

    def __init__(self, hub: Any) -> None:
        self.hub = hub

    def authenticate(self, handler: Any, name: str, password: str) -> Optional[str]:
        with self.hub.session() as db:
            user = db.query(orm.User).filter_by(name=name).one_or_none()
            stored = user.password_hash if user is not None else None
        return name if verify_password(password, stored) else None


def load_authenticator(spec: Optional[str], hub: Any) -> Any:
    """``module:Class`` made with the hub, or :class:`PasswordAuthenticator`."""
    if not spec:
        return PasswordAuthenticator(hub)
    import importlib

    module, _, name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name or "Authenticator")
    except (ImportError, AttributeError) as e:
        raise ValueError(f"--authenticator {spec}: cannot load it ({e}).") from None
    return cls(hub)


class SignInLimiter:
    """At most ``per_minute`` failed sign-ins a minute from one address; then every attempt from it
    is refused before any password is checked (scrypt costs the hub tens of milliseconds each)."""

    def __init__(self, per_minute: int = 20) -> None:
        self.per_minute = per_minute
        self._failed: dict[str, list] = {}

    def _recent(self, address: str, now: float) -> list:
        return [t for t in self._failed.get(address, []) if now - t < 60]

    def allow(self, address: str) -> bool:
        """Whether a sign-in from ``address`` may be tried now."""
        return len(self._recent(address, time.monotonic())) < self.per_minute

    def failed(self, address: str) -> None:
        """Count a failed sign-in from ``address``."""
        now = time.monotonic()
        recent = self._recent(address, now)
        recent.append(now)
        self._failed[address] = recent
        if len(self._failed) > 10_000:  # forget the quiet ones
            self._failed = {a: v for a, v in self._failed.items() if v and now - v[-1] < 60}
