"""Shared by the browser tests: Debian's Chromium (``/usr/bin/chromium``, headless, ``--no-sandbox``
as root) driven by Playwright; never ``playwright install``. Importing this module skips the importing
test module when Playwright or Chromium is missing (``make test`` installs both)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium", allow_module_level=True)


def launch(playwright):
    """A headless Chromium from Debian's package."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def artifacts_dir(name: str) -> Path:
    """``test-artifacts/<name>/`` (or under ``$ALGOLINK_TEST_ARTIFACTS``), created."""
    path = Path(os.environ.get("ALGOLINK_TEST_ARTIFACTS") or REPO / "test-artifacts") / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def sign_in(page, hub, user: str = "admin", password: str = "", path: str = "/projects") -> None:
    """Sign in on the hub's sign-in page with a user's name and password (default: the first
    admin's, from the hub's data folder), landing on ``path``."""
    page.goto(hub.url + "/login?next=" + path)
    page.fill("#name", user)
    page.fill("#password", password or hub.admin_password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**" + path)


def signed_in_page(
    browser,
    hub,
    path: str = "/projects",
    locale: str = "en-US",
    height: int = 900,
    user: str = "admin",
    password: str = "",
):
    """A new browser context signed in to ``hub`` (as the first admin unless ``user`` and
    ``password`` are given), on ``path``: ``(context, page)``."""
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": height})
    page = context.new_page()
    page.set_default_timeout(30_000)
    sign_in(page, hub, user, password, path)
    return context, page


@contextlib.contextmanager
def jupyter_lab(root: Path, home: Path, env: Optional[dict] = None) -> Iterator[dict]:
    """``jupyter lab`` on a free loopback port over ``root``, its runtime, config, settings and
    workspaces under ``home`` and its console in ``home/lab.log``, without the caller's ALGOLINK_*
    variables (``env`` adds or overrides); yields ``{"url", "token", "log", "runtime"}`` once it answers,
    and stops it after."""
    import requests
    from hub_process import free_port, wait_for

    bin_dir = Path(sys.executable).parent
    port, token = free_port(), uuid.uuid4().hex
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ALGOLINK_")},
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        **(env or {}),
    }
    log_path = home / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                str(bin_dir / "jupyter"),
                "lab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True",
                "--ServerApp.allow_root=True",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ],
            cwd=str(root),
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{url}/api/status?token={token}", timeout=2).status_code == 200
            except requests.RequestException:
                return proc.poll() is not None

        try:
            wait_for(up, timeout=120, what="jupyter lab")
            assert proc.poll() is None, log_path.read_text()
            yield {"url": url, "token": token, "log": log_path, "runtime": home / "runtime"}
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
