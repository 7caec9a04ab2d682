"""Markdown to safe HTML, shared by the hub's pages and the notebook's publish form.

The description a data scientist types in the publish widget is previewed with the very function the
hub's service page renders it with, so the preview shows what the hub will show. Raw HTML is escaped by
mistune, then nh3 (ammonia) keeps only the tags and attributes below and http(s)/mailto links; a
disallowed tag is dropped and its text kept, a script or style element goes with its content.
"""

from __future__ import annotations

from typing import Any

ALLOWED_TAGS = [
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
]  # fmt: skip
ALLOWED_ATTRS = {"a": ["href", "title"], "img": ["src", "alt", "title"], "code": ["class"]}
URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: Any) -> str:
    """Markdown to HTML that is safe to embed: raw HTML escaped, then sanitised."""
    import mistune
    import nh3

    html = mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])(str(text or ""))
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRS.items()},
        url_schemes=URL_SCHEMES,
        link_rel=None,  # as bleach.clean: links keep only the attributes above
    )
