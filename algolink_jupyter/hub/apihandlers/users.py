"""Users, project members and the audit log.

- ``GET /api/v1/user``: who the caller is (name, admin, the token's scopes and limits, their roles).
- ``/api/v1/users`` (hub admins): ``GET`` the accounts; ``POST {"name", "display_name"?, "password"?,
  "admin"?}`` makes one (a password made up when none is given, answered once).
- ``/api/v1/users/{name}``: ``GET`` (the user or an admin); ``PATCH`` ``{"display_name"?,
  "password"?, "old_password"?}`` by the user (the old password needed), ``{"admin"?, "disabled"?,
  ...}`` by an admin (a disabled user's sessions and tokens stop working at once); ``DELETE`` (an
  admin; never the last admin).
- ``/api/v1/projects/{project}/members[/{user}]``: ``GET`` (viewers); ``POST {"user", "role"}``,
  ``PATCH {"role"}``, ``DELETE`` (owners; a project keeps at least one owner).
- ``GET /api/v1/audit`` (admins) and ``GET .../services/{service}/audit`` (developers): who changed
  what, when, from where; newest first, ``?limit=N`` (100).
"""

from __future__ import annotations

from typing import Any, Optional

from sqlalchemy.exc import IntegrityError

from .. import access, orm
from .base import APIHandler
from .common import APIError, check_name, isotime


def user_model(user: orm.User, detail: bool = False) -> dict:
    model = {
        "name": user.name,
        "display_name": user.display_name or user.name,
        "admin": user.admin,
        "disabled": user.disabled,
        "created": isotime(user.created),
        "last_login": isotime(user.last_login),
    }
    if detail:
        model["projects"] = {m.project.name: m.role for m in user.memberships}
        model["locked"] = user.locked_until is not None and user.locked_until > orm.utcnow()
    return model


def audit_model(entry: orm.AuditEntry) -> dict:
    return {
        "at": isotime(entry.at),
        "user": entry.user,
        "token_id": entry.token_id,
        "action": entry.action,
        "project": entry.project,
        "service": entry.service,
        "target": entry.target,
        "remote_ip": entry.remote_ip,
        "status": entry.status,
    }


def check_role(value: Any) -> str:
    if value not in access.ROLES:
        raise APIError(
            400,
            f"The role must be one of {', '.join(access.ROLES)}, got {value!r}.",
            "role_bad",
            value=str(value),
        )
    return value


class WhoAmIAPIHandler(APIHandler):
    def get(self) -> None:
        caller = self.caller
        user = self.db.get(orm.User, caller.user_id)
        model = user_model(user, detail=True)
        model["scopes"] = sorted(caller.scopes)
        # What the caller may do where (the notebook and the sidebar show only that).
        model["may"] = {
            "create_projects": "write" in caller.scopes and not caller.limited(),
            "admin": caller.may("admin"),
        }
        token = self.db.get(orm.Token, caller.token_id) if caller.token_id else None
        model["token"] = (
            None
            if token is None
            else {
                "id": token.id,
                "name": token.name,
                "scopes": sorted(caller.scopes),
                "project": token.project_id and self.db.get(orm.Project, token.project_id).name,
                "service": token.service_id and service_name(self.db, token.service_id),
                "expires_at": isotime(token.expires_at),
            }
        )
        self.write_json(model)


def service_name(db: Any, service_id: int) -> Optional[str]:
    service = db.get(orm.Service, service_id)
    return f"{service.project.name}/{service.name}" if service is not None else None


class UserListAPIHandler(APIHandler):
    def get(self) -> None:
        self.require("admin")
        users = self.db.query(orm.User).order_by(orm.User.name)
        self.write_json([user_model(u) for u in users])

    def post(self) -> None:
        self.require("admin")
        data = self.json_body()
        name = check_name("user", data.get("name"))
        password = data.get("password")
        made_up = password in (None, "")
        if made_up:
            password = access.new_password()
        problem = access.password_problem(password)
        if problem:
            raise APIError(400, problem, "password_bad")
        display = data.get("display_name") or ""
        if not isinstance(display, str) or len(display) > 128:
            raise APIError(400, "display_name must be text of at most 128 characters.")
        admin = data.get("admin", False)
        if not isinstance(admin, bool):
            raise APIError(400, "admin must be true or false.")
        user = orm.User(
            name=name,
            display_name=display,
            password_hash=access.hash_password(password),
            admin=admin,
        )
        self.db.add(user)
        try:
            self.db.commit()
        except IntegrityError:
            self.db.rollback()
            raise APIError(
                409,
                f"There is a user {name!r} already: choose another name.",
                "user_exists",
                name=name,
            ) from None
        model = user_model(user, detail=True)
        if made_up:
            model["password"] = password
            model["note"] = "Give this password to the user: the hub shows it only once."
        self.write_json(model, 201)


class UserAPIHandler(APIHandler):
    def find_user(self, name: str) -> orm.User:
        user = self.db.query(orm.User).filter_by(name=name).one_or_none()
        if user is None or (user.id != self.caller.user_id and not self.caller.may("admin")):
            raise APIError(404, f"There is no user {name!r}.", "user_missing", name=name)
        return user

    def get(self, name: str) -> None:
        self.write_json(user_model(self.find_user(name), detail=True))

    def patch(self, name: str) -> None:
        user = self.find_user(name)
        self.require_full("Changing an account")
        data = self.json_body()
        admin = self.caller.may("admin")
        allowed = {"display_name", "password", "old_password"}
        if admin:
            allowed |= {"admin", "disabled"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise APIError(
                403 if set(unknown) <= {"admin", "disabled"} else 400,
                f"Cannot change {', '.join(unknown)}"
                + (": only a hub admin can." if set(unknown) <= {"admin", "disabled"} else "."),
            )
        if "display_name" in data:
            display = data["display_name"]
            if not isinstance(display, str) or len(display) > 128:
                raise APIError(400, "display_name must be text of at most 128 characters.")
            user.display_name = display
        if "password" in data:
            own = user.id == self.caller.user_id and user.password_hash is not None
            if own and not access.verify_password(
                data.get("old_password") or "", user.password_hash
            ):
                raise APIError(
                    403,
                    "The old password is wrong: send old_password with the new password.",
                    "old_password_bad",
                )
            problem = access.password_problem(data["password"])
            if problem:
                raise APIError(400, problem, "password_bad")
            user.password_hash = access.hash_password(data["password"])
            user.session_version += 1
            user.failed_logins, user.locked_until = 0, None
        for flag in ("admin", "disabled"):
            if flag in data:
                if not isinstance(data[flag], bool):
                    raise APIError(400, f"{flag} must be true or false.")
                if user.id == self.caller.user_id and data[flag] != getattr(user, flag):
                    raise APIError(
                        409, f"You cannot change your own {flag} flag: ask another hub admin."
                    )
                setattr(user, flag, data[flag])
                if flag == "disabled" and data[flag]:
                    user.session_version += 1
        self.db.commit()
        self.hub.forget_user(user.id)
        if "password" in data and user.id == self.caller.user_id and self.via_session:
            self.start_user_session(user)  # this browser stays signed in; the others are not
        self.write_json(user_model(user, detail=True))

    def delete(self, name: str) -> None:
        self.require("admin")
        user = self.find_user(name)
        if user.id == self.caller.user_id:
            raise APIError(409, "You cannot delete yourself: ask another hub admin.")
        self.db.delete(user)
        self.db.commit()
        self.hub.forget_user(user.id)
        self.write_json({"deleted": name})


class MemberListAPIHandler(APIHandler):
    def get(self, project_name: str) -> None:
        project = self.find_project(project_name)
        self.write_json(
            [
                {
                    "user": m.user.name,
                    "display_name": m.user.display_name or m.user.name,
                    "role": m.role,
                }
                for m in project.members
            ]
        )

    def post(self, project_name: str) -> None:
        project = self.find_project(project_name, "manage")
        data = self.json_body()
        role = check_role(data.get("role"))
        user = self.db.query(orm.User).filter_by(name=str(data.get("user") or "")).one_or_none()
        if user is None:
            raise APIError(
                404,
                f"There is no user {data.get('user')!r}: a hub admin adds users first.",
                "user_missing",
                name=str(data.get("user")),
            )
        existing = next((m for m in project.members if m.user_id == user.id), None)
        if existing is not None:
            raise APIError(
                409,
                f"{user.name} is a {existing.role} of {project.name} already: change the role with "
                f"PATCH /api/v1/projects/{project.name}/members/{user.name}.",
                "member_exists",
                user=user.name,
                role=existing.role,
                project=project.name,
            )
        self.db.add(orm.Membership(project=project, user=user, role=role))
        self.db.commit()
        self.hub.forget_user(user.id)
        self.write_json({"user": user.name, "role": role}, 201)


class MemberAPIHandler(APIHandler):
    def member(self, project: orm.Project, name: str) -> orm.Membership:
        found = next((m for m in project.members if m.user.name == name), None)
        if found is None:
            raise APIError(404, f"{name} is not a member of {project.name}.")
        return found

    def keeps_an_owner(self, project: orm.Project, leaving: orm.Membership) -> None:
        owners = [m for m in project.members if m.role == "owner" and m is not leaving]
        if leaving.role == "owner" and not owners:
            raise APIError(
                409,
                f"{leaving.user.name} is the last owner of {project.name}: make someone else an "
                "owner first.",
                "last_owner",
                user=leaving.user.name,
                project=project.name,
            )

    def patch(self, project_name: str, name: str) -> None:
        project = self.find_project(project_name, "manage")
        member = self.member(project, name)
        role = check_role(self.json_body().get("role"))
        if role != "owner":
            self.keeps_an_owner(project, member)
        member.role = role
        self.db.commit()
        self.hub.forget_user(member.user_id)
        self.write_json({"user": name, "role": role})

    def delete(self, project_name: str, name: str) -> None:
        project = self.find_project(project_name, "manage")
        member = self.member(project, name)
        self.keeps_an_owner(project, member)
        user_id = member.user_id
        self.db.delete(member)
        self.db.commit()
        self.hub.forget_user(user_id)
        self.write_json({"removed": name, "project": project_name})


class AuditAPIHandler(APIHandler):
    def get(self, project_name: Optional[str] = None, name: Optional[str] = None) -> None:
        query = self.db.query(orm.AuditEntry)
        if project_name is None:
            self.require("admin")
        else:
            service = self.find_service(project_name, name, "inspect")
            query = query.filter_by(project=service.project.name, service=service.name)
        try:
            limit = max(1, min(1000, int(self.get_query_argument("limit", "100"))))
        except ValueError:
            raise APIError(400, "limit must be a whole number from 1 to 1000.") from None
        entries = query.order_by(orm.AuditEntry.id.desc()).limit(limit)
        self.write_json([audit_model(e) for e in entries])


default_handlers = [
    (r"/api/v1/user", WhoAmIAPIHandler),
    (r"/api/v1/users", UserListAPIHandler),
    (r"/api/v1/users/([^/]+)", UserAPIHandler),
    (r"/api/v1/projects/([^/]+)/members", MemberListAPIHandler),
    (r"/api/v1/projects/([^/]+)/members/([^/]+)", MemberAPIHandler),
    (r"/api/v1/audit", AuditAPIHandler),
    (r"/api/v1/projects/([^/]+)/services/([^/]+)/audit", AuditAPIHandler),
]
