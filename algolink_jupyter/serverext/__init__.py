"""The Jupyter server extension: a kernel's model server, reached through Jupyter's own authentication.

A serving kernel announces its port and token in a file in Jupyter's runtime directory
(:mod:`algolink_jupyter.kernel.announce`). This extension adds these routes under ``<base_url>algolink/``:

- ``api/endpoints``: the live kernel endpoints of this Jupyter server (never a token or a port);
- ``api/hub/services``: who is signed in to the hub, what they may publish to, and the hub's services,
  asked with this server's ALGOLINK_HUB_URL and ALGOLINK_TOKEN (or the config file `algolink login`
  writes);
- ``api/access`` and ``api/examples/<kernel_id>/<command>``: what the panel's curl lines need, how curl
  authenticates here and the command's recorded examples (:mod:`.curl`);
- ``kernels/<kernel_id>/<path>``: forwarded to that kernel's server with the kernel's token, which never
  leaves the Jupyter server.

Every route needs a logged-in Jupyter user (token or login cookie) and the "kernels" permission.
"""

from __future__ import annotations

from typing import Any

from .handlers import setup_handlers


def _jupyter_server_extension_points() -> list:
    return [{"module": "algolink_jupyter.serverext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    setup_handlers(serverapp)


__all__ = ["_jupyter_server_extension_points", "_load_jupyter_server_extension"]
