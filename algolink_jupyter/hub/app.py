"""The hub's configuration and start-up: ``algolink hub [--host] [--port] [--data] [--db]``.

On start the hub upgrades its database to the newest schema (Alembic), makes or reuses the admin token
(``<data>/admin_token``, mode 600, printed as ``Admin token: <token>`` the first time), serves the API,
the gallery and ``/serve``, and brings back every service that was online when it stopped.

The data folder holds everything: ``hub.sqlite`` (unless ``--db`` names PostgreSQL), ``bundles/<sha256>``
(bundles by content), ``envs/`` (built environments, shared by bundles that need the same one),
``services/<project>/<service>/<version>/`` (build and run logs), ``gallery/`` (images by content),
``files/`` (setup options' files by content), ``uploads/`` (option files being uploaded, kept across
restarts so they resume) and ``tmp/`` (uploads being unpacked).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any, Optional

from tornado import web
from tornado.log import access_log
from tornado.netutil import bind_sockets

from . import access, orm
from .apihandlers import default_handlers as api_handlers
from .apihandlers.base import NotFoundHandler
from .apihandlers.common import redact
from .builder import Builder
from .collect import Collector
from .devmode import ConnectLimiter
from .guard import GuardedHTTPServer, GuardedSocket, default_max_connections, raise_nofile
from .handlers import app_settings as page_settings
from .handlers import page_handlers
from .metrics import DEFAULT_LOG_SIZE, DEFAULT_RETENTION, Meter
from .proxy import HubServer, UpstreamPool
from .publisher import Publisher
from .raybackend import RayBackend, RayError
from .results import ResultStore
from .runner import Runner, free_port
from .sandbox import Isolation, IsolationError, make_not_dumpable
from .sealing import Sealer
from .settings import DEFAULT_PORT, add_arguments

log = logging.getLogger("algolink.hub")

ADMIN = "admin"


class StartError(RuntimeError):
    """The hub cannot start; the message says why."""


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's access log line, without secrets in the query."""
    status = handler.get_status()
    if status < 400:
        level = access_log.info
    elif status < 500:
        level = access_log.warning
    else:
        level = access_log.error
    request = handler.request
    took = 1000.0 * request.request_time()
    level(
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        redact(request.uri or ""),
        request.remote_ip,
        took,
    )


def default_data_dir() -> Path:
    return Path(os.environ.get("ALGOLINK_HUB_DATA") or "~/.algolink/hub").expanduser()


class RootHandler(web.RequestHandler):
    """``GET /``: the web UI for a browser (``Accept: text/html``), else where things are (JSON)."""

    def get(self) -> None:
        if "text/html" in self.request.headers.get("Accept", "") and type(self) is RootHandler:
            self.redirect("/projects")
            return
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(
            json.dumps(
                {
                    "name": "AlgoLink hub",
                    "api": "/api/v1",
                    "projects": "/api/v1/projects",
                    "serve": "/serve/{project}/{service}/{command}",
                    "backend": self.settings["hub"].runner.name,
                }
            )
        )


class APIRootHandler(RootHandler):
    pass


class GalleryHandler(web.StaticFileHandler):
    """Gallery images, stored by content: cached for a year, never sniffed as something else, and
    sandboxed like any answer a service's content could shape."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox")

    def get_cache_time(self, path: str, modified: Any, mime_type: str) -> int:
        return self.CACHE_MAX_AGE


class Hub:
    """One hub: its settings, database, builder, runner, publisher and HTTP server."""

    def __init__(
        self,
        *,
        data: Optional[Path] = None,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        db_url: Optional[str] = None,
        service_host: str = "127.0.0.1",
        max_upload_bytes: int = 1 << 30,
        max_bundle_bytes: int = 2 << 30,
        max_bundle_files: int = 20_000,
        max_option_file_bytes: int = 8 << 30,
        health_timeout: float = 120.0,
        manifest_timeout: float = 60.0,
        uv: Optional[str] = None,
        isolation: str = "auto",
        build_cache: Optional[Path] = None,
        stop_services_on_exit: bool = False,
        serve_origin: Optional[str] = None,
        max_connections: Optional[int] = None,
        idle_timeout: float = 60.0,
        body_timeout: float = 900.0,
        serve_timeout: float = 600.0,
        env_budget: Optional[int] = None,
        admin_user: str = "admin",
        authenticator: Optional[str] = None,
        cold_start_timeout: float = 60.0,
        spool_budget: int = 4 * 2**30,
        share_days: float = 7.0,
        share_budget: int = 256 << 20,
        metrics: bool = True,
        metrics_retention: int = DEFAULT_RETENTION,
        request_log: int = DEFAULT_LOG_SIZE,
        backend: str = "local",
        ray_address: Optional[str] = None,
    ) -> None:
        self.data = Path(data or default_data_dir()).expanduser().resolve()
        self.host = host
        self.port = port
        self.db_url = db_url or f"sqlite:///{self.data / 'hub.sqlite'}"
        self.service_host = service_host
        self.max_upload_bytes = max_upload_bytes
        self.max_bundle_bytes = max_bundle_bytes
        self.max_bundle_files = max_bundle_files
        #: The largest file a setup option may take (uploads stream to disk; 8 GiB by default).
        self.max_option_file_bytes = max_option_file_bytes
        self.health_timeout = health_timeout
        #: Where versions run (backend.py): ``local`` processes or a ``ray`` cluster's Serve, whose
        #: dashboard is at ``ray_address``.
        self.backend_name = backend
        self.ray_address = (
            ray_address or os.environ.get("RAY_DASHBOARD_ADDRESS") or "http://127.0.0.1:8265"
        )
        self.manifest_timeout = manifest_timeout
        self.uv = uv
        #: How bundle code runs (sandbox.py): auto, bwrap, users or none.
        self.isolation_mode = isolation
        self.isolation: Optional[Isolation] = None
        self.build_cache = build_cache
        #: Whether stopping the hub stops the services too (by default they keep running and the
        #: next hub takes them back).
        self.stop_services_on_exit = stop_services_on_exit
        #: Where /serve is answered when it has a host name of its own (``--serve-origin``).
        self.serve_origin = serve_origin.rstrip("/") if serve_origin else None
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.body_timeout = body_timeout
        #: Seconds a service has to answer a request /serve sent it (a 504 past it).
        self.serve_timeout = serve_timeout
        #: The first admin's user name (``--admin-user``), made on the first start.
        self.admin_user = admin_user
        #: ``module:Class`` of another way to sign in (``--authenticator``; access.py).
        self.authenticator_spec = authenticator
        #: Bytes the environments may take on disk (``--env-budget``; None: no limit).
        self.env_budget = env_budget
        #: Seconds a request waits for a version that is not running to start.
        self.cold_start_timeout = cold_start_timeout
        #: Bytes of /serve request bodies that may be spooled to disk at once (``--spool-budget``).
        self.spool_budget = spool_budget
        #: The try-it results kept behind shareable links (``--share-days``, ``--share-budget``).
        self.results = ResultStore(self.data / "results", share_days, share_budget)
        #: Whether /serve is measured (``--no-metrics`` turns it off), how long its history is kept
        #: (``--metrics-retention``, seconds) and how many requests each service's log keeps.
        self.metrics_on = metrics
        self.metrics_retention = metrics_retention
        self.request_log = max(1, request_log)
        self.meter: Optional[Meter] = None
        #: This hub's id in the hop header of the requests it sends on (devmode.HOP_HEADER).
        self.hop_id = secrets.token_hex(6)
        self.dev_connects = ConnectLimiter()
        self.admin_token: Optional[str] = None

    # --- database and tokens ----------------------------------------------------------------------

    def holds_data(self) -> list:
        """What in the data folder says a hub has used it (empty for a new one)."""
        found = []
        if (self.data / "admin_token").is_file():
            found.append("admin_token")
        for sub in ("bundles", "services"):
            folder = self.data / sub
            if folder.is_dir() and any(folder.iterdir()):
                found.append(f"{sub}/")
        return found

    def check_database(self) -> None:
        """Refuse a database that is empty or damaged where a hub's data already is: starting a new,
        empty hub over it would lose track of every service silently."""
        held = self.holds_data()
        url = self.db_url
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///") :])
            what = f"the data folder {self.data} holds a hub's data ({', '.join(held)})"
            restore = (
                f"restore {path.name} from a backup, or move the data folder away to start a new "
                "hub"
            )
            if not path.exists():
                if held:
                    raise StartError(f"The database {path} is missing, but {what}: {restore}.")
                return
            if path.stat().st_size == 0:
                if held:
                    raise StartError(
                        f"The database {path} is empty (0 bytes), but {what}: {restore}."
                    )
                return
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                    rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            except sqlite3.DatabaseError as e:
                raise StartError(
                    f"The database {path} cannot be read ({e}): {restore} (sqlite3's .recover "
                    "may save part of it)."
                ) from None
            if rows != ["ok"]:
                raise StartError(
                    f"The database {path} is damaged (SQLite's quick_check: "
                    f"{'; '.join(map(str, rows[:3]))}): {restore} (sqlite3's .recover may save "
                    "part of it)."
                )
            return
        if held:  # another database (PostgreSQL): it must be a hub's already
            from sqlalchemy import inspect

            if not inspect(self.engine).has_table("alembic_version"):
                raise StartError(
                    f"The database {orm.safe_url(url)} has no hub in it, but the data folder "
                    f"{self.data} holds a hub's data ({', '.join(held)}): point --db at that hub's "
                    "database, or use a new data folder to start a new hub."
                )

    def init_db(self) -> None:
        if self.db_url.startswith("sqlite:///"):
            self.check_database()
        self.engine = orm.make_engine(self.db_url)
        if not self.db_url.startswith("sqlite:///"):
            self.check_database()
        orm.upgrade(self.engine)
        self.session = orm.session_factory(self.engine)

    def seal_dev_tokens(self) -> None:
        """Development tokens an older hub stored in clear: sealed now (sealing.py)."""
        with self.session() as db:
            changed = False
            for service in db.query(orm.Service).filter(orm.Service.dev_token.isnot(None)):
                if not Sealer.is_sealed(service.dev_token):
                    service.dev_token = self.sealer.seal(service.dev_token)
                    changed = True
            if changed:
                db.commit()

    def own_ports(self) -> set:
        return {self.port}

    def internal_ports(self) -> set:
        """The hub's own port and its services' (what a development URL may not point at)."""
        ports = set(self.own_ports())
        runner = getattr(self, "runner", None)
        if runner is not None:
            ports |= runner.ports()
        return ports

    def init_admin(self) -> None:
        """The first admin: a user (``--admin-user``, default ``admin``) made on the first start
        with a password from ``$ALGOLINK_ADMIN_PASSWORD`` or made up, printed once and kept in
        ``<data>/admin_password`` (mode 600) until it is changed; a user an earlier hub's tokens were
        given to by the migration gets one the same way."""
        path = self.data / "admin_password"
        with self.session() as db:
            admin = db.query(orm.User).filter_by(name=self.admin_user).one_or_none()
            if admin is None and db.query(orm.User).filter_by(admin=True).count():
                admin = db.query(orm.User).filter_by(admin=True).order_by(orm.User.id).first()
            if admin is None or admin.password_hash is None:
                given = os.environ.get("ALGOLINK_ADMIN_PASSWORD") or ""
                problem = access.password_problem(given) if given else None
                if problem:
                    raise StartError(f"ALGOLINK_ADMIN_PASSWORD: {problem}")
                password = given or access.new_password()
                if admin is None:
                    admin = orm.User(name=self.admin_user, display_name="Administrator", admin=True)
                    db.add(admin)
                admin.password_hash = access.hash_password(password)
                db.commit()
                if not given:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "w") as f:
                        f.write(password + "\n")
                    print(
                        f"Admin user: {admin.name}, password {password} (also in {path} until "
                        "you change it)",
                        flush=True,
                    )
                else:
                    print(f"Admin user: {admin.name}, password from ALGOLINK_ADMIN_PASSWORD")
            elif path.is_file():
                if access.verify_password(path.read_text().strip(), admin.password_hash):
                    print(f"Admin user: {admin.name}, password in {path}", flush=True)
                else:  # changed since: the file says nothing true any more
                    path.unlink()
            self.admin_user_id, self.admin_user = admin.id, admin.name
        self.init_admin_token()

    def init_admin_token(self) -> None:
        """Reuse ``<data>/admin_token`` (a token of the first admin), or make one, print it once and
        keep it (mode 600)."""
        path = self.data / "admin_token"
        token = path.read_text().strip() if path.is_file() else ""
        first = not token
        if first:
            token = orm.new_token()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
        os.chmod(path, 0o600)
        hashed = orm.hash_token(token)
        with self.session() as db:
            for row in db.query(orm.Token).filter_by(name=ADMIN, revoked_at=None):
                if row.hashed != hashed:  # the file was replaced: the old admin token goes
                    row.revoked_at = orm.utcnow()
            row = db.query(orm.Token).filter_by(hashed=hashed).one_or_none()
            if row is None:
                row = orm.Token(name=ADMIN, hashed=hashed, prefix=token[:4])
                db.add(row)
            row.revoked_at = None
            row.user_id = self.admin_user_id
            db.commit()
            self.admin_token_id = row.id
        self.admin_token = token
        if first:
            print(f"Admin token: {token}", flush=True)
        else:
            print(f"Admin token: in {path}", flush=True)

    def create_token(
        self,
        db: Any,
        name: str,
        user_id: int,
        *,
        scopes: Optional[list] = None,
        project_id: Optional[int] = None,
        service_id: Optional[int] = None,
        expires_at: Any = None,
    ) -> tuple[str, orm.Token]:
        token = orm.new_token()
        row = orm.Token(
            name=name,
            hashed=orm.hash_token(token),
            prefix=token[:4],
            user_id=user_id,
            scopes=scopes,
            project_id=project_id,
            service_id=service_id,
            expires_at=expires_at,
        )
        db.add(row)
        db.commit()
        return token, row

    def forget_token(self, hashed: str) -> None:
        self.gate.forget_token(hashed)

    def audit(
        self,
        user: Optional[str],
        token_id: Optional[int],
        action: str,
        project: Optional[str],
        service: Optional[str],
        target: str,
        handler: Any = None,
        status: int = 200,
    ) -> None:
        """One line of the audit log (who did what, to what, from where, with what outcome)."""
        ip = (getattr(getattr(handler, "request", None), "remote_ip", "") or "")[:64]
        try:
            with self.session() as db:
                db.add(
                    orm.AuditEntry(
                        user=user,
                        token_id=token_id,
                        action=action[:64],
                        project=project,
                        service=service,
                        target=target[:512],
                        remote_ip=ip,
                        status=status,
                    )
                )
                db.commit()
        except Exception:  # the change itself is done: a failed audit line is logged, not raised
            logging.getLogger("algolink.hub").exception("writing the audit log failed")

    def forget_user(self, user_id: Optional[int] = None) -> None:
        self.gate.forget_user(user_id)

    # --- the rest -------------------------------------------------------------------------------

    def free_port(self) -> int:
        return free_port()

    def init_components(self) -> None:
        for sub in ("bundles", "envs", "services", "gallery", "tmp", "run"):
            (self.data / sub).mkdir(parents=True, exist_ok=True)
        for leftover in (self.data / "tmp").iterdir():  # uploads cut short by a stop
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            self.isolation = Isolation(self.data, self.isolation_mode)
        except IsolationError as e:
            raise StartError(str(e)) from None
        self.isolation.secure_data_folder()
        make_not_dumpable()
        print(self.isolation.describe(), flush=True)
        self.builder = Builder(
            self.data / "envs",
            uv=self.uv,
            isolation=self.isolation,
            cache_dir=self.build_cache,
            wheels=self.data / "wheels",
        )
        self.publisher = Publisher(self)
        self.publisher.cold_start_timeout = self.cold_start_timeout
        self.collector = Collector(self, self.env_budget)
        if self.backend_name == "ray":
            self.runner = RayBackend(
                self.ray_address,
                self.data,
                on_state=self.publisher.on_state,
                isolation=self.isolation,
            )
        else:
            self.runner = Runner(on_state=self.publisher.on_state, isolation=self.isolation)
        self.upstreams = UpstreamPool()
        if self.metrics_on:
            self.meter = Meter(self, self.metrics_retention, self.request_log)

    def make_app(self) -> web.Application:
        handlers = [
            (r"/", RootHandler),
            (r"/api/v1/?", APIRootHandler),
            *api_handlers,
            *page_handlers,
            (r"/gallery/(.*)", GalleryHandler, {"path": str(self.data / "gallery")}),
        ]
        return web.Application(
            handlers,
            hub=self,
            default_handler_class=NotFoundHandler,
            log_function=log_request,
            **page_settings(self.data),
        )

    def listen(self) -> None:
        nofile = raise_nofile()
        self.http_server = GuardedHTTPServer(
            HubServer(self, self.make_app()),
            max_body_size=self.max_upload_bytes,
            idle_connection_timeout=self.idle_timeout,
            body_timeout=self.body_timeout,
            max_connections=self.max_connections or default_max_connections(nofile),
        )
        try:
            sockets = bind_sockets(self.port, self.host)
        except OSError as e:
            raise StartError(
                f"cannot listen on {self.host}:{self.port}: {e.strerror or e}"
            ) from None
        self.port = sockets[0].getsockname()[1]
        self.http_server.add_sockets([GuardedSocket.wrap(s, self.http_server) for s in sockets])

    async def start(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.init_db()
        self.sealer = Sealer(self.data)
        self.seal_dev_tokens()
        self.gate = access.Gate(self.session)
        try:
            self.authenticator = access.load_authenticator(self.authenticator_spec, self)
        except ValueError as e:
            raise StartError(str(e)) from None
        self.sign_ins = access.SignInLimiter()
        self.init_admin()
        self.init_components()
        if isinstance(self.runner, RayBackend):
            try:
                print(await self.runner.connect(), flush=True)
            except RayError as e:
                raise StartError(str(e)) from None
        await self.publisher.adopt_running()  # before listening: not one request is refused
        self.listen()
        await self.publisher.restore()
        self.publisher.start_reaper()
        self.collector.soon()
        if self.meter is not None:
            self.meter.start()
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        print(
            f"AlgoLink hub running at http://{host}:{self.port}/ (data in {self.data})", flush=True
        )

    async def stop(self, stop_services: Optional[bool] = None) -> None:
        """Stop serving; stop the service processes (``stop_services``, by default
        ``--stop-services-on-exit``) or leave them running for the next hub. Their status is kept."""
        if stop_services is None:
            stop_services = self.stop_services_on_exit
        self.http_server.stop()
        if self.meter is not None:
            await self.meter.stop()
        running = len(self.runner.keys())
        await self.publisher.stop_all(stop_services)
        self.upstreams.close()
        self.engine.dispose()
        if running and not stop_services:
            print(
                f"{running} service process(es) keep running: the next `algolink hub --data "
                f"{self.data}` serves them again at once (--stop-services-on-exit stops them with "
                "the hub).",
                flush=True,
            )

    async def run(self) -> None:
        # Before anything starts: a signal that comes while the hub starts stops it cleanly after.
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
        await self.start()
        await stopped.wait()
        print(
            "Stopping the hub and its services..."
            if self.stop_services_on_exit
            else "Stopping the hub...",
            flush=True,
        )
        await self.stop()


def run_from_args(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S"
    )
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    hub = Hub(
        data=Path(args.data) if args.data else None,
        host=args.host,
        port=args.port,
        db_url=args.db,
        service_host=args.service_host,
        health_timeout=args.health_timeout,
        max_option_file_bytes=int(getattr(args, "max_file_size", 8192) * 2**20),
        isolation=args.isolation,
        build_cache=Path(args.build_cache) if args.build_cache else None,
        stop_services_on_exit=args.stop_services_on_exit,
        serve_origin=args.serve_origin,
        max_connections=args.max_connections,
        idle_timeout=args.idle_timeout,
        body_timeout=args.body_timeout,
        serve_timeout=args.serve_timeout,
        env_budget=args.env_budget,
        admin_user=args.admin_user,
        authenticator=args.authenticator,
        cold_start_timeout=args.cold_start_timeout,
        spool_budget=getattr(args, "spool_budget", 4 * 2**30),
        share_days=getattr(args, "share_days", 7.0),
        share_budget=getattr(args, "share_budget", 256 << 20),
        metrics=not getattr(args, "no_metrics", False),
        metrics_retention=getattr(args, "metrics_retention", DEFAULT_RETENTION),
        request_log=getattr(args, "request_log", DEFAULT_LOG_SIZE),
        backend=getattr(args, "backend", "local"),
        ray_address=getattr(args, "ray_address", None),
    )
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        asyncio.run(hub.run())
    except StartError as e:
        print(f"algolink hub: {e}", file=sys.stderr)
        return 1
    except SQLAlchemyError as e:
        url = make_url(orm.normalize_url(hub.db_url)).render_as_string(hide_password=True)
        print(f"algolink hub: cannot use the database {url}: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="algolink hub", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
