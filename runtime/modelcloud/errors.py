"""The errors the SDK raises, each mapped to one HTTP status by the server.

Every message is one sentence a client can act on; the server never sends a traceback unless debug is on.

Runway's exception API is kept: every error has ``.code`` (its HTTP status), ``.message``,
``to_response()``, ``get_traceback()`` and ``print_exception()``, and Runway's class names exist with
Runway's arguments (``MissingOptionError(name)``, ``MissingInputError(name)``,
``InvalidArgumentError(name, message=None)``, ``UnknownCommandError(name)``, ``MissingArgumentError(arg)``,
``InferenceError(message)``, ``SetupError(message)``; ``RunwayError`` is :class:`ModelCloudError`).
"""

from __future__ import annotations

import sys
import traceback as _tb
from typing import Optional


class ModelCloudError(Exception):
    """Base class: ``status`` (also ``code``, Runway's name) is the HTTP status, ``field`` the input at
    fault (if any)."""

    status = 500

    def __init__(self, message: str = "An unknown error occurred.", field: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def code(self) -> int:
        """The HTTP status (Runway's name for it)."""
        return self.status

    @code.setter
    def code(self, value: int) -> None:
        self.status = value

    def to_json(self) -> dict:
        body = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body

    def to_response(self) -> dict:
        """The JSON body the server answers with (Runway's name): ``{"error", "field"}``. A traceback
        is never part of it; the server adds one to 500 answers only when debug is on."""
        return self.to_json()

    def get_traceback(self) -> list:
        """The lines of the traceback of the exception being handled (empty outside ``except``)."""
        return [line.strip() for line in _tb.format_tb(sys.exc_info()[2])]

    def print_exception(self) -> None:
        """Print the message and the traceback being handled to stderr."""
        sys.stderr.write("\n".join([self.message, *self.get_traceback()]) + "\n")


#: Runway's name for the base class.
RunwayError = ModelCloudError


class ValidationError(ModelCloudError):
    """A value broke its data type's rules. Raised by data types without a field name; the
    registry adds the input's name and turns the fragment into a sentence."""

    status = 400


class InputError(ModelCloudError):
    """The request is malformed or an input is missing or invalid (HTTP 400)."""

    status = 400


class UnsupportedEncoding(InputError):
    """The body's Content-Encoding is neither gzip nor identity (HTTP 415)."""

    status = 415


class UnknownCommand(ModelCloudError):
    status = 404


class PayloadTooLarge(ModelCloudError):
    status = 413


class NotReady(ModelCloudError):
    """Setup has not finished, or failed (HTTP 503)."""

    status = 503


class InferenceError(ModelCloudError):
    """The command itself raised (HTTP 500)."""

    status = 500

    def __init__(self, message: str, traceback: Optional[str] = None):
        super().__init__(message)
        self.traceback = traceback

    def to_json(self) -> dict:
        body = super().to_json()
        if self.traceback:
            body["traceback"] = self.traceback
        return body


class SetupError(ModelCloudError):
    """The setup function raised, or its options were invalid."""

    status = 500

    def __init__(self, message: str, field: Optional[str] = None, traceback: Optional[str] = None):
        super().__init__(message, field)
        self.traceback = traceback


# -- Runway's classes, with Runway's arguments -------------------------------------------------------


class MissingOptionError(InputError):
    """A setup option has no value and no default (HTTP 400)."""

    def __init__(self, name: str):
        super().__init__(
            f"Setup option {name!r} has no value and no default: give it one "
            "(ALGOLINK_MODEL_OPTIONS, run(model_options=...) or POST /setup), or declare a default.",
            field=name,
        )


class MissingInputError(InputError):
    """A command's input was not sent (HTTP 400)."""

    def __init__(self, name: str):
        super().__init__(f"Input {name!r} is missing: send it in the body.", field=name)


class InvalidArgumentError(InputError):
    """An input or option value is invalid (HTTP 400). A command or setup function may raise it; the
    client gets the message and the name."""

    def __init__(self, name: str, message: Optional[str] = None):
        text = f"Invalid argument {name!r}" + (f": {message.rstrip('.')}." if message else ".")
        super().__init__(text, field=name)


class UnknownCommandError(UnknownCommand):
    """HTTP 404 for a command that does not exist."""

    def __init__(self, name: str):
        super().__init__(f"There is no command {name!r}.")


class MissingArgumentError(ModelCloudError):
    """A declaration lacks a required argument (HTTP 500)."""

    def __init__(self, arg: str):
        super().__init__(f"Missing argument: {arg}.")
