"""The hub's web pages (server-rendered, Tornado templates): the browsing and publishing pages
(:mod:`.pages`) and the managing ones built on them (:mod:`.manage`: versions, the model card, tokens)."""

from .images import image_handlers
from .manage import manage_handlers
from .pages import app_settings
from .pages import page_handlers as _browsing
from .people import people_handlers

#: Every page route, for the hub's application.
page_handlers = [*_browsing, *manage_handlers, *people_handlers, *image_handlers]

__all__ = ["app_settings", "page_handlers"]
