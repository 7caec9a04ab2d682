"""The errors the SDK raises, each mapped to one HTTP status by the server.

Every message is one sentence a client can act on; the server never sends a traceback unless debug is on.
"""

from __future__ import annotations

from typing import Optional


class ModelCloudError(Exception):
    """Base class: ``status`` is the HTTP status, ``field`` the input at fault (if any)."""

    status = 500

    def __init__(self, message: str, field: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict:
        body = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class ValidationError(ModelCloudError):
    """A value broke its data type's rules. Raised by data types without a field name; the
    registry adds the input's name and turns the fragment into a sentence."""

    status = 400


class InputError(ModelCloudError):
    """The request is malformed or an input is missing or invalid (HTTP 400)."""

    status = 400


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
