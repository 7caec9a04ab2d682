"""The hub's command-line options, apart from :mod:`.app` so that ``algolink`` starts fast."""

from __future__ import annotations

import argparse

DEFAULT_PORT = 8800


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
        "--max-file-size",
        type=float,
        default=8192,
        metavar="MB",
        help="the largest file a setup option may take, in MB (8192)",
    )
