"""What the panel's curl lines need besides a command's spec: how this Jupyter server takes a client's
credentials, and the inputs of the examples recorded next to a kernel's notebook.

- ``GET <base_url>algolink/api/access``: ``{"mode", "xsrf"}``, so that the panel says exactly how to set
  ``$JUPYTER_TOKEN`` (or that no token is needed) and writes a line this server accepts. Never a token.
- ``GET <base_url>algolink/api/examples/<kernel_id>/<command>``: ``{"examples": [{"file", "inputs"}]}``,
  the newest recorded examples of the command first (``algolink_examples/<command>/NNN.json`` in the
  folder the kernel's notebook is in, as the test form's "Save as example" writes them), only those small
  enough for a line to paste.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from tornado import web

from .. import examples
from .base import AUTH_RESOURCE, AlgoLinkHandler, not_serving_message

#: At most this many examples are answered, newest first.
MAX_EXAMPLES = 5
#: Only the newest files are looked at.
MAX_FILES_READ = 20
#: A file larger than this is not read (outputs, say images, make most of a file).
MAX_FILE_SIZE = 8 * 1024 * 1024
#: The largest example inputs (as compact JSON) a curl line carries: pasted into a terminal whole, and
#: well under the 128 KiB a single command-line argument may have on Linux.
MAX_INPUTS_SIZE = 16 * 1024

_COMMAND_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_FILE_RE = re.compile(r"^(\d+)\.json$")


def access_mode(handler: AlgoLinkHandler) -> dict:
    """How a client outside the browser authenticates to this Jupyter server.

    ``mode``: ``token`` (Jupyter's token in ``Authorization: token ...``), ``hub`` (a JupyterHub
    single-user server: a JupyterHub API token, same header), ``none`` (authentication is off),
    ``password`` (a password only: no token curl could send), ``other`` (another identity provider).
    ``xsrf``: whether a POST without a token must pass Jupyter's XSRF check.
    """
    provider = handler.identity_provider
    if handler.settings.get("hub_prefix"):
        mode = "hub"
    elif not provider.auth_enabled:
        mode = "none"
    elif getattr(provider, "token", ""):
        mode = "token"
    elif getattr(provider, "hashed_password", ""):
        mode = "password"
    else:
        mode = "other"
    return {"mode": mode, "xsrf": not handler.settings.get("disable_check_xsrf", False)}


def recent_examples(folder: Path) -> list:
    """``[{"file", "inputs"}]``: the newest examples in ``folder`` whose inputs fit a curl line."""
    try:
        names = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _FILE_RE.match(p.name))]
    except OSError:  # no folder: no example recorded
        return []
    found = []
    for _number, path in sorted(names, reverse=True)[:MAX_FILES_READ]:
        try:
            if not path.is_file() or path.stat().st_size > MAX_FILE_SIZE:
                continue
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        inputs = record.get("inputs") if isinstance(record, dict) else None
        if not isinstance(inputs, dict):
            continue
        if len(json.dumps(inputs, separators=(",", ":"), ensure_ascii=False)) > MAX_INPUTS_SIZE:
            continue
        found.append(
            {"file": f"{examples.DEFAULT_DIR}/{folder.name}/{path.name}", "inputs": inputs}
        )
        if len(found) == MAX_EXAMPLES:
            break
    return found


class AccessHandler(AlgoLinkHandler):
    """``GET <base_url>algolink/api/access``: how curl authenticates here (see :func:`access_mode`)."""

    @web.authenticated
    @authorized(action="read", resource=AUTH_RESOURCE)
    async def get(self) -> None:
        self.finish(json.dumps(access_mode(self)))


class ExamplesHandler(AlgoLinkHandler):
    """``GET <base_url>algolink/api/examples/<kernel_id>/<command>``: the command's recorded examples."""

    @web.authenticated
    @authorized(action="read", resource=AUTH_RESOURCE)
    async def get(self, kernel_id: str, command: str) -> None:
        # The examples are files of the notebook's folder: reading them is reading contents.
        if not self.authorizer.is_authorized(self, self.current_user, "read", "contents"):
            raise web.HTTPError(403, "Reading the notebook's files is not allowed for this user.")
        info = self.announcement(kernel_id)
        if info is None:
            self.write_json_error(404, not_serving_message(kernel_id))
            return
        commands = info.get("commands")
        if (
            not _COMMAND_RE.match(command)
            or not isinstance(commands, list)
            or command not in commands
        ):
            self.write_json_error(404, f"Kernel {kernel_id} serves no command {command!r}.")
            return
        folder = await self.notebook_folder(kernel_id)
        found = recent_examples(folder / examples.DEFAULT_DIR / command) if folder else []
        self.finish(json.dumps({"examples": found}))

    async def notebook_folder(self, kernel_id: str) -> Optional[Path]:
        """The folder the kernel was started in for its notebook (where the test form saves examples),
        when Jupyter knows the notebook and the folder lies below Jupyter's root."""
        notebook = (await self.notebook_paths()).get(kernel_id)
        if not notebook:
            return None
        try:
            kernel_path = await ensure_async(self.contents_manager.get_kernel_path(path=notebook))
            folder = os.path.realpath(self.kernel_manager.cwd_for_path(kernel_path))
        except Exception:
            self.log.debug("AlgoLink: no folder for %s", notebook, exc_info=True)
            return None
        root = os.path.realpath(self.kernel_manager.root_dir)
        if folder != root and not folder.startswith(root.rstrip(os.sep) + os.sep):
            return None
        return Path(folder)
