"""pip's configuration, translated for uv: a build honours the machine's index URLs, find-links,
constraints and trusted hosts (pip's config files and ``PIP_*`` variables) as ``UV_*`` variables."""

from __future__ import annotations

import configparser
import contextlib
import os
import sys
from pathlib import Path
from typing import Optional

__all__ = ["pip_config", "uv_settings"]


def _pip_config_files(environ: dict[str, str]) -> list[Path]:
    """pip's configuration files, lowest priority first (as ``pip config debug`` lists them)."""
    config_file = environ.get("PIP_CONFIG_FILE")
    if config_file == os.devnull:
        return []
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(Path("/etc/pip.conf"))  # global
    if not (config_file and os.path.exists(config_file)):
        home = Path(environ.get("HOME") or os.path.expanduser("~"))
        config_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
        files += [home / ".pip" / "pip.conf", config_home / "pip" / "pip.conf"]  # user
    files.append(Path(sys.base_prefix) / "pip.conf")  # site (the hub's interpreter)
    if sys.prefix != sys.base_prefix:
        files.append(Path(sys.prefix) / "pip.conf")
    if config_file:
        files.append(Path(config_file))
    return files


def pip_config(environ: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The settings pip's ``install`` would use: its config files, then ``PIP_*`` variables.

    Keys are pip's long option names (``index-url``, ``extra-index-url``, ``find-links``,
    ``constraint``, ``no-index``, ``trusted-host``, ``cert``, ``timeout``, ``pre``). Files are read in
    pip's order (global, user, site, ``PIP_CONFIG_FILE``), the ``[global]`` section and then
    ``[install]`` of each; a ``PIP_<NAME>`` variable wins over all of them.
    """
    environ = dict(os.environ if environ is None else environ)
    settings: dict[str, str] = {}
    for path in _pip_config_files(environ):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                for name, value in parser.items(section):
                    settings[name.replace("_", "-").lower()] = value
    for name, value in environ.items():
        if name.startswith("PIP_") and name != "PIP_CONFIG_FILE":
            settings[name[4:].replace("_", "-").lower()] = value
    if "default-timeout" in settings and "timeout" not in settings:
        settings["timeout"] = settings["default-timeout"]
    return settings


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def uv_settings(
    pip: Optional[dict[str, str]] = None, environ: Optional[dict[str, str]] = None
) -> tuple[dict[str, str], list[str]]:
    """pip's settings as ``(UV_* environment variables, extra flags for uv pip install)``.

    ``index-url`` -> ``UV_DEFAULT_INDEX``, ``extra-index-url`` -> ``UV_INDEX``, ``find-links`` ->
    ``UV_FIND_LINKS``, ``constraint`` -> ``UV_CONSTRAINT``, ``trusted-host`` -> ``UV_INSECURE_HOST``,
    ``cert`` -> ``SSL_CERT_FILE``, ``timeout`` -> ``UV_HTTP_TIMEOUT``, ``pre`` -> ``UV_PRERELEASE``,
    ``no-index`` -> the ``--no-index`` flag. uv's index strategy is set to ``unsafe-best-match``,
    which is pip's: the best version across every index and find-links location, so a wheel on
    local disk (say a CPU build of torch) is chosen as pip would choose it. ``UV_PYTHON_DOWNLOADS`` is
    ``never``. A ``UV_*`` variable the hub was started with is kept as it is.
    """
    environ = dict(os.environ if environ is None else environ)
    pip = pip_config(environ) if pip is None else pip
    out: dict[str, str] = {"UV_PYTHON_DOWNLOADS": "never", "UV_INDEX_STRATEGY": "unsafe-best-match"}
    flags: list[str] = []

    def words(key: str) -> list[str]:
        return pip.get(key, "").split()

    if pip.get("index-url", "").strip():
        out["UV_DEFAULT_INDEX"] = pip["index-url"].strip()
    if words("extra-index-url"):
        out["UV_INDEX"] = " ".join(words("extra-index-url"))
    if words("find-links"):
        out["UV_FIND_LINKS"] = ",".join(words("find-links"))
    if words("constraint"):
        out["UV_CONSTRAINT"] = " ".join(words("constraint"))
    if words("trusted-host"):
        out["UV_INSECURE_HOST"] = " ".join(words("trusted-host"))
    if pip.get("cert", "").strip():
        out["SSL_CERT_FILE"] = pip["cert"].strip()
    if pip.get("timeout", "").strip():
        with contextlib.suppress(ValueError):
            out["UV_HTTP_TIMEOUT"] = str(max(1, int(float(pip["timeout"]))))
    if _truthy(pip.get("pre", "")):
        out["UV_PRERELEASE"] = "allow"
    if _truthy(pip.get("no-index", "")):
        flags.append("--no-index")
    for name in list(out):
        if name in environ:  # set explicitly for the hub: that wins
            del out[name]
    return out, flags
