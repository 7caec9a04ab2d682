"""Errors every part of ``algolink_jupyter`` may raise, on the bottom floor so each can import them."""

from __future__ import annotations


class CLIError(Exception):
    """A mistake a user can fix (on the command line, in a magic, in a setting): the message is one
    sentence that says what is wrong and what to do."""


__all__ = ["CLIError"]
