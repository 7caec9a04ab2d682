"""The versions table's "Image" button: build the version's container image in the background (the
API's ``POST .../versions/{n}/image``); the table then shows its digest, log and download link."""

from __future__ import annotations

from ..images import NotBuildable, image_builds
from .manage import ConfirmedAction, service_path


class ImageAction(ConfirmedAction):
    def post(self, project_name: str, name: str, number: str) -> None:
        service = self.find_service(project_name, name, "change")
        version = next((v for v in service.versions if str(v.number) == number.strip()), None)
        if version is None:
            return self.refuse(
                project_name, name, self.t("There is no version {number}.", number=number), 404
            )
        try:
            image_builds(self.hub).start(version, self.current_user)
        except NotBuildable:
            return self.refuse(
                project_name,
                name,
                self.t(
                    "Version {number} has not been built yet: publish it once, then make its image.",
                    number=version.number,
                ),
                409,
            )
        self.redirect(service_path(project_name, name) + "#versions")


image_handlers = [
    (r"/projects/([^/]+)/services/([^/]+)/versions/([^/]+)/image", ImageAction),
]
