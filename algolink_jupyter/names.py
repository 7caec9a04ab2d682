"""The hub's naming rules (contract section 6), shared by the hub's API and the publish form.

A project, service, token, user or alias name is ASCII letters, digits, ``_`` and ``-``, no spaces, at
most 64 characters: it is a path segment of every service URL (``/serve/P/S``), the CLI's ``P/S`` and
part of file names on the hub. A group (分组) name only labels services on pages and in the API, so it
may be letters of any language (a group called 表格模型), digits, ``_`` and ``-``, at most 64
characters, normalized to Unicode NFC; in a URL it is percent-encoded UTF-8. A version string allows no
``_``. Each check answers None or a :class:`Problem`: the English sentence, plus a key and parameters
the hub's pages use to say the same in the page's language.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, NamedTuple, Optional

NAME_RULE = "letters, digits, '_' and '-'"
UNICODE_RULE = "letters of any language (such as 表格模型), digits, '_' and '-'"
# the kinds of names that may be Unicode (and the key prefix of their problems' sentences)
UNICODE_KINDS = ("group",)
MAX_NAME = 64
_NAME_CHAR = re.compile(r"[A-Za-z0-9_-]")
_VERSION = re.compile(r"^[A-Za-z0-9.+-]+$")


class Problem(NamedTuple):
    message: str
    key: str
    params: dict


def normal(kind: str, value: Any) -> Any:
    """``value`` as the hub stores a ``kind`` name: a Unicode one in NFC (so that é typed either way
    is one name); anything else as it is."""
    if kind in UNICODE_KINDS and isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    return value


def _char_ok(kind: str, c: str) -> bool:
    if _NAME_CHAR.match(c):
        return True
    return kind in UNICODE_KINDS and unicodedata.category(c)[0] in "LMN"


def name_problem(kind: str, value: Any) -> Optional[Problem]:
    """What is wrong with ``value`` as a ``kind`` (project, group, service, token) name, or None."""
    unicode_ok = kind in UNICODE_KINDS
    rule, key = (UNICODE_RULE, f"{kind}_name") if unicode_ok else (NAME_RULE, "name")
    if value is None or value == "":
        return Problem(
            f"The {kind} name is missing: give a name of {rule}.",
            f"{key}_missing",
            {"kind": kind},
        )
    if not isinstance(value, str):
        return Problem(
            f"The {kind} name must be text of {rule}, got {value!r}.",
            f"{key}_type",
            {"kind": kind, "value": repr(value)},
        )
    value = normal(kind, value)
    if any(c.isspace() for c in value):
        return Problem(
            f"The {kind} name {value!r} has a space: a name allows no spaces, only {rule}.",
            f"{key}_space",
            {"kind": kind, "value": value},
        )
    bad = next((c for c in value if not _char_ok(kind, c)), None)
    if bad is not None:
        return Problem(
            f"The {kind} name {value!r} has {bad!r}: a name allows only {rule}.",
            f"{key}_char",
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
