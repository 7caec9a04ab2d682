"""The hub's tables (SQLAlchemy 2), the engine and sessions, and the schema's migrations.

The schema is owned by the Alembic migrations in ``alembic/`` beside this module: ``upgrade()`` brings a
database to the newest one on every start. A change to these classes needs a migration of its own
(``alembic revision --autogenerate`` with the ``alembic.ini`` in this folder); a test checks that the
migrations and the classes agree.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

HERE = Path(__file__).resolve().parent


def utcnow() -> datetime.datetime:
    """Now, in UTC, without tzinfo (SQLite keeps none; every time in the database is UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64), default="model")
    version: Mapped[str] = mapped_column(String(64), default="1.0")
    description: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)

    groups: Mapped[list[Group]] = relationship(
        back_populates="project", order_by="Group.name", cascade="all, delete-orphan"
    )
    services: Mapped[list[Service]] = relationship(
        back_populates="project", order_by="Service.name", cascade="all, delete-orphan"
    )
    members: Mapped[list[Membership]] = relationship(
        back_populates="project", order_by="Membership.id", cascade="all, delete-orphan"
    )


class User(Base):
    """An account (migration 0006). ``password_hash`` is scrypt's (access.py), None for a user who
    signs in through an external authenticator only. ``session_version`` is in every session cookie
    of the user: raising it (a new password, a disable) ends them all."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[Optional[str]] = mapped_column(String(256), nullable=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    last_login: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime, nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime, nullable=True)
    session_version: Mapped[int] = mapped_column(Integer, default=1)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class Membership(Base):
    """A user's role in a project: ``viewer``, ``developer`` or ``owner`` (access.py)."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project] = relationship(back_populates="members")
    user: Mapped[User] = relationship(back_populates="memberships")


class AuditEntry(Base):
    """One change made through the hub: who, what, on what, when, from where, and its status.
    Names are copied (a user or service deleted later leaves its history readable)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    user: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    token_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    project: Mapped[Optional[str]] = mapped_column(String(64), nullable=True, index=True)
    service: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    target: Mapped[str] = mapped_column(String(512), default="")
    remote_ip: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[int] = mapped_column(Integer, default=200)


class Group(Base):
    """A 分组: services of one project gathered under a name."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project] = relationship(back_populates="groups")
    services: Mapped[list[Service]] = relationship(back_populates="group", order_by="Service.name")


class Service(Base):
    """A 模型服务: its versions, the one published, and what the hub knows of its state.

    ``status`` is ``registered``, ``building``, ``starting``, ``online``, ``failed`` or ``offline``;
    ``meta`` (the ``metadata`` column) holds the metadata given at registration, which wins over what
    the bundle's ``modelcloud.meta(...)`` says.
    """

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="registered")
    message: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    #: The number of the version that is (or was last) online.
    published_version: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    #: Seconds a version that is not online keeps running after its last request (0: for good).
    keep_warm: Mapped[int] = mapped_column(Integer, default=600)
    #: The highest version number and API version ever given (migration 0005): numbers of deleted
    #: versions are never given again, so ``/vN/`` never means another bundle than it did.
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    last_api_version: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    #: The name and the id of the token that registered it (migration 0004).
    created_by: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)
    created_by_token: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    #: Development mode (migration 0003): the URL of a model server running elsewhere (a notebook
    #: kernel, ``python cloud_model.py``), the token it needs, the manifest its ``/meta`` gave last,
    #: and the last check of it. Such a service has no versions and is never published.
    dev_url: Mapped[Optional[str]] = mapped_column(String(2048), nullable=True)
    #: Sealed with the hub's key (sealing.py, migration 0004): never readable from the database.
    dev_token: Mapped[Optional[str]] = mapped_column(String(1024), nullable=True)
    dev_manifest: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)
    dev_checked_at: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime, nullable=True)
    dev_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    #: The request log keeps each request's input and output (migration 0007; off by default), each
    #: cut at ``record_limit`` bytes.
    record_bodies: Mapped[bool] = mapped_column(Boolean, default=False)
    record_limit: Mapped[int] = mapped_column(Integer, default=16384)

    project: Mapped[Project] = relationship(back_populates="services")
    group: Mapped[Group] = relationship(back_populates="services")
    versions: Mapped[list[Version]] = relationship(
        back_populates="service", order_by="Version.number", cascade="all, delete-orphan"
    )
    aliases: Mapped[list[Alias]] = relationship(
        back_populates="service", order_by="Alias.name", cascade="all, delete-orphan"
    )

    def version(self, number: Optional[int]) -> Optional[Version]:
        for v in self.versions:
            if v.number == number:
                return v
        return None


class Version(Base):
    """One bundle of a service. ``api_version`` is N of ``vN``, given when it is first published."""

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("service_id", "number"),
        UniqueConstraint("service_id", "api_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    bundle_hash: Mapped[str] = mapped_column(String(128))
    manifest: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    #: Gallery images, ``[{"name": "lemon.jpg", "file": "<sha256>.jpg"}]``; files in <data>/gallery.
    gallery: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="registered")
    error: Mapped[str] = mapped_column(Text, default="")
    api_version: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    port: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    published_by: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    published_at: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime, nullable=True)
    #: The values of the setup options this version gives (``{name: value}``; a ``file`` or
    #: ``directory`` value is ``{"file": "<sha256>", "filename": "x.pt"}``), or None: the defaults.
    options: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)
    #: The key of the environment it was built in (migration 0005): what the collector keeps.
    env_key: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)

    service: Mapped[Service] = relationship(back_populates="versions")


class Alias(Base):
    """A name for one version of a service (``stable``, ``canary``): ``/serve/P/S/@name/``."""

    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("service_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version_number: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)

    service: Mapped[Service] = relationship(back_populates="aliases")


class StoredFile(Base):
    """An uploaded option file, kept once by content at ``<data>/files/<sha256>``."""

    __tablename__ = "files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class Upload(Base):
    """An upload in progress for one option of a service; its bytes so far are
    ``<data>/uploads/<id>.part``, so a cut upload resumes where the file ends."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    option: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class Token(Base):
    """An API token of a user. Only its SHA-256 is kept: the token itself is shown once, when it is
    made. ``scopes`` (None: every scope its user has), ``project_id``/``service_id`` (what alone it
    reaches) and ``expires_at`` narrow it (migration 0006)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    name: Mapped[str] = mapped_column(String(64))
    hashed: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(8))
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    last_used: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime, nullable=True)
    scopes: Mapped[Optional[list]] = mapped_column(JSON, nullable=True)
    project_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    service_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), nullable=True
    )
    expires_at: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime, nullable=True)
    last_ip: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)

    user: Mapped[Optional[User]] = relationship()
    project: Mapped[Optional[Project]] = relationship()
    service: Mapped[Optional[Service]] = relationship()


class ServeMinute(Base):
    """What ``/serve`` did in one minute for one version and command of a service (migration 0007;
    metrics.py): counts, latency sums and a histogram fine enough for p50/p95/p99 (``buckets``:
    ``{index: count}`` of metrics.py's log-spaced buckets). ``version`` 0: none (a development
    service, or a request refused before a version was chosen)."""

    __tablename__ = "serve_minutes"
    __table_args__ = (UniqueConstraint("service_id", "minute", "version", "command"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    minute: Mapped[datetime.datetime] = mapped_column(DateTime, index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    command: Mapped[str] = mapped_column(String(128), default="")
    requests: Mapped[int] = mapped_column(Integer, default=0)
    client_errors: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    duration_sum: Mapped[float] = mapped_column(Float, default=0.0)
    buckets: Mapped[dict] = mapped_column(JSON, default=dict)
    model_sum: Mapped[float] = mapped_column(Float, default=0.0)
    model_count: Mapped[int] = mapped_column(Integer, default=0)
    queue_sum: Mapped[float] = mapped_column(Float, default=0.0)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)


class ServeRecord(Base):
    """One ``/serve`` request in a service's request log (the last ``--request-log`` of each are
    kept, migration 0007). ``bodies``: its input and output, when the service records them."""

    __tablename__ = "serve_requests"
    __table_args__ = (Index("ix_serve_requests_service_id", "service_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    at: Mapped[datetime.datetime] = mapped_column(DateTime, index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    command: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[int] = mapped_column(Integer)
    duration: Mapped[float] = mapped_column(Float)
    first_byte: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    model: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    queue: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    user: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    token: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    bodies: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)


def hash_token(token: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough (and lets the database index it)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_hex(20)


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean the psycopg (3) driver, which the hub depends on."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def safe_url(url: str) -> str:
    """A database URL to show: its password hidden."""
    return make_url(normalize_url(url)).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite in WAL mode with foreign keys on."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "alembic"))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine) -> None:
    """``alembic upgrade head`` on this engine's database."""
    from alembic import command

    cfg = alembic_config(engine)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # A batch migration recreates a table (copy, drop, rename): with foreign keys on, the
            # drop would cascade to every row that points at it (a service's versions, aliases...).
            # The pragma is ignored inside a transaction, so it goes first.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(
                            f"The migration left {len(broken)} rows pointing at nothing (first: "
                            f"{broken[0]}); the database is unchanged."
                        )
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)
