"""The hub's container images of versions: built in the background (image.py), one at a time, with
a build log, kept in ``<data>/images/<project>/<service>/<number>/`` (``image.tar``, ``image.json``,
``build.log``).

A version's image holds the environment the hub built for it (the version must have been built: a
publish builds it) and its working copy after the build steps (else the stored bundle). Layers are
cached in ``$ALGOLINK_IMAGE_CACHE`` when it is set, else in ``<data>/image-cache``, within
``$ALGOLINK_IMAGE_CACHE_BUDGET`` (see image.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Optional

from . import orm
from .bundles import BundleError, read_config
from .image import ImageError, ImageSpec, build_image, image_name, manifest_labels
from .shim import stamp

__all__ = ["ImageBuilds", "NotBuildable", "image_builds"]


class NotBuildable(Exception):
    """The version has nothing to make an image of yet; the message says what to do."""


def image_builds(hub: Any) -> ImageBuilds:
    """The hub's image builds (made on first use)."""
    found = getattr(hub, "image_builds", None)
    if found is None:
        found = hub.image_builds = ImageBuilds(hub)
    return found


class ImageBuilds:
    def __init__(self, hub: Any):
        self.hub = hub
        self.lock = asyncio.Lock()  # one image build at a time: each reads gigabytes
        self.tasks: dict = {}

    @property
    def cache(self) -> Path:
        env = os.environ.get("ALGOLINK_IMAGE_CACHE")
        return Path(env).expanduser() if env else self.hub.data / "image-cache"

    def folder(self, project: str, service: str, number: int) -> Path:
        return self.hub.data / "images" / project / service / str(number)

    def info(self, project: str, service: str, number: int) -> Optional[dict]:
        """What is known of the version's image (None: never asked for)."""
        try:
            data = json.loads((self.folder(project, service, number) / "image.json").read_text())
        except (OSError, ValueError):
            return None
        if data.get("status") == "building" and (project, service, number) not in self.tasks:
            data["status"] = "failed"  # the hub stopped during the build
            data["error"] = "The hub stopped while the image was being built: build it again."
        return data

    def _save(self, folder: Path, data: dict) -> None:
        tmp = folder / "image.json.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, folder / "image.json")

    def spec(self, version: orm.Version) -> ImageSpec:
        service = version.service
        project = service.project.name
        what = f"Version {version.number} of {project}/{service.name}"
        if not version.env_key:
            raise NotBuildable(
                f"{what} has not been built yet: publish it once (that builds its environment), "
                "then make its image."
            )
        env = self.hub.data / "envs" / version.env_key
        if not (env / ".algolink-complete").is_file():
            raise NotBuildable(
                f"{what}'s environment is no longer on the hub (it was collected): publish the "
                "version again, then make its image."
            )
        bundle = self.hub.data / "bundles" / version.bundle_hash
        try:
            config = read_config(bundle)
        except BundleError as e:
            raise NotBuildable(f"{what}'s bundle cannot be read: {e}") from None
        space = self.hub.publisher.workspace(service.id, project, service.name, version.number)
        app = space.app if space.app.is_dir() else bundle
        manifest = version.manifest or {}
        meta = dict(version.meta or {})
        if isinstance(manifest.get("metadata"), dict):
            meta = {**manifest["metadata"], **meta}
        labels = manifest_labels(
            meta,
            manifest,
            **{
                "org.opencontainers.image.version": f"v{version.number}",
                "io.algolink.project": project,
                "io.algolink.service": service.name,
                "io.algolink.version": version.number,
                "io.algolink.api-version": version.api_version,
            },
        )
        folder = self.folder(project, service.name, version.number)
        return ImageSpec(
            env_path=env,
            env_key=version.env_key,
            app_dir=app,
            python=config.python,
            cuda=config.cuda,
            entrypoint=config.entrypoint,
            port=config.port,
            name=f"algolink/{image_name(project)}-{image_name(service.name)}:v{version.number}",
            labels=labels,
            output=folder / "image.tar",
            uv=self.hub.builder.uv,
        )

    def start(self, version: orm.Version, by: Optional[str]) -> dict:
        """Start building the version's image (unless it is being built): its info."""
        service = version.service
        key = (service.project.name, service.name, version.number)
        if key in self.tasks:
            return self.info(*key) or {"status": "building"}
        spec = self.spec(version)
        folder = self.folder(*key)
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "status": "building",
            "name": spec.name,
            "requested_by": by,
            "requested_at": stamp(),
            "digest": None,
            "error": "",
        }
        old = self.info(*key)
        if old and old.get("digest"):
            data["previous_digest"] = old["digest"]
        self._save(folder, data)
        (folder / "build.log").write_text("")
        task = asyncio.ensure_future(self._build(key, spec, folder, data))
        self.tasks[key] = task
        task.add_done_callback(lambda _t: self.tasks.pop(key, None))
        return data

    async def _build(self, key: tuple, spec: ImageSpec, folder: Path, data: dict) -> None:
        log_file = open(folder / "build.log", "a", encoding="utf-8")  # noqa: SIM115

        def log(line: str) -> None:
            log_file.write(f"[{stamp()}] {line}\n")
            log_file.flush()

        t0 = time.monotonic()
        try:
            if self.lock.locked():
                log("==> Waiting for another image build to finish")
            async with self.lock:
                result = await asyncio.to_thread(build_image, spec, cache=self.cache, log=log)
            data.update(
                status="ready",
                digest=result.digest,
                size=result.size,
                seconds=round(result.seconds, 1),
                layers=[
                    {"what": layer.what, "digest": layer.digest, "size": layer.size}
                    for layer in result.layers
                ],
                built_at=stamp(),
            )
        except (ImageError, OSError) as e:
            log(f"Image build failed after {time.monotonic() - t0:.1f} s: {e}")
            data.update(status="failed", error=str(e))
        except Exception as e:  # a bug: said in the log and the status, the hub goes on
            log(f"Image build failed unexpectedly after {time.monotonic() - t0:.1f} s: {e!r}")
            data.update(status="failed", error=f"The image build failed unexpectedly: {e}")
        finally:
            with contextlib.suppress(OSError):
                self._save(folder, data)
            log_file.close()

    async def forget(self, project: str, service: str, number: int) -> None:
        """A deleted version's image: its build stopped, its archive and log removed."""
        task = self.tasks.get((project, service, number))
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        folder = self.folder(project, service, number)
        await asyncio.to_thread(shutil.rmtree, folder, True)

    async def wait(self, project: str, service: str, number: int) -> None:
        task = self.tasks.get((project, service, number))
        if task is not None:
            await asyncio.shield(task)
