"""Publishing: a version's bundle -> its environment -> a healthy process -> the route, with no downtime;
and every API version a client was given kept callable.

One publish at a time per service (an asyncio lock; a second one waits its turn). The steps:

1. ``building``: the version's environment (reused when the same one was built before) and, the first
   time, its manifest (``ALGOLINK_META=1``) and gallery;
2. ``starting``: a process on a free port (the hub picks one for every process; clients reach it
   through ``/serve`` only), health-checked until ``RUNNING`` (a version that runs already, kept warm
   after an earlier request or publish, is taken as it is: no start);
3. ``online``: the route to ``/serve/{project}/{service}/`` switches to the new process, the version
   gets its API version (``v1``, ``v2``, ...; never given twice), and the old version's process stays
   warm for those who pinned it.

Every published version stays callable at ``/serve/{project}/{service}/v{N}/``, and every named one at
``/@{alias}/``: a version that does not run is started on its first request (:meth:`Publisher.warm_up`)
and stopped after the service's ``keep_warm`` seconds without one (0: never). A failed build or start
marks the version ``failed`` and leaves the old version online. The route table lives in memory (the
``/serve`` hot path never reads the database) and is rebuilt on start-up, when every service that was
online is brought back.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import orm
from .builder import COMPLETE_MARKER, Environment
from .bundles import BundleConfig, read_config
from .collect import held_by
from .options import model_options_env
from .runner import kill_stale
from .sandbox import Identity, working_copy
from .shim import append_line, stamp

log = logging.getLogger("algolink.hub")

#: Statuses of a version or service in which its process runs (or is being brought back).
RUNNING = ("online", "starting")
#: Images a gallery may hold, by the format Pillow reads.
IMAGE_EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp"}
MAX_IMAGE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """One version a ``/serve`` request may reach: its row, number, API version, process key and the
    commands its manifest declares."""

    version_id: int
    number: int
    api_version: Optional[int]
    key: str
    commands: frozenset


@dataclass
class Route:
    """Where ``/serve/{project}/{service}/...`` goes, kept in memory."""

    service_id: int = 0
    project_id: int = 0
    public: bool = False
    status: str = "registered"
    #: The process of the published version: runner key, URL and API version N.
    key: Optional[str] = None
    url: Optional[str] = None
    api_version: Optional[int] = None
    api_versions: set = field(default_factory=set)
    #: Every version with a manifest (so it can run), by number; API versions and aliases -> number.
    targets: dict = field(default_factory=dict)
    by_api: dict = field(default_factory=dict)
    aliases: dict = field(default_factory=dict)
    #: The highest API version ever given: a lower one that is gone was deleted.
    last_api_version: int = 0
    keep_warm: int = 600
    #: Development mode (devmode.py): ``url`` is the developer's server and this its token.
    dev: bool = False
    dev_token: Optional[str] = None
    #: The commands a client may call (the online version's manifest): /serve forwards these,
    #: ``meta`` and ``openapi.json``, nothing else.
    commands: frozenset = frozenset()


@dataclass
class Workspace:
    """Where a version runs: its working copy ``app`` (the process's folder), ``tmp`` (its /tmp),
    ``options`` (its setup options' files, read-only), and the user it runs as."""

    root: Path
    who: Optional[Identity]

    @property
    def app(self) -> Path:
        return self.root / "app"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def options(self) -> Path:
        return self.root / "options"


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def process_key(project: str, service: str, number: int) -> str:
    return f"{project}/{service}/{number}"


def manifest_commands(manifest: Any) -> frozenset:
    """The command names a manifest declares."""
    commands = (manifest or {}).get("commands") if isinstance(manifest, dict) else None
    return frozenset(
        c["name"] for c in commands or [] if isinstance(c, dict) and isinstance(c.get("name"), str)
    )


def store_image(data: bytes, gallery_root: Path, name: str, keep: bool = True) -> dict:
    """Keep an image in the content-addressed gallery; a ValueError says why it is not one.

    With ``keep=False`` it is only checked.
    """
    import io

    from PIL import Image

    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(
            f"The image {name!r} is over {MAX_IMAGE_BYTES // 2**20} MB: make it smaller."
        )
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.verify()
    except Exception:
        raise ValueError(
            f"{name!r} is not an image Pillow can read: give a PNG, JPEG, GIF or WebP file."
        ) from None
    if fmt not in IMAGE_EXTENSIONS:
        raise ValueError(f"{name!r} is a {fmt} image: give a PNG, JPEG, GIF or WebP file.")
    filename = hashlib.sha256(data).hexdigest() + IMAGE_EXTENSIONS[fmt]
    if not keep:
        return {"name": Path(name).name, "file": filename}
    gallery_root.mkdir(parents=True, exist_ok=True)
    target = gallery_root / filename
    if not target.exists():
        tmp = target.with_suffix(".tmp" + str(os.getpid()))
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return {"name": Path(name).name, "file": filename}


class ColdStartError(RuntimeError):
    """A version that is not running could not be started for a request (or not in time)."""

    def __init__(self, message: str, retry_after: Optional[int] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Publisher:
    """Builds, starts, swaps and stops service versions for one hub."""

    #: Seconds a request waits for a version that is not running to start (a 503 past it).
    cold_start_timeout = 60.0
    #: Seconds a failed start of a version keeps refusing requests for it before trying again.
    cold_start_backoff = 15.0
    #: How often the processes of versions that are not online are looked at (idle ones stop).
    reap_interval = 1.0

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.routes: dict[tuple[str, str], Route] = {}
        self.inflight: collections.Counter = collections.Counter()
        #: Bytes of /serve request bodies spooled to disk right now (proxy.SPOOL_BUDGET bounds it).
        self.spooled = [0]
        self._locks: dict[int, asyncio.Lock] = {}
        self._key_locks: dict[str, asyncio.Lock] = {}
        self._prepared: dict[int, asyncio.Task] = {}
        self._tasks: set = set()
        #: service id -> its publish and cold-start tasks (cancelled when it is deleted).
        self._service_tasks: dict[int, set] = collections.defaultdict(set)
        #: runner key -> (service id, version number) for the processes this hub started.
        self._keys: dict[str, tuple[int, int]] = {}
        #: runner key -> when a request last used it (time.monotonic()).
        self.last_used: dict[str, float] = {}
        #: runner key -> the environment key its process runs in.
        self.env_of: dict[str, str] = {}
        #: runner key -> the task starting it for a request; and (until, why) after such a start failed.
        self._cold: dict[str, asyncio.Task] = {}
        self._cold_failed: dict[str, tuple[float, str]] = {}
        self._reaper: Optional[asyncio.Task] = None

    # --- small helpers ----------------------------------------------------------------------------

    def lock(self, service_id: int) -> asyncio.Lock:
        return self._locks.setdefault(service_id, asyncio.Lock())

    def key_lock(self, key: str) -> asyncio.Lock:
        return self._key_locks.setdefault(key, asyncio.Lock())

    def spawn(self, coro: Any, service_id: Optional[int] = None) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if service_id is not None:
            tasks = self._service_tasks[service_id]
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return task

    def version_dir(self, project: str, service: str, number: int) -> Path:
        path = self.hub.data / "services" / project / service / str(number)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_paths(self, project: str, service: str, number: int) -> tuple[Path, Path]:
        folder = self.version_dir(project, service, number)
        return folder / "build.log", folder / "run.log"

    def workspace(self, service_id: int, project: str, service: str, number: int) -> Workspace:
        """The version's workspace (see :class:`Workspace`); its folders are made by
        :meth:`make_workspace`."""
        isolation = self.hub.isolation
        who = isolation.service_user(service_id) if isolation is not None else None
        return Workspace(self.hub.data / "run" / project / service / str(number), who)

    def make_workspace(self, space: Workspace, bundle_dir: Path) -> None:
        """A fresh working copy of the stored bundle, and an empty /tmp, for ``space.who``."""
        isolation = self.hub.isolation
        passable = 0o711 if isolation is not None and isolation.users else 0o700
        run_root = self.hub.data / "run"
        for folder in [*reversed(space.root.relative_to(run_root).parents), Path(".")]:
            path = run_root / folder
            path.mkdir(exist_ok=True)
            os.chmod(path, passable)
        # Hard links to the stored files when they stay out of the process's reach: as root (they
        # are root's, read-only to the service's user) or with no isolation at all.
        link = isolation is None or not isolation.isolated or space.who is not None
        working_copy(bundle_dir, space.app, space.who, link=link)
        if space.tmp.exists():
            shutil.rmtree(space.tmp)
        space.tmp.mkdir()
        if isolation is not None:
            isolation.own(space.tmp, space.who, 0o700)

    def note(self, path: Path, text: str) -> None:
        """A line from the hub itself in a log (written while no build writes to it)."""
        append_line(path, f"[{stamp()}] ==> {text}")

    def route(self, service: orm.Service) -> Route:
        key = (service.project.name, service.name)
        route = self.routes.get(key)
        if route is None:
            route = self.routes[key] = Route()
        route.service_id = service.id
        route.project_id = service.project_id
        route.public = service.public
        route.status = service.status
        route.keep_warm = service.keep_warm if service.keep_warm is not None else 600
        route.last_api_version = service.last_api_version or 0
        route.api_versions = {v.api_version for v in service.versions if v.api_version}
        route.targets = {
            v.number: Target(
                v.id,
                v.number,
                v.api_version,
                process_key(service.project.name, service.name, v.number),
                manifest_commands(v.manifest),
            )
            for v in service.versions
            if v.manifest is not None
        }
        route.by_api = {v.api_version: v.number for v in service.versions if v.api_version}
        route.aliases = {a.name: a.version_number for a in service.aliases}
        route.dev = bool(service.dev_url)
        if route.dev:
            route.url, route.key = service.dev_url, None
            route.dev_token = self.hub.sealer.open(service.dev_token)
            route.commands = manifest_commands(service.dev_manifest)
        else:
            published = service.version(service.published_version)
            route.commands = manifest_commands(published.manifest if published else None)
        return route

    def load_routes(self) -> None:
        with self.hub.session() as db:
            for service in db.query(orm.Service):
                self.route(service)

    def running(self, project: str, service: str) -> dict:
        """The versions of ``project/service`` whose process runs now: number -> ``online`` (it
        answers), ``starting`` or ``restarting``."""
        prefix = f"{project}/{service}/"
        found = {}
        for key in list(self.hub.runner.keys()):
            if (
                key.startswith(prefix)
                and key[len(prefix) :].isascii()
                and key[len(prefix) :].isdigit()
            ):
                found[int(key[len(prefix) :])] = self.hub.runner.state(key) or "stopped"
        return found

    def replicas(self, project: str, service: str, numbers: Any) -> dict:
        """What runs each of ``numbers`` (versions of ``project/service``): number -> the backend's
        replicas (one ``local`` process on the local backend)."""
        return {n: self.hub.runner.replicas(f"{project}/{service}/{n}") for n in numbers}

    # --- preparing a version: environment, manifest, gallery --------------------------------------

    def prepare(self, version_id: int) -> asyncio.Task:
        """The task that builds this version's environment and reads its manifest (one at a time)."""
        task = self._prepared.get(version_id)
        if task is not None and task.done() and not task.cancelled() and task.exception() is None:
            env = task.result()[0]
            if not env.complete:  # collected since (--env-budget): built again
                task = None
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            with self.hub.session() as db:
                version = db.get(orm.Version, version_id)
                service_id = version.service_id if version is not None else None
            task = self._prepared[version_id] = self.spawn(self._prepare(version_id), service_id)
            # Its failure is kept on the version (and in the build log); publishing tries again.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    def preparing(self, version_id: int) -> bool:
        task = self._prepared.get(version_id)
        return task is not None and not task.done()

    async def _prepare(self, version_id: int) -> tuple[Environment, BundleConfig, Workspace]:
        with self.hub.session() as db:
            version = db.get(orm.Version, version_id)
            service = version.service
            project, name, number = service.project.name, service.name, version.number
            need_manifest = version.manifest is None
            bundle_dir = self.hub.data / "bundles" / version.bundle_hash
            space = self.workspace(service.id, project, name, number)
        build_log, _ = self.log_paths(project, name, number)
        try:
            config = read_config(bundle_dir)
            await asyncio.to_thread(self.make_workspace, space, bundle_dir)
            env = await self.hub.builder.build(
                space.app, config, build_log, who=space.who, tmp=space.tmp
            )
            with self.hub.session() as db:
                version = db.get(orm.Version, version_id)
                version.env_key = env.key
                db.commit()
            if need_manifest:
                manifest = await self.hub.builder.read_manifest(
                    env, space.app, self.hub.manifest_timeout, who=space.who, tmp=space.tmp
                )
                with self.hub.session() as db:
                    version = db.get(orm.Version, version_id)
                    version.manifest = manifest
                    images = (manifest.get("metadata") or {}).get("images") or []
                    images = (version.service.meta or {}).get("images", images)
                    images = (version.meta or {}).get("images", images)
                    found = self._bundle_images(bundle_dir, images, build_log)
                    version.gallery = found + [g for g in version.gallery or [] if g not in found]
                    version.error = ""
                    db.commit()
                    self.route(version.service)
        except Exception as e:
            message = str(e) or type(e).__name__
            self.note(build_log, f"failed: {message}")
            with self.hub.session() as db:
                version = db.get(orm.Version, version_id)
                if version is not None:
                    version.error = message
                    db.commit()
            raise
        self.hub.collector.soon()  # a new environment may take the store past --env-budget
        return env, config, space

    def _bundle_images(self, bundle_dir: Path, images: Any, build_log: Path) -> list:
        found = []
        for rel in images if isinstance(images, list) else []:
            path = (bundle_dir / str(rel)).resolve()
            if not path.is_relative_to(bundle_dir.resolve()) or not path.is_file():
                self.note(build_log, f"gallery image {rel!r} is not in the bundle; left out")
                continue
            try:
                found.append(store_image(path.read_bytes(), self.hub.data / "gallery", str(rel)))
            except ValueError as e:
                self.note(build_log, f"gallery image left out: {e}")
        return found

    # --- a version's process ----------------------------------------------------------------------

    def names_of(self, version_id: int) -> tuple[str, str, int]:
        """``(project, service, number)`` of a version."""
        with self.hub.session() as db:
            version = db.get(orm.Version, version_id)
            return version.service.project.name, version.service.name, version.number

    async def run_version(self, service_id: int, version_id: int) -> str:
        """The version's process, started unless it runs already (then it is taken as it is): its
        runner key, once it answers ``RUNNING``."""
        project, name, number = self.names_of(version_id)
        key = process_key(project, name, number)
        async with self.key_lock(key):
            if self.hub.runner.state(key) == "online":
                self.last_used[key] = time.monotonic()
                return key
            env, config, space = await self.prepare(version_id)
            if not env.complete:
                self._prepared.pop(version_id, None)
                env, config, space = await self.prepare(version_id)
            _, run_log = self.log_paths(project, name, number)
            with self.hub.session() as db:
                version = db.get(orm.Version, version_id)
                manifest, values = version.manifest, version.options
            extra_env = await asyncio.to_thread(self.service_env, space, manifest, values)
            port = self.hub.free_port()
            self._keys[key] = (service_id, number)
            self.env_of[key] = env.key
            try:
                await self.hub.runner.start(
                    key,
                    env,
                    space.app,
                    config,
                    port,
                    run_log,
                    extra_env=extra_env,
                    health_timeout=self.hub.health_timeout,
                    who=space.who,
                    read_only=[space.options],
                    tmp=space.tmp,
                )
            except BaseException:
                self._keys.pop(key, None)
                self.env_of.pop(key, None)
                raise
            with self.hub.session() as db:
                version = db.get(orm.Version, version_id)
                if version is not None:
                    version.port = port
                    db.commit()
            _touch(env.path / COMPLETE_MARKER)  # when it was last used (--env-budget)
            self.last_used[key] = time.monotonic()
        return key

    async def warm_up(self, route: Route, target: Target) -> str:
        """The URL of ``target``'s process for a request: at once when it runs, else once it has
        started (bounded by :attr:`cold_start_timeout`); :class:`ColdStartError` says why not."""
        key = target.key
        url = self.hub.runner.url(key)
        if url is not None:
            self.last_used[key] = time.monotonic()
            return url
        failed = self._cold_failed.get(key)
        if failed is not None and failed[0] > time.monotonic():
            raise ColdStartError(failed[1], int(failed[0] - time.monotonic()) + 1)
        task = self._cold.get(key)
        if task is None or task.done():
            task = self._cold[key] = self.spawn(
                self._cold_start(route.service_id, target), route.service_id
            )
        try:
            await asyncio.wait_for(asyncio.shield(task), self.cold_start_timeout)
        except asyncio.TimeoutError:
            raise ColdStartError(
                f"version {target.number} is starting (it was not running): send the request "
                "again in a moment.",
                5,
            ) from None
        except Exception as e:
            raise ColdStartError(str(e), int(self.cold_start_backoff)) from None
        url = self.hub.runner.url(key)
        if url is None:
            raise ColdStartError(f"version {target.number} stopped as it started.", 2)
        return url

    async def _cold_start(self, service_id: int, target: Target) -> str:
        try:
            key = await self.run_version(service_id, target.version_id)
        except Exception as e:
            first = (str(e) or type(e).__name__).splitlines()[0]
            why = f"version {target.number} could not be started: {first}"
            self._cold_failed[target.key] = (time.monotonic() + self.cold_start_backoff, why)
            raise RuntimeError(why) from None
        self._cold_failed.pop(target.key, None)
        return key

    async def stop_process(self, key: str, drain: float = 30) -> None:
        """Stop a version's process once the requests it answers are done."""
        url = self.hub.runner.url(key)
        async with self.key_lock(key):
            await self.drain(key, drain)
            self._keys.pop(key, None)
            self.env_of.pop(key, None)
            self.last_used.pop(key, None)
            await self.hub.runner.stop(key)
        self.hub.upstreams.forget(url)

    def start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = self.spawn(self._reap_loop())

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reap_interval)
            try:
                await self.reap()
            except Exception:  # never stops reaping
                log.exception("stopping idle versions failed")

    async def reap(self) -> None:
        """Stop the processes of versions that are not online: those idle past their service's
        ``keep_warm``, and every one of a service that was taken offline."""
        now = time.monotonic()
        online = {r.key for r in self.routes.values() if r.key}
        for key in list(self.hub.runner.keys()):
            if key in online or key in self._cold or self.key_lock(key).locked():
                continue
            project, service, _number = key.rsplit("/", 2)
            route = self.routes.get((project, service))
            if self.inflight[key] > 0:
                self.last_used[key] = now
                continue
            if route is not None and route.status != "offline":
                if route.keep_warm <= 0:
                    continue
                if now - self.last_used.setdefault(key, now) < route.keep_warm:
                    continue
            log.info("stopping %s: no request for %s s", key, route.keep_warm if route else 0)
            await self.stop_process(key, drain=0)
        for key in [k for k, t in self._cold.items() if t.done()]:
            del self._cold[key]

    # --- publishing -------------------------------------------------------------------------------

    def request_publish(self, db: Any, service: orm.Service, version: orm.Version, by: str) -> bool:
        """Mark the version as building and start its publish; False when there is nothing to do."""
        route = self.routes.get((service.project.name, service.name))
        if version.status in ("building", "starting") or (
            version.status == "online"
            and service.published_version == version.number
            and route is not None
            and route.key is not None
        ):
            return False
        version.status = "building"
        version.error = ""
        if service.status not in RUNNING:
            service.status = "building"
            service.message = ""
        db.commit()
        self.route(service)
        self.spawn(self._publish(service.id, version.id, by), service.id)
        return True

    async def _publish(self, service_id: int, version_id: int, by: Optional[str]) -> None:
        async with self.lock(service_id):
            try:
                await self._start_version(service_id, version_id, by)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                message = str(e) or type(e).__name__
                log.warning("publish failed: %s", message)
                self._failed(service_id, version_id, message)

    async def _start_version(self, service_id: int, version_id: int, by: Optional[str]) -> None:
        project, name, number = self.names_of(version_id)
        build_log, run_log = self.log_paths(project, name, number)
        key = process_key(project, name, number)
        warm = self.hub.runner.state(key) == "online"
        if not warm:
            # Built at registration already (that build's log stays); built again after a restart.
            await self.prepare(version_id)
        route = self.routes.setdefault((project, name), Route())
        with self.hub.session() as db:
            version = db.get(orm.Version, version_id)
            service = version.service
            version.status = "starting"
            if service.status not in RUNNING or route.key is None:
                service.status = "starting"
            db.commit()
            self.route(service)
        if warm:
            self.note(run_log, f"publishing version {number} of {project}/{name}: it runs already")
        else:
            self.note(run_log, f"publishing version {number} of {project}/{name}")
        await self.run_version(service_id, version_id)
        await self._swap(service_id, version_id, key, by)

    def service_env(
        self, space: Workspace, manifest: Any, values: Any, *, write: bool = True
    ) -> dict:
        """What the hub tells a version's process: where to listen, that /setup is the hub's
        business (the route is off), and its setup options (files as paths in its workspace, put
        there unless ``write`` is False)."""
        extra_env = {"ALGOLINK_HOST": self.hub.service_host, "ALGOLINK_HUB": "1"}
        group = space.who.gid if space.who is not None else None
        model_options = model_options_env(
            self.hub.data, space.options, manifest, values, group, write=write
        )
        if model_options is not None:  # the version's setup options, files as local paths
            extra_env["ALGOLINK_MODEL_OPTIONS"] = model_options
        return extra_env

    async def _swap(self, service_id: int, version_id: int, key: str, by: Optional[str]) -> None:
        """The new process is healthy: route to it; the old one stays warm for clients that pinned
        its API version (stopped after ``keep_warm`` seconds without a request)."""
        with self.hub.session() as db:
            version = db.get(orm.Version, version_id)
            service = version.service
            route = self.route(service)
            old_key = route.key if route.key != key else None
            old = service.version(service.published_version)
            if old is not None and old.id != version.id and old.status in RUNNING:
                old.status = "offline"
            if version.api_version is None:
                given = max(
                    [service.last_api_version or 0, *(v.api_version or 0 for v in service.versions)]
                )
                version.api_version = given + 1
                service.last_api_version = version.api_version
            if by is not None:
                version.published_by = by
                version.published_at = orm.utcnow()
            version.status = "online"
            version.error = ""
            service.published_version = version.number
            service.status = "online"
            service.message = ""
            _, run_log = self.log_paths(service.project.name, service.name, version.number)
            self.note(  # before the commit: a log follower stops at "online"
                run_log,
                f"online as v{version.api_version}: "
                f"/serve/{service.project.name}/{service.name}/v{version.api_version}/",
            )
            db.commit()
            route = self.route(service)
            route.key, route.url, route.api_version = (
                key,
                self.hub.runner.url(key),
                version.api_version,
            )
        if old_key is not None:
            self.last_used[old_key] = time.monotonic()  # warm from now on, for pinned clients

    async def drain(self, key: str, timeout: float = 30) -> None:
        """Wait until no request routed to ``key`` is still being answered."""
        deadline = time.monotonic() + timeout
        while self.inflight[key] > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def _failed(self, service_id: int, version_id: int, message: str) -> None:
        with self.hub.session() as db:
            version = db.get(orm.Version, version_id)
            if version is None:  # deleted meanwhile
                return
            service = version.service
            version.status = "failed"
            version.error = message
            route = self.route(service)
            if route.key is not None and service.published_version != version.number:
                service.status = "online"  # the old version keeps serving
                service.message = f"Publishing version {version.number} failed: {message}"
            else:
                service.status = "failed"
                service.message = message
            db.commit()
            self.route(service)

    async def offline(self, service_id: int) -> None:
        """Stop serving: no new requests reach the service's versions; each process stops once
        idle."""
        async with self.lock(service_id):
            with self.hub.session() as db:
                service = db.get(orm.Service, service_id)
                project, name = service.project.name, service.name
                route = self.route(service)
                route.key, route.url, route.api_version = None, None, None
                for version in service.versions:
                    if version.status in RUNNING:
                        version.status = "offline"
                service.status = "offline"
                service.message = ""
                db.commit()
                self.route(service)
            await self._stop_service_processes(project, name)

    async def _stop_service_processes(self, project: str, name: str) -> None:
        prefix = f"{project}/{name}/"
        keys = [k for k in list(self.hub.runner.keys()) if k.startswith(prefix)]
        await asyncio.gather(*(self.stop_process(k) for k in keys))

    # --- deleting ---------------------------------------------------------------------------------

    async def delete_version(self, service_id: int, number: int) -> None:
        """Stop the version's process, forget it and remove its logs and working copy (the caller
        has checked that it is not online); what nothing uses any more is collected."""
        with self.hub.session() as db:
            service = db.get(orm.Service, service_id)
            project, name = service.project.name, service.name
            version = service.version(number)
            version_id = version.id if version is not None else None
            held = held_by(version) if version is not None else {}
        key = process_key(project, name, number)
        task = self._prepared.pop(version_id, None) if version_id is not None else None
        if task is not None and not task.done():
            task.cancel()
        cold = self._cold.pop(key, None)
        if cold is not None:
            cold.cancel()
        await self.stop_process(key, drain=10)
        with self.hub.session() as db:
            version = db.get(orm.Version, version_id) if version_id is not None else None
            if version is not None:
                db.delete(version)
                db.commit()
            service = db.get(orm.Service, service_id)
            if service is not None:
                self.route(service)
        await asyncio.to_thread(self._remove_version_files, project, name, number)
        self.hub.collector.release(**held)
        self.hub.collector.soon()

    def _remove_version_files(self, project: str, name: str, number: int) -> None:
        for root in ("services", "run"):
            shutil.rmtree(self.hub.data / root / project / name / str(number), ignore_errors=True)

    async def delete_service(self, service_id: int) -> None:
        """Stop every process of the service, remove it (versions, aliases, uploads) with its logs,
        working copies and user; what nothing else uses is collected."""
        with self.hub.session() as db:
            service = db.get(orm.Service, service_id)
            if service is None:
                return
            project, name = service.project.name, service.name
            version_ids = [v.id for v in service.versions]
            held: dict = collections.defaultdict(list)
            for version in service.versions:
                for kind, names in held_by(version).items():
                    held[kind] += names
            held["uploads"] = [u.id for u in db.query(orm.Upload).filter_by(service_id=service_id)]
        route = self.routes.pop((project, name), None)  # /serve answers 404 from now on
        for task in list(self._service_tasks.pop(service_id, ())):
            task.cancel()
        for version_id in version_ids:
            task = self._prepared.pop(version_id, None)
            if task is not None:
                task.cancel()
        async with self.lock(service_id):
            await self._stop_service_processes(project, name)
            with self.hub.session() as db:
                service = db.get(orm.Service, service_id)
                if service is not None:
                    db.delete(service)
                    db.commit()
        self._locks.pop(service_id, None)
        if route is not None and route.dev:
            self.hub.upstreams.forget(route.url)
        await asyncio.to_thread(self._remove_service_files, service_id, project, name)
        self.hub.collector.release(**held)
        self.hub.collector.soon()

    def _remove_service_files(self, service_id: int, project: str, name: str) -> None:
        for root in ("services", "run"):
            shutil.rmtree(self.hub.data / root / project / name, ignore_errors=True)
        isolation = self.hub.isolation
        if isolation is not None:
            isolation.remove_user(isolation.service_user(service_id))

    # --- the runner's reports ---------------------------------------------------------------------

    def on_state(self, key: str, state: str, message: Optional[str] = None) -> None:
        """A published process restarted, came back or gave up (publishing reports its own steps)."""
        ids = self._keys.get(key)
        if ids is None:
            return
        service_id, number = ids
        with self.hub.session() as db:
            service = db.get(orm.Service, service_id)
            if service is None:
                return
            route = self.route(service)
            if route.key != key:  # a version kept warm: the next request starts it again
                if state == "failed":
                    self._keys.pop(key, None)
                    self.last_used.pop(key, None)
                return
            version = service.version(number)
            if state == "restarting":
                self.hub.upstreams.forget(route.url)
                route.url = None  # answered 503 "starting" meanwhile
                version.status = service.status = "starting"
                service.message = f"Restarting after the process stopped: {message or 'no reason'}"
            elif state == "online":
                version.status = service.status = "online"
                service.message = ""
                route.url = self.hub.runner.url(key) or route.url
            elif state == "failed":
                version.status = service.status = "failed"
                version.error = service.message = message or "The process kept crashing."
                self._keys.pop(key, None)
                self.hub.upstreams.forget(route.url)
                route.key = route.url = route.api_version = None
            else:
                return
            db.commit()
            self.route(service)

    # --- start-up and shut-down -------------------------------------------------------------------

    async def adopt_running(self) -> None:
        """Before the hub listens: take back every online service whose process an earlier hub left
        running (no cold start, no request refused); what cannot be taken back is left to
        :meth:`restore`."""
        with self.hub.session() as db:
            online = [
                (v.service.id, v.id)
                for v in db.query(orm.Version).filter(orm.Version.status.in_(("online",)))
                if v.service.published_version == v.number and v.service.status == "online"
            ]
        for service_id, version_id in online:
            try:
                await self._adopt(service_id, version_id)
            except Exception:  # never stops the hub from starting: restore() starts it anew
                log.exception("taking back version %s failed", version_id)
        self.load_routes()

    async def _adopt(self, service_id: int, version_id: int) -> bool:
        with self.hub.session() as db:
            version = db.get(orm.Version, version_id)
            service = version.service
            project, name, number = service.project.name, service.name, version.number
            bundle_dir = self.hub.data / "bundles" / version.bundle_hash
            manifest, values = version.manifest, version.options
        space = self.workspace(service_id, project, name, number)
        if not space.app.is_dir():
            return False
        config = read_config(bundle_dir)
        key_env = self.hub.builder.env_key(config, space.app)
        env = Environment.at(key_env, self.hub.builder.envs_root / key_env)
        if not env.complete:
            return False
        _, run_log = self.log_paths(project, name, number)
        key = process_key(project, name, number)
        self._keys[key] = (service_id, number)
        taken = await self.hub.runner.adopt(
            key,
            env,
            space.app,
            config,
            run_log,
            extra_env=self.service_env(space, manifest, values, write=False),
            health_timeout=self.hub.health_timeout,
            who=space.who,
            read_only=[space.options],
            tmp=space.tmp,
        )
        if not taken:
            self._keys.pop(key, None)
            return False
        self.env_of[key] = env.key
        self.last_used[key] = time.monotonic()
        with self.hub.session() as db:
            version = db.get(orm.Version, version_id)
            service = version.service
            route = self.route(service)
            route.key, route.url, route.api_version = (
                key,
                self.hub.runner.url(key),
                version.api_version,
            )
        log.info("took back %s (v%s), still running", key, route.api_version)
        return True

    async def restore(self) -> None:
        """Bring back every service that was online and is not running any more; mark publishes cut
        short by a stop as failed; stop what an earlier hub left running that nothing needs now."""
        with self.hub.session() as db:
            to_start = []
            for version in db.query(orm.Version).filter(
                orm.Version.status.in_(("building", "starting", "online"))
            ):
                service = version.service
                route = self.routes.get((service.project.name, service.name))
                taken = route is not None and route.key is not None and version.status == "online"
                if taken and service.published_version == version.number:
                    continue  # taken back by adopt_running()
                if service.published_version == version.number and service.status in RUNNING:
                    version.status = service.status = "starting"
                    to_start.append((service.id, version.id))
                else:
                    version.status = "failed"
                    version.error = (
                        "The hub stopped while publishing this version: publish it again."
                    )
                    if service.status in ("building", "starting"):
                        service.status = "failed"
                        service.message = version.error
            db.commit()
        self.load_routes()
        adopted = {self.hub.data / "services" / Path(k) / "run.log.pid" for k in self._keys}
        starting = set()
        with self.hub.session() as db:
            for _service_id, version_id in to_start:
                version = db.get(orm.Version, version_id)
                key = process_key(
                    version.service.project.name, version.service.name, version.number
                )
                starting.add(self.hub.data / "services" / Path(key) / "run.log.pid")
        for pid_file in (self.hub.data / "services").glob("*/*/*/run.log.pid"):
            if pid_file not in adopted and pid_file not in starting:
                await asyncio.to_thread(kill_stale, pid_file)
        try:
            await self.hub.runner.prune()
        except Exception:  # never stops the hub from starting
            log.exception("stopping what an earlier hub left running failed")
        for service_id, version_id in to_start:
            self.spawn(self._publish(service_id, version_id, None))

    async def stop_all(self, stop_services: bool = True) -> None:
        """On shut-down: stop the processes (``stop_services``) or leave the online ones running for
        the next hub; their status is kept either way, so the next start restores or adopts them."""
        for task in list(self._tasks):
            task.cancel()
        if stop_services:
            await self.hub.runner.stop_all()
            return
        online = {route.key for route in self.routes.values() if route.key and route.url}
        for key in list(self.hub.runner.keys()):
            if key not in online:  # a publish or a drain cut short: nothing will want it
                await self.hub.runner.stop(key, 5)
        await self.hub.runner.detach_all()
