"""API tokens: a user's own (a hub admin may see and revoke anyone's).

``POST /api/v1/tokens`` ``{"name", "scopes"?, "project"?, "service"?, "expires_in"?}``: a token of
the caller's user, shown once. Without a token, ``"user"`` and ``"password"`` in the body sign the
user in for this call (``algolink login``), with the sign-in page's lock-out and throttle. ``scopes`` (a list of read, invoke, write, manage, admin; default: all
its user has) can only narrow what the user may do; ``project`` ("P") or ``service`` ("P/S") limits it
to that one (nothing else exists for it); ``expires_in`` is seconds (default: never). An invoke-only
token for one service: ``{"name": "app", "scopes": ["invoke"], "service": "demo/digits"}``.
"""

from __future__ import annotations

import datetime
from typing import Any, Optional

from .. import access, orm
from .base import APIHandler
from .common import APIError, check_name, isotime
from .models import token_model

ADMIN = "admin"
MAX_EXPIRY = 10 * 365 * 86400


class TokenListAPIHandler(APIHandler):
    anonymous_methods = ("POST",)

    def get(self) -> None:
        """The caller's tokens (a hub admin: ``?all=1``, everyone's)."""
        tokens = self.db.query(orm.Token).filter(orm.Token.revoked_at.is_(None))
        everyone = self.get_query_argument("all", "") in ("1", "true") and self.caller.may("admin")
        if not everyone:
            tokens = tokens.filter(orm.Token.user_id == self.caller.user_id)
        self.write_json([token_model(t) for t in tokens.order_by(orm.Token.id)])

    async def post(self) -> None:
        data = self.json_body()
        if self.caller.anonymous:  # a token asked for with a user's name and password
            if not data.get("user") or not isinstance(data.get("password"), str):
                raise APIError(
                    401,
                    "This call needs a token, or a user's name and password: send "
                    '{"name": ..., "user": ..., "password": ...} (or run `algolink login`).',
                    "sign_in_needed",
                )
            user_id = await self.check_password(str(data["user"]), data["password"])
            self.caller = self.hub.gate.from_user(user_id)
            self.token_name = self.caller.name
        name = check_name("token", data.get("name"))
        if name == ADMIN:
            raise APIError(400, "The token name 'admin' is kept for the hub's admin token.")
        fields = self.limits(data)
        token, row = self.hub.create_token(self.db, name, self.caller.user_id, **fields)
        model = token_model(row)
        model["token"] = token
        model["note"] = "Keep this token: the hub shows it only once."
        self.write_json(model, 201)

    def limits(self, data: dict) -> dict:
        """``scopes``, ``project_id``, ``service_id`` and ``expires_at`` of a new token, each no wider
        than the caller's own (a token cannot make a wider one)."""
        caller = self.caller
        try:
            scopes = access.token_scopes(data.get("scopes"), caller.admin)
        except ValueError as e:
            raise APIError(400, str(e), "scopes_bad") from None
        wider = sorted(scopes - caller.scopes)
        if wider:
            raise APIError(
                403,
                f"This token has no {', '.join(wider)} scope: a token cannot make a wider one.",
                "scope_missing",
                scope=", ".join(wider),
            )
        project_id, service_id = caller.project_id, caller.service_id
        if data.get("service"):
            project_name, _, service_name = str(data["service"]).partition("/")
            service = self.find_service(project_name, service_name, "view")
            project_id, service_id = service.project_id, service.id
        elif data.get("project"):
            project = self.find_project(str(data["project"]), "view")
            if caller.service_id is not None:
                raise APIError(
                    403, "This token is limited to one service: so are the ones it makes."
                )
            project_id = project.id
        expires_at = self.expiry(data.get("expires_in"))
        return {
            "scopes": None if data.get("scopes") is None else sorted(scopes),
            "project_id": project_id,
            "service_id": service_id,
            "expires_at": expires_at,
        }

    def expiry(self, value: Any) -> Optional[datetime.datetime]:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_EXPIRY:
            raise APIError(
                400,
                f"expires_in is whole seconds from 1 to {MAX_EXPIRY} (ten years), got {value!r}.",
                "expiry_bad",
            )
        return orm.utcnow() + datetime.timedelta(seconds=value)


class TokenAPIHandler(APIHandler):
    def find_token(self, token_id: str) -> orm.Token:
        row = self.db.get(orm.Token, int(token_id)) if len(token_id) <= 18 else None
        mine = row is not None and (row.user_id == self.caller.user_id or self.caller.may("admin"))
        if row is None or row.revoked_at is not None or not mine:
            raise APIError(404, f"There is no token {token_id}: GET /api/v1/tokens lists them.")
        return row

    def get(self, token_id: str) -> None:
        self.write_json(token_model(self.find_token(token_id)))

    def delete(self, token_id: str) -> None:
        row = self.find_token(token_id)
        if row.id != self.caller.token_id:  # any token may revoke itself (algolink logout)
            self.require_full("Revoking another token")
        if row.name == ADMIN and row.id == self.hub.admin_token_id:
            raise APIError(
                400,
                "The admin token cannot be revoked through the API: delete the admin_token file in "
                "the hub's data folder and restart the hub to replace it.",
            )
        row.revoked_at = orm.utcnow()
        self.db.commit()
        self.hub.forget_token(row.hashed)
        self.write_json({"id": row.id, "name": row.name, "revoked": isotime(row.revoked_at)})


default_handlers = [
    (r"/api/v1/tokens", TokenListAPIHandler),
    (r"/api/v1/tokens/(\d+)", TokenAPIHandler),
]
