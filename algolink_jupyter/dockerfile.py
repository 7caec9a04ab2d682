"""What a bundle's container image holds, said once for both ways of building it.

``algolink image`` (the hub's ``image.py``) writes the image's layers itself; the ``Dockerfile`` and
``.dockerignore`` the exporter writes beside every bundle let Docker build the same image: the same
files in :data:`APP_DIR` (the bundle less what :data:`IGNORED` names), the same entrypoint, user,
working folder, port, health check and environment variables. Both read this module.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from collections.abc import Iterable
from typing import Optional

__all__ = [
    "APP_DIR",
    "ENV_DIR",
    "IGNORED",
    "UID",
    "USER",
    "WHEELS_DIR",
    "DEFAULT_PORT",
    "entrypoint_argv",
    "healthcheck_argv",
    "ignored",
    "dockerignore",
    "dockerfile",
    "is_install_step",
]

#: Where the bundle sits in the image (the working folder of the service).
APP_DIR = "/srv/algolink/app"
#: Where the Dockerfile makes its virtual environment (``algolink image`` keeps the hub's own path).
ENV_DIR = "/opt/algolink/env"
#: The image's user: not root, no login.
USER = "algolink"
UID = 10001
#: The runtime's wheel in the Docker build context (the exporter writes it there).
WHEELS_DIR = ".algolink-wheels"
#: The port a service listens on when algolink.yml names none (modelcloud.run()'s default).
DEFAULT_PORT = 9000
#: What of a bundle folder goes into neither image (``.dockerignore``'s lines, in its syntax).
IGNORED = (
    "Dockerfile",
    ".dockerignore",
    "**/__pycache__",
    "**/*.pyc",
    ".ipynb_checkpoints",
    "**/.ipynb_checkpoints",
    ".git",
    ".DS_Store",
)
_INSTALL_STEP = re.compile(r"^\s*(pip3?|python3?(\.\d+)?\s+-m\s+pip|uv\s+pip)\s+install\b")
_SHELL_CHARS = re.compile(r"[|&;<>()$`\\\"'*?\[\]#~{}\n]")


def is_install_step(step: str) -> bool:
    return bool(_INSTALL_STEP.match(step))


def ignored(rel: str) -> bool:
    """Whether the bundle's file or folder ``rel`` (a POSIX path relative to the bundle) is left out."""
    parts = rel.split("/")
    for pattern in IGNORED:
        plain = pattern.removeprefix("**/")
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatchcase(p, plain) for p in parts):
                return True
        elif fnmatch.fnmatchcase(parts[0], pattern):
            return True
    return False


def entrypoint_argv(entrypoint: str) -> list:
    """The image's ENTRYPOINT for algolink.yml's ``entrypoint``: the command itself, run from PATH
    (the environment's ``bin/`` first), or ``/bin/sh -c`` for shell syntax."""
    if _SHELL_CHARS.search(entrypoint):
        return ["/bin/sh", "-c", entrypoint]
    argv = shlex.split(entrypoint)
    if not argv:
        raise ValueError("The entrypoint is empty: set entrypoint: in algolink.yml.")
    if "=" in argv[0]:
        return ["/bin/sh", "-c", entrypoint]
    return argv


def healthcheck_argv() -> list:
    """The HEALTHCHECK command: GET /healthcheck on the service's own port, with the image's Python."""
    code = (
        "import os,urllib.request;urllib.request.urlopen('http://127.0.0.1:%s/healthcheck'"
        " % os.environ.get('ALGOLINK_PORT', '9000'), timeout=4)"
    )
    return ["CMD", "python", "-c", code]


#: The HEALTHCHECK's timing, in seconds (the image config's nanoseconds are these times 1e9).
HEALTH_INTERVAL, HEALTH_TIMEOUT, HEALTH_START, HEALTH_RETRIES = 30, 5, 60, 3


def dockerignore() -> str:
    return (
        "# Written by AlgoLink beside the bundle: what of this folder the image leaves out (the same\n"
        "# as `algolink image`).\n" + "\n".join(IGNORED) + "\n"
    )


def dockerfile(
    *,
    python: str,
    entrypoint: str,
    build_steps: Iterable[str],
    port: Optional[int],
    labels: dict,
    runtime_wheel: Optional[str],
    has_models: bool,
    has_requirements: bool,
) -> str:
    """A Dockerfile equivalent to ``algolink image``'s: Debian bookworm's slim Python image at the
    bundle's version, a virtual environment with the modelcloud runtime (``runtime_wheel``, a file in
    :data:`WHEELS_DIR`; None when the bundle vendors its own) and the install steps, ``models/`` as a
    layer of its own, then the bundle, the other build steps as the image's user, and the same
    entrypoint, user, port, health check and labels."""
    port = port or DEFAULT_PORT
    steps = list(build_steps)
    early = [s for s in steps if is_install_step(s) and _only_requirements(s)]
    late = [s for s in steps if s not in early]
    lines = [
        "# syntax=docker/dockerfile:1",
        "# Written by AlgoLink beside the bundle: `docker build -t NAME .` here makes the image",
        "# `algolink image` makes (the same files, entrypoint, user, port, health check and labels).",
        f"FROM python:{python}-slim-bookworm",
        f"ENV VIRTUAL_ENV={ENV_DIR} PATH={ENV_DIR}/bin:$PATH PYTHONUNBUFFERED=1 \\",
        f"    ALGOLINK_HOST=0.0.0.0 ALGOLINK_PORT={port} HOME=/home/{USER}",
        f"RUN groupadd --gid {UID} {USER} && useradd --uid {UID} --gid {UID} --create-home {USER} \\",
        f"    && python -m venv {ENV_DIR} && mkdir -p {APP_DIR} && chown {UID}:{UID} {APP_DIR}",
        f"WORKDIR {APP_DIR}",
    ]
    if runtime_wheel:
        lines += [
            f"COPY {WHEELS_DIR}/ /opt/algolink/wheels/",
            f"RUN pip install --no-cache-dir /opt/algolink/wheels/{runtime_wheel}",
        ]
    if early and has_requirements:
        lines.append("COPY requirements.txt ./")
        lines += [f"RUN {_pip(s, runtime_wheel)}" for s in early]
    else:
        late = steps
    if has_models:
        lines.append(f"COPY --chown={UID}:{UID} models/ ./models/")
    lines.append(f"COPY --chown={UID}:{UID} . ./")
    installs = [s for s in late if is_install_step(s)]
    lines += [f"RUN {_pip(s, runtime_wheel)}" for s in installs]
    lines.append(f"USER {UID}:{UID}")
    lines += [f"RUN {s}" for s in late if s not in installs]
    lines.append(f"EXPOSE {port}/tcp")
    lines.append(
        f"HEALTHCHECK --interval={HEALTH_INTERVAL}s --timeout={HEALTH_TIMEOUT}s "
        f"--start-period={HEALTH_START}s --retries={HEALTH_RETRIES} \\\n    "
        + "CMD "
        + json.dumps(healthcheck_argv()[1:])
    )
    for key, value in sorted(labels.items()):
        lines.append(f"LABEL {json.dumps(key)}={json.dumps(str(value))}")
    lines.append(f"ENTRYPOINT {json.dumps(entrypoint_argv(entrypoint))}")
    return "\n".join(lines) + "\n"


def _only_requirements(step: str) -> bool:
    """A package install that reads requirements.txt alone (it may run before the bundle's files
    are copied, so a code change keeps Docker's cached dependency layer)."""
    words = step.split()
    files = [w for w in words if "/" in w or w.endswith((".txt", ".whl", ".py", ".toml"))]
    return bool(files) and all(w == "requirements.txt" for w in files) and "." not in words


def _pip(step: str, runtime_wheel: Optional[str]) -> str:
    """An install step as the Docker build runs it: pip's cache off, the runtime's wheel findable
    (a bundle's ``modelcloud==X`` installs from it, as on the hub)."""
    extra = " --no-cache-dir"
    if runtime_wheel:
        extra += " --find-links /opt/algolink/wheels"
    m = re.match(r"^(\s*(?:pip3?|python3?(?:\.\d+)?\s+-m\s+pip|uv\s+pip)\s+install)\b", step)
    assert m
    return m.group(1) + extra + step[m.end() :]
