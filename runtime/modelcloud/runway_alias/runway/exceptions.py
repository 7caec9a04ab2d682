"""``runway.exceptions``: Runway's exception classes, which are modelcloud's (``.code``,
``.message``, ``to_response()``)."""

from modelcloud.errors import (
    InferenceError,
    InvalidArgumentError,
    MissingArgumentError,
    MissingInputError,
    MissingOptionError,
    RunwayError,
    SetupError,
    UnknownCommandError,
)

__all__ = [
    "InferenceError",
    "InvalidArgumentError",
    "MissingArgumentError",
    "MissingInputError",
    "MissingOptionError",
    "RunwayError",
    "SetupError",
    "UnknownCommandError",
]
