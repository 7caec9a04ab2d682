"""Shared by the browser tests: Debian's Chromium (``/usr/bin/chromium``, headless, ``--no-sandbox``
as root) driven by Playwright; never ``playwright install``. Importing this module skips the importing
test module when Playwright or Chromium is missing (``make test`` installs both)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
