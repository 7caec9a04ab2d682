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


class ConfigError(ValueError):
    """An environment variable or argument that cannot be used; the message says which and why."""


def _env_int(name: str, value: Any, low: int, high: Optional[int] = None) -> int:
    raw = os.environ.get(name)
    if raw is not None and raw.strip() != "":
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if not isinstance(value, int) or value < low or (high is not None and value > high):
        upper = f" and {high}" if high is not None else ""
        raise ConfigError(f"{name} must be a whole number between {low}{upper}, got {value!r}.")
    return value


def resolve_settings(
    host: str, port: int, model_options: Optional[dict], debug: bool, meta: bool
) -> dict:
    """Arguments, overridden by the ALGOLINK_* environment variables."""
    env = os.environ
    host = env.get("ALGOLINK_HOST") or host
    port = _env_int("ALGOLINK_PORT", port, 0, 65535)
    raw_options = env.get("ALGOLINK_MODEL_OPTIONS")
    if raw_options:
        try:
            model_options = json.loads(raw_options)
        except ValueError as e:
            raise ConfigError(
                f"ALGOLINK_MODEL_OPTIONS is not valid JSON ({e}): set it to an object such as "
                '{"checkpoint": "models/model.pt"}.'
            ) from None
    if model_options is not None and not isinstance(model_options, dict):
        raise ConfigError(
            "Model options (ALGOLINK_MODEL_OPTIONS or model_options=) must be a JSON object of "
            "option -> value."
        )
    if "ALGOLINK_DEBUG" in env:
        debug = env["ALGOLINK_DEBUG"].strip().lower() in _TRUE
    if "ALGOLINK_META" in env:
        meta = env["ALGOLINK_META"].strip().lower() in _TRUE
    return {
        "host": host,
        "port": port,
        "model_options": model_options,
        "debug": debug,
        "meta": meta,
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
    """
    registry = registry or default_registry
    registry.served = True
    try:
        settings = resolve_settings(host, port, model_options, debug, meta)
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
