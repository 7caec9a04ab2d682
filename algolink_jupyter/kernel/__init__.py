"""Kernel serving: the registry the notebook fills, set up and served as cells run.

``modelcloud``'s decorators and the ``%%algolink_*`` magics fill one registry, ``modelcloud.default_registry``.
While the extension is loaded, declaring a setup runs it at once (the model stays in the kernel), and
declaring a command starts the in-kernel server (if it is not running) and swaps the command in place.
"""

from __future__ import annotations

import atexit
import time
from typing import Any, Callable, Optional

import modelcloud
from modelcloud.model import RUNNING, Registry

from ..translation import kernel_translator
from .server import KernelServer, ServingError

__all__ = [
    "KernelServer",
    "ServingError",
    "ensure_serving",
    "get_server",
    "registry",
    "serving_info",
    "start_serving",
]

registry: Registry = modelcloud.default_registry
_server: Optional[KernelServer] = None


def get_server() -> KernelServer:
    global _server
    if _server is None:
        _server = KernelServer(registry)
        atexit.register(_server.stop)
    return _server


def serving_info() -> Optional[dict]:
    """``{"url", "token", "commands"}`` of the kernel's server, or None while it is not serving."""
    return None if _server is None else _server.info()


def start_serving(host: str = "127.0.0.1", port: int = 0) -> dict:
    """Serve the registry (idempotent; another port moves the server): the server's info.

    Commands without a setup get ``model=None``. :class:`ServingError` says why it cannot start."""
    server = get_server()
    if registry.setup_fn is None and registry.status != RUNNING:
        registry.set_model(None)
    return server.start(host=host, port=port)


def ensure_serving(on_start: Optional[Callable[[dict], Any]] = None) -> dict:
    """This kernel's server info, serving first when it is not (``on_start`` hears the info then):
    what a development-mode connection to a hub registers."""
    info = serving_info()
    if info is None:
        info = start_serving()
        if on_start is not None:
            on_start(info)
    return info


def describe_model(model: Any) -> str:
    """A short description of a model: its type and, for torch modules, its device and size."""
    name = type(model).__name__
    params = getattr(model, "parameters", None)
    if callable(params):
        try:
            ps = list(params())
            if ps:
                count = sum(p.numel() for p in ps)
                return f"{name} on {ps[0].device}, {count:,} parameters"
        except Exception:
            pass
    return name


class Integration:
    """Reacts to declarations while the extension is loaded: set up now, serve at once, show the form."""

    def __init__(self, show_form: Callable[[str], None], say: Callable[[str], None] = print):
        self.show_form = show_form
        self.say = say
        self.seen: set = set()

    def __call__(self, kind: str, name: str) -> None:
        server = get_server()
        if kind == "setup":
            start = time.perf_counter()
            registry.run_setup({})  # raises into the cell on failure
            tr = kernel_translator()
            self.say(
                tr(
                    "Model ready in {seconds} s: {model}",
                    seconds=format(time.perf_counter() - start, ".2f"),
                    model=describe_model(registry.model),
                )
            )
            server.refresh()
            return
        if registry.setup_fn is None and registry.status != RUNNING:
            registry.set_model(None)  # commands without a setup get model=None
        info = server.start()  # idempotent
        tr = kernel_translator()
        where = {"name": repr(name), "url": info["url"] + "/" + name}
        if name in self.seen:
            line = tr(
                "Updated {name} at {url} (token: algolink_jupyter.serving_info()['token'])", **where
            )
        else:
            line = tr(
                "Serving {name} at {url} (token: algolink_jupyter.serving_info()['token'])", **where
            )
        self.seen.add(name)
        self.say(line)
        self.show_form(name)

    def install(self) -> None:
        if self not in registry.listeners:
            registry.listeners.append(self)

    def uninstall(self) -> None:
        if self in registry.listeners:
            registry.listeners.remove(self)
