"""What every route of the extension shares: Jupyter's authentication first, and a kernel's announcement."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Optional

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..kernel import announce

#: The Jupyter permission the routes need: "read" to look, "execute" to run a command.
AUTH_RESOURCE = "kernels"


def not_serving_message(kernel_id: str) -> str:
    return (
        f"Kernel {kernel_id} is not serving: run `%load_ext algolink_jupyter` and `%algolink serve` "
        "in its notebook, then retry."
    )


def kernel_address(info: dict) -> Optional[tuple]:
    """Where the announced server listens: (host, port), on loopback unless it bound a specific address."""
    port = info.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return None
    host = "127.0.0.1"
    url = info.get("url")
    if isinstance(url, str):
        try:
            announced = urllib.parse.urlsplit(url).hostname
        except ValueError:
            announced = None
        if announced and announced not in ("0.0.0.0", "::", "localhost"):
            host = announced
    return host, port


class AlgoLinkHandler(APIHandler):
    """Authenticated before anything else: a request without a Jupyter user gets 403, whatever the method."""

    auth_resource = AUTH_RESOURCE

    @property
    def runtime_dir(self) -> Path:
        return Path(self.settings["algolink_runtime_dir"])

    def running_kernel_ids(self) -> set:
        return {str(kid) for kid in self.kernel_manager.list_kernel_ids()}

    async def notebook_paths(self) -> dict:
        """The path of the notebook each kernel runs (relative to Jupyter's root), by kernel id."""
        notebooks: dict = {}
        try:
            for session in await ensure_async(self.session_manager.list_sessions()):
                kid = (session.get("kernel") or {}).get("id")
                path = session.get("path") or (session.get("notebook") or {}).get("path")
                if kid and path:
                    notebooks[kid] = path
        except Exception:  # what needs them still works without the notebook paths
            self.log.debug("AlgoLink: could not list the sessions", exc_info=True)
        return notebooks

    def announcement(self, kernel_id: str) -> Optional[dict]:
        """The live announcement of a kernel this Jupyter server runs, or None."""
        if kernel_id not in self.running_kernel_ids():
            return None
        info = announce.read(kernel_id, self.runtime_dir)
        if not isinstance(info, dict) or kernel_address(info) is None:
            return None
        return info

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self._finished:
            return
        if not self.current_user:
            # Also when the server allows unauthenticated access to undecorated handlers, and before
            # a streamed body is read.
            raise web.HTTPError(403, "Log in to Jupyter (or send its token) to use AlgoLink.")

    def write_json_error(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"error": message}))
