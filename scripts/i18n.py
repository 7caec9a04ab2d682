"""The translation catalogs (gettext, with Babel): ``python scripts/i18n.py extract|update|compile|port``.

- ``extract``: every message of the hub's templates, of the Python of the hub and of the kernel's side
  (the notebook's forms, the magics) (``t("…")``, ``tr("…")``, ``t.pgettext``, ``t.ngettext``,
  ``N_``) and of the JupyterLab extension's TypeScript (``trans.__``, ``trans._n``,
  ``trans._p``) into ``algolink_jupyter/locale/algolink_jupyter.pot``.
- ``update``: extract, then merge the template into each language's ``.po`` (new messages arrive
  untranslated, messages no longer used are dropped).
- ``compile``: each ``.po`` into a ``.mo`` beside it (the hub reads it) and a JupyterLab JSON catalog
  (``algolink_jupyter.json``, only the extension's messages) that JupyterLab's translation server finds
  through the ``jupyterlab.locale`` entry point. The package build runs this (``hatch_build.py``).
- ``port OLD_I18N_PY``: messages added the old way (``"key": "English"`` in ``MESSAGES["en"]`` and
  ``"key": "中文"`` in ``MESSAGES["zh_CN"]`` of a previous ``i18n.py``): every ``t("key")`` in the
  templates and the hub's Python becomes ``t("English")``, the Chinese goes into ``zh_CN.po``; keys
  used only dynamically (errors' ``e_<key>``, ``status_<x>`` …) are listed, to place by hand.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tokenize
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file, extract_python
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "algolink_jupyter"
DOMAIN = "algolink_jupyter"
LOCALE = PACKAGE / "locale"
POT = LOCALE / f"{DOMAIN}.pot"
LANGUAGES = ("zh_CN",)
TEMPLATES = PACKAGE / "hub" / "handlers" / "templates"
HUB_PY = [PACKAGE / "hub", PACKAGE / "client", PACKAGE / "serverext"]
#: The kernel's side: the notebook's test form and publish form (their language: ``kernel_language``)
KERNEL_PY = [PACKAGE / "widgets", PACKAGE / "kernel"]
#: and single files of it: the magics' lines
KERNEL_PY_FILES = [PACKAGE / "magics.py", PACKAGE / "translation.py"]
TS = ROOT / "js" / "src"

PY_KEYWORDS = {
    "t": None,
    "tr": None,
    "N_": None,
    "pgettext": ((1, "c"), 2),
    "ngettext": (1, 2),
    "npgettext": ((1, "c"), 2, 3),
}
TS_KEYWORDS = {"__": None, "_n": (1, 2), "_p": ((1, "c"), 2), "_np": ((1, "c"), 2, 3)}
TAG = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)


def extract_tornado(fileobj, keywords, comment_tags, options):
    """Babel extraction method for Tornado templates: the Python of every ``{{ … }}`` and
    ``{% … %}`` goes through Babel's own Python extractor, at its line in the template."""
    text = fileobj.read().decode("utf-8")
    for match in TAG.finditer(text):
        code = (match.group(1) or match.group(2) or "").strip()
        first = code.split(None, 1)
        if first and first[0] in ("raw", "set", "if", "elif", "for", "while", "module", "apply"):
            code = first[1] if len(first) > 1 else ""
        line = text.count("\n", 0, match.start())
        try:
            found = list(
                extract_python(io.BytesIO(code.encode("utf-8")), keywords, comment_tags, {})
            )
        except (SyntaxError, tokenize.TokenError):
            continue
        for lineno, funcname, messages, comments in found:
            yield lineno + line, funcname, messages, comments


def extract_catalog() -> Catalog:
    """The template catalog of every message in use."""
    catalog = Catalog(
        project="AlgoLink",
        version="0.1.0",
        domain=DOMAIN,
        copyright_holder="the AlgoLink authors",
        charset="utf-8",
        fuzzy=False,
    )

    def add(found, folder: Path) -> None:
        for filename, lineno, message, comments, context in found:
            where = (folder / filename).relative_to(ROOT).as_posix()
            catalog.add(message, None, [(where, lineno)], auto_comments=comments, context=context)

    for folder in HUB_PY + KERNEL_PY:
        add(
            extract_from_dir(folder, [("**.py", "python")], keywords=PY_KEYWORDS),
            folder,
        )
    for path in KERNEL_PY_FILES:
        add(
            (
                (path.name, lineno, message, comments, context)
                for lineno, message, comments, context in extract_from_file(
                    "python", str(path), keywords=PY_KEYWORDS
                )
            ),
            path.parent,
        )
    add(
        extract_from_dir(TEMPLATES, [("**.html", extract_tornado)], keywords=PY_KEYWORDS),
        TEMPLATES,
    )
    add(
        extract_from_dir(
            TS,
            [("**.ts", "javascript")],
            keywords=TS_KEYWORDS,
            options_map={"**.ts": {"parse_template_string": False}},
        ),
        TS,
    )
    return catalog


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    # file names without line numbers: an edit elsewhere in a template does not touch the catalogs
    write_po(buf, catalog, width=100, sort_by_file=True, include_lineno=False)
    path.write_bytes(buf.getvalue())


def read(path: Path, lang: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=lang, domain=DOMAIN)


def cmd_extract() -> Catalog:
    template = extract_catalog()
    write(POT, template)
    print(f"{POT.relative_to(ROOT)}: {len(template)} messages")
    return template


def cmd_update(fill: dict | None = None) -> None:
    template = cmd_extract()
    for lang in LANGUAGES:
        path = po_path(lang)
        catalog = read(path, lang) if path.exists() else Catalog(locale=lang, domain=DOMAIN)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.project, catalog.version, catalog.fuzzy = "AlgoLink", "0.1.0", False
        catalog.language_team = catalog.last_translator = "AlgoLink <https://github.com/algolink>"
        catalog.obsolete.clear()
        for message in catalog:
            if message.id and fill and not any(_strings(message)):
                text = fill.get((message.context, _first(message.id)))
                if text is not None:
                    message.string = text if isinstance(message.id, str) else (text,)
        missing = [m.id for m in catalog if m.id and not all(_strings(m))]
        write(path, catalog)
        print(f"{path.relative_to(ROOT)}: {len(catalog)} messages, {len(missing)} untranslated")
        for m in missing:
            print(f"  untranslated: {m!r}")


def _first(msgid) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def _strings(message) -> list:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


def jupyterlab_json(catalog: Catalog, lang: str) -> dict:
    """JupyterLab's catalog format (``@jupyterlab/translation``'s Gettext data): a header under
    ``""``, then ``msgid`` (``context\\u0004msgid`` with a context) -> ``[msgstr, …]``; only the
    messages of the extension's TypeScript."""
    plural = catalog.plural_forms
    data: dict = {
        "": {
            "domain": DOMAIN,
            # JupyterLab's Gettext files messages under this and looks them up under its own
            # locale, written as the language packs write it: zh-CN
            "language": lang.replace("_", "-"),
            "plural_forms": plural,
            "version": catalog.version or "0.1.0",
        }
    }
    for message in catalog:
        if not message.id or not any(loc.startswith("js/") for loc, _ in message.locations):
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        if message.context:
            key = f"{message.context}\u0004{key}"
        data[key] = _strings(message)
    return data


def cmd_compile(quiet: bool = False) -> None:
    for lang in LANGUAGES:
        path = po_path(lang)
        catalog = read(path, lang)
        with path.with_suffix(".mo").open("wb") as f:
            write_mo(f, catalog)
        path.with_suffix(".json").write_text(
            json.dumps(jupyterlab_json(catalog, lang), ensure_ascii=False, indent=1) + "\n",
            encoding="utf-8",
        )
        if not quiet:
            print(f"{path.relative_to(ROOT)} -> .mo and .json")


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _old_python_table(old: Path) -> tuple:
    namespace: dict = {"__name__": "old_i18n"}
    exec(compile(old.read_text(encoding="utf-8"), str(old), "exec"), namespace)
    messages = namespace["MESSAGES"]
    return messages["en"], messages.get("zh_CN", {})


def _old_ts_table(old: Path) -> tuple:
    """The ``MESSAGES`` object of an old ``js/src/i18n.ts`` (``id: {en, zh}``, ``{0}`` placeholders),
    read by node, with its placeholders as JupyterLab's ``%1``, ``%2``."""
    code = (
        "const s = require('fs').readFileSync(process.argv[1], 'utf8');"
        "const a = s.indexOf('const MESSAGES = {') + 'const MESSAGES = '.length;"
        "const b = s.indexOf('} as const;');"
        "process.stdout.write(JSON.stringify(eval('(' + s.slice(a, b + 1) + ')')));"
    )
    table = json.loads(
        subprocess.run(
            ["node", "-e", code, str(old)], check=True, capture_output=True, text=True
        ).stdout
    )

    def pct(text: str) -> str:
        return re.sub(r"\{(\d+)\}", lambda m: f"%{int(m.group(1)) + 1}", text)

    return (
        {k: pct(v["en"]) for k, v in table.items()},
        {k: pct(v["zh"]) for k, v in table.items()},
    )


def _ts_call(text: str, start: int) -> tuple:
    """From ``t('id'`` at ``start``: the id, the argument list's source (or None) and the end."""
    m = re.compile(r"\bt\(\s*'([a-z0-9-]+)'\s*").match(text, start)
    i = m.end()
    args = None
    if text[i] == ",":
        i += 1
        while text[i] in " \n":
            i += 1
        if text[i] != "[":
            return None
        depth, begin = 0, i
        while True:
            c = text[i]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
                if depth == 0:
                    break
            elif c in "'\"`":
                i += 1
                while text[i] != c:
                    i += 2 if text[i] == "\\" else 1
            i += 1
        args = text[begin + 1 : i].strip().rstrip(",")
        i += 1
        while text[i] in " \n":
            i += 1
    if text[i] != ")":
        return None
    return m.group(1), args, i + 1


def _port_ts(en: dict, ported: set) -> None:
    for path in sorted(TS.glob("*.ts")):
        if path.name == "i18n.ts":
            continue
        text, out, i = path.read_text(encoding="utf-8"), [], 0
        for m in re.finditer(r"\bt\(\s*'([a-z0-9-]+)'", text):
            if m.start() < i or m.group(1) not in en:
                continue
            call = _ts_call(text, m.start())
            if call is None:
                print(
                    f"  {path.relative_to(ROOT)}: t('{m.group(1)}', ...) left as it is: port it by hand"
                )
                continue
            key, args, end = call
            ported.add(key)
            literal = "'" + en[key].replace("\\", "\\\\").replace("'", "\\'") + "'"
            out += [text[i : m.start()], f"trans.__({literal}{', ' + args if args else ''})"]
            i = end
        if out:
            path.write_text(_fix_import("".join(out) + text[i:]), encoding="utf-8")
            print(f"{path.relative_to(ROOT)}: rewritten")


def _fix_import(source: str) -> str:
    """The ``./i18n`` import of a ported file: ``t`` out, ``trans`` in where it is used."""

    def names(m: re.Match) -> str:
        found = {n.strip() for n in m.group(1).split(",") if n.strip()} - {"t"}
        if "trans.__(" in source:
            found.add("trans")
        return "import { " + ", ".join(sorted(found)) + " } from './i18n';"

    return re.sub(r"import \{([^}]*)\} from './i18n';", names, source)


def cmd_port(old_py: Path | None, old_ts: Path | None) -> None:
    """Messages of old ``MESSAGES`` tables (keys) into the catalogs: call sites rewritten to their
    English, the Chinese into ``zh_CN.po``."""
    pairs: dict = {}
    leftovers: list = []
    tables = []
    if old_py:
        tables.append(("py", *_old_python_table(old_py)))
    if old_ts:
        tables.append(("ts", *_old_ts_table(old_ts)))
    for kind, en, zh in tables:
        ported: set = set()
        if kind == "py":
            files = sorted(TEMPLATES.glob("*.html")) + [
                p for folder in HUB_PY for p in folder.rglob("*.py") if p.name != "i18n.py"
            ]
            for path in files:
                text = path.read_text(encoding="utf-8")

                def swap(m: re.Match, en: dict = en, ported: set = ported) -> str:
                    key = m.group(2)
                    if key not in en:
                        return m.group(0)
                    ported.add(key)
                    return f"{m.group(1)}{_literal(en[key])}"

                new = re.sub(r"""(\bt\(\s*)["']([A-Za-z0-9_]+)["']""", swap, text)
                if new != text:
                    path.write_text(new, encoding="utf-8")
                    print(f"{path.relative_to(ROOT)}: rewritten")
        else:
            _port_ts(en, ported)
        for key, english in en.items():
            if key in zh:
                if pairs.get((None, english), zh[key]) != zh[key]:
                    print(
                        f"  two translations of {english!r}: {pairs[(None, english)]!r} kept, "
                        f"{zh[key]!r} ({key}) needs a context: t.pgettext(context, {english!r})"
                    )
                    continue
                pairs[(None, english)] = zh[key]
            if key not in ported:
                leftovers.append((key, english, zh.get(key)))
    cmd_update(fill=pairs)
    current = {_first(m.id) for m in read(po_path("zh_CN"), "zh_CN") if m.id}
    for key, english, chinese in leftovers:
        if english not in current:
            print(
                f"  not placed: {key!r} ({english!r}, zh {chinese!r}): no t('{key}') call: unused "
                "(dropped), or chosen at run time: then add it with N_ to its family (ERRORS, "
                "STATUS, ... in hub/handlers/i18n.py; a switch in js/src/i18n.ts) and port again"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("extract")
    sub.add_parser("update")
    sub.add_parser("compile")
    port = sub.add_parser("port")
    port.add_argument("old", type=Path, nargs="?", help="an i18n.py with the old MESSAGES table")
    port.add_argument("--ts", type=Path, help="a js/src/i18n.ts with the old MESSAGES object")
    args = parser.parse_args(argv)
    if args.command == "extract":
        cmd_extract()
    elif args.command == "update":
        cmd_update()
    elif args.command == "compile":
        cmd_compile()
    else:
        cmd_port(args.old, args.ts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
