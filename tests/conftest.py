from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from support import ServerProcess, start_script

# The notebook's forms and the magics speak the kernel's language (ALGOLINK_LANG, else JupyterLab's
# language setting, else the locale): the tests (and the kernels they start) read English whatever the
# machine's locale or JupyterLab setting; tests/test_widget_language.py chooses others.
os.environ["ALGOLINK_LANG"] = "en"


@pytest.fixture
def model_server(tmp_path: Path):
    """Start ``python cloud_model.py`` from source text on a free port; stopped after the test.

    ``model_server(source, env={...}, wait=True)`` returns a :class:`support.ServerProcess`.
    """
    started: list = []

    def start(
        source: str, env: dict | None = None, wait: bool = True, name: str = "cloud_model.py"
    ) -> ServerProcess:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        server = start_script(path, env=env, wait=wait)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def jp_asyncio_loop():
    """pytest_jupyter's own (test_serverext loads that plugin, which makes it autouse for the whole
    run), except that a loop something else runs in this thread is left open: Playwright's sync API
    runs one for a module's browser, and closing it ends that module's tests in errors."""
    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop(prefer_selector_loop=True)
    yield loop
    if not loop.is_running():
        loop.close()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (see ``browser_support``)."""
    from browser_support import launch, sync_api

    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


# Folders a hub's data never nests another hub in: not worth walking.
_NO_HUBS_IN = {"envs", "bundles", "files", "run", "node_modules", "site-packages", ".venv"}


@pytest.fixture(scope="session", autouse=True)
def _remove_the_system_users_of_this_sessions_hubs(tmp_path_factory):
    """After the session: the system users (``alk<tag>s<n>``, ``alk<tag>b<n>``) made by every hub
    whose data folder is under this session's temporary folder, however it was started (the
    ``Hub`` helper removes its own; ``scripts/run.py`` and a bare ``algolink hub`` do not)."""
    yield
    import os
    import pwd
    import subprocess

    if os.geteuid() != 0:
        return
    from algolink_jupyter.hub.sandbox import hub_tag

    prefixes = []
    for folder, dirs, files in os.walk(tmp_path_factory.getbasetemp()):
        dirs[:] = [d for d in dirs if d not in _NO_HUBS_IN]
        if "hub.sqlite" in files or "admin_token" in files:
            tag = hub_tag(Path(folder))
            prefixes += [f"alk{tag}s", f"alk{tag}b"]
    if not prefixes:
        return
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(tuple(prefixes)):
            subprocess.run(["userdel", entry.pw_name], capture_output=True, timeout=60)
