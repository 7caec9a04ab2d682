"""A version's container image (see images.py): build it, follow it, download it.

``POST .../versions/{n}/image`` starts the build (202; the developers and owners of the project);
``GET .../versions/{n}/image`` says where it stands (``building``, ``ready`` with its ``digest``, or
``failed`` with the ``error``); ``GET .../versions/{n}/image/log`` is its build log;
``GET .../versions/{n}/image.tar`` is the OCI archive (``docker load -i`` / ``podman load -i``).
"""

from __future__ import annotations

from typing import Any

from tornado.iostream import StreamClosedError

from ..images import NotBuildable, image_builds
from .base import APIHandler
from .common import APIError

CHUNK = 1 << 20


def image_json(handler: APIHandler, project: str, service: str, number: int, info: Any) -> dict:
    base = f"/api/v1/projects/{project}/services/{service}/versions/{number}/image"
    body = dict(info or {"status": "none"})
    body.update(
        version=number,
        log_url=handler.url(base + "/log"),
        archive_url=handler.url(base + ".tar") if body.get("status") == "ready" else None,
    )
    return body


class ImageAPIHandler(APIHandler):
    def get(self, project_name: str, name: str, number: str) -> None:
        service = self.find_service(project_name, name, "inspect")
        version = self.find_version(service, number)
        info = image_builds(self.hub).info(project_name, name, version.number)
        if info is None:
            raise APIError(
                404,
                f"Version {version.number} of {project_name}/{name} has no image yet: make one "
                f"with POST {self.request.path} (or `algolink image {project_name}/{name}:v"
                f"{version.number}`).",
                "no_image",
            )
        self.write_json(image_json(self, project_name, name, version.number, info))

    def post(self, project_name: str, name: str, number: str) -> None:
        service = self.find_service(project_name, name, "change")
        version = self.find_version(service, number)
        try:
            info = image_builds(self.hub).start(version, self.caller.name)
        except NotBuildable as e:
            raise APIError(409, str(e), "version_not_built") from None
        self.write_json(image_json(self, project_name, name, version.number, info), 202)


class ImageLogAPIHandler(APIHandler):
    def get(self, project_name: str, name: str, number: str) -> None:
        service = self.find_service(project_name, name, "inspect")
        version = self.find_version(service, number)
        builds = image_builds(self.hub)
        path = builds.folder(project_name, name, version.number) / "build.log"
        if not path.is_file():
            raise APIError(
                404,
                f"Version {version.number} of {project_name}/{name} has no image build log: "
                f"make its image with POST {self.request.path[: -len('/log')]}.",
                "no_image",
            )
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(path.read_bytes())


class ImageArchiveAPIHandler(APIHandler):
    async def get(self, project_name: str, name: str, number: str) -> None:
        service = self.find_service(project_name, name, "inspect")
        version = self.find_version(service, number)
        builds = image_builds(self.hub)
        info = builds.info(project_name, name, version.number) or {}
        path = builds.folder(project_name, name, version.number) / "image.tar"
        if info.get("status") != "ready" or not path.is_file():
            said = {
                "building": "is being built: wait until GET .../image says ready",
                "failed": "failed to build: its log says why; build it again with POST .../image",
            }.get(info.get("status", ""), "has not been made: make it with POST .../image")
            raise APIError(
                404 if not info else 409,
                f"The image of version {version.number} of {project_name}/{name} {said}.",
                "no_image",
            )
        self.db.close()
        del self._db
        self.set_header("Content-Type", "application/x-tar")
        self.set_header(
            "Content-Disposition",
            f'attachment; filename="{project_name}-{name}-v{version.number}.tar"',
        )
        self.set_header("Content-Length", str(path.stat().st_size))
        self.set_header("Docker-Content-Digest", info.get("digest") or "")
        with open(path, "rb") as f:
            while True:
                block = f.read(CHUNK)
                if not block:
                    break
                self.write(block)
                try:
                    await self.flush()
                except StreamClosedError:
                    return
        self.finish()


_VERSION = r"/api/v1/projects/([^/]+)/services/([^/]+)/versions/([^/]+)"
default_handlers = [
    (_VERSION + r"/image", ImageAPIHandler),
    (_VERSION + r"/image/log", ImageLogAPIHandler),
    (_VERSION + r"/image\.tar", ImageArchiveAPIHandler),
]
