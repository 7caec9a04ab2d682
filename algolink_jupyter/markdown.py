"""Markdown to safe HTML, shared by the hub's pages and the notebook's publish form.

The description a data scientist types in the publish widget is previewed with the very function the
hub's service page renders it with, so the preview shows what the hub will show. Raw HTML is escaped by
mistune, then bleach keeps only the tags and attributes below and http(s)/mailto links.
"""

from __future__ import annotations

from typing import Any

ALLOWED_TAGS = [
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
]  # fmt: skip
ALLOWED_ATTRS = {"a": ["href", "title"], "img": ["src", "alt", "title"], "code": ["class"]}


def render_markdown(text: Any) -> str:
    """Markdown to HTML that is safe to embed: raw HTML escaped, then sanitised."""
    import bleach
    import mistune

    html = mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])(str(text or ""))
    return bleach.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRS,
        protocols=["http", "https", "mailto"],
        strip=True,
    )
