"""The REST API under ``/api/v1``: one module per resource, each ending with its ``default_handlers``."""

from __future__ import annotations

from . import groups, images, metrics, options, projects, services, tokens, users, versions
from .base import APIHandler, NotFoundHandler

default_handlers: list = []
for _module in (projects, groups, services, versions, images, tokens, options, users, metrics):
    default_handlers.extend(_module.default_handlers)

__all__ = ["APIHandler", "NotFoundHandler", "default_handlers"]
