"""Values the notebook computed (a trained model, data), saved from the kernel for the bundle to load.

Each value is saved in the safest format that holds it, one file per value under ``models/``:

============================  ===============================  ===========================================
value                         file                             loaded by cloud_model.py with
============================  ===============================  ===========================================
a PyTorch module (nn.Module)  ``<name>.pt``: its state_dict    the constructor call the notebook used (or
                                                               ``Cls()``), then ``load_state_dict(
                                                               torch.load(..., weights_only=True))``
tensors (alone, or in dicts,  ``<name>.pt``                    ``torch.load(..., weights_only=True)``
lists of tensors and numbers)
a numpy array or scalar       ``<name>.npy``                   ``numpy.load(..., allow_pickle=False)``
a LightGBM Booster            ``<name>.lgb.txt``: LightGBM's   ``lightgbm.Booster(model_file=...)``
                              model text
an XGBoost Booster or model   ``<name>.xgb.json``: XGBoost's   ``Cls()`` then ``.load_model(...)``
(XGBClassifier...)            JSON model
a CatBoost model              ``<name>.cbm``                   ``Cls()`` then ``.load_model(...,
                                                               format="cbm")``
a scikit-learn estimator      ``<name>.skops`` (skops.io)      ``skops.io.load(..., trusted=[...])``: only
(LightGBM's LGBMClassifier                                     the types the export saw are trusted
too)
numbers, strings, lists and   ``<name>.json``                  ``json.load``
dicts of them
anything else (an instance    ``notebook_state.pkl`` (pickle)  ``pickle.load``: this EXECUTES CODE named in
of the notebook's own class,                                   the file, so only run a bundle you trust;
a function...)                                                 the export says which values took this path
============================  ===============================  ===========================================

None of the formats above pickle runs code when loaded. A scikit-learn estimator falls back to pickle when
skops is not installed in the kernel (``pip install skops`` makes the export use it) or when the estimator
holds a class defined in the notebook. Values saved with pickle share objects among themselves as they did
in the kernel; values saved in their own files do not share objects with each other.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import math
import pickle
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

PROTOCOL = 4
#: Every format, in the order cloud_model.py defines their loaders.
FORMATS = (
    "torch_module",
    "torch",
    "npy",
    "lightgbm",
    "xgboost",
    "catboost",
    "skops",
    "json",
    "pickle",
)
PICKLE_FILE = "notebook_state.pkl"
#: Calls chained onto a module's constructor that do not change what it is built from.
_MODULE_CHAIN = {"to", "eval", "train", "cuda", "cpu", "float", "double", "half", "requires_grad_"}

FORMATS_NOTE = """\
Saved state (models/): a PyTorch module as its state_dict (.pt, loaded with weights_only=True into the
module built by the constructor call shown in cloud_model.py); tensors as .pt (weights_only=True); numpy
arrays as .npy (allow_pickle=False); a LightGBM Booster as LightGBM's model text (.lgb.txt); XGBoost
models as XGBoost's JSON (.xgb.json); CatBoost models as .cbm; scikit-learn estimators as .skops
(skops.io, only the listed types trusted); plain numbers, strings, lists and dicts as .json. Anything else
goes to notebook_state.pkl, loaded with pickle, which executes code from the file: only run a bundle you
trust."""


class StateError(Exception):
    """A value cannot be saved; the message names it and says what to do."""


@dataclass
class Probe:
    """What pickling the values found: classes and functions by (module, qualname), and torch."""

    globals: set = field(default_factory=set)
    uses_torch: bool = False


@dataclass
class Saved:
    """How one value goes into the bundle: its format, its file under models/, and the expression
    cloud_model.py evaluates to get it back."""

    name: str
    format: (
        str  # "torch_module", "torch", "npy", "lightgbm", "xgboost", "catboost", "skops", "json",
    )
    # "pickle"
    file: str
    expr: str
    uses: frozenset = frozenset()  # module-level names ``expr`` reads (the module's class)
    modules: tuple = ()  # top-level modules loading it needs
    imports: tuple = ()  # import lines the expression needs
    on_gpu: bool = False
    trusted: tuple = ()  # skops: the types the bundle trusts when loading
    note: str = ""  # a comment cloud_model.py writes above the line (where a constant came from)


class _ProbePickler(pickle.Pickler):
    def __init__(self, file: Any, probe: Probe):
        super().__init__(file, protocol=PROTOCOL)
        self.probe = probe
        torch = sys.modules.get("torch")
        self._tensor_types: tuple = ()
        if torch is not None:
            kinds = [torch.Tensor, getattr(torch, "UntypedStorage", None)]
            kinds.append(getattr(getattr(torch, "storage", None), "TypedStorage", None))
            self._tensor_types = tuple(k for k in kinds if isinstance(k, type))

    def persistent_id(self, obj: Any) -> Any:
        if self._tensor_types and isinstance(obj, self._tensor_types):
            self.probe.uses_torch = True
            return "tensor"  # torch.save writes the data; the probe only needs to know it is there
        return None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            module = getattr(obj, "__module__", None)
            name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
            if module and name:
                self.probe.globals.add((module, name))
        return NotImplemented


def probe(values: dict) -> Probe:
    """Pickle ``values`` once (tensors stood in for) to learn what loading them will need."""
    result = Probe()
    try:
        _ProbePickler(_Discard(), result).dump(values)
    except Exception as error:
        for name, value in values.items():  # which one it was
            try:
                _ProbePickler(_Discard(), Probe()).dump(value)
            except Exception as e:
                raise StateError(_why_not(name, value, e)) from None
        raise StateError(_why_not(", ".join(values), values, error)) from None
    return result


class _Discard(io.RawIOBase):
    """Where the probe's pickle goes: it only needs what pickling meets, not the bytes."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def _why_not(name: str, value: Any, error: Exception) -> str:
    kind = type(value).__name__
    text = str(error)
    if "not the same object as __main__." in text:
        cls = text.split("not the same object as __main__.", 1)[1].split()[0].rstrip(":")
        return _older(name, cls)
    return (
        f"`{name}` (a {kind}) cannot be saved for the bundle ({type(error).__name__}: {text}): build it "
        "inside the setup function, or from values that can be pickled."
    )


def _older(name: str, cls: str) -> str:
    return (
        f"`{name}` was made by an older definition of `{cls}` (its cell ran again since): run the "
        f"cell that builds `{name}` again, then export."
    )


# -- choosing the format -------------------------------------------------------------------------------------
def _json_exact(value: Any, depth: int = 0) -> bool:
    """JSON gives this very value back (no tuples, no int keys, no NaN)."""
    if depth > 50:
        return False
    if value is None or isinstance(value, (bool, str)):
        return True
    if type(value) is int:
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is list:
        return all(_json_exact(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_exact(v, depth + 1) for k, v in value.items())
    return False


def _is_instance(value: Any, module: str, qualname: str) -> bool:
    mod = sys.modules.get(module)
    if mod is None:
        return False
    cls: Any = mod
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
    return isinstance(cls, type) and isinstance(value, cls)


def _on_gpu(value: Any) -> bool:
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        if isinstance(value, torch.nn.Module):
            return any(t.is_cuda for t in list(value.parameters()) + list(value.buffers()))
        if isinstance(value, torch.Tensor):
            return bool(value.is_cuda)
        if isinstance(value, dict):
            return any(_on_gpu(v) for v in list(value.values())[:100])
        if isinstance(value, (list, tuple)):
            return any(_on_gpu(v) for v in value[:100])
    except Exception:
        return False
    return False


def on_gpu(value: Any) -> bool:
    """A torch module or tensor (or a dict or list holding one) that sits on a GPU."""
    return _on_gpu(value)


def plan_value(name: str, value: Any, node: Optional[ast.stmt], namespace: dict) -> Saved:
    """How ``name`` is saved; StateError when it cannot be."""
    if _is_instance(value, "torch.nn", "Module"):
        return _torch_module(name, value, node, namespace)
    if _is_instance(value, "numpy", "ndarray") or _is_instance(value, "numpy", "generic"):
        import numpy as np

        array = np.asarray(value)
        exact = type(value) is np.ndarray or isinstance(value, np.generic)
        if exact and not array.dtype.hasobject:
            scalar = "[()]" if isinstance(value, np.generic) else ""
            return Saved(
                name,
                "npy",
                f"{name}.npy",
                f'_load_array("{name}.npy"){scalar}',
                modules=("numpy",),
            )
    native = _native(name, value)
    if native is not None:
        return native
    if _is_instance(value, "sklearn.base", "BaseEstimator"):
        saved = _skops(name, value)
        if saved is not None:
            return saved
    if _json_exact(value):
        try:
            if len(json.dumps(value)) <= 50_000_000:
                return Saved(name, "json", f"{name}.json", f'_load_json("{name}.json")')
        except (TypeError, ValueError):
            pass
    found = Probe()
    try:
        _ProbePickler(_Discard(), found).dump(value)
    except Exception as e:
        raise StateError(_why_not(name, value, e)) from None
    if found.uses_torch and _torch_weights_only(value):
        return Saved(
            name,
            "torch",
            f"{name}.pt",
            f'_load_tensors("{name}.pt")',
            modules=("torch",),
            on_gpu=_on_gpu(value),
        )
    return Saved(name, "pickle", PICKLE_FILE, f'_pickled["{name}"]', on_gpu=_on_gpu(value))


def _native(name: str, value: Any) -> Optional[Saved]:
    """A gradient-boosting model in its library's own file format, which loads without running code."""
    if _is_instance(value, "lightgbm", "Booster"):
        return Saved(
            name,
            "lightgbm",
            f"{name}.lgb.txt",
            f'_load_lightgbm("{name}.lgb.txt")',
            modules=("lightgbm",),
        )
    for module, base, fmt, ext in (
        ("xgboost", "Booster", "xgboost", "xgb.json"),
        ("xgboost", "XGBModel", "xgboost", "xgb.json"),
        ("catboost", "CatBoost", "catboost", "cbm"),
    ):
        if not _is_instance(value, module, base):
            continue
        cls = type(value)
        where = cls.__module__
        if where == "__main__" or "<" in cls.__qualname__:
            return None  # the notebook's own subclass: pickle finds it by name
        public = sys.modules.get(module)
        path = module if getattr(public, cls.__name__, None) is cls else where
        sklearn_api = _is_instance(value, "sklearn.base", "BaseEstimator")  # XGBClassifier needs it
        return Saved(
            name,
            fmt,
            f"{name}.{ext}",
            f'_load_{fmt}({path}.{cls.__qualname__}, "{name}.{ext}")',
            modules=(module,) + (("sklearn",) if sklearn_api else ()),
            imports=(f"import {path}",),
        )
    return None


def _torch_weights_only(value: Any) -> bool:
    """torch can load this back with ``weights_only=True`` (tensors, and containers of them)."""
    import torch

    buffer = io.BytesIO()
    try:
        torch.save(value, buffer)
        buffer.seek(0)
        torch.load(buffer, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return True


def _skops(name: str, value: Any) -> Optional[Saved]:
    try:
        import skops.io as sio
    except ImportError:
        return None
    try:
        data = sio.dumps(value)
        untrusted = list(sio.get_untrusted_types(data=data))
    except Exception:
        return None
    if any(t.startswith("__main__.") for t in untrusted):
        return None  # the notebook's own class: pickle, which finds it by name in cloud_model.py
    modules = {"skops", "sklearn", type(value).__module__.split(".")[0]}
    modules |= {t.split(".")[0] for t in untrusted}
    trusted = tuple(sorted(untrusted))
    return Saved(
        name,
        "skops",
        f"{name}.skops",
        f'_load_skops("{name}.skops", trusted={list(trusted)!r})',
        modules=tuple(sorted(modules)),
        trusted=trusted,
    )


def _torch_module(name: str, value: Any, node: Optional[ast.stmt], namespace: dict) -> Saved:
    cls = type(value)
    where = cls.__module__
    if where == "__main__" and namespace.get(cls.__name__) is not cls:
        raise StateError(_older(name, cls.__name__))
    expr, chain, uses, evaluated = _constructor_from(name, cls, node, namespace)
    imports: tuple = ()
    if expr is None:
        if not _no_required_arguments(cls):
            built = ast.unparse(node.value) if isinstance(node, (ast.Assign, ast.AnnAssign)) else ""
            raise StateError(
                f"`{name}` (a PyTorch {cls.__name__}) cannot be rebuilt in the bundle: "
                f"{cls.__name__}() needs arguments, and "
                + (f"`{built}` is not" if built else "what built it is not")
                + f" a plain call of {cls.__name__} with arguments that are constants or evaluate to "
                "them in the kernel (numbers, strings, tuples). Build it in a statement of its own, "
                f"such as `{name} = {cls.__name__}(64, 10)`, or inside the setup function."
            )
        if where == "__main__":
            expr, uses = f"{cls.__name__}()", frozenset({cls.__name__})
        else:
            expr, uses = f"{where}.{cls.__qualname__}()", frozenset()
            imports = (f"import {where}",)
    on = _on_gpu(value)
    moves = any(call in chain for call in (".to(", ".cuda(", ".cpu("))
    expr = (
        f'_load_module({expr}, "{name}.pt", training={bool(value.training)}'
        + (", on_gpu=True" if on and not moves else "")
        + ")"
        + chain  # replayed as the notebook wrote it: `.to(device)` puts it where the code expects
    )
    return Saved(
        name,
        "torch_module",
        f"{name}.pt",
        expr,
        uses=uses,
        modules=("torch",) + ((where.split(".")[0],) if where != "__main__" else ()),
        imports=imports,
        on_gpu=on,
        note=(
            ", ".join(f"{value} = {source}" for source, value in evaluated)
            + ": evaluated in the notebook's kernel"
            if evaluated
            else ""
        ),
    )


#: A constant an expression may evaluate to, at most this deep (tuples and lists of constants).
_CONSTANT_DEPTH = 3
#: What an argument evaluated in the kernel must not contain: it would bind a name, or not be one value.
_NOT_EVALUATED = (ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await, ast.Lambda)
_NOT_CONSTANT = object()


def _as_constant(value: Any, depth: int = 0) -> Any:
    """``value`` as a plain constant (an int for a numpy integer, a tuple for a torch.Size), or
    ``_NOT_CONSTANT``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else _NOT_CONSTANT
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.integer, numpy.floating, numpy.bool_)):
        return _as_constant(value.item(), depth)
    if isinstance(value, (tuple, list)) and depth < _CONSTANT_DEPTH and len(value) <= 100:
        items = [_as_constant(v, depth + 1) for v in value]
        if any(v is _NOT_CONSTANT for v in items):
            return _NOT_CONSTANT
        return list(items) if type(value) is list else tuple(items)
    return _NOT_CONSTANT


def _evaluated(node: ast.expr, namespace: dict) -> Optional[str]:
    """Source for the constant that ``node`` (``W.size(0)``, ``len(vocab)``, ``cfg["hidden"]``) evaluates
    to in the kernel's namespace, or None."""
    if not namespace or any(isinstance(n, _NOT_EVALUATED) for n in ast.walk(node)):
        return None
    try:
        code = compile(ast.Expression(node), "<export>", "eval")
        value = eval(code, dict(namespace))  # a copy: nothing it does rebinds the kernel's names
    except Exception:
        return None
    value = _as_constant(value)
    if value is _NOT_CONSTANT:
        return None
    text = repr(value)
    try:
        if ast.literal_eval(text) != value:
            return None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return text


def _constant(node: ast.expr, namespace: dict) -> Optional[str]:
    """Source for a constant argument: a literal, or a name bound to a plain value (inlined)."""
    try:
        value = ast.literal_eval(node)
        return repr(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, ast.Name) and node.id in namespace:
        value = namespace[node.id]
        if value is None or isinstance(value, (bool, int, float, str)):
            return repr(value)
        if isinstance(value, tuple) and all(isinstance(v, (bool, int, float, str)) for v in value):
            return repr(value)
    return None


def _dotted(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) or (isinstance(node, ast.Attribute) and _dotted(node.value))


def _roots(node: ast.expr) -> set:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _constructor_from(name: str, cls: type, node: Optional[ast.stmt], namespace: dict) -> tuple:
    """``(constructor, chain, names they read, evaluated)`` when ``node`` is ``name = Cls(args)`` whose
    arguments are constants, or expressions the kernel evaluates to constants (``W.size(0)``: written
    as the value, ``evaluated`` lists ``(expression, value)`` for each), optionally followed by calls
    such as ``.to(device)`` or ``.eval()`` (``chain``: their source, replayed after the weights are
    loaded); ``(None, "", (), ())`` otherwise."""
    nothing: tuple = (None, "", frozenset(), ())
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            return nothing
        target, call = node.targets[0].id, node.value
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
        target, call = node.target.id, node.value
    else:
        return nothing
    if target != name:
        return nothing
    chain: list = []
    uses: set = set()
    while (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in _MODULE_CHAIN
        and isinstance(call.func.value, ast.Call)
    ):
        args = list(call.args) + [kw.value for kw in call.keywords]
        if any(kw.arg is None for kw in call.keywords) or any(
            isinstance(a, ast.Starred) or (_constant(a, {}) is None and not _dotted(a))
            for a in args
        ):
            return nothing
        for a in args:
            uses |= _roots(a)
        rest = ast.Call(
            func=ast.Name(id="_", ctx=ast.Load()), args=call.args, keywords=call.keywords
        )
        chain.insert(0, f".{call.func.attr}{ast.unparse(rest)[1:]}")
        call = call.func.value
    if not isinstance(call, ast.Call) or not _dotted(call.func):
        return nothing
    try:  # only names and attributes: evaluating it reads, it runs nothing
        func = eval(compile(ast.Expression(call.func), "<export>", "eval"), dict(namespace))
    except Exception:
        return nothing
    if func is not cls:
        return nothing
    args = []
    evaluated: list = []

    def argument(node: ast.expr) -> Optional[str]:
        text = _constant(node, namespace)
        if text is None:
            text = _evaluated(node, namespace)
            if text is not None:
                evaluated.append((ast.unparse(node), text))
        return text

    for arg in call.args:
        if isinstance(arg, ast.Starred):
            return nothing
        text = argument(arg)
        if text is None:
            return nothing
        args.append(text)
    for kw in call.keywords:
        if kw.arg is None:
            return nothing
        text = argument(kw.value)
        if text is None:
            return nothing
        args.append(f"{kw.arg}={text}")
    uses |= _roots(call.func)
    constructor = f"{ast.unparse(call.func)}({', '.join(args)})"
    return constructor, "".join(chain), frozenset(uses), tuple(evaluated)


def _no_required_arguments(cls: type) -> bool:
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return False
    params = list(sig.parameters.values())[1:]  # self
    return all(
        p.default is not inspect.Parameter.empty
        or p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for p in params
    )


# -- writing --------------------------------------------------------------------------------------------------
def save(values: dict, plans: dict, folder: Path, torch_pickle: bool = False) -> list:
    """Write every value where the bundle loads it from; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list = []
    pickled: dict = {}
    for name, saved in plans.items():
        value = values[name]
        path = folder / saved.file
        if saved.format == "torch_module":
            import torch

            torch.save(value.state_dict(), path)
        elif saved.format == "torch":
            import torch

            torch.save(value, path)
        elif saved.format == "npy":
            import numpy as np

            np.save(path, np.asarray(value), allow_pickle=False)
        elif saved.format == "skops":
            import skops.io as sio

            sio.dump(value, path)
        elif saved.format in ("lightgbm", "xgboost"):
            value.save_model(str(path))
        elif saved.format == "catboost":
            value.save_model(str(path), format="cbm")
        elif saved.format == "json":
            path.write_text(json.dumps(value), encoding="utf-8")
        else:
            pickled[name] = value
            continue
        written.append(path)
    if pickled:
        path = folder / PICKLE_FILE
        if torch_pickle:  # tensors inside: torch.save keeps their storage and device
            import torch

            torch.save(pickled, path, pickle_protocol=PROTOCOL)
        else:
            with open(path, "wb") as f:
                pickle.dump(pickled, f, protocol=PROTOCOL)
        written.append(path)
    return written


_LOADERS = {
    "base": '''\
def _model_file(filename):
    """A file the export saved under models/, next to this file."""
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", filename)
''',
    "torch_module": '''\
def _load_module(module, filename, training, on_gpu=False):
    """The notebook's trained weights (a state_dict, loaded without running code) in a new module."""
    import torch

    module.load_state_dict(torch.load(_model_file(filename), map_location="cpu", weights_only=True))
    if on_gpu and torch.cuda.is_available():  # on the GPU, as it was in the notebook
        module = module.to("cuda")
    return module.train(training)
''',
    "torch": """\
def _load_tensors(filename):
    import torch

    where = None if torch.cuda.is_available() else "cpu"  # as saved; on the CPU without a GPU
    return torch.load(_model_file(filename), map_location=where, weights_only=True)
""",
    "npy": """\
def _load_array(filename):
    import numpy

    return numpy.load(_model_file(filename), allow_pickle=False)
""",
    "skops": """\
def _load_skops(filename, trusted):
    import skops.io

    return skops.io.load(_model_file(filename), trusted=trusted)
""",
    "lightgbm": """\
def _load_lightgbm(filename):
    import lightgbm

    return lightgbm.Booster(model_file=_model_file(filename))
""",
    "xgboost": """\
def _load_xgboost(cls, filename):
    model = cls()
    model.load_model(_model_file(filename))
    return model
""",
    "catboost": """\
def _load_catboost(cls, filename):
    model = cls()
    model.load_model(_model_file(filename), format="cbm")
    return model
""",
    "json": """\
def _load_json(filename):
    import json

    with open(_model_file(filename), encoding="utf-8") as f:
        return json.load(f)
""",
    "pickle": '''\
def _load_pickled(filename):
    """Values only pickle could save. pickle runs code named in the file: only load a bundle you trust."""
    import torch

    where = None if torch.cuda.is_available() else "cpu"
    return torch.load(_model_file(filename), map_location=where, weights_only=False)
''',
}

_PICKLE_PLAIN = '''\
def _load_pickled(filename):
    """Values only pickle could save. pickle runs code named in the file: only load a bundle you trust."""
    import pickle

    with open(_model_file(filename), "rb") as f:
        return pickle.load(f)
'''


def loader(plans: dict, torch_pickle: bool) -> str:
    """The helper functions cloud_model.py needs to load ``plans``: one per format used."""
    formats = {s.format for s in plans.values()}
    parts = [_LOADERS["base"]]
    for fmt in FORMATS:
        if fmt in formats:
            text = _LOADERS[fmt] if fmt != "pickle" or torch_pickle else _PICKLE_PLAIN
            parts.append(text)
    return "\n\n".join(parts)
