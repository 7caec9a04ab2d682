"""The hub's naming rules (contract section 6), shared by the hub's API and the publish form.

A project, group, service or token name is letters, digits, ``_`` and ``-``, no spaces, at most 64
characters; a version string allows no ``_``. Each check answers None or a :class:`Problem`: the English
sentence, plus a key and parameters the hub's pages use to say the same in the page's language.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Optional

NAME_RULE = "letters, digits, '_' and '-'"
MAX_NAME = 64
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_-]")
_VERSION = re.compile(r"^[A-Za-z0-9.+-]+$")


class Problem(NamedTuple):
    message: str
    key: str
    params: dict


def name_problem(kind: str, value: Any) -> Optional[Problem]:
    """What is wrong with ``value`` as a ``kind`` (project, group, service, token) name, or None."""
    if value is None or value == "":
        return Problem(
            f"The {kind} name is missing: give a name of {NAME_RULE}.",
            "name_missing",
            {"kind": kind},
        )
    if not isinstance(value, str):
        return Problem(
            f"The {kind} name must be text of {NAME_RULE}, got {value!r}.",
            "name_type",
            {"kind": kind, "value": repr(value)},
        )
    if any(c.isspace() for c in value):
        return Problem(
            f"The {kind} name {value!r} has a space: a name allows no spaces, only {NAME_RULE}.",
            "name_space",
            {"kind": kind, "value": value},
        )
    if not _NAME.match(value):
        bad = next(c for c in value if not _NAME_CHAR.match(c))
        return Problem(
            f"The {kind} name {value!r} has {bad!r}: a name allows only {NAME_RULE}.",
            "name_char",
            {"kind": kind, "value": value, "bad": bad},
        )
    if len(value) > MAX_NAME:
        return Problem(
            f"The {kind} name {value!r} is too long: a name has at most {MAX_NAME} characters.",
            "name_long",
            {"kind": kind, "value": value, "max": MAX_NAME},
        )
    return None


def version_problem(value: Any) -> Optional[Problem]:
    """What is wrong with ``value`` as a project's version string (``1.0``, ``2024-05``), or None."""
    if value is None or value == "":
        return Problem(
            "The version is missing: give a version such as '1.0'.", "version_missing", {}
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return Problem(
            f"The version must be text such as '1.0', got {value!r}.",
            "version_type",
            {"value": repr(value)},
        )
    if "_" in value:
        return Problem(
            f"The version {value!r} has '_': a version string allows no '_' (use '.' or '-').",
            "version_underscore",
            {"value": value},
        )
    if any(c.isspace() for c in value):
        return Problem(
            f"The version {value!r} has a space: a version allows no spaces.",
            "version_space",
            {"value": value},
        )
    if not _VERSION.match(value) or len(value) > MAX_NAME:
        return Problem(
            f"The version {value!r} is not allowed: use letters, digits, '.', '+' and '-' "
            f"(at most {MAX_NAME} characters).",
            "version_bad",
            {"value": value, "max": MAX_NAME},
        )
    return None
