"""Disk budgets, shared by the hub (``--env-budget``) and the caches kept in a user's home (the image
layer cache, the verification environments): sizes written as ``20G`` or ``500M``, the bytes a folder
takes, and removal of what was used least recently until a cache fits its budget.

A budget read from the environment (:func:`budget_from_env`) is a size, ``0`` (keep only what the
build or verification that just ran used) or ``none`` (no limit); unset, the cache's default.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = [
    "Candidate",
    "SizeError",
    "budget_from_env",
    "byte_size",
    "describe",
    "evict",
    "locked",
    "remove_tree",
    "size_text",
    "size_words",
    "tree_size",
    "unless_busy",
]

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
#: What a budget in the environment may say for "no limit".
NO_LIMIT = ("none", "off", "unlimited")


class SizeError(ValueError):
    """Not a size; the message names it and says what to give."""


def byte_size(text: str) -> int:
    """``20G``, ``500M``, ``1.5T`` or a number of bytes (powers of 1024; a ``B`` or ``iB`` after
    the unit is allowed)."""
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in _UNITS else ""
    number = raw[: len(raw) - len(unit)] if unit else raw
    try:
        value = float(number)
    except ValueError:
        value = -1
    if not value > 0 or value == float("inf"):
        raise SizeError(f"{text!r} is not a size: give one such as 20G, 500M or 1.5T.")
    return int(value * _UNITS[unit])


def budget_from_env(var: str, default: Optional[int]) -> Optional[int]:
    """The budget in ``$var`` in bytes: ``default`` when it is unset or empty, 0 for ``0``, None (no
    limit) for ``none``; a :class:`SizeError` naming the variable for anything else not a size."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    if raw.lower() in NO_LIMIT:
        return None
    with contextlib.suppress(ValueError):
        if float(raw) == 0:
            return 0
    try:
        return byte_size(raw)
    except SizeError:
        raise SizeError(
            f"${var}={raw!r} is not a size: set it to one such as 10G or 500M, to 0 (keep only "
            "what the last use needed) or to none (no limit), or unset it for the default."
        ) from None


def tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (hard links counted once, symbolic links not followed);
    of ``path`` itself when it is a file."""
    seen = set()
    total = 0

    def add(file: str) -> None:
        nonlocal total
        try:
            st = os.lstat(file)
        except OSError:
            return
        if (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
        total += st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size

    if not os.path.isdir(path) or os.path.islink(path):
        add(str(path))
        return total
    for root, _dirs, files in os.walk(path):
        for name in files:
            add(os.path.join(root, name))
    return total


def size_words(n: float) -> str:
    """``1.2 GB``, ``350.0 MB``, ``812 B`` (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def size_text(n: int) -> str:
    """A budget as :func:`byte_size` reads it: ``10G``, ``1.5G``, ``500M``, ``812``."""
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit]:
            return f"{round(n / _UNITS[unit], 1):g}{unit}"
    return str(n)


def remove_tree(path: Path) -> None:
    """Remove a file or a folder (gone already: nothing to do)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@contextlib.contextmanager
def locked(path: Path, shared: bool = False) -> Iterator[None]:
    """An ``flock`` on the file ``path`` (made when missing), waited for, held until the block ends:
    exclusive (one at a time), or shared (many at once; an exclusive one waits for them all, and
    :func:`unless_busy` gives up). The file is never removed: another process may hold it open.
    Where there is no flock, nothing."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def unless_busy(*locks: Path) -> Iterator[bool]:
    """Exclusive ``flock`` locks on the files ``locks`` (made when missing), taken without waiting:
    True, held until the block ends, when every one was free; False when another process (or another
    open of the file in this one) holds one. Where there is no flock, True."""
    try:
        import fcntl
    except ImportError:
        yield True
        return
    fds: list = []
    try:
        for lock in locks:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
        yield True
    finally:
        for fd in fds:
            os.close(fd)


@dataclass
class Candidate:
    """Something a cache may remove: its name (for :func:`evict`'s ``keep``), when it was last used
    (seconds since the epoch), its size, and how to remove it (True: removed; False: busy, kept)."""

    name: str
    used: float
    size: int
    remove: Callable[[], bool]
    #: Lower tiers go first; within a tier, the least recently used first.
    tier: int = 0
    #: What it is, for :func:`describe` (``layer``, ``environment``).
    kind: str = "entry"


def evict(candidates: Iterable[Candidate], budget: int, keep: Iterable[str] = ()) -> list:
    """Remove candidates, least recently used first, until all of them together take ``budget``
    bytes or less; never one named in ``keep`` (its size counts all the same). The removed ones."""
    items = list(candidates)
    keep = set(keep)
    total = sum(c.size for c in items)
    removed = []
    for c in sorted(items, key=lambda c: (c.tier, c.used, c.name)):
        if total <= budget:
            break
        if c.name in keep:
            continue
        if c.remove():
            total -= c.size
            removed.append(c)
    return removed


def describe(removed: Iterable[Candidate]) -> str:
    """``2 layers and 1 environment (2.1 GB)``: what :func:`evict` removed, by kind."""
    counts: dict = {}
    size = 0
    for c in removed:
        counts[c.kind] = counts.get(c.kind, 0) + 1
        size += c.size
    parts = [f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in counts.items()]
    words = (
        ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        if parts
        else "nothing"
    )
    return f"{words} ({size_words(size)})"
