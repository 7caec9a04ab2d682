"""The hub's command-line options, apart from :mod:`.app` so that ``algolink`` starts fast."""

from __future__ import annotations

import argparse
import re

from .. import budget

DEFAULT_PORT = 8800
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def byte_size(text: str) -> int:
    """``20G``, ``500M``, ``1.5T`` or a number of bytes, for ``--env-budget`` (see
    :func:`..budget.byte_size`)."""
    try:
        return budget.byte_size(text)
    except budget.SizeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def retention(text: str) -> int:
    """``7d``, ``12h``, ``30m`` or seconds, for ``--metrics-retention``."""
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", text)
    seconds = float(m.group(1)) * _SECONDS[m.group(2)] if m else 0
    if seconds < 60:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a retention: give one of a minute or more, such as 7d, 12h or 30m."
        )
    return int(seconds)


def log_size(text: str) -> int:
    """A positive whole number, for ``--request-log``."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of requests: give one from 1 to 1000000, such as 1000."
        )
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on ({DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="data folder: database, bundles, environments, logs (default ~/.algolink/hub, or "
        "$ALGOLINK_HUB_DATA)",
    )
    parser.add_argument(
        "--db",
        default=None,
        help="database URL (default: SQLite in the data folder), e.g. "
        "postgresql://user:password@host/algolink",
    )
    parser.add_argument(
        "--service-host",
        default="127.0.0.1",
        help="address the service processes listen on (127.0.0.1: reached through /serve only)",
    )
    parser.add_argument(
        "--health-timeout",
        type=float,
        default=120.0,
        help="seconds a new service process has to become healthy (120)",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="where versions run: local (a process each on this machine, the default) or ray (a "
        "Ray Serve application each, with replicas, on the cluster at --ray-address)",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="URL",
        help="with --backend ray: the Ray head's dashboard, whose REST API runs Serve "
        "(default $RAY_DASHBOARD_ADDRESS, else http://127.0.0.1:8265)",
    )
    parser.add_argument(
        "--max-file-size",
        type=float,
        default=8192,
        metavar="MB",
        help="the largest file a setup option may take, in MB (8192)",
    )
    parser.add_argument(
        "--isolation",
        choices=("auto", "bwrap", "users", "none"),
        default="auto",
        help="how services and builds run: bwrap (a bubblewrap sandbox that hides the hub's data), "
        "users (as root: each service as a system user of its own), none (as the hub); auto (the "
        "default) takes users when run as root and bwrap when it is installed",
    )
    parser.add_argument(
        "--build-cache",
        default=None,
        metavar="DIR",
        help="uv's download cache for builds made as the build user (default "
        "/var/cache/algolink-build/uv)",
    )
    parser.add_argument(
        "--stop-services-on-exit",
        action="store_true",
        help="stop the service processes when the hub stops (by default they keep running and the "
        "next start of the hub serves them again at once)",
    )
    parser.add_argument(
        "--serve-origin",
        default=None,
        metavar="URL",
        help="the origin that answers /serve when it has a host name of its own (such as "
        "https://serve.example.com, pointed at this hub by the reverse proxy): the URLs the hub "
        "shows use it, and /serve on the hub's own origin answers 421 with the way there",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="connections the hub holds at once (default: three quarters of its open-file limit)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds a connection may wait for a request's head (60)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=900.0,
        metavar="S",
        help="seconds a request's body may take to arrive (900)",
    )
    parser.add_argument(
        "--admin-user",
        default="admin",
        metavar="NAME",
        help="the first admin's user name, made on the first start with the password in "
        "$ALGOLINK_ADMIN_PASSWORD or one made up, printed and kept in <data>/admin_password until it "
        "is changed (admin)",
    )
    parser.add_argument(
        "--authenticator",
        default=None,
        metavar="MODULE:CLASS",
        help="another way to sign in to the pages: a class made with the hub, whose "
        "authenticate(handler, name, password) returns the user's name (and, optionally, "
        "request_user(handler) maps a request to a user); default: the hub's own passwords",
    )
    parser.add_argument(
        "--env-budget",
        type=byte_size,
        default=None,
        metavar="SIZE",
        help="disk space the built environments may take, such as 20G: past it, those used least "
        "recently are removed (never one a process runs in; a version whose environment went is "
        "built again when it starts). Default: no limit; environments no version uses are always "
        "removed",
    )
    parser.add_argument(
        "--cold-start-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds a request to a version that is not running (/serve/P/S/vN/ or /@alias/) waits "
        "for it to start before it is answered 503 with Retry-After (60)",
    )
    parser.add_argument(
        "--spool-budget",
        type=byte_size,
        default=4 * 2**30,
        metavar="SIZE",
        help="disk space the /serve request bodies being received may take at once in the data "
        "folder's tmp/ (4G; a body past it is answered 503)",
    )
    parser.add_argument(
        "--share-days",
        type=float,
        default=7.0,
        metavar="DAYS",
        help="how long a try-it result shared by link (public services only) is kept (7; 0: no "
        "shareable links)",
    )
    parser.add_argument(
        "--share-budget",
        type=byte_size,
        default=256 << 20,
        metavar="SIZE",
        help="disk space the shared try-it results may take in the data folder's results/ (256M; "
        "the oldest go first)",
    )
    parser.add_argument(
        "--no-metrics",
        action="store_true",
        help="do not measure /serve requests: no GET /metrics, charts or request log",
    )
    parser.add_argument(
        "--metrics-retention",
        type=retention,
        default=7 * 86400,
        metavar="TIME",
        help="how long the request history (per-minute figures, the request log) is kept: 7d (the "
        "default), 12h, 30m, ...",
    )
    parser.add_argument(
        "--request-log",
        type=log_size,
        default=1000,
        metavar="N",
        help="requests kept in each service's request log (1000)",
    )
    parser.add_argument(
        "--serve-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds a service has to answer a request sent through /serve (600; a 504 past it)",
    )
