"""The ``Dockerfile`` and ``.dockerignore`` written beside every bundle, with the modelcloud runtime's
wheel in ``.algolink-wheels/`` (the Docker build installs it, as the hub does): ``docker build .`` in
the bundle makes the image ``algolink image`` makes (see :mod:`..dockerfile`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import yaml

from .. import dockerfile as df
from .. import runtime

__all__ = ["write_docker_files"]


def write_docker_files(folder: Path, labels: Optional[dict] = None) -> list:
    """Write the Dockerfile, .dockerignore and runtime wheel into the bundle ``folder`` (its
    algolink.yml says the Python, entrypoint, build steps and port); the paths written."""
    folder = Path(folder)
    data = {}
    yml = folder / "algolink.yml"
    if yml.is_file():
        loaded = yaml.safe_load(yml.read_text(encoding="utf-8"))
        data = loaded if isinstance(loaded, dict) else {}
    python = str(data.get("python") or "3.11")
    steps = [str(s) for s in data.get("build_steps") or [] if s]
    if not steps and (folder / "requirements.txt").is_file():
        steps = ["pip install -r requirements.txt"]
    vendored = (folder / "modelcloud" / "__init__.py").is_file()
    wheel_name = None
    if not vendored:
        wheels = folder / df.WHEELS_DIR
        if wheels.exists():
            shutil.rmtree(wheels)
        wheels.mkdir()
        made = runtime.wheel(wheels)
        wheel_name = made.name
    port = data.get("port") if isinstance(data.get("port"), int) else None
    text = df.dockerfile(
        python=python,
        entrypoint=str(data.get("entrypoint") or "python cloud_model.py"),
        build_steps=steps,
        port=port,
        labels=labels or {},
        runtime_wheel=wheel_name,
        has_models=(folder / "models").is_dir(),
        has_requirements=(folder / "requirements.txt").is_file(),
    )
    (folder / "Dockerfile").write_text(text, encoding="utf-8")
    (folder / ".dockerignore").write_text(df.dockerignore(), encoding="utf-8")
    written = [folder / "Dockerfile", folder / ".dockerignore"]
    if wheel_name:
        written.append(folder / df.WHEELS_DIR / wheel_name)
    return written
