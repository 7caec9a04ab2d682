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


def remove_hub_users_under(folder: Path) -> None:
    """The system users (``alk<tag>s<n>``, ``alk<tag>b<n>``) of every hub whose data folder is under
    ``folder``, however it was started (the ``Hub`` helper removes its own; ``scripts/run.py`` and a
    bare ``algolink hub`` do not). A user whose process is still going is tried again for a few
    seconds, then kept (userdel refuses)."""
    from hub_process import remove_hub_users

    hubs = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in _NO_HUBS_IN]
        if "hub.sqlite" in files or "admin_token" in files:
            hubs.append(Path(parent))
    remove_hub_users(hubs, patience=5.0)


# --- Disk ------------------------------------------------------------------------------------------
# A whole run makes about 15 GB of hub data folders, environments and image archives in pytest's
# temporary folder. So what a test made in it (``tmp_path``) goes when the test has passed, what a
# module's fixtures made goes when the module is over and all its tests passed (with the system users
# of the hubs in them, first), and what the session's fixtures made goes at the end of a run that
# passed. A failure's folders are kept for a look until the next run starts, which removes the earlier
# runs' folders (but those of a run still going: pytest's ``.lock`` names its pid).

_basetemp: list = []  # the session's temporary folder, once it is known
_made_by_the_session: set = set()  # names in it that session-scoped fixtures made
_failed: set = set()  # node ids of the tests that failed, and of their modules
_tmp_paths: dict = {}  # test node id -> its tmp_path


def _entries() -> set:
    try:
        return set(os.listdir(_basetemp[0])) if _basetemp else set()
    except OSError:
        return set()


def _remove(path: Path) -> None:
    import shutil

    remove_hub_users_under(path)
    shutil.rmtree(path, ignore_errors=True)


def _pid_alive(lock: Path) -> bool:
    try:
        os.kill(int(lock.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    if fixturedef.scope != "session" or not _basetemp:
        yield
        return
    before = _entries()
    yield
    _made_by_the_session.update(_entries() - before)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield
    path = getattr(item, "funcargs", {}).get("tmp_path")
    if path is not None:
        _tmp_paths[item.nodeid] = path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        _failed.update({item.nodeid, item.nodeid.split("::", 1)[0]})
    if call.when == "teardown":
        path = _tmp_paths.pop(item.nodeid, None)
        if path is not None and item.nodeid not in _failed:
            _remove(Path(path))


@pytest.fixture(scope="module", autouse=True)
def _a_modules_folders_go_when_it_passed(request):
    before = _entries()
    yield
    if request.node.nodeid in _failed or not _basetemp:
        return
    for name in sorted(_entries() - before - _made_by_the_session):
        _remove(_basetemp[0] / name)


@pytest.fixture(scope="session", autouse=True)
def _temporary_folders(tmp_path_factory, request):
    """Earlier runs' folders go now; this run's users and (when it passed) folders at its end."""
    import re
    import shutil

    base = tmp_path_factory.getbasetemp()
    if base.parent.name.startswith("pytest-of-"):
        for old in base.parent.iterdir():
            if old == base or old.is_symlink() or not re.fullmatch(r"pytest-\d+", old.name):
                continue
            if _pid_alive(old / ".lock"):
                continue  # another run, still going
            _remove(old)
    _basetemp.append(base)
    yield
    remove_hub_users_under(base)
    if request.session.testsfailed == 0 and not _failed:
        for name in _entries():
            if name != ".lock":
                shutil.rmtree(base / name, ignore_errors=True)
