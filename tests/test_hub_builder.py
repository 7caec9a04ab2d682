"""The builder: real uv builds of small bundles, reuse, locking, pip configuration, the manifest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from builder_support import PILLOW_PIN, SERVICE, write_bundle

import modelcloud
from algolink_jupyter.hub.builder import (
    COMPLETE_MARKER,
    Builder,
    BuildError,
    pip_config,
    uv_settings,
)
from algolink_jupyter.hub.bundles import read_config

pytest_plugins = ("builder_support",)

REPO = Path(__file__).resolve().parent.parent
RUNTIME = Path(modelcloud.__file__).resolve().parent
OWN = f"{sys.version_info.major}.{sys.version_info.minor}"
STAMP = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] ")


def run_in(env, code: str, cwd: Path | None = None) -> str:
    out = subprocess.run(
        [str(env.python), "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd or env.path,
        env=env.process_env(),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def build(builder: Builder, bundle: Path, log: Path):
    return asyncio.run(builder.build(bundle, read_config(bundle), log))


def test_a_pillow_bundle_builds_an_isolated_environment(warm):
    env = warm.env
    assert env.path == warm.builder.envs_root / env.key and env.key.startswith(f"py{OWN}-")
    assert (env.path / COMPLETE_MARKER).is_file()
    assert env.python.is_file() and env.bin_dir == env.path / "bin"
    info = json.loads(
        run_in(
            env,
            "import json, sys, PIL, modelcloud, tornado, numpy, yaml;"
            "print(json.dumps({'prefix': sys.prefix, 'pil': PIL.__version__,"
            " 'mc': modelcloud.__file__}))",
        )
    )
    assert info["prefix"] == str(env.path)  # not the hub's interpreter
    assert info["pil"] == PILLOW_PIN.split("==")[1]  # requirements.txt won over the runtime's pick
    installed = Path(info["mc"]).parent
    assert str(installed).startswith(str(env.path))
    assert (installed / "server.py").read_bytes() == (RUNTIME / "server.py").read_bytes()
    # installed from the runtime's wheel, as a distribution pip knows
    version = run_in(env, "import importlib.metadata as m; print(m.version('modelcloud'))")
    assert version.startswith(modelcloud.__version__ + "+")
    # the hub's own packages are not there
    out = subprocess.run(
        [str(env.python), "-c", "import algolink_jupyter"], capture_output=True, cwd=env.path
    )
    assert out.returncode != 0
    # the environment's pip is uv's, bound to the environment
    listing = subprocess.run(
        [str(env.bin_dir / "pip"), "list"], capture_output=True, text=True, env=env.process_env()
    )
    assert listing.returncode == 0 and "pillow" in listing.stdout.lower()
    assert "modelcloud" in listing.stdout


def test_the_build_log_has_stamped_steps_and_a_final_verdict(warm):
    lines = warm.log.read_text().splitlines()
    assert all(STAMP.match(line) for line in lines)
    text = "\n".join(lines)
    for header in ("Creating a virtual environment", "modelcloud runtime", "Build step 1/1"):
        assert header in text
    assert "pip install -r requirements.txt" in text
    assert re.search(r"Build succeeded in \d+\.\d s", lines[-1]) or "Reusing" in text


def test_a_second_build_of_the_same_key_reuses_it_at_once(warm, tmp_path):
    other = write_bundle(tmp_path / "same-needs", requirements=PILLOW_PIN)
    t0 = time.perf_counter()
    env = build(warm.builder, other, tmp_path / "build.log")
    seconds = time.perf_counter() - t0
    assert env == warm.env
    assert seconds < 0.3, seconds
    log = (tmp_path / "build.log").read_text()
    assert "Reusing environment" in log and "Build succeeded in 0.0 s" in log.splitlines()[-1]


def test_the_key_follows_python_requirements_and_steps(warm, tmp_path):
    b = warm.builder
    base = b.env_key(warm.config, warm.bundle)
    assert b.env_key(read_config(warm.bundle), warm.bundle) == base
    other = write_bundle(tmp_path / "b", source="# different code, same needs\n")
    shutil.copy(warm.bundle / "requirements.txt", other / "requirements.txt")
    assert b.env_key(read_config(other), other) == base  # the code is not part of the key
    (other / "requirements.txt").write_text(PILLOW_PIN + "\nsix\n")
    assert b.env_key(read_config(other), other) != base
    shutil.copy(warm.bundle / "requirements.txt", other / "requirements.txt")
    (other / "algolink.yml").write_text("build_steps: [pip install -r requirements.txt, 'true']\n")
    assert b.env_key(read_config(other), other) != base
    (other / "algolink.yml").write_text('python: "3.99"\n')
    assert b.env_key(read_config(other), other) != base


def test_a_bundle_without_requirements_streams_its_log_while_building(envs_root, tmp_path):
    """The step's first line is in the log file while the step is still running."""
    bundle = write_bundle(
        tmp_path / "plain",
        yml=(
            "build_steps:\n"
            "  - echo first-line-$(python -c 'import sys; print(sys.prefix)') && sleep 1.5"
            " && echo second-line > made-by-step.txt\n"
        ),
    )
    log = tmp_path / "build.log"

    async def go():
        task = asyncio.ensure_future(Builder(envs_root).build(bundle, read_config(bundle), log))
        seen_partial = False
        while not task.done():
            text = log.read_text() if log.exists() else ""
            if "first-line-" in text and "Build succeeded" not in text:
                seen_partial = True
            await asyncio.sleep(0.05)
        return await task, seen_partial

    env, seen_partial = asyncio.run(go())
    assert seen_partial
    text = log.read_text()
    assert f"first-line-{env.path}" in text  # the step ran with the environment first on PATH
    assert (bundle / "made-by-step.txt").read_text().strip() == "second-line"  # cwd = bundle
    assert run_in(env, "import modelcloud, PIL; print('ok')") == "ok"


def test_concurrent_builds_of_one_key_share_one_environment(envs_root, tmp_path):
    """Also: `python -m pip` and pip's own options work in build steps (uv's pip stands in)."""
    yml = "build_steps: [python -m pip install --no-cache-dir -r requirements.txt]\n"
    bundles = [
        write_bundle(tmp_path / f"b{i}", requirements="six==1.16.0\n", yml=yml) for i in range(2)
    ]

    async def go():
        builder = Builder(envs_root)
        return await asyncio.gather(
            *(builder.build(b, read_config(b), tmp_path / f"{b.name}.log") for b in bundles)
        )

    first, second = asyncio.run(go())
    assert first == second
    logs = [(tmp_path / f"b{i}.log").read_text() for i in range(2)]
    assert sum("Creating a virtual environment" in text for text in logs) == 1
    assert any("Waiting for another build" in text for text in logs)
    assert all("Build succeeded" in text.splitlines()[-1] for text in logs)
    assert run_in(first, "import six; print(six.__version__)") == "1.16.0"


def test_unresolvable_requirements_fail_naming_the_package(envs_root, tmp_path):
    bundle = write_bundle(tmp_path / "bad", requirements="algolink-no-such-package-xyz==1.0\n")
    log = tmp_path / "build.log"
    builder = Builder(envs_root)
    with pytest.raises(BuildError) as e:
        build(builder, bundle, log)
    assert "algolink-no-such-package-xyz" in str(e.value)
    assert "Build step 1 of 1" in str(e.value)
    text = log.read_text()
    assert "algolink-no-such-package-xyz" in text
    assert text.splitlines()[-1].split("] ", 1)[1].startswith("Build failed after")
    key = builder.env_key(read_config(bundle), bundle)
    assert not (envs_root / key).exists()  # nothing half-built is left to be reused


def test_a_bundle_that_vendors_modelcloud_uses_its_own(envs_root, tmp_path):
    bundle = write_bundle(
        tmp_path / "vendored",
        source=SERVICE.replace(
            'modelcloud.meta(name="hub-test"', 'modelcloud.meta(name="vendored"'
        ),
        requirements="tornado\npillow\nnumpy\npyyaml\n",
    )
    shutil.copytree(RUNTIME, bundle / "modelcloud", ignore=shutil.ignore_patterns("__pycache__"))
    init = bundle / "modelcloud" / "__init__.py"
    init.write_text(init.read_text() + "\nVENDORED_COPY = True\n")
    log = tmp_path / "build.log"
    builder = Builder(envs_root)
    env = build(builder, bundle, log)
    assert "vendors its own modelcloud" in log.read_text()
    assert "Installing the modelcloud runtime" not in log.read_text()
    # nothing named modelcloud in the environment itself: outside the bundle it is not importable
    out = subprocess.run(
        [str(env.python), "-c", "import modelcloud"], capture_output=True, cwd=tmp_path
    )
    assert out.returncode != 0
    assert run_in(env, "import modelcloud; print(modelcloud.VENDORED_COPY)", cwd=bundle) == "True"
    manifest = asyncio.run(builder.read_manifest(env, bundle, 60))
    assert manifest["metadata"]["name"] == "vendored"
    assert builder.env_key(read_config(bundle), bundle) != builder.env_key(
        read_config(bundle), tmp_path
    )


@pytest.mark.parametrize("version", ["2.7", "3.99"])
def test_a_python_that_is_not_here_fails_listing_those_that_are(envs_root, tmp_path, version):
    bundle = write_bundle(tmp_path / "old", yml=f'python: "{version}"\n')
    log = tmp_path / "build.log"
    builder = Builder(envs_root)
    with pytest.raises(BuildError) as e:
        build(builder, bundle, log)
    message = str(e.value)
    assert f"Python {version}" in message
    own = ".".join(map(str, sys.version_info[:3]))
    assert own in message  # at least the hub's own Python is listed as available
    assert "set python: in algolink.yml" in message
    assert "Build failed" in log.read_text().splitlines()[-1]
    assert not (envs_root / builder.env_key(read_config(bundle), bundle)).exists()


def test_read_manifest(warm):
    manifest = asyncio.run(warm.builder.read_manifest(warm.env, warm.bundle, 60))
    assert manifest["metadata"]["name"] == "hub-test"
    assert [c["name"] for c in manifest["commands"]] == ["info"]
    assert manifest["options"][0]["name"] == "greeting"


def test_read_manifest_errors_carry_stderr(warm, tmp_path):
    broken = write_bundle(
        tmp_path / "broken",
        source="import modelcloud\nraise ValueError('weights.bin is missing')\n",
    )
    with pytest.raises(BuildError) as e:
        asyncio.run(warm.builder.read_manifest(warm.env, broken, 60))
    assert "exited with status 1" in str(e.value) and "weights.bin is missing" in str(e.value)

    silent = write_bundle(tmp_path / "silent", source="import modelcloud\nprint('hello')\n")
    with pytest.raises(BuildError, match="printed no manifest"):
        asyncio.run(warm.builder.read_manifest(warm.env, silent, 60))

    slow = write_bundle(tmp_path / "slow", source="import time\ntime.sleep(60)\n")
    t0 = time.monotonic()
    with pytest.raises(BuildError, match="within 1 s"):
        asyncio.run(warm.builder.read_manifest(warm.env, slow, 1))
    assert time.monotonic() - t0 < 10


# --- pip's configuration -------------------------------------------------------------------------


def test_pip_configuration_is_read_in_pips_order(tmp_path):
    (tmp_path / "xdg" / "pip").mkdir(parents=True)
    (tmp_path / "xdg" / "pip" / "pip.conf").write_text(
        "[global]\nindex-url = https://global.example/simple\nconstraint = /c/global.txt\n"
    )
    (tmp_path / "home" / ".config" / "pip").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "pip" / "pip.conf").write_text(
        "[global]\nindex-url = https://user.example/simple\n"
        "extra-index-url =\n  file:///opt/a/simple\n  file:///opt/b/simple\n"
        "find-links = /wheels\n[install]\ntrusted-host = mirror.example\n"
    )
    environ = {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
        "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
        "PIP_CONSTRAINT": "/c/env.txt",
        "PIP_DEFAULT_TIMEOUT": "60",
        "PIP_PRE": "1",
        "PIP_CERT": "/certs/bundle.pem",
    }
    cfg = pip_config(environ)
    assert cfg["index-url"] == "https://user.example/simple"  # the user's file beats the global one
    assert cfg["constraint"] == "/c/env.txt"  # PIP_* wins over the files
    assert cfg["trusted-host"] == "mirror.example"  # [install] counts too
    uv_env, flags = uv_settings(cfg, environ)
    expected = {
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
        "UV_DEFAULT_INDEX": "https://user.example/simple",
        "UV_INDEX": "file:///opt/a/simple file:///opt/b/simple",
        "UV_FIND_LINKS": "/wheels",
        "UV_CONSTRAINT": "/c/env.txt",
        "UV_INSECURE_HOST": "mirror.example",
        "UV_HTTP_TIMEOUT": "60",
        "UV_PRERELEASE": "allow",
        "SSL_CERT_FILE": "/certs/bundle.pem",
    }
    # (the machine's own /etc/pip.conf is read as pip reads it and may add settings of its own)
    assert {k: uv_env.get(k) for k in expected} == expected
    assert flags == []
    # a UV_* variable set for the hub wins; no-index becomes a flag
    uv_env, flags = uv_settings({**cfg, "no-index": "true"}, {**environ, "UV_DEFAULT_INDEX": "x"})
    assert "UV_DEFAULT_INDEX" not in uv_env and flags == ["--no-index"]
    # PIP_CONFIG_FILE=/dev/null: no files at all
    assert "index-url" not in pip_config({**environ, "PIP_CONFIG_FILE": "/dev/null"})


def make_wheel(folder: Path, name: str, version: str, code: str) -> Path:
    """A pure-Python wheel, written by hand (no build backend needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": code,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def test_builds_honour_pips_find_links(envs_root, tmp_path, monkeypatch):
    """A package that exists only in a local folder named by PIP_FIND_LINKS gets installed."""
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "algolink_local_only", "0.3", "VALUE = 42\n")
    bundle = write_bundle(tmp_path / "local", requirements="algolink-local-only==0.3\n")
    builder = Builder(envs_root)
    monkeypatch.delenv("UV_FIND_LINKS", raising=False)
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    env = build(builder, bundle, tmp_path / "build.log")
    assert run_in(env, "import algolink_local_only as m; print(m.VALUE)") == "42"


def test_steps_that_work_on_the_bundle_run_again_when_the_environment_is_reused(
    envs_root, tmp_path
):
    """`python train.py --if-missing` writes into the bundle, so a new bundle needs it again."""
    yml = "build_steps:\n  - pip install -r requirements.txt\n  - echo made > made.txt\n"
    first = write_bundle(tmp_path / "v1", requirements="six==1.16.0\n# v1\n", yml=yml)
    second = write_bundle(tmp_path / "v2", requirements="six==1.16.0\n# v1\n", yml=yml)
    builder = Builder(envs_root)
    env1 = build(builder, first, tmp_path / "v1.log")
    env2 = build(builder, second, tmp_path / "v2.log")
    assert env1 == env2
    assert (first / "made.txt").is_file() and (second / "made.txt").is_file()
    log = (tmp_path / "v2.log").read_text()
    assert "Reusing environment" in log and "Bundle step 1/1" in log
    assert "pip install" not in log  # the environment's own steps are not run again
