"""The ``--inputs`` / ``--outputs`` / ``--options`` specs of the magics: ``name=TYPE, name=TYPE(...)``.

Parsed with :mod:`ast`, never ``eval``: a TYPE is a data type name or a call of one whose arguments are
literals (numbers, strings, lists, dicts, ``None``/``True``/``False``) or other data types
(``array(item_type=text(max_length=5))``). Anything else is an error that points at the offending part.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from modelcloud import data_types


class SpecError(ValueError):
    """A spec that cannot be used; the message quotes the offending part."""


def _segment(spec: str, node: ast.AST) -> str:
    text = ast.get_source_segment(spec, node)
    return text if text is not None else spec


def _type_from(spec: str, node: ast.AST, where: str) -> data_types.BaseType:
    types = ", ".join(sorted(data_types.TYPES))
    if isinstance(node, ast.Name):
        cls = data_types.TYPES.get(node.id)
        if cls is None:
            raise SpecError(f"{where}: unknown type {node.id!r}; the types are {types}.")
        return _construct(cls, [], {}, spec, node, where)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        cls = data_types.TYPES.get(node.func.id)
        if cls is None:
            raise SpecError(
                f"{where}: unknown type {node.func.id!r} in {_segment(spec, node)!r}; the types are {types}."
            )
        args = [_value(spec, a, where) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise SpecError(f"{where}: '**' is not allowed in {_segment(spec, node)!r}.")
            kwargs[kw.arg] = _value(spec, kw.value, where)
        return _construct(cls, args, kwargs, spec, node, where)
    raise SpecError(
        f"{where}: {_segment(spec, node)!r} is not a data type; write a type name such as text "
        "or a call such as number(min=0, max=1)."
    )


def _construct(
    cls: Any, args: list, kwargs: dict, spec: str, node: ast.AST, where: str
) -> data_types.BaseType:
    # The arguments __init__ declares (a type's __new__ may take *args/**kwargs, as file's does to
    # turn Runway's file(is_directory=True) into a directory).
    params = {
        name: p
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    for name in kwargs:
        if name not in params:
            raise SpecError(
                f"{where}: {cls.type_name} has no argument {name!r} (in {_segment(spec, node)!r}); "
                f"its arguments are {', '.join(params)}."
            )
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: {_segment(spec, node)!r}: {e}") from None


def _value(spec: str, node: ast.AST, where: str) -> Any:
    """A literal, or a nested data type."""
    if isinstance(node, (ast.Call, ast.Name)) and (
        (isinstance(node, ast.Name) and node.id in data_types.TYPES)
        or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name))
    ):
        return _type_from(spec, node, where)
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_value(spec, e, where) for e in node.elts]
        return values if isinstance(node, ast.List) else tuple(values)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise SpecError(
            f"{where}: {_segment(spec, node)!r} is not a literal value (numbers, strings, lists, dicts, "
            "None, True, False)."
        ) from None


def parse_spec(spec: str, where: str = "spec") -> dict:
    """``"photo=image(width=224), k=number(default=3)"`` -> ``{"photo": image(...), "k": number(...)}``."""
    spec = (spec or "").strip()
    if not spec:
        return {}
    source = f"_({spec})"
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as e:
        col = max((e.offset or 1) - 3, 0)
        raise SpecError(
            f"{where}: cannot parse {spec!r} near {spec[col : col + 20]!r}: write name=TYPE pairs separated "
            'by commas, like "photo=image(width=224), label=text".'
        ) from None
    call = tree.body
    assert isinstance(call, ast.Call)
    if call.args:
        bad = ast.get_source_segment(source, call.args[0])
        raise SpecError(f'{where}: {bad!r} has no name: write name=TYPE, like "label=text".')
    out: dict = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise SpecError(f"{where}: '**' is not allowed; write name=TYPE pairs.")
        if kw.arg in out:
            raise SpecError(f"{where}: {kw.arg!r} is given twice.")
        out[kw.arg] = _type_from(source, kw.value, f"{where} {kw.arg!r}")
    return out


# --------------------------------------------------------------------------------------------------
# The magics' lines: declared once here, read by the magics (magics.py) and again by the export,
# which turns a recorded line into the decorator it stands for (export/slicing.py).


def unquote(text: Any) -> Any:
    """IPython's argument splitting keeps quotes: "a=text" arrives with them."""
    if isinstance(text, str) and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def setup_arguments(fn: Any) -> Any:
    """The arguments of ``%%algolink_setup``, as IPython's ``magic_arguments`` declare them."""
    return magic_arguments()(
        argument(
            "--options",
            default="",
            help="setup options as name=TYPE pairs, e.g. \"checkpoint=file(extension='.pkl')\"",
        )(fn)
    )


def command_arguments(fn: Any) -> Any:
    """The arguments of ``%%algolink_command``."""
    fn = argument(
        "--max-latency",
        type=float,
        default=None,
        metavar="MS",
        help="with --batch: the longest a request waits for its batch, in milliseconds (default 10)",
    )(fn)
    fn = argument(
        "--batch",
        type=int,
        default=None,
        metavar="N",
        help="batch requests that arrive together, up to N per call: the function gets a list of "
        "inputs dicts and returns one outputs dict per input",
    )(fn)
    fn = argument("--description", default=None, help="what the command does")(fn)
    fn = argument("--outputs", default="", help='outputs as name=TYPE pairs, e.g. "label=text"')(fn)
    fn = argument(
        "--inputs", default="", help='inputs as name=TYPE pairs, e.g. "photo=image(width=224)"'
    )(fn)
    fn = argument("name", help="the command's name: its URL path")(fn)
    return magic_arguments()(fn)


@setup_arguments
def _setup_line(line: str, cell: str) -> None:
    """%%algolink_setup [--options SPEC]"""


@command_arguments
def _command_line(line: str, cell: str) -> None:
    """%%algolink_command NAME [--inputs SPEC] [--outputs SPEC] [--description TEXT] [--batch N
    [--max-latency MS]]"""


def parse_setup_line(line: str) -> Any:
    """A ``%%algolink_setup`` line's arguments (``options``, still quoted as typed)."""
    return parse_argstring(_setup_line, line)


def parse_command_line(line: str) -> Any:
    """A ``%%algolink_command`` line's arguments (``name``, ``inputs``, ``outputs``,
    ``description``, still quoted as typed; ``batch`` and ``max_latency`` as numbers)."""
    return parse_argstring(_command_line, line)


def batch_settings(args: Any, where: str) -> Any:
    """The ``batch=`` of a ``%%algolink_command`` line's ``--batch`` / ``--max-latency`` (None when not
    batched); raises SpecError on settings that cannot be used."""
    if args.batch is None:
        if args.max_latency is not None:
            raise SpecError(f"{where}: --max-latency goes with --batch N (the largest batch).")
        return None
    from modelcloud.batching import batching

    try:
        if args.max_latency is None:
            return batching(max_size=args.batch)
        return batching(max_size=args.batch, max_latency_ms=args.max_latency)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: {str(e).replace('batching: ', '')}.") from None
