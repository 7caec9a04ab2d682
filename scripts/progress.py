"""Progress lines for ``make run``: ``[  12 s] installing Python packages…``, and a ticker.

Standard library only: ``scripts/install.py`` imports it before the virtual environment exists. The
seconds count from ``$ALGOLINK_MAKE_START`` (the Makefile sets it when ``make`` starts, so the install
and ``scripts/run.py`` share one clock), else from this module's import.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, Optional

try:
    START = float(os.environ.get("ALGOLINK_MAKE_START") or time.time())
except ValueError:
    START = time.time()


def say(message: str, file=None) -> None:
    """One line, ``[ elapsed s] message``, flushed at once."""
    print(f"[{time.time() - START:4.0f} s] {message}", file=file or sys.stdout, flush=True)


class Ticker:
    """While a long step runs, ``still <what>… 40 s (<detail>)`` every ``every`` seconds."""

    def __init__(
        self, what: str, every: float = 10.0, detail: Optional[Callable[[], str]] = None
    ) -> None:
        self.what = what
        self.every = every
        self.detail = detail
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self.started = time.monotonic()

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            extra = self.detail() if self.detail else ""
            spent = time.monotonic() - self.started
            say(f"still {self.what}… {spent:.0f} s" + (f" ({extra})" if extra else ""))

    def __enter__(self) -> Ticker:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
