"""``modelcloud.run()``: set the model up, then serve it until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any, Optional

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from .data_types import DEFAULT_MAX_PIXELS
from .errors import InputError, SetupError
from .jobs import DEFAULT_JOBS_KEEP, DEFAULT_JOBS_TTL
from .model import Registry, default_registry
from .server import DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_QUEUE, ModelServer, describe_listen_error

_TRUE = {"1", "true", "yes", "on"}

#: Runway's variables, read when the ALGOLINK_* one is not set (ALGOLINK_* wins when both are).
RUNWAY_ALIASES = {
    "ALGOLINK_HOST": "RW_HOST",
    "ALGOLINK_PORT": "RW_PORT",
    "ALGOLINK_MODEL_OPTIONS": "RW_MODEL_OPTIONS",
    "ALGOLINK_DEBUG": "RW_DEBUG",
    "ALGOLINK_META": "RW_META",
    "ALGOLINK_NO_SERVE": "RW_NO_SERVE",
}


def _env(name: str) -> Optional[str]:
    """``name`` from the environment, else its Runway alias (``RW_PORT`` for ``ALGOLINK_PORT``)."""
    value = os.environ.get(name)
    if value is None and name in RUNWAY_ALIASES:
        value = os.environ.get(RUNWAY_ALIASES[name])
    return value


def _which(name: str) -> str:
    """The variable actually set, for messages."""
    alias = RUNWAY_ALIASES.get(name)
    return alias if name not in os.environ and alias and alias in os.environ else name


class ConfigError(ValueError):
    """An environment variable or argument that cannot be used; the message says which and why."""


def _env_int(name: str, value: Any, low: int, high: Optional[int] = None) -> int:
    raw = _env(name)
    name = _which(name)
    if raw is not None and raw.strip() != "":
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if not isinstance(value, int) or value < low or (high is not None and value > high):
        upper = f" and {high}" if high is not None else ""
        raise ConfigError(f"{name} must be a whole number between {low}{upper}, got {value!r}.")
    return value


def _env_flag(name: str, value: bool) -> bool:
    raw = _env(name)
    return value if raw is None else raw.strip().lower() in _TRUE


def resolve_settings(
    host: str,
    port: int,
    model_options: Optional[dict],
    debug: bool,
    meta: bool,
    no_serve: bool = False,
) -> dict:
    """Arguments, overridden by the ALGOLINK_* environment variables (or Runway's RW_* ones)."""
    env = os.environ
    host = _env("ALGOLINK_HOST") or host
    port = _env_int("ALGOLINK_PORT", port, 0, 65535)
    raw_options = _env("ALGOLINK_MODEL_OPTIONS")
    if raw_options:
        try:
            model_options = json.loads(raw_options)
        except ValueError as e:
            raise ConfigError(
                f"{_which('ALGOLINK_MODEL_OPTIONS')} is not valid JSON ({e}): set it to an object "
                'such as {"checkpoint": "models/model.pt"}.'
            ) from None
    if model_options is not None and not isinstance(model_options, dict):
        raise ConfigError(
            "Model options (ALGOLINK_MODEL_OPTIONS or model_options=) must be a JSON object of "
            "option -> value."
        )
    debug = _env_flag("ALGOLINK_DEBUG", debug)
    meta = _env_flag("ALGOLINK_META", meta)
    no_serve = _env_flag("ALGOLINK_NO_SERVE", no_serve)
    return {
        "host": host,
        "port": port,
        "model_options": model_options,
        "debug": debug,
        "meta": meta,
        "no_serve": no_serve,
        "max_body_size": _env_int("ALGOLINK_MAX_BODY_SIZE", DEFAULT_MAX_BODY_SIZE, 1),
        "max_pixels": _env_int("ALGOLINK_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS, 1),
        "concurrency": _env_int("ALGOLINK_CONCURRENCY", 1, 1, 1024),
        "max_queue": _env_int("ALGOLINK_MAX_QUEUE", DEFAULT_MAX_QUEUE, 1),
        "jobs_keep": _env_int("ALGOLINK_JOBS_KEEP", DEFAULT_JOBS_KEEP, 1),
        "jobs_ttl": _env_int("ALGOLINK_JOBS_TTL", DEFAULT_JOBS_TTL, 1),
        # Set by the AlgoLink hub for the services it runs: clients reach them only through the hub.
        "behind_hub": env.get("ALGOLINK_HUB", "").strip().lower() in _TRUE,
    }


def run(
    host: str = "0.0.0.0",
    port: int = 9000,
    model_options: Optional[dict] = None,
    debug: bool = False,
    meta: bool = False,
    no_serve: bool = False,
    *,
    registry: Optional[Registry] = None,
) -> None:
    """Set the model up and serve it; returns only on SIGINT or SIGTERM (exit 1 if setup fails).

    Environment variables win over the arguments: ``ALGOLINK_HOST``, ``ALGOLINK_PORT``,
    ``ALGOLINK_MODEL_OPTIONS`` (JSON), ``ALGOLINK_DEBUG=1``, and ``ALGOLINK_META=1``, which prints the
    manifest as JSON and exits without setting up or serving. Limits: ``ALGOLINK_MAX_BODY_SIZE`` (bytes),
    ``ALGOLINK_MAX_IMAGE_PIXELS``, ``ALGOLINK_CONCURRENCY`` (requests that reach the model at once),
    ``ALGOLINK_MAX_QUEUE`` (requests that may wait; more are answered 503), ``ALGOLINK_JOBS_KEEP`` and
    ``ALGOLINK_JOBS_TTL`` (finished async jobs kept: how many, how many seconds). ``ALGOLINK_HUB=1`` (the hub
    sets it for the services it runs) turns ``POST /setup`` off and lists in ``/openapi.json`` only
    what clients reach through the hub.

    ``no_serve=True`` (or ``ALGOLINK_NO_SERVE=1``) sets the model up and returns without serving, for
    tests that call the registry in-process. Runway's ``RW_HOST``, ``RW_PORT``, ``RW_MODEL_OPTIONS``,
    ``RW_DEBUG``, ``RW_META`` and ``RW_NO_SERVE`` are read when the ALGOLINK_* variable is not set.
    """
    registry = registry or default_registry
    registry.served = True
    try:
        settings = resolve_settings(host, port, model_options, debug, meta, no_serve)
    except ConfigError as e:
        print(f"Error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    if settings["meta"]:
        sys.stdout.write(json.dumps(registry.manifest()) + "\n")
        sys.stdout.flush()
        sys.exit(0)

    logging.basicConfig(
        level=logging.INFO if settings["debug"] else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    print("Setting up model...", flush=True)
    try:
        registry.run_setup(settings["model_options"])
    except InputError as e:
        print(f"Setup failed: {e.message}", file=sys.stderr, flush=True)
        sys.exit(1)
    except SetupError as e:
        if e.traceback:
            print(e.traceback, file=sys.stderr)
        print(e.message, file=sys.stderr, flush=True)
        sys.exit(1)
    if settings["no_serve"]:
        print("Model set up; not serving (no_serve).", flush=True)
        return
    try:
        asyncio.run(serve(registry, settings))
    except OSError as e:
        print(
            f"Error: {describe_listen_error(e, settings['host'], settings['port'])}",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(1)


async def serve(registry: Registry, settings: dict) -> None:
    server = ModelServer(
        registry,
        debug=settings["debug"],
        max_body_size=settings["max_body_size"],
        max_pixels=settings["max_pixels"],
        concurrency=settings["concurrency"],
        max_queue=settings["max_queue"],
        behind_hub=settings.get("behind_hub", False),
        jobs_keep=settings.get("jobs_keep", DEFAULT_JOBS_KEEP),
        jobs_ttl=settings.get("jobs_ttl", DEFAULT_JOBS_TTL),
    )
    http = HTTPServer(server.make_app(), max_body_size=settings["max_body_size"])
    sockets = bind_sockets(settings["port"], settings["host"])
    http.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    print(f"Starting model server at http://{settings['host']}:{port}...", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    try:
        await stop.wait()
    finally:
        # Stop accepting, let the requests already in hand finish (up to 30 s), then close.
        http.stop()
        deadline = loop.time() + 30
        while server.pending and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)  # let the last responses flush
        try:
            await asyncio.wait_for(http.close_all_connections(), timeout=5)
        except asyncio.TimeoutError:
            pass
        server.shutdown()
        print("Model server stopped.", flush=True)
