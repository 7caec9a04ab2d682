"""The languages of what AlgoLink shows (the hub's pages, the JupyterLab panel's server answers):
English (the messages themselves) and 简体中文, from the gettext catalogs in ``locale/`` (Babel:
``scripts/i18n.py``; README, Development). ``translator(lang)`` gives ``t(message, **params)``."""

from __future__ import annotations

import gettext
import io
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Optional

DEFAULT = "en"
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
DOMAIN = "algolink_jupyter"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def N_(message: str) -> str:
    """Marks a message for extraction; translated later, where it is shown."""
    return message


_catalogs: dict = {}
_lock = threading.Lock()


def _load(lang: str) -> gettext.NullTranslations:
    """The language's compiled catalog (``.mo``, written by ``scripts/i18n.py compile`` at build
    time); compiled from the ``.po`` in memory when the ``.mo`` is missing or older (a checkout
    that was not built)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo = po.with_suffix(".mo")
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as f:
            return gettext.GNUTranslations(f)
    if not po.is_file():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def catalog(lang: str) -> gettext.NullTranslations:
    if lang == DEFAULT or lang not in LANGUAGES:
        return gettext.NullTranslations()
    with _lock:
        if lang not in _catalogs:
            _catalogs[lang] = _load(lang)
        return _catalogs[lang]


class Translator:
    """``t(message, **params)``: the message in the page's language, ``{name}`` filled in."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self._catalog = catalog(self.lang)

    def __call__(self, message: str, /, **params: Any) -> str:
        return _fill(self._catalog.gettext(message), params)

    def pgettext(self, context: str, message: str, /, **params: Any) -> str:
        return _fill(self._catalog.pgettext(context, message), params)

    def ngettext(self, singular: str, plural: str, count: int, /, **params: Any) -> str:
        return _fill(self._catalog.ngettext(singular, plural, count), params)


def _fill(text: str, params: dict) -> str:
    return text.format(**params) if params else text


def translator(lang: str) -> Translator:
    return Translator(lang)


def pick(cookie: Optional[str], accept_language: str) -> str:
    """The language: the ``lang`` cookie if it names one we have, else the browser's first
    acceptable one (by q-value), else English."""
    if cookie in LANGUAGES:
        return cookie
    choices = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        choices.append((-q, i, tag.strip().lower().replace("_", "-")))
    for _, _, tag in sorted(choices):
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


_current: ContextVar = ContextVar("algolink_translator", default=None)


def use(lang: str) -> None:
    """Let :func:`tr` speak ``lang`` for the rest of this context (a request of the Jupyter server
    extension, which gets the language of JupyterLab's panel)."""
    _current.set(translator(lang))


def tr(message: str, /, **params: Any) -> str:
    """``message`` in the language :func:`use` chose for this context, English where none did (the
    ``algolink`` command), ``{params}`` filled in. Sentences shared by the command line and the
    JupyterLab panel are written with it."""
    t = _current.get()
    return t(message, **params) if t is not None else _fill(message, params)
