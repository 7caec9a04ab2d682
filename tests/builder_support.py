"""Shared pieces of the hub's builder and runner tests: small bundles and one warm environment.

Loaded as a pytest plugin (``pytest_plugins = ("builder_support",)``), so its session fixtures are
made once per session: the Pillow bundle's environment is built once under the session's temporary
folder and shared. uv's cache is the user's (``~/.cache/uv``): only the first run on a machine
downloads anything. (PYTEST_DONT_REWRITE: the test modules import it before pytest loads it.)
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from algolink_jupyter.hub.builder import Builder, Environment
from algolink_jupyter.hub.bundles import BundleConfig, read_config

PILLOW_PIN = "pillow==12.3.0"

#: A service whose behaviour tests steer with flag files in its folder.
SERVICE = """
import json
import os
import sys
import time

import modelcloud
from modelcloud.data_types import text
from PIL import Image

if os.path.exists("slow-import.flag"):
    time.sleep(60)
if os.path.exists("child.flag"):  # a helper process, in the service's process group
    import subprocess
    helper = subprocess.Popen(["sleep", "300"])
    with open("child.pid", "w") as f:
        f.write(str(helper.pid))

@modelcloud.setup(options={"greeting": text(default="hello")})
def setup(opts):
    if os.path.exists("crash.flag"):
        raise RuntimeError("crash.flag says this setup fails")
    return opts["greeting"]

@modelcloud.command("info", inputs={"name": text()}, outputs={"info": text()})
def info(model, inputs):
    if inputs["name"] == "nap":
        time.sleep(60)
    return {"info": json.dumps({
        "greeting": model,
        "name": inputs["name"],
        "pid": os.getpid(),
        "host": os.environ.get("ALGOLINK_HOST"),
        "token": os.environ.get("ALGOLINK_TOKEN"),
        "prefix": sys.prefix,
        "pillow": Image.__version__,
    })}

modelcloud.meta(name="hub-test", tagline="A service for the hub's tests")

if __name__ == "__main__":
    modelcloud.run()
"""


def write_bundle(
    folder: Path,
    source: str = SERVICE,
    requirements: Optional[str] = None,
    yml: Optional[str] = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloud_model.py").write_text(textwrap.dedent(source))
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    if yml is not None:
        (folder / "algolink.yml").write_text(textwrap.dedent(yml))
    return folder


@dataclass
class Warm:
    builder: Builder
    env: Environment
    bundle: Path
    config: BundleConfig
    seconds: float
    log: Path


@pytest.fixture(scope="session")
def envs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "hub-envs"


@pytest.fixture(scope="session")
def warm(tmp_path_factory, envs_root) -> Warm:
    """The Pillow bundle and its environment, built once per session."""
    bundle = write_bundle(tmp_path_factory.mktemp("pillow") / "bundle", requirements=PILLOW_PIN)
    builder = Builder(envs_root)
    config = read_config(bundle)
    log = bundle.parent / "build.log"
    t0 = time.perf_counter()
    env = asyncio.run(builder.build(bundle, config, log))
    return Warm(builder, env, bundle, config, time.perf_counter() - t0, log)


def processes_with_key(key: str) -> list:
    """Pids of live processes whose environment marks them as started by the runner for ``key``."""
    found = []
    needle = f"ALGOLINK_RUNNER_KEY={key}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            mine = needle in (entry / "environ").read_bytes().split(b"\0")
            if mine and (entry / "stat").read_text().split(") ", 1)[1][:1] != "Z":
                found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found
