"""Where versions run: the interface between the publisher and the proxy above and the machines below.

Two backends implement it: :class:`~.runner.Runner` (``--backend local``, the default: one process per
version on the hub's own machine) and :class:`~.raybackend.RayBackend` (``--backend ray``: one Ray
Serve application per version, with replicas on a cluster). A Kubernetes backend would be a third.

A version is named by its key (``project/service/number``). A backend reports each change of a
version's state to ``on_state(key, state, message)`` with the states of :data:`STATES`; the publisher
turns them into the statuses users see. Its log is the file the caller names (``log_path``): the
backend writes what happens there, and the version's own output.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Optional, Protocol

from .builder import Environment
from .bundles import BundleConfig
from .sandbox import Identity

__all__ = ["STATES", "Backend"]

#: The states reported to ``on_state``.
STATES = ("starting", "online", "restarting", "failed", "stopped")


class Backend(Protocol):
    """What the publisher and ``/serve`` ask of a backend. Every method runs on the hub's loop."""

    #: ``local`` or ``ray``: shown on the hub's pages and in ``/api/v1/``.
    name: str

    async def start(
        self,
        key: str,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        port: int,
        log_path: Path,
        *,
        extra_env: Optional[dict[str, str]] = None,
        health_timeout: float = 60,
        who: Optional[Identity] = None,
        read_only: Iterable[Path] = (),
        writable: Iterable[Path] = (),
        tmp: Optional[Path] = None,
    ) -> None:
        """Run the version (its entrypoint in ``env``, in ``bundle_dir``) and return once it
        answers ``RUNNING``; a StartError says why not, with its log's tail."""

    async def adopt(
        self,
        key: str,
        env: Environment,
        bundle_dir: Path,
        config: BundleConfig,
        log_path: Path,
        **options: object,
    ) -> bool:
        """Take back a version an earlier hub left running; True when it was."""

    async def stop(self, key: str, timeout: float = 10) -> None:
        """Stop the version (its requests in progress get ``timeout`` seconds)."""

    async def prune(self) -> None:
        """Stop what an earlier hub left running that no version of this hub runs now."""

    async def stop_all(self, timeout: float = 10) -> None:
        """Stop every version this backend runs."""

    async def detach_all(self) -> None:
        """Let go of every version, leaving it running for the next hub."""

    def state(self, key: str) -> Optional[str]:
        """The version's state (one of :data:`STATES`), or None for a key not known."""

    def keys(self) -> list[str]:
        """The versions this backend runs or is starting."""

    def url(self, key: str) -> Optional[str]:
        """One address of the version while it is online (for links and logs), else None."""

    def pick(self, key: str) -> Optional[tuple[str, int]]:
        """The ``(host, port)`` the next request to the version goes to: the replicas in turn,
        skipping those that failed lately. None while none answers."""

    def another(self, key: str, failed: tuple[str, int]) -> Optional[tuple[str, int]]:
        """``failed`` did not take a request: a different replica to send it to, or None."""

    def replicas(self, key: str) -> list[dict]:
        """What runs the version now: ``{"id", "state", "node", "pid", "url"}`` per replica (or
        process), for the API and the service's page."""

    def ports(self) -> set:
        """Ports on the hub's machine that the versions hold (the hub keeps them out of its own
        choice of ports)."""
