"""Projects: ``/api/v1/projects`` and ``/api/v1/projects/{project}``."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from .. import orm
from .base import APIHandler
from .common import APIError, check_name, check_version_string
from .models import project_model


class ProjectListAPIHandler(APIHandler):
    def get(self) -> None:
        projects = self.db.query(orm.Project).order_by(orm.Project.name)
        self.write_json([project_model(p) for p in projects])

    def post(self) -> None:
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
        try:
            self.db.commit()
        except IntegrityError:
            self.db.rollback()
            raise APIError(
                409, f"A project named {name!r} already exists: choose another name."
            ) from None
        self.write_json(project_model(project, detail=True), 201)


class ProjectAPIHandler(APIHandler):
    def get(self, name: str) -> None:
        self.write_json(project_model(self.find_project(name), detail=True))

    async def delete(self, name: str) -> None:
        """Remove the project with its groups and services (each stopped and removed as
        ``DELETE .../services/{service}`` does)."""
        project = self.find_project(name)
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
