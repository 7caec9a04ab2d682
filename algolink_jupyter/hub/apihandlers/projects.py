"""Projects: ``/api/v1/projects`` and ``/api/v1/projects/{project}``."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from .. import orm
from .base import APIHandler
from .common import APIError, check_name, check_version_string
from .models import project_model


class ProjectListAPIHandler(APIHandler):
    def get(self) -> None:
        """The projects the caller may see, each with the caller's ``role`` in it."""
        caller = self.caller
        if "read" not in caller.scopes:
            self.require("view")  # a 403 that names the missing scope
        projects = self.db.query(orm.Project).order_by(orm.Project.name)
        self.write_json(
            [
                {**project_model(p), "role": caller.role(p.id)}
                for p in projects
                if caller.may("view", p.id, caller.service_id)
            ]
        )

    def post(self) -> None:
        """A new project, owned by the caller (anyone signed in with the write scope)."""
        caller = self.caller
        if "write" not in caller.scopes or caller.limited():
            raise APIError(
                403,
                "Creating a project needs a token with the 'write' scope that is not limited to "
                "one project or service.",
                "scope_missing",
                scope="write",
            )
        data = self.json_body()
        name = check_name("project", data.get("name"))
        kind = data.get("type") or "model"
        if not isinstance(kind, str) or len(kind) > 64:
            raise APIError(400, "The project type must be text of at most 64 characters.")
        description = data.get("description") or ""
        if not isinstance(description, str):
            raise APIError(400, "The project description must be text.")
        version = check_version_string(data.get("version") or "1.0")
        project = orm.Project(name=name, type=kind, version=version, description=description)
        self.db.add(project)
        self.db.add(orm.Membership(project=project, user_id=caller.user_id, role="owner"))
        try:
            self.db.commit()
        except IntegrityError:
            self.db.rollback()
            raise APIError(
                409, f"A project named {name!r} already exists: choose another name."
            ) from None
        self.hub.forget_user(caller.user_id)
        self.write_json({**project_model(project, detail=True), "role": "owner"}, 201)


class ProjectAPIHandler(APIHandler):
    def get(self, name: str) -> None:
        project = self.find_project(name)
        caller = self.caller
        model = project_model(project, detail=True)
        model["services"] = (
            [
                s
                for s, row in zip(model["services"], project.services)
                if caller.reaches(project.id, row.id)
            ]
            if caller.service_id is not None
            else model["services"]
        )
        model["role"] = caller.role(project.id)
        self.write_json(model)

    async def delete(self, name: str) -> None:
        """Remove the project with its groups and services (each stopped and removed as
        ``DELETE .../services/{service}`` does): its owners and hub admins."""
        project = self.find_project(name, "manage")
        project_id = project.id
        self.db.close()
        del self._db
        services: list = []
        while True:  # a service registered meanwhile goes too
            with self.hub.session() as db:
                project = db.get(orm.Project, project_id)
                if project is None:
                    break
                left = [(s.id, s.name) for s in project.services]
                if not left:
                    db.delete(project)
                    db.commit()
                    break
            for service_id, service_name in left:
                await self.hub.publisher.delete_service(service_id)
                services.append(service_name)
        self.write_json({"deleted": name, "services": services})


default_handlers = [
    (r"/api/v1/projects", ProjectListAPIHandler),
    (r"/api/v1/projects/([^/]+)", ProjectAPIHandler),
]
