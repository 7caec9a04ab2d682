"""``--backend ray``: every version runs as a Ray Serve application of its own, with replicas on a cluster.

The hub talks to the cluster through Ray's documented HTTP interfaces on the head's dashboard
(``--ray-address``, e.g. ``http://head:8265``): Serve's REST API (``GET``/``PUT
/api/serve/applications/``) to run and stop applications and read their state, the version endpoint
and one Ray job to check the cluster when the hub starts. The hub itself never imports ``ray``: the
cluster's Ray and Python are the cluster's business, and only ``modelcloud`` must be installed on its
nodes beside ``ray[serve]`` (its :mod:`modelcloud.ray_replica` is what a replica runs).

A version's application (``algolink-<hub>.<project>.<service>.<number>``) has one deployment,
``Replica``, whose replicas each start the bundle's unchanged server as a child process in the
environment the hub built, and write its address to ``replicas/`` beside the version's log. The
folders are the hub's: every node must see the hub's data folder at the same path (a shared folder).
An application is never updated in place: a new version is a new application, started, waited for
until ``RUNNING`` (within the hub's ``--health-timeout``), then routed to; the old one is deleted once
idle, as with the local backend.

``/serve`` sends requests to the replicas' own addresses, in turn, not through Serve's HTTP proxy
(which costs several times more per request); a replica that refuses a connection or breaks off
before answering is skipped for a while and the request goes to another one. Every second the hub
reads Serve's state: the addresses of replicas Serve reports ``RUNNING``, and the application's
status, mapped to the hub's states (``RUNNING`` with a replica: online; none answering: restarting;
``DEPLOY_FAILED`` or gone: failed).

The applications are not exposed through Serve's proxy (``route_prefix: null``): a service's token
checks are the hub's, and Serve's proxy has none. Applications the hub did not make are left as
they are (their deployed configuration is sent back with every change, as Serve's declarative API
requires).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shlex
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .builder import Environment
from .bundles import BundleConfig, Scaling, entry_name
from .processes import log_tail
from .runner import StartError, service_argv, service_environment
from .sandbox import Identity, Isolation, hub_tag
from .shim import append_line, stamp

__all__ = ["MIN_RAY", "RayBackend", "RayError", "serve_settings"]

log = logging.getLogger(__name__)

#: The oldest Ray whose Serve has what the replicas use (custom autoscaling metrics and policies).
MIN_RAY = (2, 51)
#: How often Serve's state is read.
POLL_SECONDS = 1.0
#: How long a replica that failed a request is skipped.
SKIP_SECONDS = 5.0
#: The interval and timeout of Serve's health checks of a replica.
HEALTH_PERIOD, HEALTH_TIMEOUT = 2.0, 10.0
#: Requests in progress per replica that autoscaling keeps to, unless ``replicas: target`` says.
DEFAULT_TARGET = 2.0

_CHECK = (
    "import json, sys, platform\n"
    "found = {'python': platform.python_version(), 'executable': sys.executable}\n"
    "try:\n"
    "    import ray; found['ray'] = ray.__version__\n"
    "except Exception as e:\n"
    "    found['ray_error'] = str(e)\n"
    "try:\n"
    "    import modelcloud, modelcloud.ray_replica; found['modelcloud'] = modelcloud.__version__\n"
    "except Exception as e:\n"
    "    found['modelcloud_error'] = f'{type(e).__name__}: {e}'\n"
    "print('ALGOLINK-CHECK ' + json.dumps(found))\n"
)


class RayError(Exception):
    """The cluster cannot be used as it is; the message is one sentence that says what to do."""


def _version(text: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:2])


def serve_settings(scaling: Scaling) -> dict:
    """The Serve deployment options of ``algolink.yml``'s scaling settings: ``replicas`` as
    ``num_replicas`` or an ``autoscaling_config`` (with the replicas' own count of requests in
    progress as its metric), ``gpus``/``cpus``/``memory`` as the replica's ``ray_actor_options``
    and ``max_ongoing_requests`` as it is."""
    options: dict[str, Any] = {}
    if scaling.autoscaling is not None:
        auto = scaling.autoscaling
        config: dict[str, Any] = {
            "min_replicas": int(auto["min"]),
            "max_replicas": int(auto["max"]),
            "target_ongoing_requests": float(auto.get("target", DEFAULT_TARGET)),
            "policy": {"policy_function": "modelcloud.ray_replica:ongoing_requests_policy"},
        }
        if "upscale_delay" in auto:
            config["upscale_delay_s"] = float(auto["upscale_delay"])
        if "downscale_delay" in auto:
            config["downscale_delay_s"] = float(auto["downscale_delay"])
        if config.get("upscale_delay_s", 30) < 10 or config.get("downscale_delay_s", 600) < 10:
            config["look_back_period_s"] = 2.0  # quick reactions read a short window
        config["initial_replicas"] = max(1, config["min_replicas"])
        options["autoscaling_config"] = config
    else:
        options["num_replicas"] = scaling.replicas or 1
    actor: dict[str, Any] = {"num_cpus": scaling.cpus if scaling.cpus is not None else 1}
    if scaling.gpus:
        actor["num_gpus"] = scaling.gpus
    if scaling.memory:
        actor["memory"] = scaling.memory
    options["ray_actor_options"] = actor
    if scaling.max_ongoing_requests is not None:
        options["max_ongoing_requests"] = scaling.max_ongoing_requests
    else:
        options["max_ongoing_requests"] = 1000  # the child queues; Serve's own count stays at 0
    return options


@dataclass
class _App:
    key: str
    name: str
    config: dict
    log_path: Path
    replicas_dir: Path
    health_timeout: float
    state: str = "starting"
    #: Addresses of the replicas that answer, in order, and the turn of the next request.
    endpoints: list = field(default_factory=list)
    addresses: list = field(default_factory=list)
    turn: int = 0
    #: Addresses that failed a request lately -> until when they are skipped.
    down: dict = field(default_factory=dict)
    status: str = ""
    message: str = ""
    replicas: dict = field(default_factory=dict)
    stopping: bool = False

    def event(self, text: str) -> None:
        append_line(self.log_path, f"[{stamp()}] ==> {text}")


class RayBackend:
    """The Ray Serve backend (:class:`~.backend.Backend`); see the module's text."""

    name = "ray"

    def __init__(
        self,
        address: str,
        data: Path,
        *,
        on_state: Optional[Callable[[str, str, Optional[str]], None]] = None,
        isolation: Optional[Isolation] = None,
        poll_interval: float = POLL_SECONDS,
        request_timeout: float = 30.0,
    ) -> None:
        address = address.strip().rstrip("/")
        if "://" not in address:
            address = "http://" + address
        self.address = address
        self.prefix = f"algolink-{hub_tag(data)}."
        self.on_state = on_state
        self.isolation = isolation
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout
        self.cluster: dict = {}
        self._apps: dict[str, _App] = {}
        self._foreign: list = []
        self._serve: dict = {}
        self._put_lock = asyncio.Lock()
        self._poller: Optional[asyncio.Task] = None
        self._http = AsyncHTTPClient(force_instance=True)
        self._changed = asyncio.Event()

    # -- the cluster -------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: Any = None, timeout: float = 0) -> Any:
        request = HTTPRequest(
            self.address + path,
            method=method,
            body=None if body is None else json.dumps(body),
            headers={"Content-Type": "application/json"} if body is not None else None,
            request_timeout=timeout or self.request_timeout,
            connect_timeout=10,
        )
        try:
            answer = await self._http.fetch(request)
        except HTTPClientError as e:
            text = e.response.body.decode("utf-8", "replace")[:500] if e.response else ""
            raise RayError(
                f"Ray's dashboard at {self.address} answered {method} {path} with {e.code}: "
                f"{text.strip() or e.message}"
            ) from None
        except (OSError, asyncio.TimeoutError) as e:
            raise RayError(
                f"Ray's dashboard at {self.address} cannot be reached ({e}): start the cluster's "
                "head with its dashboard (ray start --head --dashboard-host 0.0.0.0), or give the "
                "hub its address with --ray-address http://HEAD:8265."
            ) from None
        text = answer.body.decode("utf-8", "replace")
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    async def connect(self) -> str:
        """Check the cluster (its Ray, its Python, modelcloud on it), take stock of what runs there and
        start following it; a :class:`RayError` says what is wrong in one sentence. Returns a line
        that describes the cluster."""
        found = await self._call("GET", "/api/version")
        ray_version = (found or {}).get("ray_version", "") if isinstance(found, dict) else ""
        if not ray_version:
            raise RayError(
                f"{self.address} does not answer as Ray's dashboard (GET /api/version): give "
                "--ray-address the dashboard's address, e.g. http://HEAD:8265."
            )
        if _version(ray_version) < MIN_RAY:
            raise RayError(
                f"The cluster runs Ray {ray_version}, and the hub needs Ray "
                f"{'.'.join(map(str, MIN_RAY))} or newer (for Serve's custom autoscaling metrics): "
                "upgrade ray[serve] on every node."
            )
        checked = await self._check_nodes()
        if "ray_error" in checked or "modelcloud_error" in checked:
            raise RayError(
                f"The cluster's Python ({checked.get('python')} at {checked.get('executable')}) "
                f"cannot import modelcloud.ray_replica ({checked.get('modelcloud_error')}): install "
                "AlgoLink's runtime (pip install ./runtime from the AlgoLink repository, the "
                "modelcloud package) next to ray[serve] on every node."
            )
        from modelcloud import __version__ as ours

        if checked.get("modelcloud") != ours:
            raise RayError(
                f"The cluster has modelcloud {checked.get('modelcloud')} and the hub "
                f"{ours}: install the hub's modelcloud on every node, so that replicas speak the "
                "hub's protocol."
            )
        if _version(checked.get("python", "0")) < (3, 9):
            raise RayError(
                f"The cluster runs Python {checked.get('python')}, and modelcloud needs 3.9 or "
                "newer: run Ray on a newer Python."
            )
        self.cluster = {"ray": ray_version, **checked}
        await self._refresh()
        self._poller = asyncio.ensure_future(self._poll())
        return (
            f"Ray Serve backend: Ray {ray_version} on Python {checked.get('python')} at "
            f"{self.address}"
        )

    async def _check_nodes(self) -> dict:
        """What the cluster's Python has, from a Ray job that imports it (Ray's job API)."""
        deadline = time.monotonic() + 120
        while True:  # a head that has just started has no job agent yet for a few seconds
            try:
                submitted = await self._call(
                    "POST",
                    "/api/jobs/",
                    {
                        "entrypoint": f"python -c {shlex.quote(_CHECK)}",
                        "metadata": {"by": "algolink"},
                    },
                )
                break
            except RayError:
                if time.monotonic() > deadline - 60:
                    raise
                await asyncio.sleep(1)
        job = (submitted or {}).get("submission_id") or (submitted or {}).get("job_id")
        status = ""
        while time.monotonic() < deadline:
            info = await self._call("GET", f"/api/jobs/{job}")
            status = (info or {}).get("status", "")
            if status in ("SUCCEEDED", "FAILED", "STOPPED"):
                break
            await asyncio.sleep(0.5)
        logs = await self._call("GET", f"/api/jobs/{job}/logs")
        text = (logs or {}).get("logs", "") if isinstance(logs, dict) else str(logs or "")
        for line in text.splitlines():
            if line.startswith("ALGOLINK-CHECK "):
                return json.loads(line.split(" ", 1)[1])
        raise RayError(
            f"A Ray job that checks the cluster's Python ended {status or 'without an end'} and "
            f"printed: {text.strip()[-300:] or 'nothing'}; make `python` on the cluster's PATH "
            "the one that has ray[serve] and modelcloud."
        )

    async def _refresh(self) -> dict:
        found = await self._call("GET", "/api/serve/applications/")
        found = found if isinstance(found, dict) else {}
        self._serve = found
        apps = found.get("applications") or {}
        self._foreign = [
            details.get("deployed_app_config")
            for name, details in apps.items()
            if not name.startswith(self.prefix) and details.get("deployed_app_config")
        ]
        return apps

    async def _put(self) -> None:
        """Serve's declarative API: every application, ours as we want them and the others as
        they are."""
        async with self._put_lock:
            apps = await self._refresh()
            ours = [a.config for a in self._apps.values() if not a.stopping]
            body: dict[str, Any] = {"applications": [*self._foreign, *ours]}
            if apps or self._serve.get("controller_info"):
                for keep in ("proxy_location", "http_options", "grpc_options"):
                    if self._serve.get(keep) is not None:
                        body[keep] = self._serve[keep]
            else:
                body["proxy_location"] = "Disabled"  # nothing of the hub's goes through it
            await self._call("PUT", "/api/serve/applications/", body, timeout=60)

    # -- queries -----------------------------------------------------------------------------------

    def app_name(self, key: str) -> str:
        return self.prefix + key.replace("/", ".")

    def state(self, key: str) -> Optional[str]:
        app = self._apps.get(key)
        return app.state if app is not None else None

    def keys(self) -> list[str]:
        return list(self._apps)

    def ports(self) -> set:
        return set()  # replicas take ports on their own nodes

    def url(self, key: str) -> Optional[str]:
        app = self._apps.get(key)
        if app is None or app.state != "online" or not app.endpoints:
            return None
        return app.endpoints[0]

    def pick(self, key: str) -> Optional[tuple[str, int]]:
        app = self._apps.get(key)
        if app is None or not app.endpoints:
            return None
        addresses = app.addresses
        count = len(addresses)
        if not app.down:  # the usual case: every replica in turn
            app.turn += 1
            return addresses[app.turn % count]
        now = time.monotonic()
        for _ in range(count):
            app.turn += 1
            address = addresses[app.turn % count]
            if app.down.get(address, 0) <= now:
                return address
        return addresses[app.turn % count]  # all failed lately: try anyway

    def another(self, key: str, failed: tuple[str, int]) -> Optional[tuple[str, int]]:
        app = self._apps.get(key)
        if app is None:
            return None
        now = time.monotonic()
        app.down[failed] = now + SKIP_SECONDS
        for address in app.addresses:
            if address != failed and app.down.get(address, 0) <= now:
                return address
        return None

    def replicas(self, key: str) -> list[dict]:
        """The version's replicas as Serve reports them (id, state, node, pid, address)."""
        app = self._apps.get(key)
        return list(app.replicas.values()) if app is not None else []

    # -- running -----------------------------------------------------------------------------------

    def _spec(
        self,
        key: str,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        log_path: Path,
        extra_env: dict,
        health_timeout: float,
        who: Optional[Identity],
        read_only: tuple,
        writable: tuple,
        tmp: Optional[Path],
    ) -> dict:
        argv = service_argv(config, env, bundle_dir, self.isolation, who, read_only, writable, tmp)
        process_env = service_environment(env, bundle_dir, tmp, who, extra_env)
        if config.scaling.gpus == 0:
            process_env.setdefault("CUDA_VISIBLE_DEVICES", "")
        host = extra_env.get("ALGOLINK_HOST")
        in_process = {}
        if config.scaling.in_process:
            entry = entry_name(bundle_dir)
            if entry is None:
                raise StartError(f"The bundle in {bundle_dir} has no cloud_model.py to load.")
            in_process = {
                "in_process": True,
                "entry": entry,
                "concurrency": config.scaling.max_ongoing_requests,
            }
        return {
            **in_process,
            "key": key,
            "argv": argv,
            "cwd": str(bundle_dir),
            "env": process_env,
            "entrypoint": config.entrypoint,
            "log": str(log_path),
            "replicas": str(Path(log_path).parent / "replicas"),
            "health_timeout": health_timeout,
            # The hub's --service-host, unless it is the loopback default: then each node's own
            # address, where the hub reaches it.
            "host": host if host and host not in ("127.0.0.1", "::1", "localhost") else "",
        }

    async def start(
        self,
        key: str,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        port: int,
        log_path: Path,
        *,
        extra_env: Optional[dict[str, str]] = None,
        health_timeout: float = 60,
        who: Optional[Identity] = None,
        read_only: Iterable[Path] = (),
        writable: Iterable[Path] = (),
        tmp: Optional[Path] = None,
    ) -> None:
        """Deploy the version as a Serve application and return once it is ``RUNNING`` with a
        replica that answers (``port`` is not used: each replica takes one on its node)."""
        if key in self._apps:
            await self.stop(key)
        extra = {k: str(v) for k, v in (extra_env or {}).items()}
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        spec = self._spec(
            key,
            env,
            Path(bundle_dir),
            config,
            Path(log_path),
            extra,
            health_timeout,
            who,
            tuple(read_only),
            tuple(writable),
            tmp,
        )
        name = self.app_name(key)
        deployment = {
            "name": "Replica",
            "health_check_period_s": HEALTH_PERIOD,
            "health_check_timeout_s": HEALTH_TIMEOUT,
            "graceful_shutdown_timeout_s": 10,
            **serve_settings(config.scaling),
        }
        app = _App(
            key=key,
            name=name,
            config={
                "name": name,
                "route_prefix": None,
                "import_path": "modelcloud.ray_replica:app",
                "args": spec,
                "deployments": [deployment],
            },
            log_path=Path(log_path),
            replicas_dir=Path(spec["replicas"]),
            health_timeout=health_timeout,
        )
        for stale in app.replicas_dir.glob("*.json"):
            stale.unlink(missing_ok=True)
        self._apps[key] = app
        self._notify(key, "starting", None)
        replicas = deployment.get("num_replicas") or deployment["autoscaling_config"]
        app.event(
            f"Deploying Serve application {name} on the Ray cluster at {self.address} "
            f"(replicas: {json.dumps(replicas)}, per replica: "
            f"{json.dumps(deployment['ray_actor_options'])})"
        )
        try:
            await self._put()
            await self._wait_running(app)
        except BaseException as e:
            message = str(e) if isinstance(e, (StartError, RayError)) else None
            if message is None and isinstance(e, Exception):
                message = f"The Serve application could not be deployed: {e}"
            app.event(f"Start failed: {(message or 'cancelled').splitlines()[0]}")
            app.stopping = True
            with contextlib.suppress(RayError):
                await self._put()
            if self._apps.get(key) is app:
                del self._apps[key]
                self._notify(key, "failed", message or "The start was cancelled.")
            if isinstance(e, RayError):
                raise StartError(str(e)) from None
            raise
        app.state = "online"
        app.event(f"Online: {len(app.endpoints)} replica(s) at {', '.join(app.endpoints)}")
        self._notify(key, "online", None)

    async def _wait_running(self, app: _App) -> None:
        # Scheduling, the environment's start and setup: the hub's health timeout, plus Serve's own
        # minute to place the replicas.
        deadline = time.monotonic() + app.health_timeout + 60
        while True:
            self._changed.clear()
            if app.status == "RUNNING" and app.endpoints:
                return
            if app.status == "DEPLOY_FAILED":
                raise StartError(
                    f"Ray Serve could not start the version: {app.message.strip() or 'no reason'}"
                    f"; its log ends with:\n{log_tail(app.log_path)}"
                )
            if time.monotonic() > deadline:
                raise StartError(
                    f"The version was not running on the Ray cluster within "
                    f"{app.health_timeout + 60:g} s (Serve says {app.status or 'nothing'}"
                    f"{': ' + app.message.strip() if app.message.strip() else ''}); its log ends "
                    f"with:\n{log_tail(app.log_path)}"
                )
            if self._poller is None or self._poller.done():
                await self._update()
                await asyncio.sleep(self.poll_interval)
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), self.poll_interval * 2)

    async def adopt(
        self,
        key: str,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        log_path: Path,
        **options: Any,
    ) -> bool:
        """Take back a version whose application an earlier hub deployed and left running: True
        when Serve runs it with a replica that answers."""
        name = self.app_name(key)
        details = ((self._serve.get("applications") or {}).get(name)) or {}
        if details.get("status") != "RUNNING" or not details.get("deployed_app_config"):
            return False
        app = _App(
            key=key,
            name=name,
            config=details["deployed_app_config"],
            log_path=Path(log_path),
            replicas_dir=Path(log_path).parent / "replicas",
            health_timeout=float(options.get("health_timeout", 60)),
        )
        self._apps[key] = app
        self._read(app, details)
        if not app.endpoints:
            del self._apps[key]
            return False
        app.state = "online"
        app.event(f"Taken back by a new hub: {len(app.endpoints)} replica(s) answer")
        self._notify(key, "online", None)
        return True

    async def prune(self) -> None:
        """Delete the applications of this hub that no version of it runs now (left by an earlier
        hub: versions kept warm then, or deleted since)."""
        apps = await self._refresh()
        known = {a.name for a in self._apps.values()}
        stale = sorted(n for n in apps if n.startswith(self.prefix) and n not in known)
        if stale:
            log.info("deleting Serve applications nothing uses: %s", ", ".join(stale))
            await self._put()

    async def stop(self, key: str, timeout: float = 10) -> None:
        """Delete the version's application (Serve gives its replicas' requests time to end)."""
        app = self._apps.get(key)
        if app is None:
            return
        app.stopping = True
        was = app.state
        try:
            await self._put()
        except RayError as e:
            app.event(f"Deleting the Serve application failed: {e}")
        self._apps.pop(key, None)
        app.state = "stopped"
        app.event("Stopped (the Serve application is deleted).")
        for stale in app.replicas_dir.glob("*.json"):
            stale.unlink(missing_ok=True)
        if was != "failed":
            self._notify(key, "stopped", None)

    async def stop_all(self, timeout: float = 10) -> None:
        for app in self._apps.values():
            app.stopping = True
        if self._apps:
            with contextlib.suppress(RayError):
                await self._put()
        for key in list(self._apps):
            app = self._apps.pop(key)
            app.event("Stopped with the hub (the Serve application is deleted).")
            self._notify(key, "stopped", None)
        await self.detach_all()

    async def detach_all(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        for app in self._apps.values():
            app.event("The hub stopped; the Serve application keeps running for the next hub.")
        self._apps.clear()
        self._http.close()

    # -- following Serve ---------------------------------------------------------------------------

    async def _poll(self) -> None:
        while True:
            try:
                await self._update()
            except asyncio.CancelledError:
                raise
            except RayError as e:
                log.warning("reading Serve's state failed: %s", e)
            except Exception:
                log.exception("reading Serve's state failed")
            self._changed.set()
            await asyncio.sleep(self.poll_interval)

    async def _update(self) -> None:
        apps = await self._refresh()
        for key, app in list(self._apps.items()):
            if app.stopping:
                continue
            details = apps.get(app.name)
            before = (app.state, len(app.endpoints))
            if details is None:
                if app.state == "starting" and app.status == "":
                    continue  # the PUT is not seen yet
                app.status, app.message = "DELETED", ""
                app.endpoints, app.addresses = [], []
            else:
                self._read(app, details)
            self._follow(key, app, before)

    def _read(self, app: _App, details: dict) -> None:
        app.status = details.get("status", "")
        app.message = details.get("message", "") or ""
        replicas: dict = {}
        for deployment in (details.get("deployments") or {}).values():
            if deployment.get("message") and app.status != "RUNNING":
                app.message = app.message or deployment["message"]
            for replica in deployment.get("replicas") or []:
                rid = replica.get("replica_id")
                if rid:
                    replicas[rid] = {
                        "id": rid,
                        "state": replica.get("state"),
                        "node": replica.get("node_ip"),
                        "node_id": replica.get("node_id"),
                        "pid": replica.get("pid"),
                        "url": None,
                    }
        endpoints = []
        for rid, replica in replicas.items():
            known = app.replicas.get(rid)
            if known is not None and known["url"]:  # a replica's record never changes: read once
                replica["url"], replica["gpus"] = known["url"], known.get("gpus")
            else:
                try:
                    found = json.loads((app.replicas_dir / f"{rid}.json").read_text())
                except (OSError, ValueError):
                    found = {}
                replica["url"], replica["gpus"] = found.get("url"), found.get("gpus")
            if replica["state"] == "RUNNING" and replica["url"]:
                endpoints.append(replica["url"])
        if replicas.keys() != app.replicas.keys():  # the records of replicas Serve no longer has
            for record in app.replicas_dir.glob("*.json"):
                if record.stem not in replicas:
                    record.unlink(missing_ok=True)
        app.replicas = replicas
        endpoints.sort()
        if endpoints != app.endpoints:
            app.endpoints = endpoints
            app.addresses = [_address(url) for url in endpoints]
        now = time.monotonic()
        app.down = {a: t for a, t in app.down.items() if t > now and a in app.addresses}

    def _follow(self, key: str, app: _App, before: tuple) -> None:
        """Serve's state -> the hub's, reported when it changes."""
        if app.state == "starting":
            return  # start() reports
        if app.status in ("DEPLOY_FAILED", "DELETED"):
            if app.state != "failed":
                app.state = "failed"
                why = (
                    "Its Serve application was deleted outside the hub"
                    if app.status == "DELETED"
                    else f"Ray Serve gave up on it: {app.message.strip() or 'no reason'}"
                )
                app.event(why)
                self._notify(key, "failed", f"{why}; its log ends with:\n{log_tail(app.log_path)}")
            return
        if app.endpoints and app.state != "online":
            app.state = "online"
            app.event(f"Online again: {len(app.endpoints)} replica(s) answer")
            self._notify(key, "online", None)
        elif not app.endpoints and app.state == "online":
            app.state = "restarting"
            why = f"No replica answers (Serve says {app.status}): Serve is replacing them."
            app.event(why)
            self._notify(key, "restarting", why)
        elif app.state == "online" and before[1] != len(app.endpoints):
            app.event(f"{len(app.endpoints)} replica(s) answer: {', '.join(app.endpoints)}")

    def _notify(self, key: str, state: str, message: Optional[str]) -> None:
        if self.on_state is None:
            return
        try:
            self.on_state(key, state, message)
        except Exception:
            log.exception("on_state(%r, %r) failed", key, state)


def _address(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port.split("/")[0])
