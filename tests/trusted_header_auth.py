"""An authenticator for the hub's ``--authenticator`` hook, used by the tests: it trusts the
``X-Remote-User`` header a reverse proxy in front of the hub sets (only from loopback), and signs in
anyone on the page whose password is ``open-sesame-<name>``."""

from __future__ import annotations

from typing import Any, Optional


class Authenticator:
    def __init__(self, hub: Any) -> None:
        self.hub = hub

    def authenticate(self, handler: Any, name: str, password: str) -> Optional[str]:
        return name if password == f"open-sesame-{name}" else None

    def request_user(self, handler: Any) -> Optional[str]:
        if handler.request.remote_ip not in ("127.0.0.1", "::1"):
            return None
        return handler.request.headers.get("X-Remote-User") or None
