"""The cells a kernel ran, split into top-level statements that say which names they bind and read.

The source of truth is the kernel's input history, in execution order: what actually built the live
namespace, re-runs and all. Magics and shell escapes are turned into Python by IPython's own transformer
(``!curl ...`` becomes ``get_ipython().system(...)``, which binds nothing and is never kept); the body of
an ``%%algolink_*``, ``%%time`` or ``%%capture`` cell is Python; other cell magics (``%%bash``,
``%%writefile``, ...) bind no Python name and are skipped.
"""

from __future__ import annotations

import ast
import symtable
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

#: Cell magics whose body runs as ordinary Python in the user's namespace.
PYTHON_CELL_MAGICS = {"algolink_setup", "algolink_command", "time", "capture"}
#: Scopes that run while their statement runs (a class body, a comprehension), unlike function bodies.
_IMMEDIATE_SCOPES = {"listcomp", "setcomp", "dictcomp", "genexpr"}


@dataclass
class Statement:
    """One top-level statement of a cell."""

    cell: int  # the cell's execution number, In [cell]
    order: int  # position among all statements, in execution order
    node: ast.stmt
    source: str
    binds: frozenset  # module-level names it assigns, imports or defines
    uses: frozenset  # module-level names it reads, now or later (from function bodies)
    uses_now: (
        frozenset  # the names it reads while it runs: decorators, defaults, class bodies, values
    )
    magic: Optional[str] = (
        None  # "algolink_setup" / "algolink_command" for a magic cell's statements
    )


@dataclass
class Names:
    binds: set = field(default_factory=set)
    uses: set = field(default_factory=set)
    uses_now: set = field(default_factory=set)


def analyze(source: str) -> Names:
    """Which module-level names ``source`` binds and reads, by Python's own symbol tables."""
    top = symtable.symtable(source, "<cell>", "exec")
    names = Names()
    for s in top.get_symbols():
        if s.is_assigned() or s.is_imported() or s.is_namespace():
            names.binds.add(s.get_name())
        if s.is_referenced():
            names.uses_now.add(s.get_name())

    def walk(table: Any, now: bool) -> None:
        for s in table.get_symbols():
            if s.is_referenced() and s.is_global():
                (names.uses_now if now else names.uses).add(s.get_name())
        for child in table.get_children():
            walk(
                child,
                now and (child.get_type() == "class" or child.get_name() in _IMMEDIATE_SCOPES),
            )

    for child in top.get_children():
        walk(child, child.get_type() == "class" or child.get_name() in _IMMEDIATE_SCOPES)
    names.uses |= names.uses_now
    return names


def segment(source: str, node: ast.stmt) -> str:
    """The exact source of a top-level statement, decorators included."""
    lines = source.splitlines(keepends=True)
    start_line, start_col = node.lineno, node.col_offset
    for deco in getattr(node, "decorator_list", []):
        if deco.lineno < start_line or (deco.lineno == start_line and deco.col_offset < start_col):
            start_line, start_col = deco.lineno, max(deco.col_offset - 1, 0)  # the '@'
    end_line, end_col = node.end_lineno or start_line, node.end_col_offset
    if start_line == end_line:
        return lines[start_line - 1][start_col:end_col]
    parts = [lines[start_line - 1][start_col:]]
    parts.extend(lines[start_line : end_line - 1])
    parts.append(lines[end_line - 1][:end_col])
    return "".join(parts)


_transformer: Any = None


def to_python(raw: str) -> tuple:
    """``(python_source, magic_name)`` of one raw cell; the source is None when it holds no Python."""
    global _transformer
    stripped = raw.lstrip("\n")
    if stripped.startswith("%%"):
        first, _, body = stripped.partition("\n")
        name = first[2:].split(None, 1)[0] if first[2:].strip() else ""
        if name not in PYTHON_CELL_MAGICS:
            return None, name
        return body, name
    if _transformer is None:
        from IPython.core.inputtransformer2 import TransformerManager

        _transformer = TransformerManager()
    return _transformer.transform_cell(raw), None


def split(cells: Iterable[tuple]) -> list:
    """Every top-level statement of ``cells`` (``(execution_number, raw_source)`` pairs), in order.

    A cell that does not parse (it failed in the kernel too) contributes nothing.
    """
    out: list = []
    for number, raw in cells:
        source, magic = to_python(raw)
        if not source or not source.strip():
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            text = segment(source, node)
            try:
                names = analyze(text)
            except SyntaxError:  # e.g. a bare `return` or `yield` at top level
                continue
            out.append(
                Statement(
                    cell=number,
                    order=len(out),
                    node=node,
                    source=text,
                    binds=frozenset(names.binds),
                    uses=frozenset(names.uses),
                    uses_now=frozenset(names.uses_now),
                    magic=magic if magic in ("algolink_setup", "algolink_command") else None,
                )
            )
    return out


def kernel_cells(shell: Any) -> list:
    """``(execution_number, raw_source)`` of every cell this kernel ran before the running one."""
    raw = list(shell.history_manager.input_hist_raw)
    cells = list(enumerate(raw))[1:]
    if cells and _running_cell_is_stored(shell):
        cells.pop()  # the cell now running (the export itself)
    return cells


def _running_cell_is_stored(shell: Any) -> bool:
    """Whether the running cell is already the last history entry (it is unless run with
    ``store_history=False`` or ``silent``); asked of ipykernel's request where there is one."""
    kernel = getattr(shell, "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None:
        return True
    try:
        content = get_parent("shell").get("content") or {}
    except TypeError:  # an older ipykernel without the channel argument
        content = get_parent().get("content") or {}
    if not content:
        return True
    return bool(content.get("store_history", True)) and not content.get("silent", False)
