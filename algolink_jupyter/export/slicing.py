"""Cell slicing: the smallest program that rebuilds what the setup and the commands use.

It starts from the live functions in the registry and follows the module-level names they read, one name
at a time, deciding for each how the bundle gets it:

- **import**: a module, or a name an import statement bound (``np``, ``Image``): the import is kept;
- **def**: a function or class defined in a cell: its source is kept (and what it reads is followed);
- **statement**: a plain value (a number, a string, a literal list...) assigned once by a statement that
  reads only imports, functions and other such values: the statement is kept, so it is computed again
  where the bundle runs (``device = "cuda" if torch.cuda.is_available() else "cpu"``);
- **state**: any other value (a trained model, an array, anything a loop or a later cell changed): saved
  from the kernel and loaded by the bundle, so nothing is trained again.

Statements that bind nothing the functions need (training loops, plots, ``!curl``, prints) are left out.
The kept items are put in execution order, moved only where one must run before another.
"""

from __future__ import annotations

import ast
import builtins
import heapq
import inspect
import json
import sys
import textwrap
import types
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Optional

from modelcloud import data_types

from ..spec import batch_settings, parse_command_line, parse_setup_line, parse_spec
from ..spec import unquote as _unquote
from . import cells as cells_mod
from . import requirements as reqs
from .state import Probe, StateError, plan_value, probe

#: Builtins that exist only inside IPython.
IPYTHON_BUILTINS = {"display", "get_ipython", "__IPYTHON__"}
#: Names every module has where the bundle runs, though a kernel's namespace may lack them.
MODULE_NAMES = {"__file__", "__name__", "__doc__", "__spec__", "__loader__", "__package__"}
_MISSING = object()
_MAX_LITERAL = 10_000  # characters: a longer literal collection is saved as state instead


class SliceError(Exception):
    """The notebook cannot be exported as it is; the message says which name or cell and what to do."""


@dataclass
class Item:
    """One top-level piece of cloud_model.py."""

    kind: str  # "def", "stmt", "root" or "state"
    source: str
    order: float
    binds: frozenset
    uses: frozenset
    uses_now: frozenset
    cell: Optional[int] = None
    label: str = ""


@dataclass
class Plan:
    """What the bundle is made of."""

    items: list  # in the order cloud_model.py runs them (imports excluded)
    imports: list  # import lines, in execution order
    state: dict  # name -> value saved from the kernel
    probe: Optional[Probe]  # what the values saved with pickle need
    modules: dict  # top-level module -> the first import line (or "saved state") that needs it
    local_modules: dict  # module name -> its file or folder under the notebook's folder
    commands: list
    has_setup: bool
    defined: list  # names of functions and classes kept
    recomputed: list  # names of values computed again by the bundle
    cells: list  # execution numbers of the cells something was kept from
    warnings: list = field(default_factory=list)
    saved: dict = field(default_factory=dict)  # name -> state.Saved: how each value is saved
    #: name -> what of it ships instead of the whole value (``X.columns`` of a DataFrame), in words
    reduced: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # saved name -> the call the notebook fit it with


class _Whole(Exception):
    """A value shipped as a few of its attributes turned out to be read as a whole: slice again."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


@dataclass
class _Kind:
    kind: str  # builtin, missing, ipython, import, def, stmt, state
    lines: tuple = ()
    source: str = ""
    statement: Optional[cells_mod.Statement] = None
    uses: frozenset = frozenset()
    uses_now: frozenset = frozenset()


def _plain(value: Any, depth: int = 0) -> bool:
    """An immutable value made of literals: computing it again gives the same thing."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return True
    if isinstance(value, (tuple, frozenset)) and depth < 5 and len(value) <= 1000:
        return all(_plain(v, depth + 1) for v in value)
    return False


def _function_source(fn: Callable) -> Optional[str]:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if (
        len(tree.body) == 1
        and isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef))
        and tree.body[0].name == fn.__name__
    ):
        return source.rstrip() + "\n"
    return None


def _import_lines(st: cells_mod.Statement, name: str) -> list:
    node = st.node
    out = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            if bound == name:
                out.append(
                    f"import {alias.name} as {alias.asname}"
                    if alias.asname
                    else f"import {alias.name}"
                )
    elif isinstance(node, ast.ImportFrom):
        module = "." * node.level + (node.module or "")
        for alias in node.names:
            if (alias.asname or alias.name) == name:
                suffix = f" as {alias.asname}" if alias.asname else ""
                out.append(f"from {module} import {alias.name}{suffix}")
    return out


def _merge_imports(lines: list) -> list:
    """``from m import a`` and ``from m import b`` -> ``from m import a, b``; duplicates dropped."""
    merged: dict = {}
    for line in lines:
        if line.startswith("from "):
            module, _, names = line[5:].partition(" import ")
            key = f"from {module}"
            merged.setdefault(key, [])
            if names not in merged[key]:
                merged[key].append(names)
        else:
            merged.setdefault(line, None)
    return [k if v is None else f"{k} import {', '.join(v)}" for k, v in merged.items()]


class _Slicer:
    def __init__(self, statements: list, namespace: dict, hidden: set, workdir: Path) -> None:
        self.statements = statements
        self.ns = namespace
        self.hidden = hidden
        self.workdir = workdir
        self.last: dict = {}
        self.bindings: dict = defaultdict(list)
        for st in statements:
            for name in st.binds:
                self.last[name] = st
                self.bindings[name].append(st)
        self._kinds: dict = {}
        self._in_progress: set = set()
        self._pure: dict = {}

    # -- what a name is ------------------------------------------------------------------------------
    def kind(self, name: str) -> _Kind:
        found = self._kinds.get(name)
        if found is not None:
            return found
        if name in self._in_progress:  # a cycle between values: keep what the kernel has
            return _Kind("state")
        self._in_progress.add(name)
        try:
            found = self._decide(name)
        finally:
            self._in_progress.discard(name)
        self._kinds[name] = found
        return found

    def _decide(self, name: str) -> _Kind:
        value = self.ns.get(name, _MISSING)
        st = self.last.get(name)
        if name in IPYTHON_BUILTINS and (value is _MISSING or st is None):
            return _Kind("ipython")
        if st is None and (hasattr(builtins, name) or name in MODULE_NAMES):
            return _Kind("builtin")  # even where IPython wraps it (open, exit)
        if value is _MISSING:
            if name == "modelcloud":  # the decorators the export writes: cloud_model.py imports it
                return _Kind("builtin")
            return _Kind("missing")
        if st is None and name in self.hidden:
            return _Kind("ipython")
        if isinstance(value, types.ModuleType):
            return _Kind("import", lines=tuple(self._module_import(name, value, st)))
        if st is not None and isinstance(st.node, (ast.Import, ast.ImportFrom)):
            lines = _import_lines(st, name)
            if lines:
                return _Kind("import", lines=tuple(lines))
        if (
            getattr(value, "__module__", None) == "__main__"
            and getattr(value, "__name__", None) == name
        ):
            if inspect.isfunction(value):
                source = _function_source(value)
                if (
                    source is None
                    and st is not None
                    and isinstance(st.node, (ast.FunctionDef, ast.AsyncFunctionDef))
                ):
                    source = st.source
                if source is not None:
                    return self._def(source, st)
            elif inspect.isclass(value) and st is not None and isinstance(st.node, ast.ClassDef):
                return self._def(st.source, st)
        if (  # a def whose decorator returned something else (functools.lru_cache, ...)
            st is not None
            and isinstance(st.node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and st.node.name == name
            and getattr(value, "__module__", None) == "__main__"
        ):
            return self._def(st.source, st)
        reference = self._importable(name, value)
        if reference:
            return _Kind("import", lines=(reference,))
        path = self._file_path(name, value, st)
        if path is not None:
            return path
        if st is not None and self._recomputable(name, value, st):
            return _Kind("stmt", source=st.source, statement=st, uses=st.uses, uses_now=st.uses_now)
        return _Kind("state")

    def _file_path(
        self, name: str, value: Any, st: Optional[cells_mod.Statement]
    ) -> Optional[_Kind]:
        """A ``Path`` or string naming a file or folder under the notebook's folder, however the
        notebook computed it (``MODEL_PATH / MODEL_NAME``): written as the literal path it holds, which
        the bundle copies and opens next to cloud_model.py like any path the code names."""
        if not (isinstance(value, PurePath) or type(value) is str):
            return None
        text = str(value)
        if not text or len(text) > 260 or "\n" in text or "://" in text:
            return None
        if isinstance(value, str) and st is not None and isinstance(st.node, ast.Assign):
            rhs = st.node.value
            if isinstance(rhs, ast.Constant) and rhs.value == value:
                return None  # a literal already: kept as written, and its path found there
        try:
            full = Path(text).expanduser()
            full = full if full.is_absolute() else self.workdir / full
            if not full.exists():
                return None
            rel = full.resolve().relative_to(self.workdir.resolve())
        except (OSError, ValueError):
            return None
        if rel == Path("."):
            return None
        literal = json.dumps(rel.as_posix())
        expr = f"pathlib.Path({literal})" if isinstance(value, PurePath) else literal
        where = ast.unparse(st.node.value) if st is not None and hasattr(st.node, "value") else ""
        note = f"  # {where}, in the kernel" if where and len(where) < 60 else ""
        return _Kind(
            "path",
            lines=("import pathlib",) if isinstance(value, PurePath) else (),
            source=f"{name} = {expr}{note}\n",
            statement=st,
        )

    def _def(self, source: str, st: Optional[cells_mod.Statement]) -> _Kind:
        names = cells_mod.analyze(source)
        return _Kind(
            "def",
            source=source,
            statement=st,
            uses=frozenset(names.uses),
            uses_now=frozenset(names.uses_now),
        )

    def _module_import(self, name: str, module: types.ModuleType, st: Any) -> list:
        lines = []
        if st is not None and isinstance(st.node, ast.ImportFrom):
            lines.extend(_import_lines(st, name))
        else:
            # Every `import a.b` that bound `a` (to this module) is kept: code may reach a.b and a.c
            # through the one name.
            for other in self.bindings.get(name, []):
                if isinstance(other.node, ast.Import):
                    for line in _import_lines(other, name):
                        words = line.split()
                        imported = words[1] if len(words) > 2 else words[1].split(".")[0]
                        if imported == module.__name__:
                            lines.append(line)
        if lines:
            return list(dict.fromkeys(lines))
        real = module.__name__
        if real == name:
            return [f"import {name}"]
        parent, _, leaf = real.rpartition(".")
        if parent and leaf == name:
            return [f"from {parent} import {leaf}"]
        return [f"import {real} as {name}"]

    def _importable(self, name: str, value: Any) -> Optional[str]:
        """``from module import x`` for a function or class that lives in a module (not a cell)."""
        if not (inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value)):
            return None
        module = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", "")
        if not module or module in ("__main__", "builtins") or "." in qualname or "<" in qualname:
            return None
        loaded = sys.modules.get(module)
        if loaded is None or getattr(loaded, qualname, None) is not value:
            return None
        return f"from {module} import {qualname}" + (f" as {name}" if name != qualname else "")

    def _recomputable(self, name: str, value: Any, st: cells_mod.Statement) -> bool:
        node = st.node
        if isinstance(node, ast.Assign):
            if not all(isinstance(t, ast.Name) for t in node.targets):
                return False
            rhs = node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            if not isinstance(node.target, ast.Name):
                return False
            rhs = node.value
        else:
            return False
        # Bound once (a cell run again with the same statement counts as once).
        if len({other.source for other in self.bindings[name]}) != 1:
            return False
        if not _plain(value):
            is_lambda = inspect.isfunction(value) and value.__name__ == "<lambda>"
            if not is_lambda and not self._literal_equal(rhs, value):
                return False
        return all(self.pure(u) for u in st.uses - st.binds)

    @staticmethod
    def _literal_equal(node: ast.expr, value: Any) -> bool:
        if not isinstance(value, (list, dict, set)):
            return False
        try:
            text = ast.unparse(node)
            if len(text) > _MAX_LITERAL:
                return False
            return ast.literal_eval(node) == value
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return False

    def pure(self, name: str) -> bool:
        """True when ``name`` can be had in the bundle without anything saved from the kernel."""
        if name in self._pure:
            return self._pure[name]
        self._pure[name] = True  # provisional: mutual recursion between functions is fine
        k = self.kind(name)
        if k.kind in ("builtin", "import", "stmt", "path"):
            result = True
        elif k.kind == "def":
            result = all(self.pure(u) for u in k.uses if u != name)
        else:
            result = False
        self._pure[name] = result
        return result


def _defining_statement(
    statements: list, fn: Callable, magic: Optional[str]
) -> Optional[cells_mod.Statement]:
    """The statement that defined ``fn``: the last def of its name (with its source, when known)."""
    source = (_function_source(fn) or "").strip()
    candidates = [
        st
        for st in statements
        if isinstance(st.node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and st.node.name == fn.__name__
    ]
    candidates = [st for st in candidates if st.magic == magic] or candidates
    exact = [st for st in candidates if source and st.source.strip() == source]
    return (exact or candidates or [None])[-1]


def _root_decorator(fn: Callable, info: dict, label: str) -> str:
    kind, line = info.get("magic"), info.get("line", "")
    if kind == "algolink_setup":
        args = parse_setup_line(line)
        options = _unquote(args.options)
        if not options:
            return "@modelcloud.setup"
        return f"@modelcloud.setup(options={spec_source(options, '--options', 4)})"
    args = parse_command_line(line)
    parts = [_literal(_unquote(args.name))]
    for key in ("inputs", "outputs"):
        spec = _unquote(getattr(args, key))
        if spec:
            parts.append(f"{key}={spec_source(spec, '--' + key, 4)}")
    if args.description is not None:
        parts.append(f"description={_literal(_unquote(args.description))}")
    batch = batch_settings(args, label)
    if batch is not None:
        parts.append(f"batch={batch.source()}")
    return "@modelcloud.command(\n" + "".join(f"    {p},\n" for p in parts) + ")"


def _literal(text: str) -> str:
    if '"' not in text and "\\" not in text and "\n" not in text:
        return f'"{text}"'
    return repr(text)


class _Qualify(ast.NodeTransformer):
    """``image(width=8)`` -> ``modelcloud.image(width=8)``; a bare ``text`` -> ``modelcloud.text()``."""

    def __init__(self, types_: dict):
        self.types = types_

    def _attr(self, name: str) -> ast.Attribute:
        return ast.Attribute(
            value=ast.Name(id="modelcloud", ctx=ast.Load()), attr=name, ctx=ast.Load()
        )

    def visit_Call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Name) and node.func.id in self.types:
            node.func = self._attr(node.func.id)
        node.args = [self.visit(a) for a in node.args]
        for kw in node.keywords:
            kw.value = self.visit(kw.value)
        return node

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.types:
            return ast.Call(func=self._attr(node.id), args=[], keywords=[])
        return node


def spec_source(spec: str, where: str, indent: int = 0) -> str:
    """A magic's ``name=TYPE`` spec as the dict literal a decorator takes."""
    parse_spec(spec, where)  # the magic accepted it; this keeps the two in step
    call = ast.parse(f"_({spec})", mode="eval").body
    assert isinstance(call, ast.Call)
    entries = []
    for kw in call.keywords:
        value = _Qualify(data_types.TYPES).visit(kw.value)
        entries.append(f"{json.dumps(kw.arg)}: {ast.unparse(value)}")
    one_line = "{" + ", ".join(entries) + "}"
    if len(one_line) + indent <= 80:
        return one_line
    pad = " " * (indent + 4)
    return "{\n" + "".join(f"{pad}{e},\n" for e in entries) + " " * indent + "}"


def _modules_in(source: str) -> list:
    """Top-level modules that a piece of code imports, anywhere in it (function bodies too)."""
    out = []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return out
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name.split(".")[0], f"import {a.name}") for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module.split(".")[0], f"from {node.module} import ..."))
    return out


def _root_item(label: str, fn: Callable, statements: list) -> Item:
    """The setup or a command function, with the decorator that declares it in cloud_model.py."""
    if not inspect.isfunction(fn) or fn.__module__ != "__main__":
        raise SliceError(
            f"{label} is {getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)!s}, "
            "not a function defined in a cell: define it at the top level of a cell to export it."
        )
    if "<locals>" in fn.__qualname__:
        raise SliceError(
            f"{label} is {fn.__qualname__}, a function made inside another one: define it at "
            "the top level of a cell to export it."
        )
    info = getattr(fn, "__algolink_magic__", None)
    st = _defining_statement(statements, fn, info.get("magic") if info else None)
    source = _function_source(fn) or (st.source.rstrip() + "\n" if st else None)
    if source is None:
        raise SliceError(
            f"The source of {label} ({fn.__name__}) is not available: run its cell again, then "
            "export."
        )
    if info:
        source = _root_decorator(fn, info, label) + "\n" + source
    elif not ast.parse(source).body[0].decorator_list:
        raise SliceError(
            f"{label} ({fn.__name__}) was registered by a call rather than declared: put "
            "@modelcloud.command(...) (or @modelcloud.setup) on its def, or use the magic cell."
        )
    names = cells_mod.analyze(source)
    return Item(
        "root",
        source,
        float(st.order) if st else float(len(statements)),
        frozenset({fn.__name__}),
        frozenset(names.uses),
        frozenset(names.uses_now),
        st.cell if st else None,
        label,
    )


def slice_notebook(
    raw_cells: list,
    namespace: dict,
    registry: Any,
    hidden: Optional[set] = None,
    workdir: Optional[Path] = None,
) -> Plan:
    """The bundle's program, from the cells a kernel ran (``(number, source)`` pairs, or sources),
    the kernel's namespace and its registry."""
    whole: set = set()
    while True:
        try:
            return _slice(raw_cells, namespace, registry, hidden, workdir, frozenset(whole))
        except _Whole as e:
            whole.add(e.name)


def _slice(
    raw_cells: list,
    namespace: dict,
    registry: Any,
    hidden: Optional[set],
    workdir: Optional[Path],
    whole: frozenset,
) -> Plan:
    workdir = Path(workdir or Path.cwd())
    pairs = [c if isinstance(c, tuple) else (i + 1, c) for i, c in enumerate(raw_cells)]
    statements = cells_mod.split(pairs)
    slicer = _Slicer(statements, namespace, set(hidden or ()), workdir)

    roots: list = []  # (label, fn)
    if registry.setup_fn is not None:
        roots.append(("the setup", registry.setup_fn))
    for name, cmd in registry.commands.items():
        roots.append((f"command {name!r}", cmd.fn))
    if not registry.commands:
        raise SliceError(
            "There is nothing to export: declare a command first, with %%algolink_command or "
            "@modelcloud.command in a cell."
        )

    items: list = []
    by_fn: dict = {}
    needed_by: dict = {}
    queue: deque = deque()
    for label, fn in roots:
        if id(fn) in by_fn:
            continue
        item = _root_item(label, fn, statements)
        items.append(item)
        by_fn[id(fn)] = item
        for u in item.uses:
            needed_by.setdefault(u, label)
            queue.append(u)

    imports: list = []
    state: dict = {}
    defined: list = []
    recomputed: list = []
    warnings: list = []
    seen: set = set()
    kept_statements: set = set()
    found_probe: Optional[Probe] = None
    probed: set = set()
    saved: dict = {}
    reduced: dict = {}  # name -> (attributes, stand-in source, words)
    checked: set = set(whole)

    while True:
        while queue:
            name = queue.popleft()
            if name in seen:
                continue
            seen.add(name)
            k = slicer.kind(name)
            who = needed_by.get(name, "the bundle")
            if k.kind == "import":
                imports.extend((_import_order(slicer, name), line) for line in k.lines)
            elif k.kind == "def":
                value = namespace.get(name)
                if id(value) in by_fn:
                    continue  # a root, already there
                st = k.statement
                items.append(
                    Item(
                        "def",
                        k.source,
                        float(st.order) if st else float(len(statements)),
                        frozenset({name}),
                        k.uses,
                        k.uses_now,
                        st.cell if st else None,
                        name,
                    )
                )
                defined.append(name)
                _follow(k.uses, name, queue, needed_by)
            elif k.kind == "path":  # a file's path, as the literal it holds: nothing more to follow
                imports.extend((-1.0, line) for line in k.lines)
                recomputed.append(name)
                st = k.statement
                items.append(
                    Item(
                        "stmt",
                        k.source,
                        float(st.order) if st else -0.5,
                        frozenset({name}),
                        frozenset(),
                        frozenset(),
                        st.cell if st else None,
                        name,
                    )
                )
            elif k.kind == "stmt":
                st = k.statement
                assert st is not None
                recomputed.append(name)
                if st.order in kept_statements:  # `a = b = 1`: one statement for both names
                    continue
                kept_statements.add(st.order)
                items.append(
                    Item(
                        "stmt",
                        k.source,
                        float(st.order),
                        st.binds,
                        k.uses,
                        k.uses_now,
                        st.cell,
                        name,
                    )
                )
                _follow(k.uses, name, queue, needed_by)
            elif k.kind == "state":
                state[name] = namespace[name]
                st = slicer.last.get(name)
                try:
                    saved[name] = plan_value(
                        name, namespace[name], st.node if st else None, namespace
                    )
                except StateError as e:
                    raise SliceError(str(e)) from None
                if saved[name].format != "pickle":
                    probed.add(name)  # saved in a format of its own: nothing to pickle
                for line in saved[name].imports:
                    imports.append((_import_order(slicer, name), line))
                _follow(saved[name].uses, name, queue, needed_by)
                needed_by.setdefault(name, who)
            elif k.kind == "ipython":
                raise SliceError(
                    f"{who} uses `{name}`, which exists only inside IPython: take it out of the code "
                    "the commands run (print instead of display), then export."
                )
            elif k.kind == "missing":
                warnings.append(
                    f"{who} reads `{name}`, which the kernel does not define: the bundle will fail "
                    "where it is read."
                )
        for n in [n for n in state if n not in checked]:
            checked.add(n)
            found_reduction = _reduction(n, state[n], items)
            if found_reduction is None:
                continue
            reduced[n] = found_reduction
            del state[n], saved[n]
            probed.discard(n)
            st = slicer.last.get(n)
            attrs, source, _words = found_reduction
            items.append(
                Item(
                    "stmt",
                    source,
                    float(st.order) + 0.25 if st else -0.5,
                    frozenset({n}),
                    frozenset(),
                    frozenset(),
                    st.cell if st else None,
                    n,
                )
            )
            imports.extend((-1.0, line) for line in _reduction_imports(source))
        new_state = {n: v for n, v in state.items() if n not in probed}
        if not new_state:
            break
        try:
            found = probe(new_state)
        except StateError as e:
            raise SliceError(str(e)) from None
        probed.update(new_state)
        if found_probe is None:
            found_probe = found
        else:
            found_probe.globals |= found.globals
            found_probe.uses_torch |= found.uses_torch
        for module, qualname in found.globals:
            if module == "__main__":
                top = qualname.split(".")[0]
                needed_by.setdefault(top, f"the saved value of {', '.join(new_state)}")
                queue.append(top)

    for n, (attrs, _source, _words) in reduced.items():
        if _attributes_read(n, [i for i in items if i.label != n]) != attrs:
            raise _Whole(n)  # something found later reads more of it: ship it whole

    if state:
        state_globals = {
            q.split(".")[0]
            for m, q in (found_probe.globals if found_probe else ())
            if m == "__main__"
        }
        for one in saved.values():
            state_globals |= one.uses
        items.append(
            Item(
                "state",
                "",
                max(float(slicer.last[n].order) if n in slicer.last else -1.0 for n in state) + 0.5,
                frozenset(state),
                frozenset(state_globals),
                frozenset(state_globals),
                None,
                ", ".join(state),
            )
        )

    imports.sort(key=lambda pair: pair[0])
    import_lines = _merge_imports([line for _, line in imports])
    ordered = _topological(items)

    modules = _modules_of(import_lines, ordered, found_probe)
    for one in saved.values():
        for module in one.modules:
            modules.setdefault(module, f"the saved value of {one.name}")
    for module, text in modules.items():
        if module in reqs.NOTEBOOK_ONLY:
            raise SliceError(
                f"The exported code needs {module} (`{text}`), which exists only around a notebook: "
                "take that use out of the code the commands run, then export."
            )
    local_modules = _local_modules(modules, workdir, warnings)

    position = {item.label: item.order for item in items}
    defined.sort(key=lambda n: position.get(n, 0.0))
    recomputed.sort(key=lambda n: position.get(n, 0.0))
    return Plan(
        items=ordered,
        imports=import_lines,
        state=state,
        probe=found_probe,
        modules=modules,
        local_modules=local_modules,
        commands=list(registry.commands),
        has_setup=registry.setup_fn is not None,
        defined=defined,
        recomputed=recomputed,
        cells=sorted({i.cell for i in ordered if i.cell is not None}),
        warnings=warnings,
        saved=saved,
        reduced={n: words for n, (_a, _s, words) in reduced.items()},
        training=_training(statements, namespace, state),
    )


#: Calls that fit a model on data, or split data to fit one on: what they are given is training data.
_FIT_CALLS = {
    "fit",
    "fit_transform",
    "partial_fit",
    "fit_predict",
    "train",
    "train_test_split",
    "Dataset",
    "DMatrix",
    "Pool",
    "cross_val_score",
    "cross_validate",
    "TensorDataset",
    "DataLoader",
}


def _training(statements: list, namespace: dict, state: dict) -> dict:
    """Saved name -> ``"fit in In [4]"`` where the notebook passed the value to a fitting call."""
    found: dict = {}
    wanted = {id(v): n for n, v in state.items() if is_data(v)}
    if not wanted:
        return found
    for st in statements:
        for node in ast.walk(st.node):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            word = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if word not in _FIT_CALLS:
                continue
            for arg in list(node.args) + [k.value for k in node.keywords]:
                if isinstance(arg, ast.Name) and id(namespace.get(arg.id, _MISSING)) in wanted:
                    name = wanted[id(namespace[arg.id])]
                    found.setdefault(name, f"{word} in In [{st.cell}]")
    return found


def is_data(value: Any) -> bool:
    """A table, array or tensor of numbers: what a notebook trains on."""
    return (
        _of(value, "pandas", ("DataFrame", "Series"))
        or _of(value, "numpy", ("ndarray",))
        or (_of(value, "torch", ("Tensor",)) and not _of(value, "torch.nn", ("Parameter",)))
    )


def _of(value: Any, module: str, names: tuple) -> bool:
    mod = sys.modules.get(module)
    if mod is None:
        return False
    kinds = tuple(k for k in (getattr(mod, n, None) for n in names) if isinstance(k, type))
    return bool(kinds) and isinstance(value, kinds)


def _attributes_read(name: str, items: list) -> Optional[frozenset]:
    """The attributes the items read of module-level ``name``, when they read it only as ``name.attr``;
    None when one reads it otherwise (passes it, indexes it, sets an attribute)."""
    attrs: set = set()
    for item in items:
        if name not in item.uses:
            continue
        try:
            tree = ast.parse(item.source)
        except SyntaxError:
            return None
        parents: dict = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == name:
                parent = parents.get(id(node))
                if not (
                    isinstance(node.ctx, ast.Load)
                    and isinstance(parent, ast.Attribute)
                    and parent.value is node
                    and isinstance(parent.ctx, ast.Load)
                ):
                    return None
                attrs.add(parent.attr)
            elif isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
                return None
    return frozenset(attrs) if attrs else None


def _attribute_literal(value: Any) -> Optional[str]:
    """Source that evaluates to ``value`` without anything saved: a plain literal, a pandas Index of
    plain labels (the column names), a numpy dtype."""
    if _plain(value):
        text = repr(value)
        try:  # the very value, type included (torch.Size is a tuple, but not written as one)
            back = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        if type(back) is not type(value) or back != value or len(text) > _MAX_LITERAL:
            return None
        return text
    if _of(value, "pandas", ("Index",)) and type(value).__name__ == "Index":
        labels = list(value)
        if not all(type(v) in (str, int, float, bool) for v in labels):
            return None
        text = (
            f"pandas.Index({labels!r}, dtype={str(value.dtype)!r}"
            + (f", name={value.name!r}" if value.name is not None else "")
            + ")"
        )
        if value.name is not None and not _plain(value.name):
            return None
        return text if len(text) <= _MAX_LITERAL else None
    if _of(value, "numpy", ("dtype",)) and not value.fields:
        return f"numpy.dtype({value.str!r})"
    return None


def _reduction(name: str, value: Any, items: list) -> Optional[tuple]:
    """``(attributes, source, words)`` when the code reads only attributes of the data value ``name``
    that can be written as literals (``X.columns``): the bundle binds ``name`` to just those."""
    if not is_data(value):
        return None
    attrs = _attributes_read(name, items)
    if not attrs:
        return None
    parts = []
    for attr in sorted(attrs):
        try:
            text = _attribute_literal(getattr(value, attr))
        except Exception:
            return None
        if text is None:
            return None
        parts.append(f"{attr}={text}")
    shape = "x".join(str(n) for n in getattr(value, "shape", ())) or "?"
    what = f"a {shape} {type(value).__name__}"
    read = ", ".join(f"{name}.{a}" for a in sorted(attrs))
    source = (
        f"# Of {name} ({what} in the kernel) the code reads only {read}: that ships, the data does not.\n"
        f"{name} = types.SimpleNamespace({', '.join(parts)})\n"
    )
    return attrs, source, f"{read} of {what}"


def _reduction_imports(source: str) -> list:
    lines = ["import types"]
    if "pandas.Index(" in source:
        lines.append("import pandas")
    if "numpy.dtype(" in source:
        lines.append("import numpy")
    return lines


def _modules_of(import_lines: list, items: list, found: Optional[Probe]) -> dict:
    """Every top-level module the bundle imports -> the first line (or "the saved state") needing it."""
    modules: dict = {}
    for line in import_lines:
        for module, text in _modules_in(line):
            modules.setdefault(module, text)
    for item in items:
        if item.kind in ("def", "root", "stmt"):
            for module, text in _modules_in(item.source):
                modules.setdefault(module, text)
    if found is not None:
        for module, _q in sorted(found.globals):
            modules.setdefault(module.split(".")[0], "the saved state")
        if found.uses_torch:
            modules.setdefault("torch", "the saved state")
    modules.pop("__main__", None)
    return modules


def _import_order(slicer: _Slicer, name: str) -> float:
    st = slicer.last.get(name)
    return float(st.order) if st is not None else -1.0


def _follow(uses: frozenset, owner: str, queue: deque, needed_by: dict) -> None:
    for u in uses:
        if u != owner:
            needed_by.setdefault(u, needed_by.get(owner, f"`{owner}`"))
            queue.append(u)


def _local_modules(modules: dict, workdir: Path, warnings: list) -> dict:
    """The user's own modules next to the notebook, and the ones they import in turn."""
    found: dict = {}
    pending = list(modules)
    while pending:
        module = pending.pop()
        if module in found or module == "modelcloud" or reqs.is_stdlib(module):
            continue
        path = reqs.local_module(module, workdir)
        if path is None:
            continue
        found[module] = path
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for f in files:
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for inner, line in _modules_in(text):
                if inner not in modules:
                    modules[inner] = line
                    pending.append(inner)
    return found


def _effective_now(item: Item, binder: dict) -> set:
    """The names an item reads while it runs, including through the functions it calls then."""
    result = set(item.uses_now)
    stack = [u for u in item.uses_now if u in binder and binder[u].kind in ("def", "root")]
    seen: set = set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for u in binder[name].uses:
            result.add(u)
            if u in binder and binder[u].kind in ("def", "root"):
                stack.append(u)
    return result


def _topological(items: list) -> list:
    """Execution order, except where an item must come after one that binds what it reads at once."""
    binder: dict = {}
    for item in sorted(items, key=lambda i: i.order):
        for name in item.binds:
            binder[name] = item
    index = {id(item): n for n, item in enumerate(items)}
    deps: dict = {n: set() for n in range(len(items))}
    for n, item in enumerate(items):
        for name in _effective_now(item, binder):
            other = binder.get(name)
            if other is not None and other is not item:
                deps[n].add(index[id(other)])
    users: dict = defaultdict(set)
    for n, ds in deps.items():
        for d in ds:
            users[d].add(n)
    waiting = {n: len(ds) for n, ds in deps.items()}
    heap = [(items[n].order, n) for n, count in waiting.items() if count == 0]
    heapq.heapify(heap)
    out: list = []
    done: set = set()
    while heap:
        _order, n = heapq.heappop(heap)
        out.append(items[n])
        done.add(n)
        for u in users[n]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(heap, (items[u].order, u))
    if len(out) < len(items):  # a cycle: the rest in execution order
        out.extend(
            sorted((items[n] for n in range(len(items)) if n not in done), key=lambda i: i.order)
        )
    return out
