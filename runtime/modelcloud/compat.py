"""``import runway`` for models written for Runway's model SDK (runway-python 0.6.1).

:func:`runway_alias_dir` is a folder that holds a ``runway`` package made of modelcloud: Runway's
``setup``, ``command``, ``run``, its data types with Runway's argument order (``text(description,
default, ...)``), ``runway.data_types``, ``runway.exceptions`` and ``runway.model.RunwayModel``. Put at
the *end* of ``sys.path`` it is found only when no real ``runway`` package is installed: an installed
one always wins. ``algolink serve`` appends it; the hub's environments list it in a ``.pth`` file
(``modelcloud-runway-alias.pth``, one path line, ``modelcloud/runway_alias``, which the runtime's wheel
carries: path lines come after site-packages).
"""

from __future__ import annotations

import os
import sys


def runway_alias_dir() -> str:
    """The folder that holds the ``runway`` alias package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "runway_alias")


def enable_runway_alias() -> None:
    """Make ``import runway`` find modelcloud's alias when no real ``runway`` is installed."""
    folder = runway_alias_dir()
    if folder not in sys.path:
        sys.path.append(folder)
