"""What the API's handlers and the pages share: the error every refusal is, and the checks of names,
version strings and version numbers that raise it."""

from __future__ import annotations

import datetime
import re
from typing import Any, Optional

from tornado import web

from ... import names


class APIError(web.HTTPError):
    """An error a user can cause: its message is the answer's ``error`` sentence (English, for the
    API). ``key`` and ``params`` let the web pages say the same sentence in the page's language
    (``ERRORS[key]`` in ``algolink_jupyter/hub/handlers/i18n.py``)."""

    def __init__(self, status: int, message: str, key: Optional[str] = None, **params: Any) -> None:
        super().__init__(status)
        self.message = message
        self.key = key
        self.params = params


_SECRET_QUERY = re.compile(r"([?&](?:token|_xsrf)=)[^&#]*", re.I)


def redact(uri: str) -> str:
    """A request's URI for the logs: the values of ``token`` and ``_xsrf`` replaced."""
    return _SECRET_QUERY.sub(r"\1[secret]", uri)


def check_name(kind: str, value: Any) -> str:
    """A project, group, service or token name, or a 400 that says which rule it broke."""
    problem = names.name_problem(kind, value)
    if problem:
        raise APIError(400, problem.message, problem.key, **problem.params)
    return names.normal(kind, value)


def check_version_string(value: Any) -> str:
    """A project's version string (``1.0``, ``2024-05``): no ``_``, no spaces."""
    problem = names.version_problem(value)
    if problem:
        raise APIError(400, problem.message, problem.key, **problem.params)
    return str(value)


def isotime(t: Optional[datetime.datetime]) -> Optional[str]:
    return None if t is None else t.isoformat(timespec="seconds") + "Z"


def parse_version_number(value: Any) -> int:
    """A service version number (1, 2, ...) from JSON or a URL (``vN`` names API versions)."""
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or int(text) < 1:
        hint = (
            " (v1, v2, ... are API versions, used in /serve URLs)" if text[:1] in ("v", "V") else ""
        )
        raise APIError(
            400, f"The version {value!r} is not a version number: give 1, 2, 3, ...{hint}."
        )
    return int(text)


def human_size(n: float) -> str:
    """``1.5 MB``: a size in words for a sentence."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover
