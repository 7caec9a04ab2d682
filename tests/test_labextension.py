"""The JupyterLab extension and its packaging, and the server-extension route its panel reads the hub from.

- the project's own environment (``pip install -e``, what ``make`` does) lists both extensions enabled;
- ``pip install .`` (not editable) into a fresh virtual environment does too, with no other step;
- the sdist carries the built extension, its ``install.json`` and the TypeScript sources;
- ``GET <base>algolink/api/hub/services`` against a real Jupyter server and a real hub process: the
  services, who the token signs in (a developer, a viewer, nobody) and what they may publish to.

The extension's own lint and unit tests (eslint, tsc, node's test runner) run in ``make js-test``, which
``make test`` depends on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests
from hub_process import Hub, free_port, make_bundle
from traitlets.config import Config

pytest_plugins = ["pytest_jupyter.jupyter_server"]

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONFIG_FILE = REPO / "jupyter-config" / "jupyter_server_config.d" / "algolink_jupyter.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LABEXTENSION = REPO / "algolink_jupyter" / "labextension"


def listing(jupyter: Path, *args: str, env: dict | None = None) -> str:
    """The output of ``jupyter <args>`` (both streams: the lists go to stderr), colours removed."""
    result = subprocess.run(
        [str(jupyter), *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return ANSI.sub("", result.stdout + result.stderr)


def assert_both_enabled(jupyter: Path, env: dict | None = None) -> None:
    labext = listing(jupyter, "labextension", "list", env=env)
    assert re.search(
        r"algolink-jupyter v0\.1\.0 enabled\s+OK \(python, algolink-jupyter\)", labext
    ), labext
    assert "not compatible" not in labext and "outdated" not in labext, labext
    serverext = listing(jupyter, "server", "extension", "list", env=env)
    assert re.search(r"algolink_jupyter enabled", serverext), serverext
    assert re.search(r"algolink_jupyter 0\.1\.0 OK", serverext), serverext


# -- packaging ----------------------------------------------------------------------------------------------
def test_project_environment_has_both_extensions_enabled():
    assert_both_enabled(BIN / "jupyter")
    shared = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "algolink-jupyter"
    install = json.loads((shared / "install.json").read_text())
    assert install["packageManager"] == "python" and install["packageName"] == "algolink-jupyter"
    assert list((shared / "static").glob("remoteEntry.*.js"))


def test_sdist_carries_the_built_extension_and_its_sources(tmp_path):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (sdist,) = tmp_path.glob("algolink_jupyter-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for wanted in (
        "algolink_jupyter/labextension/package.json",
        "algolink_jupyter/labextension/static/style.js",
        # Swagger UI for the hub's API docs pages, copied from npm by the build
        "algolink_jupyter/hub/handlers/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "algolink_jupyter/hub/handlers/static/vendor/swagger-ui/LICENSE",
        "install.json",
        "js/package.json",
        "js/package-lock.json",
        "js/src/index.ts",
        "js/src/model.ts",
        "js/test/model.test.ts",
        "jupyter-config/jupyter_server_config.d/algolink_jupyter.json",
        # the translation catalogs and what the build compiles from them (hatch_build.py)
        "algolink_jupyter/locale/zh_CN/LC_MESSAGES/algolink_jupyter.po",
        "algolink_jupyter/locale/zh_CN/LC_MESSAGES/algolink_jupyter.mo",
        "algolink_jupyter/locale/zh_CN/LC_MESSAGES/algolink_jupyter.json",
        "hatch_build.py",
        "scripts/i18n.py",
    ):
        assert wanted in names, wanted
    assert not [n for n in names if n.startswith(("js/node_modules", "js/lib/"))]


@pytest.mark.timeout(900)
def test_pip_install_into_a_fresh_environment_enables_both(tmp_path):
    """``pip install ./runtime .`` (not editable; the runtime SDK is its own distribution, which
    algolink-jupyter depends on) into a clean venv: both extensions listed enabled, no other step."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "JUPYTER_PATH")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    started = time.monotonic()
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
        + ["./runtime", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=840,
        env=env,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    print(f"pip install ./runtime . into a fresh venv took {took:.0f} s")
    assert_both_enabled(venv / "bin" / "jupyter", env=env)
    shared = venv / "share" / "jupyter" / "labextensions" / "algolink-jupyter"
    assert (shared / "install.json").is_file()
    assert (shared / "package.json").is_file()
    # A copy, not a link into the checkout: the install stands on its own.
    assert not (shared / "package.json").is_symlink()
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import algolink_jupyter.hub.handlers.pages as p; "
         "print(p.STATIC)"],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    static = Path(found.stdout.strip())
    assert (static / "vendor" / "swagger-ui" / "swagger-ui-bundle.js").is_file(), found.stderr


# -- the hub route of the server extension ------------------------------------------------------------------
@pytest.fixture
def jp_server_config():
    return Config(json.loads(CONFIG_FILE.read_text()))


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub")).start()
    h.ensure_group("lab-demo", "vision")
    bundle = make_bundle(tmp_path_factory.mktemp("bundle") / "echo")
    r = h.register("lab-demo", "vision", "echo", bundle)
    assert r.status_code == 201, r.text
    h.ensure_group("another", "text")
    yield h
    h.stop()


async def get_services(jp_fetch) -> tuple:
    response = await jp_fetch("algolink", "api", "hub", "services", raise_error=False)
    return response.code, json.loads(response.body.decode())


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    """The user's own AlgoLink config file stays out of these tests."""
    monkeypatch.setenv("ALGOLINK_CONFIG", str(tmp_path / "algolink-config.json"))
    return tmp_path / "algolink-config.json"


async def test_hub_route_without_configuration_says_what_to_set(jp_fetch, monkeypatch):
    monkeypatch.delenv("ALGOLINK_HUB_URL", raising=False)
    monkeypatch.delenv("ALGOLINK_TOKEN", raising=False)
    code, body = await get_services(jp_fetch)
    assert code == 200
    assert body["configured"] is False
    assert "ALGOLINK_HUB_URL" in body["message"] and "ALGOLINK_TOKEN" in body["message"]


async def test_hub_route_reads_the_user_config_file(jp_fetch, monkeypatch, hub, no_user_config):
    monkeypatch.delenv("ALGOLINK_HUB_URL", raising=False)
    monkeypatch.delenv("ALGOLINK_TOKEN", raising=False)
    no_user_config.write_text(json.dumps({"hub_url": hub.url, "token": hub.token}))
    code, body = await get_services(jp_fetch)
    assert code == 200, body
    assert body["configured"] is True and body["hub_url"] == hub.url
    assert ("lab-demo", "echo") in [(s["project"], s["name"]) for s in body["services"]]
    no_user_config.write_text("{not json")
    code, body = await get_services(jp_fetch)
    assert code == 502
    assert str(no_user_config) in body["error"] and "not valid JSON" in body["error"]


async def test_hub_route_lists_the_services_without_revealing_the_token(jp_fetch, monkeypatch, hub):
    monkeypatch.setenv("ALGOLINK_HUB_URL", hub.url + "/")
    monkeypatch.setenv("ALGOLINK_TOKEN", hub.token)
    response = await jp_fetch("algolink", "api", "hub", "services", raise_error=False)
    assert response.code == 200, response.body
    text = response.body.decode()
    assert hub.token not in text
    body = json.loads(text)
    assert body["configured"] is True and body["hub_url"] == hub.url
    (service,) = [s for s in body["services"] if s["project"] == "lab-demo"]
    assert service["name"] == "echo" and service["group"] == "vision"
    assert service["status"] == hub.service("lab-demo", "echo")["status"] == "registered"
    assert service["api_url"] is None  # not online
    assert service["page_url"] == f"{hub.url}/projects/lab-demo/services/echo"
    page = requests.get(service["page_url"], timeout=30)
    assert page.status_code == 200 and "echo" in page.text
    # A project without services adds none.
    assert all(s["project"] != "another" for s in body["services"])


@pytest.fixture(scope="module")
def people(hub):
    """A developer of lab-demo (and a viewer of another), and viewers of lab-demo: one with a token of
    all their say, one with a token limited to the project (as a notebook's token would be)."""
    tokens = {
        "dev": hub.add_user("dev", {"lab-demo": "developer", "another": "viewer"}),
        "vic": hub.add_user("vic", {"lab-demo": "viewer"}),
        "val": hub.add_user("val", {"lab-demo": "viewer"}, token_name="lab", project="lab-demo"),
    }
    r = hub.api("PATCH", "/api/v1/users/dev", json={"display_name": "Dee Veloper"})
    assert r.status_code == 200, r.text
    return tokens


async def test_hub_route_says_who_is_signed_in_and_what_they_may_publish(
    jp_fetch, monkeypatch, hub, people
):
    monkeypatch.setenv("ALGOLINK_HUB_URL", hub.url)
    monkeypatch.setenv("ALGOLINK_TOKEN", people["dev"])
    code, body = await get_services(jp_fetch)
    assert code == 200, body
    assert body["signed_in"] is True and people["dev"] not in json.dumps(body)
    user = body["user"]
    assert (user["name"], user["display_name"], user["admin"]) == ("dev", "Dee Veloper", False)
    assert user["projects"] == {"lab-demo": "developer", "another": "viewer"}
    assert user["token"]["name"] == "dev-token" and user["token"]["limits"] == []
    assert body["may"] == {
        "publish": True,
        "projects": ["lab-demo"],
        "create_projects": True,
        "service": None,
        "viewer_of": ["another"],
        "reason": None,
    }
    (service,) = body["services"]
    assert (service["project"], service["name"], service["role"]) == (
        "lab-demo",
        "echo",
        "developer",
    )

    # A viewer with a token of all their say may still make a project of their own (the hub lets
    # anyone signed in do so), but not publish to lab-demo.
    monkeypatch.setenv("ALGOLINK_TOKEN", people["vic"])
    code, body = await get_services(jp_fetch)
    assert code == 200, body
    assert body["user"]["name"] == "vic"
    assert body["may"]["projects"] == [] and body["may"]["create_projects"] is True
    assert body["may"]["viewer_of"] == ["lab-demo"] and body["may"]["publish"] is True
    assert [s["role"] for s in body["services"]] == ["viewer"]

    # A viewer whose token is limited to lab-demo may publish nowhere: the panel says why.
    monkeypatch.setenv("ALGOLINK_TOKEN", people["val"])
    code, body = await get_services(jp_fetch)
    assert code == 200, body
    assert body["user"]["name"] == "val"
    assert body["user"]["token"]["project"] == "lab-demo"
    assert body["user"]["token"]["limits"] == ["limited to the project lab-demo"]
    assert body["may"]["publish"] is False and body["may"]["reason"] == "viewer"
    assert body["may"]["create_projects"] is False
    assert [(s["name"], s["role"]) for s in body["services"]] == [("echo", "viewer")]


async def test_hub_route_without_a_token_says_to_sign_in(
    jp_fetch, monkeypatch, hub, no_user_config
):
    monkeypatch.setenv("ALGOLINK_HUB_URL", hub.url)
    monkeypatch.delenv("ALGOLINK_TOKEN", raising=False)
    no_user_config.write_text(json.dumps({"hub_url": hub.url}))
    code, body = await get_services(jp_fetch)
    assert code == 200, body
    assert body["configured"] is True and body["signed_in"] is False
    assert body["services"] == []
    assert f"Not signed in to the hub at {hub.url}" in body["message"]
    assert f"`algolink login --hub {hub.url}`" in body["message"]


async def test_hub_route_explains_a_refused_token(jp_fetch, monkeypatch, hub):
    monkeypatch.setenv("ALGOLINK_HUB_URL", hub.url)
    monkeypatch.setenv("ALGOLINK_TOKEN", "not-a-token")
    code, body = await get_services(jp_fetch)
    assert code == 502
    assert "refused the token" in body["error"] and "ALGOLINK_TOKEN" in body["error"]
    assert (
        "restart JupyterLab" in body["error"]
    )  # the environment's token: only a restart changes it


async def test_hub_route_explains_an_unreachable_hub(jp_fetch, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ALGOLINK_HUB_URL", url)
    monkeypatch.setenv("ALGOLINK_TOKEN", "whatever")
    code, body = await get_services(jp_fetch)
    assert code == 502
    assert body["error"].startswith(f"Cannot reach the hub at {url}")
    assert "algolink hub" in body["error"]


async def test_hub_route_refuses_a_url_that_is_not_http(jp_fetch, monkeypatch):
    monkeypatch.setenv("ALGOLINK_HUB_URL", "ftp://example.org")
    code, body = await get_services(jp_fetch)
    assert code == 502
    assert "ALGOLINK_HUB_URL" in body["error"] and "ftp://example.org" in body["error"]


async def test_hub_route_needs_jupyter_credentials(
    http_server_client, jp_base_url, monkeypatch, hub
):
    monkeypatch.setenv("ALGOLINK_HUB_URL", hub.url)
    monkeypatch.setenv("ALGOLINK_TOKEN", hub.token)
    response = await http_server_client.fetch(
        jp_base_url + "algolink/api/hub/services", raise_error=False
    )
    assert response.code == 403
    assert hub.token not in response.body.decode()
