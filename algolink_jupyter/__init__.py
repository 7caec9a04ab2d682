"""AlgoLink for Jupyter: serve notebook functions from the kernel, export them as bundles, run the hub.

``%load_ext algolink_jupyter`` in a notebook adds the ``%%algolink_setup``, ``%%algolink_command`` and
``%algolink`` magics. The runtime SDK a ``cloud_model.py`` imports is the sibling package :mod:`modelcloud`.
This module stays light: the command line and the hub import it without IPython, so what it offers
imports its parts when called.
"""

from __future__ import annotations

from typing import Any, Optional

__version__ = "0.1.0"

_integration: Any = None


def serving_info() -> Optional[dict]:
    """``{"url", "token", "commands"}`` of this kernel's server, or None while it is not serving."""
    from .kernel import serving_info as info

    return info()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext algolink_jupyter``: register the magics; declarations now set up and serve at once."""
    global _integration
    from .kernel import Integration
    from .magics import AlgoLinkMagics, show_form

    ipython.register_magics(AlgoLinkMagics)
    if _integration is None:
        _integration = Integration(show_form)
    _integration.install()
    try:
        from .widgets.gallery import install as capture_images
    except ImportError:  # pragma: no cover - ipywidgets missing: no publish form either
        return
    capture_images(ipython)  # the images this kernel shows, offered to the publish form's gallery


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext algolink_jupyter``: stop serving and stop reacting to declarations."""
    global _integration
    from .kernel import get_server

    if _integration is not None:
        _integration.uninstall()
        _integration = None
    get_server().stop()


def _jupyter_server_extension_points() -> list:
    """The Jupyter server extension (enabled on install by jupyter-config): see algolink_jupyter.serverext."""
    return [{"module": "algolink_jupyter.serverext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .serverext.handlers import setup_handlers

    setup_handlers(serverapp)
