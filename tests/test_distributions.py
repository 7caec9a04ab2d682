"""Two distributions from this repository: ``modelcloud`` (runtime/, the runtime SDK alone) and
``algolink-jupyter`` (everything else, depending on it at the same version).

The modelcloud wheel is built with its own build backend and installed alone into a fresh environment:
what it pulls in is listed and is only the runtime's four dependencies, nothing of Jupyter, the hub or
uv can be imported there, and the digits example is served from it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import tomllib

import modelcloud
from algolink_jupyter import runtime
from algolink_jupyter.export.verify import uv_binary
from algolink_jupyter.hub.pipconfig import uv_settings
from support import REPO, ServerProcess

pytestmark = pytest.mark.timeout(600)

RUNTIME_DEPS = {"modelcloud", "tornado", "pillow", "numpy", "pyyaml"}


def installed(python: Path) -> dict:
    """name -> version of every distribution an environment holds."""
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower(): "
            "d.version for d in m.distributions()}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The modelcloud wheel, built from runtime/ by its own build backend."""
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q"]
        + ["-w", str(out), str(REPO / "runtime")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (found,) = out.glob("modelcloud-*.whl")
    return found


@pytest.fixture(scope="module")
def env(wheel, tmp_path_factory):
    """A fresh environment with the modelcloud wheel alone installed (and what it requires)."""
    folder = tmp_path_factory.mktemp("runtime-only") / "env"
    uv = uv_binary()
    uv_env, flags = uv_settings()
    run_env = {**os.environ, **uv_env}
    for var in ("VIRTUAL_ENV", "PYTHONPATH"):
        run_env.pop(var, None)
    base = getattr(sys, "_base_executable", sys.executable)
    made = subprocess.run(
        [uv, "venv", "--quiet", "--python", base, str(folder)],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    python = folder / "bin" / "python"
    done = subprocess.run(
        [uv, "pip", "install", "--python", str(python), *flags, str(wheel)],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {"python": python, "env": run_env, "uv": uv, "flags": flags}


def test_the_modelcloud_wheel_pulls_in_only_the_runtime(wheel, env):
    assert wheel.name == f"modelcloud-{modelcloud.__version__}-py3-none-any.whl"
    have = installed(env["python"])
    assert set(have) == RUNTIME_DEPS, have
    assert have["modelcloud"] == modelcloud.__version__
    probe = (
        "import importlib.util as u, json; print(json.dumps([n for n in %r if u.find_spec(n)]))"
        % [
            "algolink_jupyter",
            "jupyter_server",
            "ipykernel",
            "IPython",
            "sqlalchemy",
            "uv",
            "nh3",
        ]
    )
    out = subprocess.run(
        [str(env["python"]), "-c", probe], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert out.returncode == 0 and json.loads(out.stdout) == [], out.stdout + out.stderr


def test_the_digits_example_serves_from_the_runtime_alone(env, tmp_path):
    done = subprocess.run(
        [env["uv"], "pip", "install", "--python", str(env["python"]), *env["flags"]]
        + ["torch==2.13.0"],
        capture_output=True,
        text=True,
        env=env["env"],
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "algolink-jupyter" not in installed(env["python"])
    example = tmp_path / "digits"
    shutil.copytree(
        REPO / "examples" / "digits",
        example,
        ignore=shutil.ignore_patterns("models", "__pycache__"),
    )
    weights = tmp_path / "digits.pt"
    train = subprocess.run(  # with the test's own Python: training needs scikit-learn
        [sys.executable, str(example / "train.py"), "--out", str(weights)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert train.returncode == 0, train.stdout + train.stderr
    server = ServerProcess(
        [str(env["python"]), "cloud_model.py"],
        cwd=example,
        env={
            "ALGOLINK_MODEL_OPTIONS": json.dumps({"checkpoint": str(weights)}),
            "ALGOLINK_PORT": "0",
        },
    ).wait_started()
    try:
        answer = requests.post(
            server.url + "/classify",
            files={"photo": (example / "samples" / "digit_3.png").read_bytes()},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["digit"] == 3
    finally:
        server.stop()


def test_the_two_versions_are_one():
    """algolink-jupyter depends on modelcloud at its own version; the installed ones agree."""
    root = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f"modelcloud=={root['version']}" in root["dependencies"]
    assert modelcloud.__version__ == root["version"]
    assert importlib.metadata.version("modelcloud") == modelcloud.__version__
    assert runtime.requirement() == f"modelcloud=={root['version']}"
    # algolink-jupyter's wheel ships its own package only: modelcloud comes from its distribution
    wheel = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert wheel["targets"]["wheel"]["packages"] == ["algolink_jupyter"]


def test_the_hubs_runtime_wheel_installs_as_the_same_version(tmp_path):
    """What the hub and the verification install (made from the installed modelcloud): a wheel
    whose version satisfies a bundle's ``modelcloud==X``, remade when the runtime changes."""
    made = runtime.wheel(tmp_path)
    assert made.name.startswith(f"modelcloud-{modelcloud.__version__}+")
    assert runtime.wheel(tmp_path) == made  # made once
    import zipfile

    with zipfile.ZipFile(made) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "modelcloud/server.py" in names and not any("__pycache__" in n for n in names)
    assert "Requires-Dist: tornado" in metadata
