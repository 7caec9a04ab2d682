"""API tokens: list, create (the token is shown once), revoke."""

from __future__ import annotations

from .. import orm
from .base import APIHandler
from .common import APIError, check_name, isotime
from .models import token_model

ADMIN = "admin"


class TokenListAPIHandler(APIHandler):
    read_needs_token = True

    def get(self) -> None:
        tokens = self.db.query(orm.Token).filter(orm.Token.revoked_at.is_(None))
        self.write_json([token_model(t) for t in tokens.order_by(orm.Token.id)])

    def post(self) -> None:
        name = check_name("token", self.json_body().get("name"))
        if name == ADMIN:
            raise APIError(400, "The token name 'admin' is kept for the hub's admin token.")
        token, row = self.hub.create_token(self.db, name)
        model = token_model(row)
        model["token"] = token
        model["note"] = "Keep this token: the hub shows it only once."
        self.write_json(model, 201)


class TokenAPIHandler(APIHandler):
    read_needs_token = True

    def find_token(self, token_id: str) -> orm.Token:
        row = self.db.get(orm.Token, int(token_id)) if len(token_id) <= 18 else None
        if row is None or row.revoked_at is not None:
            raise APIError(404, f"There is no token {token_id}: GET /api/v1/tokens lists them.")
        return row

    def get(self, token_id: str) -> None:
        self.write_json(token_model(self.find_token(token_id)))

    def delete(self, token_id: str) -> None:
        row = self.find_token(token_id)
        if row.name == ADMIN:
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
