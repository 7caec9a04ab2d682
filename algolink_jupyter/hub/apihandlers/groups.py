"""Groups (分组) of a project: ``/api/v1/projects/{project}/groups[/{group}]``."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from .. import orm
from .base import APIHandler
from .common import APIError, check_name
from .models import group_model


def rename_group(handler: APIHandler, project: orm.Project, group: orm.Group, new: object) -> str:
    """Give ``group`` the name ``new`` (checked, NFC) and commit; a 409 when the project has a group
    of that name already. Shared by the API and the project page."""
    name = check_name("group", new)
    group.name = name
    try:
        handler.db.commit()
    except IntegrityError:
        handler.db.rollback()
        raise APIError(
            409,
            f"Project {project.name!r} already has a group {name!r}: choose another name.",
            "group_exists",
            project=project.name,
            name=name,
        ) from None
    return name


class GroupListAPIHandler(APIHandler):
    def get(self, project_name: str) -> None:
        project = self.find_project(project_name)
        self.write_json([group_model(g) for g in project.groups])

    def post(self, project_name: str) -> None:
        project = self.find_project(project_name)
        name = check_name("group", self.json_body().get("name"))
        group = orm.Group(project=project, name=name)
        self.db.add(group)
        try:
            self.db.commit()
        except IntegrityError:
            self.db.rollback()
            raise APIError(
                409,
                f"Project {project_name!r} already has a group {name!r}: choose another name.",
                "group_exists",
                project=project_name,
                name=name,
            ) from None
        self.write_json(group_model(group), 201)


class GroupAPIHandler(APIHandler):
    def get(self, project_name: str, name: str) -> None:
        self.write_json(group_model(self.find_group(self.find_project(project_name), name)))

    def patch(self, project_name: str, name: str) -> None:
        """Rename a group: ``{"name": "表格模型"}``; its services stay in it."""
        project = self.find_project(project_name, "change")
        group = self.find_group(project, name)
        group.name = rename_group(self, project, group, self.json_body().get("name"))
        self.write_json(group_model(group))

    def delete(self, project_name: str, name: str) -> None:
        """Remove an empty group (a group with services keeps them: move or delete them first)."""
        group = self.find_group(self.find_project(project_name, "manage"), name)
        if group.services:
            listed = ", ".join(s.name for s in group.services)
            raise APIError(
                409,
                f"Group {name!r} of {project_name!r} still has services ({listed}): delete them "
                "first (DELETE /api/v1/projects/{project}/services/{service}).",
                "group_not_empty",
                group=name,
                services=listed,
            )
        self.db.delete(group)
        self.db.commit()
        self.write_json({"deleted": f"{project_name} group {name}"})


default_handlers = [
    (r"/api/v1/projects/([^/]+)/groups", GroupListAPIHandler),
    (r"/api/v1/projects/([^/]+)/groups/([^/]+)", GroupAPIHandler),
]
