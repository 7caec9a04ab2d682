"""Collecting what no version uses any more: stored bundles, option files, unfinished uploads,
gallery images and environments; and environments past the hub's disk budget (``--env-budget``).

Everything the hub keeps by content is shared: two services with the same bundle, file, image or
requirements share one copy. So nothing is removed because a service or version is deleted: the
collector removes what *no* row of the database names:

- ``bundles/<sha256>/``: no version's ``bundle_hash``;
- ``files/<sha256>`` (and its unpacked ``.d`` folder): no version's option values;
- ``uploads/<id>.part``: uploads not finished within a day;
- ``gallery/<sha256>.<ext>``: no version's gallery;
- ``envs/<key>/``: no version built in it, no process running in it, and not being built.

What a deletion let go is removed at once; anything else nothing names (left by a crash, or a file
uploaded and never used) only after a grace time (an hour; a day for uploaded files). A bundle or
image being registered is *pinned* from the moment it is stored until its row is committed, under
:attr:`Collector.store_lock`, so a registration of the very bundle a deletion let go keeps it.

With a budget, complete environments are then removed least recently used first (the time of their
last start) until they fit, except those a process runs in: a version whose environment was removed
is built again (from the download cache) when it starts next.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import fcntl
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Optional

from ..budget import tree_size
from . import orm
from .builder import COMPLETE_MARKER
from .bundles import read_config

log = logging.getLogger("algolink.hub")

#: Seconds a stored bundle or gallery image nothing names is kept (a registration in flight).
GRACE = 3600.0
#: Seconds an unfinished upload, or a finished file no version uses yet, is kept.
UPLOAD_GRACE = 24 * 3600.0
#: How long after a change the collector runs (changes close together are collected once).
DELAY = 1.0
#: The file in an environment that caches its size in bytes.
SIZE_FILE = ".algolink-size"


def env_size(path: Path) -> int:
    """An environment's size, measured once and kept in it (a built environment does not change)."""
    cached = path / SIZE_FILE
    try:
        return int(cached.read_text())
    except (OSError, ValueError):
        pass
    size = tree_size(path)
    try:
        cached.write_text(str(size))
    except OSError:
        pass
    return size


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except OSError:
        return float("inf")


def _remove(path: Path) -> int:
    """Remove a file or folder; the bytes it held."""
    try:
        if path.is_dir() and not path.is_symlink():
            size = tree_size(path)
            shutil.rmtree(path, ignore_errors=True)
            return size
        size = path.lstat().st_size
        path.unlink()
        return size
    except FileNotFoundError:
        return 0


class Collector:
    """Removes what nothing uses (see the module's text); ``env_budget`` is in bytes (None: none)."""

    def __init__(self, hub: Any, env_budget: Optional[int] = None) -> None:
        self.hub = hub
        self.env_budget = env_budget
        self._timer: Optional[asyncio.TimerHandle] = None
        self._running: Optional[asyncio.Task] = None
        self._again = False
        #: What deletions let go since the last collection: removed without a grace time.
        self._released: dict = collections.defaultdict(set)
        #: Bundles and gallery images being registered (stored, their row not committed yet).
        self.pinned: collections.Counter = collections.Counter()
        self.store_lock = threading.Lock()
        #: What the last collection removed (for the log and the tests).
        self.last: dict = {}

    def pin(self, name: str) -> None:
        """Keep ``name`` (a bundle hash or gallery file) until :meth:`unpin`; call it holding
        :attr:`store_lock`, right after storing it."""
        self.pinned[name] += 1

    def unpin(self, name: str) -> None:
        self.pinned[name] -= 1
        if self.pinned[name] <= 0:
            del self.pinned[name]

    def release(self, **names: Any) -> None:
        """What a deletion let go (``bundles=``, ``files=``, ``gallery=``, ``uploads=``): removed
        with no grace time once nothing names it."""
        for kind, values in names.items():
            self._released[kind].update(v for v in values if v)

    def soon(self) -> None:
        """Collect in a moment (a change was made: a delete, a build)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._timer is None:
            self._timer = loop.call_later(DELAY, self._start)

    def _start(self) -> None:
        self._timer = None
        if self._running is not None and not self._running.done():
            self._again = True
            return
        self._running = asyncio.ensure_future(self.collect())

    async def collect(self) -> dict:
        """One collection; what it removed: ``{kind: [names]}`` and ``bytes``."""
        released, self._released = self._released, collections.defaultdict(set)
        try:
            keep = self._referenced()
            running = set(self.hub.publisher.env_of.values())
            removed = await asyncio.to_thread(self._collect, keep, running, released)
        except Exception:
            log.exception("collecting unused files failed")
            return {}
        finally:
            if self._again:
                self._again = False
                self.soon()
        self.last = removed
        names = {k: len(v) for k, v in removed.items() if isinstance(v, list) and v}
        if names:
            log.info(
                "collected %s (%.1f MB)",
                ", ".join(f"{n} {k}" for k, n in names.items()),
                removed["bytes"] / 2**20,
            )
        return removed

    def _referenced(self) -> dict:
        """What the database names: bundles, files, gallery images and environments."""
        bundles, files, gallery, envs = set(), set(), set(), set()
        unknown_envs = False
        with self.hub.session() as db:
            for version in db.query(orm.Version):
                bundles.add(version.bundle_hash)
                for value in (version.options or {}).values():
                    if isinstance(value, dict) and isinstance(value.get("file"), str):
                        files.add(value["file"])
                for image in version.gallery or []:
                    if isinstance(image, dict) and isinstance(image.get("file"), str):
                        gallery.add(image["file"])
                if version.env_key:
                    envs.add(version.env_key)
                    continue
                bundle = self.hub.data / "bundles" / version.bundle_hash
                try:  # built before the hub recorded it (or not yet): the key it would have
                    envs.add(self.hub.builder.env_key(read_config(bundle), bundle))
                except Exception:
                    unknown_envs = True
            stale = orm.utcnow() - datetime.timedelta(seconds=UPLOAD_GRACE)
            uploads = {u.id for u in db.query(orm.Upload) if u.created >= stale}
            old_uploads = [u for u in db.query(orm.Upload) if u.created < stale]
            for upload in old_uploads:
                db.delete(upload)
            if old_uploads:
                db.commit()
        return {
            "bundles": bundles,
            "files": files,
            "gallery": gallery,
            "envs": None if unknown_envs else envs,
            "uploads": uploads,
        }

    def _collect(self, keep: dict, running: set, released: dict) -> dict:
        data = self.hub.data
        now = time.time()
        removed: dict = {"bundles": [], "files": [], "uploads": [], "gallery": [], "envs": []}
        freed = 0

        def unused(kind: str, name: str, path: Path, grace: float) -> bool:
            if name in keep[kind]:
                return False
            return name in released.get(kind, ()) or _age(path, now) > grace

        for path in _children(data / "bundles"):
            if path.name.startswith(".tmp-"):
                if _age(path, now) > GRACE:  # a copy cut short
                    freed += _remove(path)
                continue
            if unused("bundles", path.name, path, GRACE):
                with self.store_lock:
                    if path.name in self.pinned:
                        continue
                    freed += _remove(path)
                removed["bundles"].append(path.name)
        gone_files = []
        for path in _children(data / "files"):
            sha = path.name[: -len(".d")] if path.name.endswith(".d") else path.name
            if unused("files", sha, path, UPLOAD_GRACE):
                freed += _remove(path)
                if not path.name.endswith(".d"):
                    removed["files"].append(sha)
                    gone_files.append(sha)
        for path in _children(data / "uploads"):
            upload_id = path.name.split(".", 1)[0]
            if unused("uploads", upload_id, path, GRACE):
                freed += _remove(path)
                removed["uploads"].append(upload_id)
        for path in _children(data / "gallery"):
            if unused("gallery", path.name, path, GRACE):
                with self.store_lock:
                    if path.name in self.pinned:
                        continue
                    freed += _remove(path)
                removed["gallery"].append(path.name)
        if gone_files:
            with self.hub.session() as db:
                for sha in gone_files:
                    row = db.get(orm.StoredFile, sha)
                    if row is not None:
                        db.delete(row)
                db.commit()
        envs_root = self.hub.builder.envs_root
        wanted = keep["envs"]
        if wanted is not None:
            for path in _children(envs_root):
                if path.name.startswith(".") or path.suffix == ".lock" or not path.is_dir():
                    continue
                if path.name in wanted or path.name in running:
                    continue
                if not (path / COMPLETE_MARKER).is_file() and _age(path, now) < GRACE:
                    continue  # being built
                freed += self._remove_env(envs_root, path, removed)
        if self.env_budget is not None:
            freed += self._fit_budget(envs_root, running, removed)
        removed["bytes"] = freed
        return removed

    def _remove_env(self, envs_root: Path, path: Path, removed: dict) -> int:
        """Remove an environment unless a build holds its lock: the bytes freed."""
        lock = envs_root / f"{path.name}.lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return 0  # a build of it runs now
            size = _remove(path)
            removed["envs"].append(path.name)
            return size
        finally:
            os.close(fd)

    def _fit_budget(self, envs_root: Path, running: set, removed: dict) -> int:
        envs = []
        for path in _children(envs_root):
            marker = path / COMPLETE_MARKER
            if path.is_dir() and not path.name.startswith(".") and marker.is_file():
                envs.append((marker.stat().st_mtime, path))
        total = sum(env_size(path) for _used, path in envs)
        freed = 0
        for _used, path in sorted(envs):
            if total <= self.env_budget:
                break
            if path.name in running:
                continue
            size = env_size(path)
            got = self._remove_env(envs_root, path, removed)
            if got:
                log.info(
                    "environment %s removed to fit --env-budget (%.0f MB)", path.name, size / 2**20
                )
                total -= size
                freed += got
        return freed


def _children(folder: Path) -> list:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def held_by(version: orm.Version) -> dict:
    """What a version names, for :meth:`Collector.release` when it is deleted."""
    files = [
        value["file"]
        for value in (version.options or {}).values()
        if isinstance(value, dict) and isinstance(value.get("file"), str)
    ]
    gallery = [g["file"] for g in version.gallery or [] if isinstance(g, dict) and "file" in g]
    return {"bundles": [version.bundle_hash], "files": files, "gallery": gallery}
