"""Pinned requirements: the installed distribution, at its installed version, of every module a bundle imports.

A module is one of: the standard library (nothing to install), a local module in the notebook's folder
(copied into the bundle), or a third-party package, pinned as ``name==version`` from the kernel's own
environment. A local version label (``2.13.0+cpu``) is left out of the pin, so that ``pip install`` finds
the package on PyPI; the exact build is kept aside for verification, which installs what the kernel ran.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

#: What the vendored modelcloud runtime needs, by distribution name.
RUNTIME = ("numpy", "pillow", "pyyaml", "tornado")
#: Modules a bundle may not need: they exist only around a notebook.
NOTEBOOK_ONLY = {
    "IPython",
    "ipykernel",
    "ipywidgets",
    "jupyter",
    "jupyter_client",
    "jupyter_core",
    "jupyter_server",
    "jupyterlab",
    "notebook",
    "nbformat",
    "nbclient",
    "nbconvert",
    "matplotlib_inline",
    "algolink_jupyter",
}


#: Distributions that exist only around a notebook (by canonical name): never pinned in a bundle.
NOTEBOOK_DISTRIBUTIONS = {
    "ipython",
    "ipykernel",
    "ipywidgets",
    "ipython-genutils",
    "notebook",
    "nbformat",
    "nbclient",
    "nbconvert",
    "widgetsnbextension",
    "matplotlib-inline",
    "algolink-jupyter",
    "comm",
}


def is_notebook_distribution(name: str) -> bool:
    """IPython, ipykernel, ipywidgets, notebook, nb*, jupyter* and the like."""
    c = canonical(name)
    return c in NOTEBOOK_DISTRIBUTIONS or c.startswith(("jupyter", "nbclassic"))


@dataclass(frozen=True)
class Pin:
    name: str  # the distribution's own spelling
    version: str  # the public version, as pinned
    installed: str  # the version installed in the kernel (may carry a local label such as +cpu)

    @property
    def line(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def exact(self) -> str:
        return f"{self.name}=={self.installed}"


def _site_dirs() -> list:
    dirs = {sysconfig.get_paths().get(k) for k in ("purelib", "platlib")}
    import site

    dirs.update(getattr(site, "getsitepackages", lambda: [])())
    user = getattr(site, "getusersitepackages", lambda: None)()
    if isinstance(user, str):
        dirs.add(user)
    return [os.path.realpath(d) for d in dirs if d]


@functools.cache
def _stdlib_path() -> str:
    return os.path.realpath(sysconfig.get_paths()["stdlib"])


def is_stdlib(module: str) -> bool:
    names = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return module in names or module in sys.builtin_module_names
    if module in sys.builtin_module_names:  # Python 3.9: decide by where it lives
        return True
    origin = module_origin(module)
    if origin is None:
        return False
    real = os.path.realpath(origin)
    return real.startswith(_stdlib_path()) and not any(real.startswith(d) for d in _site_dirs())


def importable(module: str) -> bool:
    """Whether the kernel can import the top-level ``module`` (it is loaded, or found)."""
    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def module_origin(module: str) -> Optional[str]:
    """The file a top-level module is loaded from (its package's ``__init__.py``), or None."""
    loaded = sys.modules.get(module)
    path = getattr(loaded, "__file__", None)
    if path:
        return path
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return None
    return spec.origin


def is_runway_alias(module: str) -> bool:
    """Whether ``module`` is ``runway`` as modelcloud's alias provides it (``algolink serve`` and the
    hub's environments provide it too: nothing to pin)."""
    if module != "runway":
        return False
    from modelcloud.compat import runway_alias_dir

    origin = module_origin(module)
    alias = os.path.realpath(runway_alias_dir()) + os.sep
    return bool(origin) and os.path.realpath(origin).startswith(alias)


def local_module(module: str, folder: Path) -> Optional[Path]:
    """The file or package folder of ``module`` when it is the user's own code under ``folder``."""
    origin = module_origin(module)
    if origin is None:
        return None
    real = Path(os.path.realpath(origin))
    try:
        real.relative_to(os.path.realpath(folder))
    except ValueError:
        return None
    if any(str(real).startswith(d + os.sep) for d in _site_dirs()):
        return None
    return real.parent if real.name == "__init__.py" else real


@functools.lru_cache(maxsize=1)
def _module_map() -> dict:
    return metadata.packages_distributions()


def _top_level_names(dist: metadata.Distribution) -> set:
    text = dist.read_text("top_level.txt")
    if text:
        return {line.strip() for line in text.splitlines() if line.strip()}
    names = set()
    for f in dist.files or ():
        first = f.parts[0] if f.parts else ""
        if first.endswith(".py"):
            names.add(first[:-3])
        elif first and not first.endswith((".dist-info", ".data")) and first != "..":
            names.add(first)
    return names


@functools.cache
def distributions_of(module: str) -> tuple:
    """The installed distributions that provide a top-level module (usually one)."""
    for guess in (module, module.replace("_", "-")):
        try:
            dist = metadata.distribution(guess)
        except metadata.PackageNotFoundError:
            continue
        if module in _top_level_names(dist):
            return (dist.metadata["Name"],)
    return tuple(dict.fromkeys(_module_map().get(module, ())))


@functools.cache
def pin(distribution: str) -> Optional[Pin]:
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None
    installed = dist.version
    return Pin(dist.metadata["Name"], installed.split("+", 1)[0], installed)


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
