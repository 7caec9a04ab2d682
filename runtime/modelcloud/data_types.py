"""The data types a command's inputs and outputs, and a setup's options, are declared with.

Each type is one small class that knows four things:

- ``deserialize(value, ctx)``: check a value that arrived over the wire (JSON, or a multipart part) against
  every rule the type was declared with, and turn it into the Python object the model gets
  (``image`` -> ``PIL.Image``, ``vector`` -> ``numpy.ndarray``, ``file`` -> a local path, ...);
- ``serialize(value)``: turn what a command returned into JSON;
- ``to_dict()``: the type as it appears in the manifest (``GET /meta``);
- ``json_schema()``: the wire form as JSON Schema, for the OpenAPI document.

A value that breaks a rule raises :class:`ValidationError` with a fragment such as ``"must be at most 10,
got 42"``; the registry prefixes the input's name, so the client reads ``Input 'k' must be at most 10, got
42.``
"""

from __future__ import annotations

import base64
import binascii
import builtins
import inspect
import io
import json
import math
import mimetypes
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np
from PIL import Image, ImageOps

from .archives import zip_entry_count
from .errors import ValidationError

__all__ = [
    "any",
    "array",
    "boolean",
    "category",
    "directory",
    "file",
    "image",
    "image_bounding_box",
    "image_landmarks",
    "image_point",
    "number",
    "segmentation",
    "text",
    "vector",
    "BaseType",
    "MISSING",
    "DecodeContext",
    "UploadedFile",
    "from_spec",
]

#: Default largest image (in pixels) a request may carry; a decompression bomb is refused before it is decoded.
DEFAULT_MAX_PIXELS = 50_000_000

_MISSING: Any = object()

#: The largest magnitude a ``vector`` element may have: the model gets float32.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class UploadedFile:
    """A file part of a multipart request (or bytes handed over in-process)."""

    filename: str
    body: bytes
    content_type: str = ""
    #: False when the client gave no file name (a data URI, raw bytes): the name is then made up.
    named: bool = True


@dataclass
class DecodeContext:
    """What deserialization may do for one request or one setup.

    ``allow_paths``: a ``file``/``directory`` value may name a local path. True for setup options and
    in-process calls; False for command inputs over HTTP, where a client must send the content itself
    (a client naming server paths would read the server's files).
    """

    allow_paths: bool = False
    base_dir: Optional[str] = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    keep_files: bool = False
    _tempdirs: list = field(default_factory=list)

    def new_dir(self) -> str:
        path = tempfile.mkdtemp(prefix="modelcloud-")
        if not self.keep_files:
            self._tempdirs.append(path)
        return path

    def cleanup(self) -> None:
        for path in self._tempdirs:
            shutil.rmtree(path, ignore_errors=True)
        self._tempdirs.clear()


def _describe(value: Any) -> str:
    """A short description of a JSON value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int) and value.bit_length() > 64:
        return "a very large integer"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f"the text {shown!r}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, UploadedFile):
        return f"the file part {value.filename!r}"
    return f"a {type(value).__name__}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_finite(value: Any, what: str = "") -> float:
    if not _is_number(value):
        raise ValidationError(f"must be a number{what}, got {_describe(value)}")
    try:
        finite = math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        raise ValidationError(
            f"must be a number within float range{what}, got {_describe(value)}"
        ) from None
    if not finite:
        raise ValidationError(f"must be a finite number{what}, got {value!r}")
    return value


_DATA_URI = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),", re.IGNORECASE)


def decode_base64(value: Any) -> tuple:
    """``(bytes, mime type or '')`` from a data URI or bare base64 text."""
    if not isinstance(value, str):
        raise ValidationError(f"must be base64 text or a data URI, got {_describe(value)}")
    mime = ""
    payload = value
    m = _DATA_URI.match(value)
    if m:
        mime = m.group(1).strip().lower()
        if ";base64" not in m.group(2).lower():
            raise ValidationError("must be a base64 data URI (data:<type>;base64,...)")
        payload = value[m.end() :]
    if payload:
        try:  # the common case, fast: clean, padded, standard base64
            return base64.b64decode(payload, validate=True), mime
        except (binascii.Error, ValueError):
            pass
    payload = re.sub(r"\s+", "", payload)
    if not payload:
        raise ValidationError("is empty: send the base64-encoded content")
    if "-" in payload or "_" in payload:
        payload = payload.replace("-", "+").replace("_", "/")
    try:
        data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(
            "is not valid base64: send a data URI (data:image/png;base64,...) or bare base64"
        ) from None
    return data, mime


def encode_data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class BaseType:
    """What every data type has: a ``description`` and, optionally, a ``default``.

    A custom type subclasses it with Runway's signature, ``BaseType(data_type, description=None)``, and
    defines ``deserialize(value)`` (may raise ``InvalidArgumentError``), ``serialize(value,
    output_format=None)`` and, when it adds fields to the manifest, ``to_dict()``:

    >>> class rgb(BaseType):
    ...     def __init__(self, description=None, default=None):
    ...         super().__init__('rgb', description=description)
    ...         if default is not None:
    ...             self.default = default
    ...     def deserialize(self, value):
    ...         if not (isinstance(value, str) and re.fullmatch('#[0-9a-f]{6}', value)):
    ...             raise InvalidArgumentError(self.name, 'must be a colour like #ff8800')
    ...         return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))
    ...     def serialize(self, value, output_format=None):
    ...         return '#%02x%02x%02x' % tuple(value)
    """

    type_name = "base"

    def __init__(
        self,
        data_type: Optional[str] = None,
        description: Optional[str] = None,
        default: Any = _MISSING,
    ):
        if data_type is not None:
            if not isinstance(data_type, str) or not data_type:
                raise TypeError(f"data_type must be a type name (a string), got {data_type!r}")
            self.type_name = data_type
        if description is not None and not isinstance(description, str):
            raise TypeError(f"description must be a string, got {type(description).__name__}")
        self.description = description
        #: The input's, output's or option's name (the registry sets it; Runway's attribute).
        self.name = self.type_name
        self._default = default
        if default is not _MISSING and default is not None:
            # A default that breaks the type's own rules is a bug in the model code: say so at once.
            try:
                self.check_default(default)
            except ValidationError as e:
                raise ValueError(f"{self.type_name}: default {default!r} {e.message}") from None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A custom type written for Runway defines ``deserialize(self, value)``: give it the
        ``ctx`` argument the registry passes, unused."""
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("deserialize")
        if fn is not None and callable(fn) and _positional_count(fn) < 3:

            def deserialize(self: Any, value: Any, ctx: Optional[DecodeContext] = None) -> Any:
                return fn(self, value)

            deserialize.__doc__ = fn.__doc__
            cls.deserialize = deserialize  # type: ignore[method-assign]

    @property
    def type(self) -> str:
        """The type's name in the manifest (Runway's attribute)."""
        return self.type_name

    @type.setter
    def type(self, value: str) -> None:
        self.type_name = value

    # -- defaults ------------------------------------------------------------------------------------
    @property
    def has_default(self) -> bool:
        return self._default is not _MISSING

    @property
    def default(self) -> Any:
        return None if self._default is _MISSING else self._default

    @default.setter
    def default(self, value: Any) -> None:
        self._default = value

    def implicit_default(self) -> Any:
        """The value a setup option declared without a default gets (Runway's implicit defaults), or
        ``MISSING`` when there is no safe one: the option must then be given."""
        return _MISSING

    def check_default(self, default: Any) -> None:
        self.deserialize(default, DecodeContext(allow_paths=True))

    def default_value(self, ctx: DecodeContext) -> Any:
        """The Python value a missing input or option gets (only called when ``has_default``)."""
        if self._default is None:
            return None
        return self.deserialize(self._default, ctx)

    # -- the four faces of a type ----------------------------------------------------------------------
    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> Any:
        return value

    def serialize(self, value: Any) -> Any:
        return value

    def to_dict(self) -> dict:
        d = {"type": self.type_name, "description": self.description}
        if self.has_default:
            d["default"] = self.default
        return d

    def json_schema(self) -> dict:
        schema: dict = {}
        if self.description:
            schema["description"] = self.description
        return schema

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type" and v is not None
        )
        return f"{self.type_name}({args})"


#: What ``implicit_default`` answers when a type has no safe implicit default.
MISSING = _MISSING


def _positional_count(fn: Any) -> int:
    """How many positional parameters ``fn`` takes (a large number for ``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 99
    count = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return 99
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def accepts_output_format(t: BaseType) -> bool:
    """Whether ``t.serialize`` takes Runway's ``output_format`` argument."""
    try:
        return "output_format" in inspect.signature(t.serialize).parameters
    except (TypeError, ValueError):
        return False


class any(BaseType):  # noqa: A001 - the contract names it ``any``
    """Any JSON value, passed through unchanged.

    >>> @modelcloud.command('echo', inputs={'x': any()}, outputs={'x': any()})
    ... def echo(model, inputs):
    ...     return {'x': inputs['x']}
    """

    type_name = "any"

    def __init__(self, default: Any = _MISSING, *, description: Optional[str] = None):
        super().__init__(description=description, default=default)

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> Any:
        if isinstance(value, UploadedFile):
            # A multipart file part reads like a form field: JSON when it parses, else the text.
            try:
                value = value.body.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationError("must be JSON or UTF-8 text, got a binary file") from None
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                pass
        if _nesting_depth(value) > _MAX_ANY_DEPTH:
            # Deeper values would exhaust the recursion limit when the model's answer is encoded.
            raise ValidationError(
                f"must not nest lists and objects more than {_MAX_ANY_DEPTH} deep"
            )
        return value

    def serialize(self, value: Any) -> Any:
        return _to_json(value)


#: How deeply an ``any`` input may nest lists and objects.
_MAX_ANY_DEPTH = 100


def _nesting_depth(value: Any) -> int:
    """How many lists and objects deep ``value`` goes (without recursion; stops past the limit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (list, tuple, dict)):
            deepest = builtins.max(deepest, depth)
            if deepest > _MAX_ANY_DEPTH:
                break
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def _to_json(value: Any) -> Any:
    """Plain JSON from numpy, torch and tuples; a value JSON cannot hold raises TypeError."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return _to_json(value.tolist())
    if isinstance(value, np.generic):
        return _to_json(value.item())
    raise TypeError(f"a {type(value).__name__} cannot be sent as JSON")


class text(BaseType):
    """A string, optionally with a minimum and maximum length.

    >>> @modelcloud.command('caption', inputs={'prompt': text(max_length=200)}, outputs={'caption': text()})
    ... def caption(model, inputs):
    ...     return model.generate(inputs['prompt'])
    """

    type_name = "text"

    def __init__(
        self,
        default: Any = _MISSING,
        min_length: int = 0,
        max_length: Optional[int] = None,
        *,
        description: Optional[str] = None,
    ):
        if min_length is None:
            min_length = 0
        _check_length_args("text", min_length, max_length)
        if min_length < 0 or (max_length is not None and max_length < min_length):
            raise ValueError(
                f"text: need 0 <= min_length <= max_length, got {min_length}, {max_length}"
            )
        self.min_length = min_length
        self.max_length = max_length
        super().__init__(description=description, default=default)

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> str:
        if not isinstance(value, str):
            raise ValidationError(f"must be text (a JSON string), got {_describe(value)}")
        if len(value) < self.min_length:
            raise ValidationError(
                f"must be at least {self.min_length} characters long, got {len(value)}"
            )
        if self.max_length is not None and len(value) > self.max_length:
            raise ValidationError(
                f"must be at most {self.max_length} characters long, got {len(value)}"
            )
        return value

    def implicit_default(self) -> Any:
        return ""

    def serialize(self, value: Any) -> str:
        if isinstance(value, str):
            return str(value)
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise TypeError(
                    "a text output must be a string, got bytes that are not UTF-8"
                ) from None
        if _is_number(value):  # a number has one faithful spelling; a boolean or an object has not
            return str(value.item() if isinstance(value, np.generic) else value)
        raise TypeError(f"a text output must be a string, got a {type(value).__name__}")

    def to_dict(self) -> dict:
        return {**super().to_dict(), "minLength": self.min_length, "maxLength": self.max_length}

    def json_schema(self) -> dict:
        schema = {**super().json_schema(), "type": "string"}
        if self.min_length:
            schema["minLength"] = self.min_length
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.has_default:
            schema["default"] = self.default
        return schema


class number(BaseType):
    """A number, optionally bounded by ``min`` and ``max`` and restricted to multiples of ``step``
    counted from ``min`` (or from 0 when there is no ``min``).

    >>> @modelcloud.command('sharpen', inputs={'photo': image(), 'amount': number(default=1.0, min=0, max=5, step=0.5)},
    ...                     outputs={'photo': image()})
    """

    type_name = "number"

    def __init__(
        self,
        default: Any = _MISSING,
        min: Optional[float] = None,  # noqa: A002 - Runway's argument names
        max: Optional[float] = None,  # noqa: A002
        step: Optional[float] = None,
        *,
        description: Optional[str] = None,
    ):
        for name, v in (("min", min), ("max", max), ("step", step)):
            if v is not None:
                _check_finite_arg("number", name, v)
        if min is not None and max is not None and min > max:
            raise ValueError(f"number: min ({min}) is greater than max ({max})")
        if step is not None and step <= 0:
            raise ValueError(f"number: step must be positive, got {step}")
        self.min = min
        self.max = max
        self.step = step
        super().__init__(description=description, default=default)

    def check_default(self, default: Any) -> None:
        # A default may sit off the step grid (Runway allowed it): it is then one more allowed value.
        self._check(default, grid=False)

    def implicit_default(self) -> Any:
        # Runway's rule: min, else max, else 0 (a min of 0 counts; Runway's `or` skipped it).
        if self.min is not None:
            return self.min
        return self.max if self.max is not None else 0

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> Union[int, float]:
        return self._check(
            value, grid=not (self.has_default and _same_number(value, self._default))
        )

    def _check(self, value: Any, grid: bool = True) -> Union[int, float]:
        _check_finite(value)
        if isinstance(value, np.generic):
            value = value.item()
        if self.min is not None and value < self.min:
            raise ValidationError(f"must be at least {self.min}, got {value}")
        if self.max is not None and value > self.max:
            raise ValidationError(f"must be at most {self.max}, got {value}")
        if self.step is not None and grid:
            base = self.min if self.min is not None else 0
            k = (value - base) / self.step
            if not math.isfinite(k):
                raise ValidationError(
                    f"is too far from {base} to be a multiple of {self.step}, got {value}"
                )
            if abs(k - round(k)) > 1e-9 * builtins.max(1.0, abs(k)):
                raise ValidationError(
                    f"must be a multiple of {self.step} from {base} (like {base + math.floor(k) * self.step:g}"
                    f" or {base + math.ceil(k) * self.step:g}), got {value}"
                )
        return value

    def serialize(self, value: Any) -> Union[int, float, None]:
        if hasattr(value, "item") and not isinstance(value, (int, float)):
            value = value.item()
        if not _is_number(value):
            raise TypeError(f"a number output must be a number, got a {type(value).__name__}")
        return value if math.isfinite(value) else None

    def to_dict(self) -> dict:
        return {**super().to_dict(), "min": self.min, "max": self.max, "step": self.step}

    def json_schema(self) -> dict:
        schema = {**super().json_schema(), "type": "number"}
        if self.min is not None:
            schema["minimum"] = self.min
        if self.max is not None:
            schema["maximum"] = self.max
        if self.step is not None and self.min in (None, 0):
            schema["multipleOf"] = self.step
        if self.has_default:
            schema["default"] = self.default
        return schema


def _same_number(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and a == b


def _check_length_args(type_name: str, min_length: Any, max_length: Any) -> None:
    for name, v in (("min_length", min_length), ("max_length", max_length)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise ValueError(f"{type_name}: {name} must be a whole number, got {v!r}")


def _check_finite_arg(type_name: str, name: str, v: Any) -> None:
    if not _is_number(v) or not math.isfinite(v):
        raise ValueError(f"{type_name}: {name} must be a finite number, got {v!r}")


class boolean(BaseType):
    """True or false.

    >>> inputs={'flip': boolean(default=False)}
    """

    type_name = "boolean"

    def __init__(self, default: Any = _MISSING, *, description: Optional[str] = None):
        super().__init__(description=description, default=default)

    def implicit_default(self) -> Any:
        return False

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValidationError(f"must be true or false, got {_describe(value)}")
        return bool(value)

    def serialize(self, value: Any) -> bool:
        # Checked, never coerced: bool('False') is True, and a wrong answer must not leave silently.
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"a boolean output must be True or False, got {_describe(value)}")
        return bool(value)

    def json_schema(self) -> dict:
        schema = {**super().json_schema(), "type": "boolean"}
        if self.has_default:
            schema["default"] = self.default
        return schema


class category(BaseType):
    """One of a fixed list of choices: strings, or numbers (answered as the same type).

    >>> inputs={'style': category(choices=['sketch', 'watercolor', 'oil'], default='sketch')}
    >>> inputs={'steps': category(choices=[10, 25, 50])}
    """

    type_name = "category"

    def __init__(
        self,
        choices: Optional[list] = None,
        default: Any = _MISSING,
        *,
        description: Optional[str] = None,
    ):
        if not choices or not isinstance(choices, (list, tuple)):
            raise ValueError("category: choices must be a non-empty list of strings or numbers")
        for c in choices:
            if not isinstance(c, str) and not (_is_number(c) and math.isfinite(c)):
                raise ValueError(
                    f"category: every choice must be a string or a finite number, got {c!r}"
                )
        choices = [c.item() if isinstance(c, np.generic) else c for c in choices]
        if len({_choice_key(c) for c in choices}) != len(choices):
            raise ValueError("category: choices must not repeat")
        self.choices = list(choices)
        super().__init__(description=description, default=default)

    def implicit_default(self) -> Any:
        return self.choices[0]

    def _find(self, value: Any) -> Any:
        """The declared choice ``value`` names, or MISSING. A number matches a number choice of the
        same value (5 and 5.0); text matches a string choice, else the spelling of a number choice
        (a multipart field or a query arrives as text)."""
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str):
            for c in self.choices:
                if isinstance(c, str) and c == value:
                    return c
            for c in self.choices:
                if not isinstance(c, str) and json.dumps(c) == value.strip():
                    return c
            return _MISSING
        if _is_number(value):
            for c in self.choices:
                if not isinstance(c, str) and c == value:
                    return c
        return _MISSING

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> Any:
        found = self._find(value)
        if found is _MISSING:
            shown = ", ".join(repr(c) for c in self.choices[:20])
            more = ", ..." if len(self.choices) > 20 else ""
            raise ValidationError(f"must be one of {shown}{more}; got {_describe(value)}")
        return found

    def serialize(self, value: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str):
            found = next((c for c in self.choices if isinstance(c, str) and c == value), _MISSING)
        elif _is_number(value):
            found = next(
                (c for c in self.choices if not isinstance(c, str) and c == value), _MISSING
            )
        else:
            found = _MISSING
        if found is _MISSING:
            raise TypeError(f"a category output must be one of {self.choices}, got {value!r}")
        return found

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["oneOf"] = self.choices
        return d

    def json_schema(self) -> dict:
        kinds = {"string" if isinstance(c, str) else "number" for c in self.choices}
        schema = {
            **super().json_schema(),
            "type": kinds.pop() if len(kinds) == 1 else ["string", "number"],
            "enum": self.choices,
        }
        if self.has_default:
            schema["default"] = self.default
        return schema


def _choice_key(c: Any) -> tuple:
    return ("s", c) if isinstance(c, str) else ("n", float(c))


def _as_array(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(
        value, "cpu"
    ):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return value


class vector(BaseType):
    """A fixed-length list of numbers, given to the model as a ``numpy.ndarray`` of float32.
    ``sampling_mean`` and ``sampling_std`` tell a client how to draw a random one (a GAN's latent, say).

    >>> inputs={'z': vector(length=512, sampling_std=0.5)}
    """

    type_name = "vector"

    def __init__(
        self,
        length: Optional[int] = None,
        default: Any = _MISSING,
        sampling_mean: float = 0,
        sampling_std: float = 1,
        *,
        description: Optional[str] = None,
    ):
        if isinstance(default, np.ndarray):
            default = default.tolist()
        if length is None and isinstance(default, (list, tuple)):
            length = len(default)  # Runway infers the length from the default
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise ValueError(
                f"vector: length must be a positive integer (or give a default to take it from), "
                f"got {length!r}"
            )
        _check_finite_arg("vector", "sampling_mean", sampling_mean)
        _check_finite_arg("vector", "sampling_std", sampling_std)
        if sampling_std < 0:
            raise ValueError(f"vector: sampling_std must not be negative, got {sampling_std!r}")
        self.length = length
        self.sampling_mean = sampling_mean
        self.sampling_std = sampling_std
        super().__init__(description=description, default=default)

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> np.ndarray:
        value = _as_array(value)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            raise ValidationError(
                f"must be a list of {self.length} numbers, got {_describe(value)}"
            )
        if len(value) != self.length:
            raise ValidationError(f"must have exactly {self.length} numbers, got {len(value)}")
        for i, v in enumerate(value):
            _check_finite(v, f" at index {i}")
            if abs(v) > _FLOAT32_MAX:  # would become inf in the float32 array the model gets
                raise ValidationError(
                    f"must hold numbers between -{_FLOAT32_MAX:.4g} and {_FLOAT32_MAX:.4g} "
                    f"at index {i}, got {_describe(v)}"
                )
        return np.asarray(value, dtype=np.float32)

    def serialize(self, value: Any) -> list:
        value = _as_array(value)
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "iuf":
                raise TypeError(f"a vector output must hold numbers, got an array of {value.dtype}")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                if not _is_number(v):  # "1.5" or True would be converted silently
                    raise TypeError(
                        f"a vector output must hold numbers, got {_describe(v)} at index {i}"
                    )
        else:
            raise TypeError(
                f"a vector output must be a list or array of numbers, got {_describe(value)}"
            )
        value = np.asarray(value, dtype=np.float64).reshape(-1)
        if value.shape[0] != self.length:
            raise TypeError(
                f"a vector output must have {self.length} numbers, got {value.shape[0]}"
            )
        return [float(v) if math.isfinite(v) else None for v in value]

    def to_dict(self) -> dict:
        return {
            **super().to_dict(),
            "length": self.length,
            "samplingMean": self.sampling_mean,
            "samplingStd": self.sampling_std,
        }

    def json_schema(self) -> dict:
        return {
            **super().json_schema(),
            "type": "array",
            "items": {"type": "number"},
            "minItems": self.length,
            "maxItems": self.length,
        }


_CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_OUTPUT_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


_EXAMPLES: dict = {}


def _example_png(width: int, height: int) -> str:
    """A white PNG of that size as a data URI: an example that really is an image."""
    key = (width, height)
    if key not in _EXAMPLES:
        buf = io.BytesIO()
        Image.new("L", key, 255).save(buf, format="PNG", optimize=True)
        _EXAMPLES[key] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return _EXAMPLES[key]


def _open_image(data: bytes, ctx: DecodeContext) -> Image.Image:
    """Decode image bytes, refusing anything over the pixel limit before its pixels are decoded."""
    # No warnings.catch_warnings() here: it swaps the process's filters, and decodes run on several
    # threads at once (one put back what another had changed: every warning went silent). Pillow's own
    # warnings (a picture over its DecompressionBombWarning size, odd metadata) go to the log.
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ValidationError(
            f"has more than {ctx.max_pixels:,} pixels, over the limit: send a smaller image"
        ) from None
    except Exception:  # UnidentifiedImageError, and whatever a format plugin raises on bad bytes
        raise ValidationError(
            "is not an image that can be read: send PNG, JPEG, GIF, BMP, TIFF or WebP bytes"
        ) from None
    w, h = img.size
    if w * h > ctx.max_pixels:
        raise ValidationError(
            f"is {w}x{h} = {w * h:,} pixels, over the limit of {ctx.max_pixels:,}: send a smaller image"
        )
    try:
        img.load()
    except Exception:
        raise ValidationError("is a damaged or truncated image: send the whole file") from None
    return img


def _image_bytes(value: Any) -> bytes:
    if isinstance(value, UploadedFile):
        return value.body
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    data, _mime = decode_base64(value)
    return data


def _array_to_pil(value: Any) -> Image.Image:
    arr = np.asarray(_as_array(value))
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))  # CHW, as torch keeps images
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise TypeError(f"an image output must be HxW, HxWx3 or HxWx4, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        scale = arr.dtype.kind in "fb"  # floats (and booleans) in [0, 1]; integers are pixel values
        arr = arr.astype(np.float64)
        if scale and arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
    return Image.fromarray(arr)


def _convert(img: Image.Image, mode: str) -> Image.Image:
    """``img`` in ``mode``; through RGB when Pillow has no direct conversion (LAB -> L, say)."""
    if img.mode == mode:
        return img
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha and mode in ("L", "RGB"):
        # Dropping alpha would show whatever colour transparent pixels happen to hold (often black):
        # lay the picture on white paper instead, as a viewer shows it.
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        img = img.convert("RGB")
        if mode == "RGB":
            return img
    try:
        return img.convert(mode)
    except ValueError:
        pass
    try:
        return img.convert("RGB").convert(mode)
    except ValueError:
        raise ValidationError(
            f"is in the colour mode {img.mode}, which cannot be converted to {mode}"
        ) from None


class _SizedImage(BaseType):
    """Width and height limits shared by ``image`` and ``segmentation``."""

    def _init_size(self, min_width, min_height, max_width, max_height, width, height) -> None:
        for name, v in (
            ("min_width", min_width),
            ("min_height", min_height),
            ("max_width", max_width),
            ("max_height", max_height),
            ("width", width),
            ("height", height),
        ):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{self.type_name}: {name} must be a positive integer, got {v!r}")
        self.min_width, self.min_height = min_width, min_height
        self.max_width, self.max_height = max_width, max_height
        self.width, self.height = width, height

    def _check_size(self, size: tuple) -> None:
        w, h = size
        if (
            self.width is not None
            and self.height is not None
            and (w, h) != (self.width, self.height)
        ):
            raise ValidationError(
                f"must be exactly {self.width}x{self.height} pixels, got {w}x{h}: resize it first"
            )
        if self.width is not None and w != self.width:
            raise ValidationError(f"must be exactly {self.width} pixels wide, got {w}")
        if self.height is not None and h != self.height:
            raise ValidationError(f"must be exactly {self.height} pixels high, got {h}")
        if self.min_width is not None and w < self.min_width:
            raise ValidationError(f"must be at least {self.min_width} pixels wide, got {w}")
        if self.min_height is not None and h < self.min_height:
            raise ValidationError(f"must be at least {self.min_height} pixels high, got {h}")
        if self.max_width is not None and w > self.max_width:
            raise ValidationError(f"must be at most {self.max_width} pixels wide, got {w}")
        if self.max_height is not None and h > self.max_height:
            raise ValidationError(f"must be at most {self.max_height} pixels high, got {h}")

    def _size_dict(self) -> dict:
        return {
            "minWidth": self.min_width,
            "minHeight": self.min_height,
            "maxWidth": self.max_width,
            "maxHeight": self.max_height,
            "width": self.width,
            "height": self.height,
        }

    def json_schema(self) -> dict:
        return {
            **super().json_schema(),
            "type": "string",
            "contentEncoding": "base64",
            "contentMediaType": "image/*",
            "examples": [_example_png(*self._example_size())],
        }

    def _example_size(self) -> tuple:
        """A size this input takes: the declared one, else 8x8 within the declared limits."""

        def pick(exact: Any, low: Any, high: Any) -> int:
            if exact is not None:
                return int(exact)
            side = max(8, int(low or 0))
            return min(side, int(high)) if high is not None else side

        return (
            pick(self.width, self.min_width, self.max_width),
            pick(self.height, self.min_height, self.max_height),
        )


class image(_SizedImage):
    """An image, given to the model as a ``PIL.Image`` in the declared number of channels
    (1: ``L``, 3: ``RGB``, 4: ``RGBA``; a transparent picture is laid on white). Clients send a data URI (``data:image/png;base64,...``), bare
    base64, or a multipart file part. A command may return a ``PIL.Image``, a ``numpy`` array
    (HxW, HxWxC, or CxHxW as torch keeps them; floats in [0, 1] are scaled) or a torch tensor; it is sent
    as a data URI in ``default_output_format`` (JPEG for RGB, PNG otherwise, when not given).

    >>> @modelcloud.command('classify', inputs={'photo': image(width=224, height=224)}, outputs={'label': text()})
    ... def classify(model, inputs):
    ...     return model.predict(inputs['photo'])
    """

    type_name = "image"

    def __init__(
        self,
        channels: int = 3,
        min_width: Optional[int] = None,
        min_height: Optional[int] = None,
        max_width: Optional[int] = None,
        max_height: Optional[int] = None,
        width: Optional[int] = None,
        height: Optional[int] = None,
        default_output_format: Optional[str] = None,
        *,
        description: Optional[str] = None,
    ):
        if channels not in _CHANNEL_MODES:
            raise ValueError(f"image: channels must be 1, 3 or 4, got {channels!r}")
        self.channels = channels
        self._init_size(min_width, min_height, max_width, max_height, width, height)
        if default_output_format is not None:
            fmt = str(default_output_format).upper().replace("JPG", "JPEG")
            if fmt not in _OUTPUT_FORMATS:
                raise ValueError(
                    f"image: default_output_format must be PNG, JPEG or WEBP, got {default_output_format!r}"
                )
            default_output_format = fmt
        #: As Runway: JPEG for 3 channels, PNG otherwise, when not given.
        self.default_output_format = default_output_format or ("JPEG" if channels == 3 else "PNG")
        super().__init__(description=description)

    @property
    def output_format(self) -> str:
        return self.default_output_format

    @staticmethod
    def check_output_format(fmt: Any) -> str:
        """A format a client asked for (``X-Runway-Output-Format``), normalized; ValidationError if unknown."""
        name = str(fmt).strip().upper().replace("JPG", "JPEG")
        if name not in _OUTPUT_FORMATS:
            raise ValidationError(f"must be PNG, JPEG or WEBP, got {str(fmt)[:20]!r}")
        return name

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> Image.Image:
        ctx = ctx or DecodeContext()
        if isinstance(value, Image.Image):
            img = value
        else:
            img = _open_image(_image_bytes(value), ctx)
            try:
                img = ImageOps.exif_transpose(img) or img
            except Exception:  # a damaged orientation tag: keep the image as stored
                pass
        self._check_size(img.size)
        return _convert(img, _CHANNEL_MODES[self.channels])

    def serialize(self, value: Any, output_format: Optional[str] = None) -> str:
        img = value if isinstance(value, Image.Image) else _array_to_pil(value)
        fmt = self.check_output_format(output_format) if output_format else self.output_format
        mode = _CHANNEL_MODES[self.channels]
        if fmt == "JPEG" and mode == "RGBA":
            mode = "RGB"
        if img.mode != mode:
            img = img.convert(mode)
        buf = io.BytesIO()
        img.save(buf, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
        return encode_data_uri(buf.getvalue(), _OUTPUT_FORMATS[fmt])

    def to_dict(self) -> dict:
        return {
            **super().to_dict(),
            "channels": self.channels,
            **self._size_dict(),
            "defaultOutputFormat": self.output_format,
        }


def _default_colors(n: int) -> list:
    """Distinct, stable colours for labels that were given none (golden-angle hues)."""
    import colorsys

    colors = []
    for i in range(n):
        if i == 0:
            colors.append([0, 0, 0])
            continue
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.65, 0.95)
        colors.append([round(r * 255), round(g * 255), round(b * 255)])
    return colors


class segmentation(_SizedImage):
    """A segmentation map: every pixel holds a label id from ``label_to_id``. Clients send a PNG whose
    pixel values are the ids (mode L or P), or a colour PNG painted with ``label_to_color``; the model
    gets a ``numpy`` uint8 array of ids (HxW). A command returns such an array (or an L/P image) and the
    client gets a palette PNG that shows the colours and keeps the ids.

    >>> outputs={'mask': segmentation(label_to_id={'background': 0, 'person': 1, 'car': 2})}
    """

    type_name = "segmentation"

    def __init__(
        self,
        label_to_id: Optional[dict] = None,
        label_to_color: Optional[dict] = None,
        default_label: Optional[str] = None,
        width: Optional[int] = None,
        height: Optional[int] = None,
        *,
        min_width: Optional[int] = None,
        min_height: Optional[int] = None,
        max_width: Optional[int] = None,
        max_height: Optional[int] = None,
        description: Optional[str] = None,
    ):
        if not label_to_id or not isinstance(label_to_id, dict):
            raise ValueError("segmentation: label_to_id must be a non-empty dict of label -> id")
        for label, i in label_to_id.items():
            if not isinstance(label, str) or not isinstance(i, int) or not 0 <= i <= 255:
                raise ValueError(
                    f"segmentation: label_to_id maps strings to ids 0..255, got {label!r}: {i!r}"
                )
        if len(set(label_to_id.values())) != len(label_to_id):
            raise ValueError("segmentation: two labels share an id in label_to_id")
        self.label_to_id = dict(label_to_id)
        if label_to_color is None:
            label_to_color = {}
        if not isinstance(label_to_color, dict):
            raise ValueError("segmentation: label_to_color must be a dict of label -> [r, g, b]")
        for label, color in label_to_color.items():
            if label not in self.label_to_id:
                raise ValueError(
                    f"segmentation: label_to_color names {label!r}, not in label_to_id"
                )
            if (
                not isinstance(color, (list, tuple))
                or len(color) != 3
                or not builtins.all(isinstance(c, int) and 0 <= c <= 255 for c in color)
            ):
                raise ValueError(
                    f"segmentation: the colour of {label!r} must be [r, g, b] in 0..255"
                )
        used = {tuple(c) for c in label_to_color.values()}
        if len(used) != len(label_to_color):
            raise ValueError("segmentation: two labels share a colour in label_to_color")
        # Labels without a colour get distinct default ones, so that every label can be painted.
        spare = (c for c in _default_colors(len(label_to_id) + len(used)) if tuple(c) not in used)
        self.label_to_color = {
            label: list(label_to_color[label]) if label in label_to_color else next(spare)
            for label in self.label_to_id
        }
        if default_label is None:
            default_label = next(iter(self.label_to_id))
        if default_label not in self.label_to_id:
            raise ValueError(f"segmentation: default_label {default_label!r} is not in label_to_id")
        self.default_label = default_label
        self._init_size(min_width, min_height, max_width, max_height, width, height)
        self._ids = np.zeros(256, dtype=bool)
        self._ids[list(self.label_to_id.values())] = True
        super().__init__(description=description)

    def _palette(self) -> list:
        palette = [0] * 768
        for label, i in self.label_to_id.items():
            palette[3 * i : 3 * i + 3] = self.label_to_color.get(label, [0, 0, 0])
        return palette

    def _label_ids(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` as a uint8 array; anything but whole numbers of known label ids raises."""
        if ids.ndim != 2:
            raise ValidationError(
                f"must be a single-channel map of label ids, got shape {ids.shape}"
            )
        if ids.dtype != np.uint8:
            if ids.dtype.kind not in "biuf":
                raise ValidationError(f"must hold label ids, got an array of {ids.dtype}")
            if ids.size and not (
                ids.min() >= 0 and ids.max() <= 255 and np.array_equal(ids, np.round(ids))
            ):
                raise ValidationError("must hold whole-number label ids between 0 and 255")
            ids = ids.astype(np.uint8)
        self._check_ids(ids)
        return ids

    def _check_ids(self, ids: np.ndarray) -> None:
        bad = np.unique(ids[~self._ids[ids]])
        if bad.size:
            raise ValidationError(
                f"holds label ids {bad[:10].tolist()} that are not in label_to_id "
                f"(known ids: {sorted(self.label_to_id.values())[:20]})"
            )

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> np.ndarray:
        ctx = ctx or DecodeContext()
        if isinstance(value, np.ndarray):
            ids = value
            if ids.ndim == 2:
                self._check_size((ids.shape[1], ids.shape[0]))
        else:
            img = value if isinstance(value, Image.Image) else _open_image(_image_bytes(value), ctx)
            self._check_size(img.size)
            if img.mode in ("L", "P"):
                ids = np.asarray(img, dtype=np.uint8)
            else:
                ids = self._colors_to_ids(np.asarray(_convert(img, "RGB"), dtype=np.uint8))
        return self._label_ids(ids)

    def _colors_to_ids(self, rgb: np.ndarray) -> np.ndarray:
        key = (
            (rgb[..., 0].astype(np.uint32) << 16)
            | (rgb[..., 1].astype(np.uint32) << 8)
            | rgb[..., 2]
        )
        lut = {
            (c[0] << 16) | (c[1] << 8) | c[2]: self.label_to_id[label]
            for label, c in self.label_to_color.items()
        }
        uniq, inverse = np.unique(key, return_inverse=True)
        mapped = np.empty(uniq.shape, dtype=np.uint8)
        for k, color in enumerate(uniq.tolist()):
            if color not in lut:
                rgb_color = [(color >> 16) & 255, (color >> 8) & 255, color & 255]
                raise ValidationError(
                    f"has the colour {rgb_color}, which is no label's colour in label_to_color: "
                    "paint with the declared colours or send label ids in a grayscale PNG"
                )
            mapped[k] = lut[color]
        return mapped[inverse].reshape(key.shape)

    def serialize(self, value: Any) -> str:
        if isinstance(value, Image.Image):
            ids = np.asarray(value if value.mode in ("L", "P") else value.convert("L"))
        else:
            ids = np.asarray(_as_array(value))
        try:
            ids = self._label_ids(ids)
        except ValidationError as e:
            raise TypeError(f"a segmentation output {e.message}") from None
        img = Image.frombytes(
            "P", (ids.shape[1], ids.shape[0]), np.ascontiguousarray(ids).tobytes()
        )
        img.putpalette(self._palette())
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return encode_data_uri(buf.getvalue(), "image/png")

    def to_dict(self) -> dict:
        return {
            **super().to_dict(),
            "labelToId": self.label_to_id,
            "labelToColor": self.label_to_color,
            "defaultLabel": self.default_label,
            **self._size_dict(),
        }


def _point(value: Any, what: str = "") -> list:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValidationError(f"must be a point [x, y]{what}, got {_describe(value)}")
    out = []
    for v in value:
        _check_finite(v, what)
        if not 0 <= v <= 1:
            raise ValidationError(
                f"must have coordinates between 0 and 1 (relative to the image size){what}, got {v}"
            )
        out.append(float(v))
    return out


class image_point(BaseType):
    """A point ``[x, y]`` on an image, each coordinate relative to the image size (0 to 1).

    >>> outputs={'nose': image_point()}
    """

    type_name = "image_point"

    def __init__(self, default: Any = _MISSING, *, description: Optional[str] = None):
        super().__init__(description=description, default=default)

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> list:
        return _point(value)

    def serialize(self, value: Any) -> list:
        return _serialize_checked(self, value)

    def json_schema(self) -> dict:
        return {**super().json_schema(), **_POINT_SCHEMA}


_POINT_SCHEMA = {
    "type": "array",
    "items": {"type": "number", "minimum": 0, "maximum": 1},
    "minItems": 2,
    "maxItems": 2,
}


def _serialize_checked(t: BaseType, value: Any) -> Any:
    value = _to_json(_as_array(value))
    try:
        return t.deserialize(value)
    except ValidationError as e:
        raise TypeError(f"an {t.type_name} output {e.message}") from None


class image_bounding_box(BaseType):
    """A box ``[xmin, ymin, xmax, ymax]`` on an image, relative to the image size (0 to 1).

    >>> outputs={'face': image_bounding_box()}
    """

    type_name = "image_bounding_box"

    def __init__(self, default: Any = _MISSING, *, description: Optional[str] = None):
        super().__init__(description=description, default=default)

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> list:
        if not isinstance(value, (list, tuple)) or len(value) != 4:
            raise ValidationError(f"must be a box [xmin, ymin, xmax, ymax], got {_describe(value)}")
        xmin, ymin = _point(value[:2])
        xmax, ymax = _point(value[2:])
        if xmin > xmax or ymin > ymax:
            raise ValidationError(
                f"must have xmin <= xmax and ymin <= ymax, got {[xmin, ymin, xmax, ymax]}"
            )
        return [xmin, ymin, xmax, ymax]

    def serialize(self, value: Any) -> list:
        return _serialize_checked(self, value)

    def json_schema(self) -> dict:
        return {
            **super().json_schema(),
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 1},
            "minItems": 4,
            "maxItems": 4,
        }


class image_landmarks(BaseType):
    """``length`` points on an image (as ``image_point``), optionally named by ``labels`` and joined by
    ``connections`` (pairs of labels) for drawing.

    >>> outputs={'pose': image_landmarks(3, labels=['left_eye', 'right_eye', 'nose'],
    ...                                  connections=[['left_eye', 'nose'], ['right_eye', 'nose']])}
    """

    type_name = "image_landmarks"

    def __init__(
        self,
        length: Optional[int] = None,
        labels: Optional[list] = None,
        connections: Optional[list] = None,
        *,
        description: Optional[str] = None,
        default: Any = _MISSING,
    ):
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise ValueError(f"image_landmarks: length must be a positive integer, got {length!r}")
        if labels is not None:
            if (
                not isinstance(labels, (list, tuple))
                or len(labels) != length
                or not builtins.all(isinstance(x, str) for x in labels)
                or len(set(labels)) != length
            ):
                raise ValueError(
                    f"image_landmarks: labels must be a list of {length} distinct strings, "
                    "one per landmark"
                )
            labels = list(labels)
        if connections is not None:
            if labels is None:
                raise ValueError("image_landmarks: connections need labels to name the landmarks")
            if not isinstance(connections, (list, tuple)):
                raise ValueError("image_landmarks: connections must be a list of label pairs")
            for pair in connections:
                if (
                    not isinstance(pair, (list, tuple))
                    or len(pair) != 2
                    or pair[0] not in labels
                    or pair[1] not in labels
                ):
                    raise ValueError(
                        f"image_landmarks: connection {pair!r} must be a pair of labels from {labels}"
                    )
        self.length = length
        self.labels = labels
        self.connections = [list(p) for p in connections] if connections else connections
        super().__init__(description=description, default=default)

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> list:
        if not isinstance(value, (list, tuple)):
            raise ValidationError(
                f"must be a list of {self.length} points [x, y], got {_describe(value)}"
            )
        if len(value) != self.length:
            raise ValidationError(f"must have exactly {self.length} points, got {len(value)}")
        return [_point(p, f" at index {i}") for i, p in enumerate(value)]

    def serialize(self, value: Any) -> list:
        return _serialize_checked(self, value)

    def to_dict(self) -> dict:
        return {
            **super().to_dict(),
            "length": self.length,
            "labels": self.labels,
            "connections": self.connections,
        }

    def json_schema(self) -> dict:
        return {
            **super().json_schema(),
            "type": "array",
            "items": _POINT_SCHEMA,
            "minItems": self.length,
            "maxItems": self.length,
        }


class array(BaseType):
    """A list of values of one data type, with optional length limits.

    >>> inputs={'prompts': array(item_type=text(max_length=100), max_length=8)}
    """

    type_name = "array"

    def __init__(
        self,
        item_type: Any = None,
        min_length: int = 0,
        max_length: Optional[int] = None,
        *,
        description: Optional[str] = None,
        default: Any = _MISSING,
    ):
        if isinstance(item_type, type) and issubclass(item_type, BaseType):
            item_type = item_type()
        if not isinstance(item_type, BaseType):
            raise ValueError(
                f"array: item_type must be a data type such as text(), got {item_type!r}"
            )
        if min_length is None:
            min_length = 0
        _check_length_args("array", min_length, max_length)
        if min_length < 0 or (max_length is not None and max_length < min_length):
            raise ValueError(
                f"array: need 0 <= min_length <= max_length, got {min_length}, {max_length}"
            )
        self.item_type = item_type
        self.min_length = min_length
        self.max_length = max_length
        super().__init__(description=description, default=default)

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> list:
        if not isinstance(value, (list, tuple)):
            raise ValidationError(f"must be a list, got {_describe(value)}")
        if len(value) < self.min_length:
            raise ValidationError(f"must have at least {self.min_length} items, got {len(value)}")
        if self.max_length is not None and len(value) > self.max_length:
            raise ValidationError(f"must have at most {self.max_length} items, got {len(value)}")
        out = []
        for i, item in enumerate(value):
            try:
                out.append(self.item_type.deserialize(item, ctx))
            except ValidationError as e:
                raise ValidationError(f"item {i} {e.message}") from None
        return out

    def serialize(self, value: Any) -> list:
        value = _as_array(value)
        # list("abc") would be three letters and list({...}) its keys: a string or an object is refused
        if isinstance(value, (str, bytes, bytearray, dict)) or not hasattr(value, "__iter__"):
            raise TypeError(f"an array output must be a list, got {_describe(value)}")
        value = list(value)
        if len(value) < self.min_length or (
            self.max_length is not None and len(value) > self.max_length
        ):
            raise TypeError(
                f"an array output must have {self.min_length} to {self.max_length} items, got {len(value)}"
            )
        return [self.item_type.serialize(v) for v in value]

    def to_dict(self) -> dict:
        return {
            **super().to_dict(),
            "itemType": self.item_type.to_dict(),
            "minLength": self.min_length,
            "maxLength": self.max_length,
        }

    def json_schema(self) -> dict:
        schema = {**super().json_schema(), "type": "array", "items": self.item_type.json_schema()}
        if self.min_length:
            schema["minItems"] = self.min_length
        if self.max_length is not None:
            schema["maxItems"] = self.max_length
        return schema


def _normalize_extensions(extension: Any) -> Optional[list]:
    if extension is None:
        return None
    exts = [extension] if isinstance(extension, str) else list(extension)
    out = []
    for e in exts:
        if not isinstance(e, str) or not e.strip("."):
            raise ValueError(f"file: extension must be like '.pt', got {e!r}")
        out.append(("." + e.lstrip(".")).lower())
    return out


def _safe_name(name: str) -> str:
    name = os.path.basename(name.replace("\\", "/")).strip()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[-120:]
    return name if name.strip(".") else "upload"  # "." and ".." name directories


class _PathType(BaseType):
    """Shared by ``file`` and ``directory``: where a value may come from and how relative paths resolve."""

    def _resolve_path(self, value: str, ctx: DecodeContext) -> str:
        if not ctx.allow_paths:
            raise ValidationError(
                f"must be the {self.type_name}'s content (a base64 data URI or a multipart file part), "
                "not a path on the server"
            )
        if "\x00" in value:  # no path holds one, and os.path raises ValueError on it
            raise ValidationError(f"is not a valid path: it holds a NUL character, got {value!r}")
        path = os.path.expanduser(value)
        if not os.path.isabs(path) and ctx.base_dir and not os.path.exists(path):
            path = os.path.join(ctx.base_dir, path)
        return os.path.abspath(path)

    def _upload(self, value: Any) -> Optional[UploadedFile]:
        """The value as an uploaded file, or None when it is a path."""
        if isinstance(value, UploadedFile):
            return value
        if isinstance(value, (bytes, bytearray)):
            return UploadedFile("upload", bytes(value), named=False)
        if isinstance(value, dict):
            name, data = value.get("filename") or value.get("name"), value.get("data")
            if not isinstance(name, str) or not isinstance(data, str):
                raise ValidationError(
                    'must be {"filename": "...", "data": "<base64>"} when sent as an object'
                )
            return UploadedFile(name, decode_base64(data)[0])
        if isinstance(value, str) and (value.startswith("data:") or value.startswith("DATA:")):
            body, mime = decode_base64(value)
            ext = mimetypes.guess_extension(mime) if mime else None
            return UploadedFile("upload" + (ext or ""), body, mime, named=False)
        if isinstance(value, str):
            if re.match(r"^[a-z][a-z0-9+.-]*://", value, re.I):
                raise ValidationError(
                    "must be the content itself, not a URL: the server does not download files"
                )
            return None
        raise ValidationError(
            f"must be a base64 data URI, a multipart file part or a path, got {_describe(value)}"
        )


class file(_PathType):
    """A file, given to the model as a local path. A setup option (``ALGOLINK_MODEL_OPTIONS``,
    ``run(model_options=...)``, ``POST /setup``) may name a path on the machine; a command input arrives
    as content (a multipart file part, a base64 data URI, or ``{"filename", "data"}``) and is written to a
    temporary file that lives for the request. ``extension`` (``'.pt'`` or a list) is enforced when the
    name is known. A relative ``default`` is found next to the file that declares it.

    >>> @modelcloud.setup(options={'checkpoint': file(extension='.pt', default='models/digits.pt')})
    ... def setup(opts):
    ...     return torch.load(opts['checkpoint'])
    """

    type_name = "file"

    def __new__(cls, *args: Any, is_directory: bool = False, **kwargs: Any) -> Any:
        if is_directory:  # Runway's file(is_directory=True) is a directory
            if args or kwargs.get("extension") is not None:
                raise ValueError("file: is_directory=True takes no extension")
            kwargs.pop("extension", None)
            return directory(**kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        extension: Any = None,
        default: Any = _MISSING,
        *,
        description: Optional[str] = None,
        is_directory: bool = False,
    ):
        self.extension = _normalize_extensions(extension)
        # A missing default file is not an error at import time: the hub may supply it later.
        super().__init__(description=description, default=default)

    def check_default(self, default: Any) -> None:
        if not isinstance(default, str):
            raise ValidationError("must be a path")
        self._check_extension(default)

    def _check_extension(self, name: str) -> None:
        if self.extension and not name.lower().endswith(tuple(self.extension)):
            raise ValidationError(
                f"must be a {' or '.join(self.extension)} file, got {os.path.basename(name)!r}"
            )

    def _check_media_type(self, mime: str) -> None:
        """A data URI names a type: it must be one of the declared extensions' (a generic type, such
        as application/octet-stream, says nothing and passes)."""
        mime = (mime or "").split(";", 1)[0].strip().lower()
        if not mime or mime in _GENERIC_TYPES:
            return
        known = mimetypes.guess_all_extensions(mime)
        if known and not set(known) & set(self.extension or ()):
            raise ValidationError(
                f"must be a {' or '.join(self.extension or ())} file, got data of type {mime!r} "
                f"(a {known[0]} file)"
            )

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> str:
        ctx = ctx or DecodeContext()
        upload = self._upload(value)
        if upload is None:
            path = self._resolve_path(value, ctx)
            self._check_extension(path)
            if not os.path.isfile(path):
                raise ValidationError(f"names {value!r}, which is not an existing file")
            return path
        name = _safe_name(upload.filename)
        if not upload.named and self.extension:
            self._check_media_type(upload.content_type)
            name = "upload" + self.extension[0]  # no name to check: give it the declared extension
        self._check_extension(name)
        path = os.path.join(ctx.new_dir(), name)
        with open(path, "wb") as f:
            f.write(upload.body)
        return path

    def serialize(self, value: Any) -> str:
        path = os.fspath(value)
        with open(path, "rb") as f:
            data = f.read()
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return encode_data_uri(data, mime)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "extension": self.extension}

    def json_schema(self) -> dict:
        return {**super().json_schema(), "type": "string", "contentEncoding": "base64"}


#: Data URI types that say nothing of what the file is.
_GENERIC_TYPES = frozenset(
    {"application/octet-stream", "application/binary", "binary/octet-stream"}
)

_MAX_ARCHIVE_FILES = 10_000
_MAX_ARCHIVE_BYTES = 2 * 1024**3


def _extract_archive(data: bytes, dest: str) -> None:
    """Unpack a zip or tar archive into ``dest``, refusing absolute paths, ``..``, links and bombs."""
    try:
        _unpack_archive(data, dest)
    except ValidationError:
        raise
    except Exception as e:  # damaged data, an unsupported or encrypted entry, entries that clash
        raise ValidationError(
            f"is an archive that cannot be unpacked ({type(e).__name__}): "
            "send a whole .zip or .tar.gz of the directory"
        ) from None


def _unpack_archive(data: bytes, dest: str) -> None:
    buf = io.BytesIO(data)
    dest_real = os.path.realpath(dest)

    def target(name: str) -> str:
        norm = os.path.normpath(name.replace("\\", "/"))
        if os.path.isabs(norm) or norm.startswith(".."):
            raise ValidationError(f"is an archive with an unsafe path {name!r}")
        path = os.path.realpath(os.path.join(dest_real, norm))
        if not path.startswith(dest_real + os.sep) and path != dest_real:
            raise ValidationError(f"is an archive with an unsafe path {name!r}")
        return path

    if zipfile.is_zipfile(buf):
        count = zip_entry_count(buf)
        if count is not None and count > _MAX_ARCHIVE_FILES:  # before zipfile reads them all
            raise ValidationError(
                f"is an archive of {count:,} entries: send at most {_MAX_ARCHIVE_FILES:,}"
            )
        with zipfile.ZipFile(buf) as zf:
            infos = zf.infolist()
            if (
                len(infos) > _MAX_ARCHIVE_FILES
                or sum(i.file_size for i in infos) > _MAX_ARCHIVE_BYTES
            ):
                raise ValidationError("is an archive that unpacks to too many files or bytes")
            for info in infos:
                path = target(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise ValidationError(
                        f"is an archive with a link {info.filename!r}: not allowed"
                    )
                if info.is_dir():
                    os.makedirs(path, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with zf.open(info) as src, open(path, "wb") as out:
                    shutil.copyfileobj(src, out)
        return
    buf.seek(0)
    try:
        tf = tarfile.open(fileobj=buf, mode="r:*")  # noqa: SIM115 - closed by the with below
        members = []
        declared = 0
        for member in tf:  # one header at a time: stop at the limit, not after the last entry
            members.append(member)
            declared += member.size
            if len(members) > _MAX_ARCHIVE_FILES or declared > _MAX_ARCHIVE_BYTES:
                tf.close()
                raise ValidationError("is an archive that unpacks to too many files or bytes")
    except tarfile.TarError:
        raise ValidationError("must be a .zip or .tar(.gz) archive of the directory") from None
    with tf:
        for m in members:
            path = target(m.name)
            if m.isdir():
                os.makedirs(path, exist_ok=True)
            elif m.isfile():
                os.makedirs(os.path.dirname(path), exist_ok=True)
                src = tf.extractfile(m)
                with src, open(path, "wb") as out:
                    shutil.copyfileobj(src, out)
            else:
                raise ValidationError(
                    f"is an archive with a link or device {m.name!r}: not allowed"
                )


class directory(_PathType):
    """A directory, given to the model as a local path. A setup option may name a directory on the
    machine; a command input arrives as a .zip or .tar.gz archive (data URI or multipart part), which
    is unpacked safely into a temporary directory.

    >>> @modelcloud.setup(options={'weights': directory(default='models/')})
    """

    type_name = "directory"

    def __init__(self, default: Any = _MISSING, *, description: Optional[str] = None):
        super().__init__(description=description, default=default)

    def check_default(self, default: Any) -> None:
        if not isinstance(default, str):
            raise ValidationError("must be a path")

    def deserialize(self, value: Any, ctx: Optional[DecodeContext] = None) -> str:
        ctx = ctx or DecodeContext()
        upload = self._upload(value)
        if upload is None:
            path = self._resolve_path(value, ctx)
            if not os.path.isdir(path):
                raise ValidationError(f"names {value!r}, which is not an existing directory")
            return path
        path = ctx.new_dir()
        _extract_archive(upload.body, path)
        return path

    def serialize(self, value: Any) -> str:
        root = os.fspath(value)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for dirpath, _dirs, files in os.walk(root):
                for name in files:
                    full = os.path.join(dirpath, name)
                    zf.write(full, os.path.relpath(full, root))
        return encode_data_uri(buf.getvalue(), "application/zip")

    def json_schema(self) -> dict:
        return {**super().json_schema(), "type": "string", "contentEncoding": "base64"}


#: Every data type by its manifest name.
TYPES = {
    cls.type_name: cls
    for cls in (
        any,
        text,
        number,
        boolean,
        category,
        vector,
        image,
        segmentation,
        image_point,
        image_bounding_box,
        image_landmarks,
        array,
        file,
        directory,
    )
}


def is_builtin(t: Any) -> bool:
    """Whether ``t`` is one of modelcloud's own types (or a subclass of one), not a custom type."""
    return isinstance(t, tuple(TYPES.values()))


def from_spec(value: Any) -> BaseType:
    """A data type instance from an instance or a class (``text`` as well as ``text()``)."""
    if isinstance(value, BaseType):
        return value
    if isinstance(value, type) and issubclass(value, BaseType) and value is not BaseType:
        return value()
    raise TypeError(
        f"expected a data type such as text() or image(), got {value!r}; "
        f"the types are {', '.join(sorted(TYPES))}"
    )
