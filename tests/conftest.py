from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from support import ServerProcess, start_script


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


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (see ``browser_support``)."""
    from browser_support import launch, sync_api

    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
