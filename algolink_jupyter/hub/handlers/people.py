"""The pages of people: the users (hub admins), the signed-in user's account, and a project's
members (its owners).

- 用户 (``/users``): the accounts with their flags and last sign-in; a new user (a password made up
  when none is given, shown once); disable or enable (a disabled user's sessions and tokens stop at
  once), a new password (made up, shown once), delete (the name typed again).
- 账户 (``/account``): the display name and the password (the old one asked; every other session of
  the user ends).
- 成员 (``/projects/{project}/members``): add a user with a role, change a role, remove (a project
  keeps one owner at least); the project page lists them.

Every change goes through the API's own handlers, so the rules are the same; refusals come back on
the page in its language.
"""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import quote

from .. import access, orm
from ..apihandlers.common import APIError
from ..apihandlers.users import (
    MemberAPIHandler,
    MemberListAPIHandler,
    UserAPIHandler,
    UserListAPIHandler,
    user_model,
)
from .pages import PageHandler, ProjectPage


class UsersPage(PageHandler, UserListAPIHandler):
    def get(  # type: ignore[override]
        self, error: Optional[str] = None, created: Optional[dict] = None
    ) -> None:
        self.require("admin", what="The users page")
        users = self.db.query(orm.User).order_by(orm.User.name).all()
        self.render(
            "users.html",
            users=[user_model(u, detail=True) for u in users],
            error=error,
            created=created,
        )

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.get(created=body if "password" in body else None)

    def post(self) -> None:  # type: ignore[override]
        body = {
            "name": self.get_body_argument("name", "").strip(),
            "display_name": self.get_body_argument("display_name", "").strip(),
            "password": self.get_body_argument("password", ""),
            "admin": self.get_body_argument("admin", "") == "true",
        }
        self.request.body = access_json(body)
        try:
            UserListAPIHandler.post(self)
        except APIError as e:
            self.db.rollback()
            self.set_status(e.status_code)
            self.get(error=self.error_text(e))


def access_json(body: dict) -> bytes:
    import json

    return json.dumps(body).encode()


class UserChangeAction(PageHandler, UserAPIHandler):
    """``/users/{name}/{disable,enable,password,delete}`` from the users page."""

    def post(self, name: str, what: str) -> None:  # type: ignore[override]
        self.made_up: Optional[str] = None
        try:
            self.require("admin", what="Changing another user")
            if what == "delete":
                if self.get_body_argument("confirm", "") != name:
                    raise APIError(
                        400, self.t("Nothing was deleted: type {name} to confirm.", name=name)
                    )
                UserAPIHandler.delete(self, name)
                return
            body: dict = {}
            if what in ("disable", "enable"):
                body["disabled"] = what == "disable"
            else:
                self.made_up = access.new_password()
                body["password"] = self.made_up
            self.request.body = access_json(body)
            UserAPIHandler.patch(self, name)
        except APIError as e:
            self.db.rollback()
            self.set_status(e.status_code)
            UsersPage.get(self, error=self.error_text(e))  # type: ignore[arg-type]

    def write_json(self, body: Any, status: int = 200) -> None:
        if self.made_up:  # shown once, on this answer only
            created = {"name": self.path_args[0], "password": self.made_up}
            UsersPage.get(self, created=created)  # type: ignore[arg-type]
        else:
            self.redirect("/users")

    def start_user_session(self, user: Any) -> None:
        pass  # an admin setting someone's password keeps their own session


class AccountPage(PageHandler, UserAPIHandler):
    def get(  # type: ignore[override]
        self, error: Optional[str] = None, notice: Optional[str] = None
    ) -> None:
        user = self.db.get(orm.User, self.caller.user_id)
        self.render(
            "account.html", account=user_model(user, detail=True), error=error, notice=notice
        )

    def post(self) -> None:  # type: ignore[override]
        body: dict = {}
        display = self.get_body_argument("display_name", None)
        if display is not None:
            body["display_name"] = display.strip()
        new = self.get_body_argument("password", "")
        if new:
            if new != self.get_body_argument("password2", ""):
                self.set_status(400)
                return self.get(
                    error=self.t("The two new passwords differ: type the same one twice.")
                )
            body["password"] = new
            body["old_password"] = self.get_body_argument("old_password", "")
        self.request.body = access_json(body)
        try:
            UserAPIHandler.patch(self, self.caller.name)
        except APIError as e:
            self.db.rollback()
            self.set_status(e.status_code)
            self.get(error=self.error_text(e))

    def write_json(self, body: Any, status: int = 200) -> None:
        self.get(notice=self.t("Saved."))


class MemberAction(PageHandler):
    """A change of a project's members from its page: back to the members, or the page again with
    the API's refusal in the page's language (and the API's status)."""

    def refused(self, project_name: str, error: APIError) -> None:
        self.db.rollback()
        self.set_status(error.status_code)
        ProjectPage.get(self, project_name, error=self.error_text(error))  # type: ignore[arg-type]

    def write_json(self, body: Any, status: int = 200) -> None:
        self.redirect(f"/projects/{quote(self.path_args[0], safe='')}#members")


class MemberAddAction(MemberAction, MemberListAPIHandler):
    def post(self, project_name: str) -> None:  # type: ignore[override]
        body = {
            "user": self.get_body_argument("user", "").strip(),
            "role": self.get_body_argument("role", ""),
        }
        self.request.body = access_json(body)
        try:
            MemberListAPIHandler.post(self, project_name)
        except APIError as e:
            self.refused(project_name, e)


class MemberChangeAction(MemberAction, MemberAPIHandler):
    def post(self, project_name: str, name: str) -> None:  # type: ignore[override]
        role = self.get_body_argument("role", "")
        try:
            if role == "remove":
                MemberAPIHandler.delete(self, project_name, name)
            else:
                self.request.body = access_json({"role": role})
                MemberAPIHandler.patch(self, project_name, name)
        except APIError as e:
            self.refused(project_name, e)


people_handlers = [
    (r"/users/?", UsersPage),
    (r"/users/([^/]+)/(disable|enable|password|delete)", UserChangeAction),
    (r"/account/?", AccountPage),
    (r"/projects/([^/]+)/members", MemberAddAction),
    (r"/projects/([^/]+)/members/([^/]+)", MemberChangeAction),
]
