"""The languages of what AlgoLink shows (the hub's pages, the JupyterLab panel's server answers):
English (the messages themselves) and 简体中文, from the gettext catalogs in ``locale/`` (Babel:
``scripts/i18n.py``; README, Development). ``translator(lang)`` gives ``t(message, **params)``."""

from __future__ import annotations

import gettext
import io
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def speaking(lang: str) -> Iterator[None]:
    """:func:`tr` speaks ``lang`` inside the ``with`` block only (the kernel's forms, which call
    sentences shared with the command line)."""
    token = _current.set(translator(lang))
    try:
        yield
    finally:
        _current.reset(token)


def tr(message: str, /, **params: Any) -> str:
    """``message`` in the language :func:`use` chose for this context, English where none did (the
    ``algolink`` command), ``{params}`` filled in. Sentences shared by the command line and the
    JupyterLab panel are written with it."""
    t = _current.get()
    return t(message, **params) if t is not None else _fill(message, params)


#: Where JupyterLab keeps the language a user chose (Settings > Language), under its user settings
#: directory (``JUPYTERLAB_SETTINGS_DIR``, else ``<jupyter config dir>/lab/user-settings``).
JUPYTERLAB_LANGUAGE_SETTINGS = (
    "@jupyterlab",
    "translation-extension",
    "plugin.jupyterlab-settings",
)


def language_of(tag: Optional[str]) -> Optional[str]:
    """The language we have for a locale tag (``zh-CN``, ``zh_CN.UTF-8``, ``en_US``), or None."""
    tag = (tag or "").strip().split(".", 1)[0].split("@", 1)[0].replace("-", "_").lower()
    if not tag or tag in ("default", "c", "posix"):
        return None
    if tag.startswith("zh"):
        return "zh_CN"
    if tag.startswith("en"):
        return "en"
    return None


def _jupyterlab_locale() -> Optional[str]:
    """The ``locale`` of JupyterLab's language settings (JSON with comments), or None."""
    settings_dir = os.environ.get("JUPYTERLAB_SETTINGS_DIR")
    if not settings_dir:
        try:
            from jupyter_core.paths import jupyter_config_dir
        except ImportError:  # pragma: no cover - jupyter_core comes with ipykernel
            return None
        settings_dir = os.path.join(jupyter_config_dir(), "lab", "user-settings")
    path = Path(settings_dir).joinpath(*JUPYTERLAB_LANGUAGE_SETTINGS)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        import json5

        data = json5.loads(raw)
    except ImportError:  # pragma: no cover - json5 comes with jupyterlab_server
        try:
            data = json.loads(
                re.sub(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', r"\1", raw, flags=re.S)
            )
        except ValueError:
            return None
    except ValueError:
        return None
    locale = data.get("locale") if isinstance(data, dict) else None
    return locale if isinstance(locale, str) else None


def kernel_language() -> str:
    """The language of what the kernel shows (the test form, the publish form, the magics' lines),
    which cannot ask JupyterLab: ``ALGOLINK_LANG`` if set; else the language chosen in JupyterLab's
    Settings > Language (its user settings file; ``default`` there means JupyterLab's server locale,
    so the next rule); a language chosen either way that we do not have means English; else the
    kernel's locale (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``: the first set, as gettext
    reads them); else English (README, "Serve from a notebook")."""
    for tag in (os.environ.get("ALGOLINK_LANG"), _jupyterlab_locale()):
        if tag and tag.strip().lower() != "default":
            # a language chosen that we do not have (fr_FR): English, not the next rule's
            return language_of(tag) or DEFAULT
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(var):
            # LANGUAGE is a list (zh_CN:en): its first one
            return language_of(os.environ[var].split(":", 1)[0]) or DEFAULT
    return DEFAULT


def kernel_translator() -> Translator:
    """The translator of :func:`kernel_language`, read again each time (a form built after the user
    changed JupyterLab's language speaks the new one)."""
    return translator(kernel_language())


#: The name rules' sentences by :class:`~algolink_jupyter.names.Problem` key, for the pages and the notebook's publish form
#: to say in their language (English keeps ``Problem.message``; the catalogs translate these).
PROBLEM_MESSAGES = {
    "name_missing": N_("The {kind} name is missing: give a name of letters, digits, _ and -."),
    "name_type": N_(
        "The {kind} name must be text, got {value}: give a name of letters, digits, _ and -."
    ),
    "name_space": N_(
        "The {kind} name '{value}' has a space: a name allows only letters, digits, _ and -, no spaces."
    ),
    "name_char": N_(
        "The {kind} name '{value}' has '{bad}': a name allows only letters, digits, _ and -."
    ),
    "group_name_missing": N_(
        "The group name is missing: give a name of letters of any language (such as 表格模型), "
        "digits, _ and -."
    ),
    "group_name_type": N_(
        "The group name must be text, got {value}: give a name of letters of any language (such "
        "as 表格模型), digits, _ and -."
    ),
    "group_name_space": N_(
        "The group name '{value}' has a space: a group name allows letters of any language, "
        "digits, _ and -, no spaces."
    ),
    "group_name_char": N_(
        "The group name '{value}' has '{bad}': a group name allows only letters of any language, "
        "digits, _ and -."
    ),
    "name_long": N_("The {kind} name '{value}' is too long: a name has at most {max} characters."),
    "version_missing": N_("The version is missing: give a version such as '1.0'."),
    "version_type": N_("The version must be text such as '1.0', got {value}."),
    "version_underscore": N_(
        "The version '{value}' has '_': a version allows no '_' (use '.' or '-')."
    ),
    "version_space": N_("The version '{value}' has a space: a version allows no spaces."),
    "version_bad": N_(
        "The version '{value}' is not allowed: use letters, digits, '.', '+' and '-' (at most {max} characters)."
    ),
}
