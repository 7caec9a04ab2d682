"""Secrets the hub must keep but never show: sealed with a key that lives outside the database.

The key is ``<data>/secret_key`` (mode 600, made on first use). A sealed value is
``sealed:1:<Fernet token>`` (AES-128-CBC with an HMAC-SHA256, from the ``cryptography`` package): a
copy of the database alone, or a PostgreSQL server's administrator, learns nothing of it. Used for the
tokens of development servers, which the hub must send on their behalf.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["PREFIX", "Sealer", "SealError"]

PREFIX = "sealed:1:"


class SealError(ValueError):
    """A sealed value this hub cannot open (the key changed); the message says what to do."""


class Sealer:
    """Seals and opens short secrets with the hub's key."""

    def __init__(self, data: Path) -> None:
        path = Path(data) / "secret_key"
        key = path.read_bytes().strip() if path.is_file() else b""
        if not key:
            key = Fernet.generate_key()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key + b"\n")
        os.chmod(path, 0o600)
        self._fernet = Fernet(key)
        self.path = path

    def seal(self, value: Optional[str]) -> Optional[str]:
        if value is None or value == "":
            return None
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: Optional[str]) -> Optional[str]:
        """The secret in ``value`` (a value stored in clear by an older hub is returned as it is)."""
        if not value:
            return None
        if not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SealError(
                f"A sealed secret cannot be opened with {self.path}: the key file was replaced. "
                "Put the old key back, or connect the development service again."
            ) from None

    @staticmethod
    def is_sealed(value: Optional[str]) -> bool:
        return bool(value) and str(value).startswith(PREFIX)
