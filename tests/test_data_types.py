"""The fourteen data types: every constructor argument honoured and enforced, the messages a client
reads, the manifest and JSON Schema forms, output encoding, and one real server that speaks them all.

Values are checked in-process through ``deserialize`` / ``serialize`` on real PIL images, real archives
and real files; the last part of the module sends one good and one bad value per type over HTTP.
"""

from __future__ import annotations

import base64
import io
import json
import os
import resource
import struct
import tarfile
import tempfile
import textwrap
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import modelcloud
from modelcloud import data_types as dt
from modelcloud.archives import zip_entry_count
from modelcloud.data_types import DecodeContext, UploadedFile
from modelcloud.errors import ValidationError
from support import start_script

ALL_TYPE_NAMES = [
    "any",
    "text",
    "number",
    "boolean",
    "category",
    "vector",
    "image",
    "segmentation",
    "image_point",
    "image_bounding_box",
    "image_landmarks",
    "array",
    "file",
    "directory",
]

#: One plain instance of every type, built the way a cloud_model.py would.
FACTORIES = {
    "any": lambda **kw: dt.any(**kw),
    "text": lambda **kw: dt.text(**kw),
    "number": lambda **kw: dt.number(**kw),
    "boolean": lambda **kw: dt.boolean(**kw),
    "category": lambda **kw: dt.category(["a", "b"], **kw),
    "vector": lambda **kw: dt.vector(3, **kw),
    "image": lambda **kw: dt.image(**kw),
    "segmentation": lambda **kw: dt.segmentation({"bg": 0, "fg": 1}, **kw),
    "image_point": lambda **kw: dt.image_point(**kw),
    "image_bounding_box": lambda **kw: dt.image_bounding_box(**kw),
    "image_landmarks": lambda **kw: dt.image_landmarks(2, **kw),
    "array": lambda **kw: dt.array(dt.text(), **kw),
    "file": lambda **kw: dt.file(**kw),
    "directory": lambda **kw: dt.directory(**kw),
}


# -- helpers -------------------------------------------------------------------------------------------


def rgb_array(w: int = 8, h: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def smooth_image(w: int = 16, h: int = 12) -> Image.Image:
    """Gradients: what JPEG keeps well (random noise is not)."""
    x, y = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    return Image.fromarray(np.dstack([x, y, np.full_like(x, 128)]).astype(np.uint8))


def make_image(mode: str = "RGB", size: tuple = (8, 6), seed: int = 0) -> Image.Image:
    img = Image.fromarray(rgb_array(size[0], size[1], seed))
    return img if mode == "RGB" else img.convert(mode)


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def decode_uri(uri: str) -> tuple:
    head, payload = uri.split(",", 1)
    assert head.startswith("data:") and head.endswith(";base64"), head
    return head[5:-7], base64.b64decode(payload)


def open_uri(uri: str) -> Image.Image:
    mime, data = decode_uri(uri)
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_bomb(width: int, height: int, real_rows: bool) -> bytes:
    """A grayscale PNG that declares ``width`` x ``height``. With ``real_rows`` its IDAT really inflates
    to every row (a few hundred KB that decode to ~width*height bytes); otherwise it is a stub."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    if real_rows:
        comp = zlib.compressobj(1)
        total, chunk, parts = height * (width + 1), bytes(1 << 20), []
        while total > 0:
            parts.append(comp.compress(chunk[: min(total, len(chunk))]))
            total -= len(chunk)
        parts.append(comp.flush())
        idat = b"".join(parts)
    else:
        idat = zlib.compress(bytes(4096))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def rejects(t, value, fragment: str, ctx=None) -> str:
    """``t.deserialize(value)`` raises ValidationError whose message holds ``fragment``."""
    with pytest.raises(ValidationError) as info:
        t.deserialize(value, ctx)
    assert fragment in info.value.message, info.value.message
    assert info.value.field is None  # the registry names the input, not the type
    return info.value.message


def zip_bytes(entries: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"target")
            else:
                zf.writestr(name, data)
    return buf.getvalue()


def tar_bytes(members: list, mode: str = "w:gz") -> bytes:
    """``members``: (name, bytes) for files, or a prepared TarInfo for links and other kinds."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def tree(root: str) -> dict:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, root).replace(os.sep, "/")] = f.read()
    return out


@pytest.fixture
def ctx():
    c = DecodeContext()
    yield c
    c.cleanup()


@pytest.fixture
def path_ctx(tmp_path: Path):
    c = DecodeContext(allow_paths=True, base_dir=str(tmp_path))
    yield c
    c.cleanup()


# -- all types at once -----------------------------------------------------------------------------------


def test_every_type_is_exported_from_both_modules():
    assert sorted(dt.TYPES) == sorted(ALL_TYPE_NAMES)
    for name in ALL_TYPE_NAMES:
        cls = getattr(dt, name)
        assert getattr(modelcloud, name) is cls
        assert cls.type_name == name
        assert dt.TYPES[name] is cls


@pytest.mark.parametrize("name", ALL_TYPE_NAMES)
def test_to_dict_names_the_type_and_carries_the_description(name):
    t = FACTORIES[name](description="What it is")
    d = t.to_dict()
    assert d["type"] == name
    assert d["description"] == "What it is"
    json.dumps(d, allow_nan=False)  # the manifest is plain JSON
    schema = t.json_schema()
    assert schema["description"] == "What it is"
    json.dumps(schema, allow_nan=False)
    assert name in repr(t)


@pytest.mark.parametrize("name", ALL_TYPE_NAMES)
def test_description_must_be_text(name):
    with pytest.raises(TypeError, match="description must be a string"):
        FACTORIES[name](description=42)


def test_from_spec_takes_a_class_or_an_instance():
    t = dt.text(max_length=3)
    assert dt.from_spec(t) is t
    assert isinstance(dt.from_spec(dt.number), dt.number)
    with pytest.raises(TypeError, match="the types are"):
        dt.from_spec("text")
    with pytest.raises(TypeError):
        dt.from_spec(dt.BaseType)


# -- any -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [None, 0, -3.5, "", "héllo", True, [1, "a", None], {"k": [{"n": False}]}]
)
def test_any_passes_json_through(value):
    assert dt.any().deserialize(value) == value


def test_any_default_and_dict():
    assert dt.any().has_default is False
    t = dt.any(default={"a": 1})
    assert t.has_default and t.to_dict()["default"] == {"a": 1}
    assert t.default_value(DecodeContext()) == {"a": 1}
    assert dt.any().json_schema() == {}


def test_any_refuses_nesting_deeper_than_its_limit():
    def nest(n):
        v = 0
        for _ in range(n):
            v = [v]
        return v

    limit = dt._MAX_ANY_DEPTH
    assert dt.any().deserialize(nest(limit)) == nest(limit)
    rejects(dt.any(), nest(limit + 1), f"more than {limit} deep")
    rejects(dt.any(), {"a": nest(limit)}, "deep")


def test_any_reads_a_file_part_as_json_or_text():
    t = dt.any()
    assert t.deserialize(UploadedFile("v.json", b'{"a": [1, 2]}')) == {"a": [1, 2]}
    assert t.deserialize(UploadedFile("v.txt", "plain wörds".encode())) == "plain wörds"
    rejects(t, UploadedFile("v.bin", b"\xff\xfe\x00"), "UTF-8")


def test_any_serializes_numpy_torch_and_tuples():
    torch = pytest.importorskip("torch")
    out = dt.any().serialize(
        {
            "arr": np.arange(3, dtype=np.int64),
            "f": np.float32(0.5),
            "t": (1, 2),
            "tensor": torch.tensor([[1.5, 2.5]]),
            "nan": float("nan"),
            3: "int key",
        }
    )
    assert out == {
        "arr": [0, 1, 2],
        "f": 0.5,
        "t": [1, 2],
        "tensor": [[1.5, 2.5]],
        "nan": None,
        "3": "int key",
    }
    json.dumps(out, allow_nan=False)
    with pytest.raises(TypeError, match="cannot be sent as JSON"):
        dt.any().serialize({"x": object()})


# -- text ----------------------------------------------------------------------------------------------


def test_text_accepts_strings_within_its_lengths():
    t = dt.text(min_length=2, max_length=4)
    for value in ("ab", "abc", "abcd", "日本語"):
        assert t.deserialize(value) == value
    assert dt.text().deserialize("") == ""


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("a", "must be at least 2 characters long, got 1"),
        ("abcde", "must be at most 4 characters long, got 5"),
        (5, "must be text (a JSON string), got the number 5"),
        (None, "got null"),
        (["ab"], "got a list of 1 items"),
        ({"a": 1}, "got an object"),
        (True, "got a boolean"),
        (UploadedFile("a.txt", b"hi"), "got the file part 'a.txt'"),
    ],
)
def test_text_rejects(value, fragment):
    rejects(dt.text(min_length=2, max_length=4), value, fragment)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_length": -1},
        {"min_length": 3, "max_length": 2},
        {"min_length": 1.5},
        {"max_length": "10"},
        {"default": "toolong", "max_length": 3},
        {"default": "", "min_length": 1},
        {"default": 5},
    ],
)
def test_text_construction_errors(kwargs):
    with pytest.raises(ValueError):
        dt.text(**kwargs)


def test_text_default_error_says_default():
    with pytest.raises(ValueError, match="default 'toolong' must be at most 3"):
        dt.text(default="toolong", max_length=3)


def test_text_dict_schema_and_output():
    t = dt.text(default="hi", min_length=1, max_length=8, description="A prompt")
    assert t.to_dict() == {
        "type": "text",
        "description": "A prompt",
        "default": "hi",
        "minLength": 1,
        "maxLength": 8,
    }
    assert t.json_schema() == {
        "description": "A prompt",
        "type": "string",
        "minLength": 1,
        "maxLength": 8,
        "default": "hi",
    }
    assert dt.text(default="").default_value(DecodeContext()) == ""  # a falsy default counts
    assert "default" not in dt.text().to_dict()
    assert t.serialize("x") == "x"
    assert t.serialize("é".encode()) == "é"
    assert t.serialize(3) == "3"
    assert t.serialize(np.float32(1.5)) == "1.5"
    assert t.serialize(np.str_("np")) == "np"
    with pytest.raises(TypeError):
        t.serialize(["a"])


# -- number --------------------------------------------------------------------------------------------


def test_number_accepts_values_in_range_inclusive():
    t = dt.number(min=1, max=10)
    for value in (1, 10, 5.5, np.int64(3), np.float32(2.5)):
        out = t.deserialize(value)
        assert out == value and type(out) in (int, float)


@pytest.mark.parametrize(
    "t, value, fragment",
    [
        (dt.number(max=10), 42, "must be at most 10, got 42"),
        (dt.number(min=1), 0, "must be at least 1, got 0"),
        (dt.number(min=-2.5), -3, "must be at least -2.5, got -3"),
        (dt.number(), "5", "must be a number, got the text '5'"),
        (dt.number(), True, "must be a number, got a boolean"),
        (dt.number(), None, "must be a number, got null"),
        (dt.number(), [1], "must be a number, got a list"),
        (dt.number(), float("nan"), "must be a finite number"),
        (dt.number(), float("inf"), "must be a finite number"),
        (dt.number(), -float("inf"), "must be a finite number"),
        pytest.param(dt.number(), 10**400, "within float range", id="huge-int"),
        (dt.number(step=0.5), 1e308, "multiple of 0.5"),
    ],
)
def test_number_rejects(t, value, fragment):
    rejects(t, value, fragment)


def test_number_step_counts_from_min():
    t = dt.number(min=1, max=9, step=2)
    for ok in (1, 3, 5, 9, 3.0):
        assert t.deserialize(ok) == ok
    msg = rejects(t, 4, "must be a multiple of 2 from 1")
    assert "like 3 or 5" in msg and "got 4" in msg
    # without a min, steps count from 0
    t0 = dt.number(step=0.5)
    assert t0.deserialize(-1.5) == -1.5
    rejects(t0, 1.2, "must be a multiple of 0.5 from 0")
    # float steps: decimal values that are not exact in binary still count as on the step
    tf = dt.number(min=0.1, max=1, step=0.1)
    for ok in (0.1, 0.3, 0.7, 1.0):
        assert tf.deserialize(ok) == ok
    rejects(tf, 0.15, "multiple of 0.1 from 0.1")


def test_number_default_zero_is_a_default():
    t = dt.number(default=0, min=0, max=5)
    assert t.has_default
    assert t.to_dict()["default"] == 0
    assert t.json_schema()["default"] == 0
    assert t.default_value(DecodeContext()) == 0
    assert dt.number().has_default is False
    assert "default" not in dt.number().to_dict()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"default": 0, "min": 1}, "default 0 must be at least 1"),
        ({"default": 11, "max": 10}, "default 11 must be at most 10"),
        ({"default": "3"}, "must be a number"),
        ({"default": float("nan")}, "finite"),
        ({"min": 5, "max": 1}, "min \\(5\\) is greater than max \\(1\\)"),
        ({"step": 0}, "step must be positive"),
        ({"step": -1}, "step must be positive"),
        ({"step": float("nan")}, "step must be a finite number"),
        ({"min": float("-inf")}, "min must be a finite number"),
        ({"max": "10"}, "max must be a finite number"),
        ({"min": True}, "min must be a finite number"),
    ],
)
def test_number_construction_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dt.number(**kwargs)


def test_number_dict_schema_and_output():
    torch = pytest.importorskip("torch")
    t = dt.number(default=2, min=0, max=10, step=0.5)
    assert t.to_dict() == {
        "type": "number",
        "description": None,
        "default": 2,
        "min": 0,
        "max": 10,
        "step": 0.5,
    }
    assert t.json_schema() == {
        "type": "number",
        "minimum": 0,
        "maximum": 10,
        "multipleOf": 0.5,
        "default": 2,
    }
    # a step counted from a non-zero min is not a JSON Schema multipleOf
    assert "multipleOf" not in dt.number(min=1, step=2).json_schema()
    assert t.serialize(np.float32(1.5)) == 1.5 and type(t.serialize(np.float32(1.5))) is float
    assert t.serialize(np.int64(7)) == 7 and type(t.serialize(np.int64(7))) is int
    assert t.serialize(torch.tensor(2.5)) == 2.5
    assert t.serialize(float("nan")) is None
    with pytest.raises(TypeError):
        t.serialize("1")


# -- boolean -------------------------------------------------------------------------------------------


def test_boolean_values():
    t = dt.boolean()
    assert t.deserialize(True) is True
    assert t.deserialize(False) is False
    assert t.deserialize(np.bool_(True)) is True
    for bad, frag in (
        (1, "the number 1"),
        ("true", "the text 'true'"),
        (None, "null"),
        ([], "a list of 0 items"),
    ):
        rejects(t, bad, f"must be true or false, got {frag}")


def test_boolean_default_dict_schema_and_output():
    t = dt.boolean(default=False, description="Flip")
    assert t.has_default and t.default_value(DecodeContext()) is False
    assert t.to_dict() == {"type": "boolean", "description": "Flip", "default": False}
    assert t.json_schema() == {"description": "Flip", "type": "boolean", "default": False}
    assert t.serialize(np.bool_(True)) is True
    for wrong in (0, 1, "False", "true", None):  # checked, never coerced: bool("False") is True
        with pytest.raises(TypeError, match="a boolean output must be True or False"):
            t.serialize(wrong)
    with pytest.raises(ValueError, match="must be true or false"):
        dt.boolean(default="yes")


# -- category ------------------------------------------------------------------------------------------


def test_category_accepts_only_its_choices():
    t = dt.category(["sketch", "oil", "watercolor"])
    assert t.deserialize("oil") == "oil"
    msg = rejects(t, "pastel", "must be one of 'sketch', 'oil', 'watercolor'")
    assert "got the text 'pastel'" in msg
    rejects(t, "Oil", "must be one of")
    rejects(t, 1, "got the number 1")
    rejects(t, ["oil"], "got a list")
    rejects(t, {"oil": 1}, "got an object")
    many = dt.category([f"c{i}" for i in range(30)])
    assert many.deserialize("c29") == "c29"
    assert ", ..." in rejects(many, "zzz", "must be one of 'c0'")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"choices": []},
        {"choices": None},
        {"choices": "ab"},
        {"choices": ["a", True]},
        {"choices": [1, float("nan")]},
        {"choices": [1, 1.0]},
        {"choices": [{"a": 1}]},
        {"choices": ["a", "a"]},
        {"choices": ["a", "b"], "default": "c"},
        {"choices": ["a", "b"], "default": 0},
    ],
)
def test_category_construction_errors(kwargs):
    with pytest.raises(ValueError):
        dt.category(**kwargs)


def test_category_dict_schema_and_output():
    t = dt.category(["a", "b"], default="b")
    assert t.to_dict() == {
        "type": "category",
        "description": None,
        "default": "b",
        "oneOf": ["a", "b"],
    }
    assert t.json_schema() == {"type": "string", "enum": ["a", "b"], "default": "b"}
    assert t.default_value(DecodeContext()) == "b"
    assert "default" not in dt.category(["x", "y"]).to_dict()  # only a declared default is shown
    assert t.serialize("a") == "a"
    with pytest.raises(TypeError):
        t.serialize("c")


# -- vector --------------------------------------------------------------------------------------------


def test_vector_gives_the_model_float32():
    torch = pytest.importorskip("torch")
    t = dt.vector(3)
    for value in ([1, 2.5, -3], (0, 0, 0), np.array([1.0, 2.0, 3.0]), torch.tensor([0.5, 1, 2])):
        out = t.deserialize(value)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (3,)
        np.testing.assert_allclose(out, np.asarray(value, dtype=np.float64), rtol=1e-6)


@pytest.mark.parametrize(
    "value, fragment",
    [
        ([1, 2], "must have exactly 3 numbers, got 2"),
        ([1, 2, 3, 4], "must have exactly 3 numbers, got 4"),
        ("1,2,3", "must be a list of 3 numbers, got the text"),
        (None, "must be a list of 3 numbers, got null"),
        ([1, float("nan"), 3], "must be a finite number at index 1"),
        ([1, 2, float("inf")], "must be a finite number at index 2"),
        (["1", 2, 3], "must be a number at index 0"),
        ([1, True, 3], "must be a number at index 1"),
        ([1, 2, 1e300], "at index 2"),  # finite, but inf as float32
        pytest.param([10**400, 2, 3], "at index 0", id="huge-int"),
    ],
)
def test_vector_rejects(value, fragment):
    rejects(dt.vector(3), value, fragment)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"length": None},
        {"length": 0},
        {"length": 2.0},
        {"length": True},
        {"length": 3, "default": [1, 2]},
        {"length": 2, "default": [0, float("nan")]},
        {"length": 3, "sampling_std": -1},
        {"length": 3, "sampling_std": float("nan")},
        {"length": 3, "sampling_mean": "0"},
    ],
)
def test_vector_construction_errors(kwargs):
    with pytest.raises(ValueError):
        dt.vector(**kwargs)


def test_vector_dict_schema_and_output():
    torch = pytest.importorskip("torch")
    t = dt.vector(length=4, default=np.zeros(4), sampling_mean=0.5, sampling_std=2)
    assert t.to_dict() == {
        "type": "vector",
        "description": None,
        "default": [0.0, 0.0, 0.0, 0.0],
        "length": 4,
        "samplingMean": 0.5,
        "samplingStd": 2,
    }
    assert t.json_schema() == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 4,
        "maxItems": 4,
    }
    default = t.default_value(DecodeContext())
    assert default.dtype == np.float32 and default.tolist() == [0, 0, 0, 0]
    assert t.serialize(np.array([[1, 2], [3, 4]], dtype=np.float32)) == [1.0, 2.0, 3.0, 4.0]
    assert t.serialize(torch.tensor([0.25, 0.5, float("nan"), 1])) == [0.25, 0.5, None, 1.0]
    with pytest.raises(TypeError, match="4 numbers, got 3"):
        t.serialize([1, 2, 3])


# -- image ---------------------------------------------------------------------------------------------

SOURCE_IMAGES = {
    "L-png": lambda: encode(make_image("L")),
    "LA-png": lambda: encode(make_image("LA")),
    "RGB-png": lambda: encode(make_image("RGB")),
    "RGBA-png": lambda: encode(make_image("RGBA")),
    "P-png": lambda: encode(make_image("P")),
    "1-png": lambda: encode(make_image("1")),
    "I16-png": lambda: encode(make_image("L").convert("I;16")),
    "RGB-jpeg": lambda: encode(make_image("RGB"), "JPEG"),
    "CMYK-jpeg": lambda: encode(make_image("CMYK"), "JPEG"),
    "LAB-tiff": lambda: encode(make_image("LAB"), "TIFF"),
    "RGB-gif": lambda: encode(make_image("RGB"), "GIF"),
    "RGB-bmp": lambda: encode(make_image("RGB"), "BMP"),
    "RGBA-webp": lambda: encode(make_image("RGBA"), "WEBP"),
}


@pytest.mark.parametrize("source", sorted(SOURCE_IMAGES))
@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_image_converts_every_source_to_the_declared_channels(source, channels, mode, ctx):
    img = dt.image(channels=channels).deserialize(SOURCE_IMAGES[source](), ctx)
    assert isinstance(img, Image.Image)
    assert img.mode == mode
    assert img.size == (8, 6)


def test_image_keeps_pixels_exactly_from_png(ctx):
    pixels = rgb_array(9, 5, seed=3)
    png = encode(Image.fromarray(pixels))
    for value in (
        data_uri(png),
        base64.b64encode(png).decode(),  # bare base64
        base64.urlsafe_b64encode(png).decode().rstrip("="),  # url-safe, unpadded
        "data:image/png;base64,\n" + base64.encodebytes(png).decode(),  # wrapped lines
        png,
        UploadedFile("photo.png", png, "image/png"),
        Image.fromarray(pixels),
    ):
        img = dt.image().deserialize(value, ctx)
        np.testing.assert_array_equal(np.asarray(img), pixels)
    gray = np.asarray(dt.image(channels=1).deserialize(data_uri(png), ctx))
    np.testing.assert_array_equal(gray, np.asarray(Image.fromarray(pixels).convert("L")))
    rgba = np.asarray(dt.image(channels=4).deserialize(data_uri(png), ctx))
    np.testing.assert_array_equal(rgba[..., :3], pixels)
    assert (rgba[..., 3] == 255).all()


def test_image_palette_transparency_to_rgb(ctx):
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    img = dt.image().deserialize(encode(pal), ctx)
    assert img.getpixel((0, 0)) == (255, 0, 0)
    assert img.getpixel((1, 0)) == (0, 0, 255)


def test_image_applies_exif_orientation(ctx):
    src = make_image("RGB", (4, 2))
    exif = src.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img = dt.image(width=2, height=4).deserialize(encode(src, "JPEG", exif=exif), ctx)
    assert img.size == (2, 4)


@pytest.mark.parametrize(
    "kwargs, size, fragment",
    [
        ({"min_width": 10}, (9, 20), "must be at least 10 pixels wide, got 9"),
        ({"min_height": 10}, (20, 9), "must be at least 10 pixels high, got 9"),
        ({"max_width": 10}, (11, 5), "must be at most 10 pixels wide, got 11"),
        ({"max_height": 10}, (5, 11), "must be at most 10 pixels high, got 11"),
        ({"width": 8, "height": 8}, (8, 7), "must be exactly 8x8 pixels, got 8x7"),
        ({"width": 8}, (7, 3), "must be exactly 8 pixels wide, got 7"),
        ({"height": 8}, (3, 9), "must be exactly 8 pixels high, got 9"),
    ],
)
def test_image_size_limits(kwargs, size, fragment, ctx):
    t = dt.image(**kwargs)
    rejects(t, data_uri(encode(make_image("RGB", size))), fragment, ctx)
    # the limits hold for a PIL image handed over in-process too
    rejects(t, make_image("RGB", size), fragment, ctx)


@pytest.mark.parametrize(
    "kwargs, size",
    [
        ({"min_width": 10, "min_height": 5}, (10, 5)),
        ({"max_width": 10, "max_height": 5}, (10, 5)),
        ({"width": 8, "height": 8}, (8, 8)),
        ({"width": 8}, (8, 1)),
        ({"min_width": 2, "max_width": 4, "min_height": 2, "max_height": 4}, (3, 2)),
    ],
)
def test_image_sizes_within_limits(kwargs, size, ctx):
    assert dt.image(**kwargs).deserialize(encode(make_image("RGB", size)), ctx).size == size


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("data:image/png;base64,!!!notbase64", "is not valid base64"),
        ("@@@@", "is not valid base64"),
        ("data:image/png;base64,", "is empty"),
        ("", "is empty"),
        ("data:image/png,iVBORw0KGgo", "must be a base64 data URI"),
        ("data:image/png;base64,é", "is not valid base64"),
        (12, "must be base64 text or a data URI, got the number 12"),
        (None, "got null"),
        ({"data": "x"}, "got an object"),
        (data_uri(b"hello, this is text"), "is not an image that can be read"),
        (b"\x89PNG\r\n\x1a\nnot really", "is not an image that can be read"),
    ],
)
def test_image_bad_values(value, fragment, ctx):
    rejects(dt.image(), value, fragment, ctx)


def test_image_bytes_a_pillow_plugin_chokes_on(ctx):
    # a DDS header with unknown pixel-format flags: Pillow raises NotImplementedError while opening
    dds = bytearray(encode(make_image(), "DDS"))
    dds[80:84] = struct.pack("<I", 0x2000)
    rejects(dt.image(), bytes(dds), "is not an image that can be read", ctx)
    rejects(dt.segmentation({"a": 0}), bytes(dds), "is not an image that can be read", ctx)


def test_image_truncated(ctx):
    png = encode(make_image("RGB", (64, 64)))
    rejects(dt.image(), png[: len(png) // 2], "damaged or truncated", ctx)
    jpeg = encode(make_image("RGB", (64, 64)), "JPEG")
    with pytest.raises(ValidationError):
        dt.image().deserialize(jpeg[: len(jpeg) // 3], ctx)


def test_image_decompression_bomb_is_refused_before_decoding(ctx):
    limit = dt.DEFAULT_MAX_PIXELS
    # a real bomb: ~250 KB that inflate to just over the limit, under Pillow's own bomb check
    side = int(limit**0.5) + 10
    bomb = png_bomb(side, side, real_rows=True)
    assert len(bomb) < 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    msg = rejects(dt.image(), data_uri(bomb), "over the limit", ctx)
    assert time.perf_counter() - start < 1.0
    assert f"{side}x{side}" in msg and f"{limit:,}" in msg
    # decoding it would have touched side*side bytes (~50 MB); nothing near that was allocated
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 20_000
    # a declared size so large that Pillow refuses to open it at all
    start = time.perf_counter()
    rejects(dt.segmentation({"a": 0}), png_bomb(100_000, 100_000, False), "pixels", ctx)
    rejects(dt.image(), png_bomb(100_000, 100_000, False), "pixels", ctx)
    assert time.perf_counter() - start < 1.0


def test_image_pixel_limit_comes_from_the_context():
    small = DecodeContext(max_pixels=100)
    rejects(
        dt.image(), encode(make_image("RGB", (11, 10))), "110 pixels, over the limit of 100", small
    )
    assert dt.image().deserialize(encode(make_image("RGB", (10, 10))), small).size == (10, 10)


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_image_output_format_round_trip(fmt, mime, channels, ctx):
    t = dt.image(channels=channels, default_output_format=fmt.lower())
    assert t.to_dict()["defaultOutputFormat"] == fmt
    src = dt.image(channels=channels).deserialize(smooth_image(16, 12))
    uri = t.serialize(src)
    got_mime, data = decode_uri(uri)
    assert got_mime == mime
    back = Image.open(io.BytesIO(data))
    assert back.format == fmt
    assert back.size == (16, 12)
    again = t.deserialize(uri, ctx)  # what the server sends, a client can send back
    expected = np.asarray(src, dtype=np.int16)
    if fmt == "JPEG" and channels == 4:
        expected = expected[..., :3]  # JPEG has no alpha
        again = again.convert("RGB")
    diff = np.abs(np.asarray(again, dtype=np.int16) - expected)
    if fmt == "PNG":
        assert diff.max() == 0
    else:
        assert diff.mean() < 3  # lossy, but the same picture


def test_image_default_output_format_follows_channels():
    assert dt.image().output_format == "JPEG"
    assert dt.image(channels=1).output_format == "PNG"
    assert dt.image(channels=4).output_format == "PNG"
    assert dt.image(default_output_format="jpg").output_format == "JPEG"
    assert (
        dt.image(default_output_format="webp")
        .serialize(make_image())
        .startswith("data:image/webp;base64,")
    )
    assert dt.image().serialize(make_image()).startswith("data:image/jpeg;base64,")
    assert dt.image(channels=4).serialize(make_image()).startswith("data:image/png;base64,")


def test_image_serializes_arrays_and_tensors():
    torch = pytest.importorskip("torch")
    t = dt.image(channels=3, default_output_format="PNG")
    pixels = rgb_array(7, 5, seed=9)
    # HxWx3 uint8
    np.testing.assert_array_equal(np.asarray(open_uri(t.serialize(pixels))), pixels)
    # CHW float tensor in [0, 1], as torch keeps images
    chw = torch.tensor(pixels.transpose(2, 0, 1) / 255.0, dtype=torch.float32)
    np.testing.assert_array_equal(np.asarray(open_uri(t.serialize(chw))), pixels)
    # floats in [0, 1] are scaled; 0.5 -> 128
    half = open_uri(t.serialize(np.full((4, 6, 3), 0.5)))
    assert half.size == (6, 4) and np.asarray(half).max() == 128
    # integers are pixel values, not scaled
    g = dt.image(channels=1)
    ones = open_uri(g.serialize(np.ones((3, 3), dtype=np.int64)))
    assert ones.mode == "L" and np.asarray(ones).max() == 1
    # out-of-range values are clipped, HxWx1 and 1xHxW are grayscale
    np.testing.assert_array_equal(
        np.asarray(open_uri(g.serialize(np.array([[-5.0, 300.0]])))), [[0, 255]]
    )
    assert open_uri(g.serialize(np.zeros((5, 4, 1), dtype=np.uint8))).size == (4, 5)
    assert open_uri(g.serialize(torch.zeros(1, 5, 7))).size == (7, 5)
    # RGBA arrays
    rgba = np.dstack([pixels, np.full(pixels.shape[:2], 7, np.uint8)])
    out = open_uri(dt.image(channels=4).serialize(rgba))
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out), rgba)
    for bad in (np.zeros((2, 2, 2, 2)), np.zeros(5), np.zeros((5, 5, 2))):
        with pytest.raises(TypeError, match="HxW"):
            t.serialize(bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channels": 2},
        {"channels": "3"},
        {"min_width": 0},
        {"max_height": -1},
        {"width": 1.5},
        {"height": True},
        {"default_output_format": "GIF"},
        {"default_output_format": "tiff"},
    ],
)
def test_image_construction_errors(kwargs):
    with pytest.raises(ValueError):
        dt.image(**kwargs)


def test_image_dict_and_schema():
    t = dt.image(channels=4, min_width=2, min_height=3, max_width=40, max_height=50)
    assert t.to_dict() == {
        "type": "image",
        "description": None,
        "channels": 4,
        "minWidth": 2,
        "minHeight": 3,
        "maxWidth": 40,
        "maxHeight": 50,
        "width": None,
        "height": None,
        "defaultOutputFormat": "PNG",
    }
    sized = dt.image(width=224, height=224).to_dict()
    assert (sized["width"], sized["height"], sized["defaultOutputFormat"]) == (224, 224, "JPEG")
    schema = t.json_schema()
    assert schema["type"] == "string"
    assert schema["contentEncoding"] == "base64"
    assert schema["contentMediaType"] == "image/*"


# -- segmentation --------------------------------------------------------------------------------------

LABELS = {"background": 0, "person": 1, "car": 7}
COLORS = {"background": [0, 0, 0], "person": [255, 0, 0], "car": [0, 0, 255]}
IDS = np.array([[0, 1, 7, 7], [1, 1, 0, 7], [0, 0, 0, 1]], dtype=np.uint8)


def test_segmentation_ids_from_grayscale_and_palette(ctx):
    t = dt.segmentation(LABELS, COLORS)
    out = t.deserialize(data_uri(encode(Image.fromarray(IDS, "L"))), ctx)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, IDS)
    pal = Image.frombytes("P", (IDS.shape[1], IDS.shape[0]), IDS.tobytes())
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    np.testing.assert_array_equal(t.deserialize(encode(pal), ctx), IDS)
    # in-process: an array of ids, any integer dtype
    np.testing.assert_array_equal(t.deserialize(IDS.astype(np.int64)), IDS)


def test_segmentation_ids_from_label_colours(ctx):
    t = dt.segmentation(LABELS, COLORS)
    by_id = {i: COLORS[label] for label, i in LABELS.items()}
    rgb = np.array([[by_id[i] for i in row] for row in IDS], dtype=np.uint8)
    np.testing.assert_array_equal(t.deserialize(encode(Image.fromarray(rgb)), ctx), IDS)
    rgba = np.dstack([rgb, np.full(IDS.shape, 255, np.uint8)])
    np.testing.assert_array_equal(t.deserialize(encode(Image.fromarray(rgba)), ctx), IDS)


def test_segmentation_rejects_unknown_ids_and_colours(ctx):
    t = dt.segmentation(LABELS, COLORS)
    bad = IDS.copy()
    bad[0, 0] = 3
    bad[1, 1] = 200
    msg = rejects(t, encode(Image.fromarray(bad, "L")), "holds label ids [3, 200]", ctx)
    assert "not in label_to_id" in msg
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[1, 1] = [1, 2, 3]
    rejects(t, encode(Image.fromarray(rgb)), "has the colour [1, 2, 3]", ctx)
    rejects(t, b"not a png", "is not an image", ctx)
    rejects(t, "!!", "is not valid base64", ctx)
    rejects(t, np.zeros((2, 2, 3), dtype=np.uint8), "single-channel", ctx)
    rejects(t, np.full((2, 2), 256), "between 0 and 255", ctx)
    rejects(t, np.full((2, 2), 0.5), "whole-number", ctx)


def test_segmentation_size_limits(ctx):
    exact = dt.segmentation(LABELS, width=4, height=3)
    np.testing.assert_array_equal(exact.deserialize(encode(Image.fromarray(IDS, "L")), ctx), IDS)
    rejects(
        exact, encode(Image.fromarray(IDS[:2], "L")), "must be exactly 4x3 pixels, got 4x2", ctx
    )
    rejects(exact, IDS[:, :3], "must be exactly 4x3 pixels, got 3x3", ctx)
    rejects(dt.segmentation(LABELS, max_width=3), IDS, "at most 3 pixels wide", ctx)
    rejects(dt.segmentation(LABELS, min_height=4), IDS, "at least 4 pixels high", ctx)


def test_segmentation_serializes_a_palette_png_that_keeps_ids(ctx):
    torch = pytest.importorskip("torch")
    t = dt.segmentation(LABELS, COLORS)
    for value in (
        IDS,
        IDS.astype(np.int64),
        torch.tensor(IDS.astype(np.int64)),
        Image.fromarray(IDS),
    ):
        uri = t.serialize(value)
        mime, data = decode_uri(uri)
        assert mime == "image/png"
        img = Image.open(io.BytesIO(data))
        assert img.format == "PNG" and img.mode == "P"
        np.testing.assert_array_equal(np.asarray(img), IDS)
        palette = img.getpalette()
        for label, i in LABELS.items():
            assert palette[3 * i : 3 * i + 3] == COLORS[label]
        # the client can send it straight back
        np.testing.assert_array_equal(t.deserialize(uri, ctx), IDS)
    for bad in (np.full((2, 2), 5), np.zeros((2, 2, 3)), np.full((2, 2), 263)):
        with pytest.raises(TypeError, match="segmentation output"):
            t.serialize(bad)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((None,), {}),
        (({},), {}),
        (({"a": 256},), {}),
        (({"a": -1},), {}),
        (({"a": "0"},), {}),
        (({1: 0},), {}),
        (({"a": 0, "b": 0},), {}),
        (({"a": 0},), {"label_to_color": {"b": [1, 2, 3]}}),
        (({"a": 0},), {"label_to_color": {"a": [1, 2]}}),
        (({"a": 0},), {"label_to_color": {"a": [1, 2, 256]}}),
        (({"a": 0, "b": 1},), {"label_to_color": {"a": [9, 9, 9], "b": [9, 9, 9]}}),
        (({"a": 0},), {"default_label": "b"}),
        (({"a": 0},), {"width": 0}),
    ],
)
def test_segmentation_construction_errors(args, kwargs):
    with pytest.raises(ValueError):
        dt.segmentation(*args, **kwargs)


def test_segmentation_dict_and_default_colours():
    t = dt.segmentation(LABELS, COLORS, default_label="person", width=4, height=3)
    d = t.to_dict()
    assert d["labelToId"] == LABELS
    assert d["labelToColor"] == COLORS
    assert d["defaultLabel"] == "person"
    assert (d["width"], d["height"], d["minWidth"], d["maxHeight"]) == (4, 3, None, None)
    assert t.json_schema()["contentEncoding"] == "base64"
    # without colours (or with some), every label gets a distinct one, and the first label is the default
    for colors in (None, {"car": [0, 0, 0]}):
        auto = dt.segmentation(LABELS, colors).to_dict()
        assert set(auto["labelToColor"]) == set(LABELS)
        assert len({tuple(c) for c in auto["labelToColor"].values()}) == len(LABELS)
        assert auto["defaultLabel"] == "background"
    assert dt.segmentation(LABELS, {"car": [0, 0, 0]}).to_dict()["labelToColor"]["car"] == [0, 0, 0]


# -- image_point, image_bounding_box, image_landmarks ------------------------------------------------------


def test_image_point():
    torch = pytest.importorskip("torch")
    t = dt.image_point()
    assert t.deserialize([0.5, 0.25]) == [0.5, 0.25]
    assert t.deserialize((0, 1)) == [0.0, 1.0]
    assert all(isinstance(v, float) for v in t.deserialize([0, 1]))
    for bad, frag in (
        ([1.5, 0], "coordinates between 0 and 1"),
        ([0.5, -0.1], "coordinates between 0 and 1"),
        ([0.5], "must be a point [x, y], got a list of 1 items"),
        ([0.1, 0.2, 0.3], "must be a point [x, y]"),
        ("0.5,0.5", "must be a point [x, y], got the text"),
        ([float("nan"), 0], "finite"),
        (["0", 0], "must be a number"),
        ([True, 0], "must be a number"),
    ):
        rejects(t, bad, frag)
    assert t.serialize(np.array([0.5, 0.5])) == [0.5, 0.5]
    assert t.serialize(torch.tensor([0.0, 1.0])) == [0.0, 1.0]
    with pytest.raises(TypeError, match="image_point output"):
        t.serialize([2, 0])
    assert dt.image_point(default=[0.5, 0.5]).to_dict()["default"] == [0.5, 0.5]
    with pytest.raises(ValueError):
        dt.image_point(default=[2, 2])
    s = t.json_schema()
    assert s["minItems"] == s["maxItems"] == 2 and s["items"]["maximum"] == 1


def test_image_bounding_box():
    t = dt.image_bounding_box()
    assert t.deserialize([0.1, 0.2, 0.3, 0.4]) == [0.1, 0.2, 0.3, 0.4]
    assert t.deserialize([0.5, 0.5, 0.5, 0.5]) == [0.5, 0.5, 0.5, 0.5]
    for bad, frag in (
        ([0.5, 0.1, 0.4, 0.2], "must have xmin <= xmax and ymin <= ymax"),
        ([0.1, 0.5, 0.2, 0.4], "must have xmin <= xmax and ymin <= ymax"),
        ([0.1, 0.2, 1.3, 0.4], "between 0 and 1"),
        ([0.1, 0.2, 0.3], "must be a box [xmin, ymin, xmax, ymax]"),
        ({"xmin": 0}, "must be a box"),
        ([0.1, None, 0.3, 0.4], "must be a number"),
    ):
        rejects(t, bad, frag)
    assert t.serialize(np.array([0.0, 0.0, 1.0, 1.0])) == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(TypeError):
        t.serialize([0.9, 0, 0.1, 1])
    with pytest.raises(ValueError):
        dt.image_bounding_box(default=[0.9, 0, 0.1, 1])
    s = t.json_schema()
    assert s["minItems"] == s["maxItems"] == 4


def test_image_landmarks():
    t = dt.image_landmarks(3, labels=["l", "r", "n"], connections=[["l", "n"], ("r", "n")])
    assert t.deserialize([[0, 0], [1, 1], (0.5, 0.5)]) == [[0, 0], [1, 1], [0.5, 0.5]]
    rejects(t, [[0, 0], [1, 1]], "must have exactly 3 points, got 2")
    rejects(t, [[0, 0], [1, 2], [0, 0]], "at index 1")
    rejects(t, [[0, 0], [1], [0, 0]], "must be a point [x, y] at index 1")
    rejects(t, "points", "must be a list of 3 points")
    assert t.to_dict() == {
        "type": "image_landmarks",
        "description": None,
        "length": 3,
        "labels": ["l", "r", "n"],
        "connections": [["l", "n"], ["r", "n"]],
    }
    s = t.json_schema()
    assert s["minItems"] == s["maxItems"] == 3
    assert t.serialize(np.full((3, 2), 0.5)) == [[0.5, 0.5]] * 3
    with pytest.raises(TypeError):
        t.serialize(np.full((2, 2), 0.5))
    plain = dt.image_landmarks(2).to_dict()
    assert plain["labels"] is None and plain["connections"] is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"length": None},
        {"length": 0},
        {"length": 2, "labels": ["a"]},
        {"length": 2, "labels": ["a", 1]},
        {"length": 2, "labels": ["a", "a"]},
        {"length": 2, "labels": "ab"},
        {"length": 2, "connections": [["a", "b"]]},
        {"length": 2, "labels": ["a", "b"], "connections": [["a", "c"]]},
        {"length": 2, "labels": ["a", "b"], "connections": [["a"]]},
        {"length": 2, "labels": ["a", "b"], "connections": [1]},
        {"length": 2, "labels": ["a", "b"], "connections": "ab"},
        {"length": 2, "default": [[0, 0]]},
    ],
)
def test_image_landmarks_construction_errors(kwargs):
    with pytest.raises(ValueError):
        dt.image_landmarks(**kwargs)


# -- array ---------------------------------------------------------------------------------------------


def test_array_checks_every_item_and_names_the_index(ctx):
    t = dt.array(dt.number(max=10), min_length=1, max_length=3)
    assert t.deserialize([1, 2.5]) == [1, 2.5]
    rejects(t, [1, 42], "item 1 must be at most 10, got 42")
    rejects(t, ["a"], "item 0 must be a number")
    rejects(t, [], "must have at least 1 items, got 0")
    rejects(t, [1, 2, 3, 4], "must have at most 3 items, got 4")
    rejects(t, "1,2", "must be a list, got the text")
    rejects(t, {"0": 1}, "must be a list, got an object")
    # item types decode too: images become PIL images
    images = dt.array(dt.image(channels=1)).deserialize(
        [data_uri(encode(make_image())), encode(make_image("RGBA"))], ctx
    )
    assert [i.mode for i in images] == ["L", "L"]
    rejects(
        dt.array(dt.image()), [data_uri(encode(make_image())), "!!"], "item 1 is not valid base64"
    )
    nested = dt.array(dt.array(dt.text(max_length=1)))
    assert nested.deserialize([["a"], []]) == [["a"], []]
    rejects(nested, [["a"], ["b", "cc"]], "item 1 item 1 must be at most 1 characters long")


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((None,), {}),
        (("text",), {}),
        ((dt.text(),), {"min_length": -1}),
        ((dt.text(),), {"min_length": 2, "max_length": 1}),
        ((dt.text(),), {"max_length": 2.5}),
        ((dt.text(),), {"default": ["a"], "min_length": 2}),
        ((dt.text(max_length=1),), {"default": ["ab"]}),
    ],
)
def test_array_construction_errors(args, kwargs):
    with pytest.raises(ValueError):
        dt.array(*args, **kwargs)


def test_array_dict_schema_and_output():
    t = dt.array(dt.text, min_length=1, max_length=4)  # a class is accepted as the item type
    assert isinstance(t.item_type, dt.text)
    assert t.to_dict() == {
        "type": "array",
        "description": None,
        "itemType": {"type": "text", "description": None, "minLength": 0, "maxLength": None},
        "minLength": 1,
        "maxLength": 4,
    }
    assert t.json_schema() == {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 1,
        "maxItems": 4,
    }
    nums = dt.array(dt.number())
    assert nums.serialize(np.array([1.5, 2.5])) == [1.5, 2.5]
    assert nums.serialize((1, np.int64(2))) == [1, 2]
    out = dt.array(dt.image(channels=1)).serialize([np.zeros((2, 2), np.uint8)])
    assert out[0].startswith("data:image/png;base64,")
    with pytest.raises(TypeError, match="1 to 4 items"):
        t.serialize([])


# -- file ----------------------------------------------------------------------------------------------


def test_file_data_uri_of_another_type_is_refused(ctx):
    """A data URI names its type: a PNG sent for a .pt option is refused, as a file named x.png is."""
    with pytest.raises(ValidationError, match=r"must be a \.pt file, got data of type 'image/png'"):
        dt.file(extension=".pt").deserialize(data_uri(b"\x89PNG"), ctx)
    with pytest.raises(ValidationError, match="application/zip"):
        dt.file(extension=[".pt", ".pth"]).deserialize(data_uri(b"PK", "application/zip"), ctx)
    # a type that fits, or one that says nothing, passes
    assert dt.file(extension=".png").deserialize(data_uri(b"\x89PNG"), ctx).endswith(".png")
    assert dt.file(extension=".pt").deserialize(data_uri(b"x", "binary/octet-stream"), ctx)


def test_zip_entries_are_counted_before_the_archive_is_read(ctx):
    """Entries past the limit: refused from the archive's end record, without listing them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(20_000):
            zf.writestr(f"f{i}", b"")
    data = buf.getvalue()
    assert zip_entry_count(io.BytesIO(data)) == 20_000
    t0 = time.perf_counter()
    with pytest.raises(ValidationError, match="20,000 entries"):
        dt.directory().deserialize(data, ctx)
    assert time.perf_counter() - t0 < 0.05  # the central directory was never parsed


def test_tar_members_stop_at_the_limit(ctx, monkeypatch):
    monkeypatch.setattr(dt, "_MAX_ARCHIVE_FILES", 50)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(5_000):
            info = tarfile.TarInfo(f"f{i}")
            tf.addfile(info, io.BytesIO(b""))
    with pytest.raises(ValidationError, match="too many files"):
        dt.directory().deserialize(buf.getvalue(), ctx)


def test_file_data_uri_is_written_with_the_declared_extension(ctx):
    payload = b"\x80\x04weights"
    path = dt.file(extension=".pkl").deserialize(data_uri(payload, "application/octet-stream"), ctx)
    assert os.path.isabs(path) and path.endswith(".pkl")
    assert Path(path).read_bytes() == payload
    # the first of several extensions; a mime type names it when no extension is declared
    octets = data_uri(b"x", "application/octet-stream")
    assert dt.file(extension=[".pt", ".pth"]).deserialize(octets, ctx).endswith(".pt")
    assert dt.file().deserialize(data_uri(b"x", "text/plain"), ctx).endswith(".txt")
    assert Path(dt.file().deserialize(payload, ctx)).read_bytes() == payload  # raw bytes in-process
    ctx.cleanup()
    assert not os.path.exists(path)  # the request's temporary files go with it


def test_file_extension_is_enforced_on_named_uploads(ctx):
    t = dt.file(extension=["pt", ".PTH"])
    assert t.extension == [".pt", ".pth"]
    assert Path(t.deserialize(UploadedFile("w.pth", b"1"), ctx)).name == "w.pth"
    assert Path(t.deserialize(UploadedFile("W.PT", b"1"), ctx)).name == "W.PT"
    rejects(t, UploadedFile("w.bin", b"1"), "must be a .pt or .pth file, got 'w.bin'", ctx)
    rejects(
        dt.file(extension=".txt"), {"filename": "a.csv", "data": "eA=="}, "must be a .txt file", ctx
    )


def test_file_filename_and_data_object(ctx):
    path = dt.file(extension=".txt").deserialize(
        {"filename": "notes.txt", "data": base64.b64encode(b"hello").decode()}, ctx
    )
    assert Path(path).name == "notes.txt" and Path(path).read_bytes() == b"hello"
    path = dt.file().deserialize({"name": "a.bin", "data": data_uri(b"\x00\x01")}, ctx)
    assert Path(path).read_bytes() == b"\x00\x01"
    rejects(dt.file(), {"filename": "a.txt"}, '{"filename": "...", "data": "<base64>"}', ctx)
    rejects(dt.file(), {"filename": 3, "data": "eA=="}, '"filename"', ctx)
    rejects(dt.file(), {"filename": "a.txt", "data": "!!"}, "is not valid base64", ctx)


@pytest.mark.parametrize("name", ["../../etc/x.txt", "..", ".", "", "a b/c?.txt", "..\\..\\w.txt"])
def test_file_upload_names_stay_in_the_request_folder(name, ctx, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = Path(dt.file().deserialize(UploadedFile(name, b"data"), ctx))
    assert path.parent.parent == tmp_path and path.parent.name.startswith("modelcloud-")
    assert path.name not in ("", ".", "..")
    assert path.is_file() and path.read_bytes() == b"data"
    assert [p.name for p in tmp_path.rglob("*")] == [path.parent.name, path.name]


def test_file_paths_are_refused_without_allow_paths(tmp_path, ctx):
    existing = tmp_path / "model.pkl"
    existing.write_bytes(b"w")
    msg = rejects(dt.file(), str(existing), "not a path on the server", ctx)
    assert "content" in msg
    rejects(dt.file(), "/etc/passwd", "not a path on the server", ctx)


def test_file_paths_with_allow_paths(tmp_path, path_ctx, monkeypatch):
    (tmp_path / "models").mkdir()
    weights = tmp_path / "models" / "w.pkl"
    weights.write_bytes(b"w")
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)  # relative paths are found next to base_dir, not in the cwd
    t = dt.file(extension=".pkl")
    assert t.deserialize(str(weights), path_ctx) == str(weights)
    assert t.deserialize("models/w.pkl", path_ctx) == str(weights)
    rejects(t, "models/missing.pkl", "which is not an existing file", path_ctx)
    rejects(t, "models/w.txt", "must be a .pkl file", path_ctx)
    rejects(dt.file(), str(tmp_path / "models"), "not an existing file", path_ctx)
    # a relative default is resolved the same way
    assert dt.file(default="models/w.pkl").default_value(path_ctx) == str(weights)


@pytest.mark.parametrize("path", ["~\x00", "w\x00.pkl", "/tmp/\x00"])
def test_file_and_directory_refuse_nul_in_paths(path, path_ctx):
    rejects(dt.file(), path, "NUL character", path_ctx)
    rejects(dt.directory(), path, "NUL character", path_ctx)


@pytest.mark.parametrize(
    "url", ["https://example.com/w.pkl", "http://x/y", "s3://bucket/w.pkl", "FILE:///etc/passwd"]
)
def test_file_and_directory_refuse_urls(url, path_ctx):
    rejects(dt.file(), url, "not a URL", path_ctx)
    rejects(dt.directory(), url, "not a URL", path_ctx)


@pytest.mark.parametrize("value", [3, None, True, ["a"], 1.5])
def test_file_refuses_other_json(value, ctx):
    rejects(dt.file(), value, "must be a base64 data URI, a multipart file part or a path", ctx)


def test_file_construction_dict_schema_and_output(tmp_path):
    for bad in ({"extension": "."}, {"extension": [".pt", 3]}, {"extension": ""}):
        with pytest.raises(ValueError):
            dt.file(**bad)
    with pytest.raises(ValueError, match="must be a .pkl file"):
        dt.file(extension=".pkl", default="w.pt")
    with pytest.raises(ValueError, match="must be a path"):
        dt.file(default=5)
    t = dt.file(extension=".pkl", default="models/missing.pkl")  # may be supplied later
    assert t.to_dict() == {
        "type": "file",
        "description": None,
        "default": "models/missing.pkl",
        "extension": [".pkl"],
    }
    assert t.json_schema() == {"type": "string", "contentEncoding": "base64"}
    out = tmp_path / "result.json"
    out.write_bytes(b'{"ok": true}')
    mime, data = decode_uri(dt.file().serialize(out))
    assert (mime, data) == ("application/json", b'{"ok": true}')


# -- directory -----------------------------------------------------------------------------------------

DIR_FILES = {"a.txt": b"alpha", "sub/b.bin": b"\x00\x01\x02", "sub/deeper/c.txt": b"c"}


@pytest.mark.parametrize(
    "archive",
    [
        pytest.param(lambda: zip_bytes(DIR_FILES), id="zip"),
        pytest.param(lambda: tar_bytes(list(DIR_FILES.items())), id="tar.gz"),
        pytest.param(lambda: tar_bytes(list(DIR_FILES.items()), "w"), id="tar"),
        pytest.param(lambda: tar_bytes(list(DIR_FILES.items()), "w:bz2"), id="tar.bz2"),
    ],
)
def test_directory_unpacks_archives(archive, ctx):
    data = archive()
    for value in (
        data_uri(data, "application/zip"),
        data,
        UploadedFile("d.archive", data),
        {"filename": "d.zip", "data": base64.b64encode(data).decode()},
    ):
        path = dt.directory().deserialize(value, ctx)
        assert os.path.isdir(path)
        assert tree(path) == DIR_FILES


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _zip_symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("link")
    info.external_attr = 0o120777 << 16
    return info


@pytest.mark.parametrize(
    "archive, fragment",
    [
        pytest.param(
            lambda: zip_bytes({"../escaped.txt": b"x"}),
            "unsafe path '../escaped.txt'",
            id="zip-dotdot",
        ),
        pytest.param(
            lambda: zip_bytes({"ok.txt": b"1", "a/../../escaped.txt": b"x"}),
            "unsafe path",
            id="zip-dotdot-inside",
        ),
        pytest.param(
            lambda: zip_bytes({"/abs/escaped.txt": b"x"}), "unsafe path", id="zip-absolute"
        ),
        pytest.param(lambda: zip_bytes({"link": _zip_symlink()}), "link 'link'", id="zip-symlink"),
        pytest.param(
            lambda: tar_bytes([("../escaped.txt", b"x")]),
            "unsafe path '../escaped.txt'",
            id="tar-dotdot",
        ),
        pytest.param(
            lambda: tar_bytes([("/abs/escaped.txt", b"x")]), "unsafe path", id="tar-absolute"
        ),
        pytest.param(
            lambda: tar_bytes([_link("link", "/etc/passwd")]),
            "link or device 'link'",
            id="tar-symlink",
        ),
        pytest.param(
            lambda: tar_bytes([("f", b"1"), _link("hard", "f", tarfile.LNKTYPE)]),
            "link",
            id="tar-hardlink",
        ),
        pytest.param(
            lambda: tar_bytes([_link("fifo", "", tarfile.FIFOTYPE)]),
            "link or device",
            id="tar-fifo",
        ),
        pytest.param(
            lambda: b"just some bytes", "must be a .zip or .tar(.gz) archive", id="not-an-archive"
        ),
        pytest.param(
            lambda: tar_bytes(list(DIR_FILES.items()))[:60],
            "cannot be unpacked",
            id="truncated-tar.gz",
        ),
        pytest.param(
            lambda: zip_bytes({"a": b"1", "a/b": b"2"}),
            "cannot be unpacked",
            id="zip-file-and-dir-clash",
        ),
    ],
)
def test_directory_refuses_unsafe_or_broken_archives(archive, fragment, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    c = DecodeContext()
    try:
        rejects(dt.directory(), archive(), fragment, c)
        # nothing was written outside the request's folder
        outside = [p for p in tmp_path.rglob("*") if not p.parent.name.startswith("modelcloud-")]
        assert [p.name[:11] for p in outside] == ["modelcloud-"]
    finally:
        c.cleanup()
    assert list(tmp_path.iterdir()) == []
    assert not os.path.exists("/abs/escaped.txt")


def test_directory_paths(tmp_path, path_ctx, ctx):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "w.bin").write_bytes(b"w")
    t = dt.directory()
    assert t.deserialize("weights", path_ctx) == str(tmp_path / "weights")
    assert t.deserialize(str(tmp_path / "weights"), path_ctx) == str(tmp_path / "weights")
    rejects(t, "weights/w.bin", "which is not an existing directory", path_ctx)
    rejects(t, "nope", "which is not an existing directory", path_ctx)
    rejects(t, str(tmp_path / "weights"), "not a path on the server", ctx)
    rejects(t, 5, "must be a base64 data URI", ctx)


def test_directory_dict_default_schema_and_output(tmp_path):
    t = dt.directory(default="models/", description="Weights")
    assert t.to_dict() == {"type": "directory", "description": "Weights", "default": "models/"}
    assert t.json_schema() == {
        "description": "Weights",
        "type": "string",
        "contentEncoding": "base64",
    }
    with pytest.raises(ValueError):
        dt.directory(default=3)
    for rel, data in DIR_FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    mime, data = decode_uri(dt.directory().serialize(tmp_path))
    assert mime == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {n: zf.read(n) for n in zf.namelist()} == DIR_FILES
    c = DecodeContext()  # and it unpacks back to the same tree
    try:
        assert tree(dt.directory().deserialize(data_uri(data), c)) == DIR_FILES
    finally:
        c.cleanup()


# -- over HTTP: one server that declares a command per type ------------------------------------------------

SERVER_SOURCE = """
import os

import numpy as np

import modelcloud
from modelcloud import (
    any, array, boolean, category, directory, file, image, image_bounding_box, image_landmarks,
    image_point, number, segmentation, text, vector,
)


def kind(v):
    if isinstance(v, np.ndarray):
        return f"ndarray {v.dtype} {list(v.shape)}"
    if hasattr(v, "mode") and hasattr(v, "size"):
        return f"Image {v.mode} {v.size[0]}x{v.size[1]}"
    if isinstance(v, str) and os.path.isfile(v):
        return "file " + os.path.basename(v)
    if isinstance(v, str) and os.path.isdir(v):
        found = []
        for d, _, names in os.walk(v):
            found += [os.path.relpath(os.path.join(d, n), v) for n in names]
        return "dir " + ",".join(sorted(found))
    return type(v).__name__


def declare(name, t):
    @modelcloud.command(name, inputs={"x": t}, outputs={"x": t, "kind": text()})
    def run(model, inputs):
        return {"x": inputs["x"], "kind": kind(inputs["x"])}


declare("t_any", any())
declare("t_text", text(min_length=2, max_length=5))
declare("t_number", number(min=0, max=10, step=0.5))
declare("t_boolean", boolean())
declare("t_category", category(["cat", "dog"]))
declare("t_vector", vector(3))
declare("t_image", image(channels=1, max_width=64, default_output_format="PNG"))
declare("t_segmentation", segmentation({"bg": 0, "fg": 1}, {"bg": [0, 0, 0], "fg": [255, 255, 255]}))
declare("t_image_point", image_point())
declare("t_image_bounding_box", image_bounding_box())
declare("t_image_landmarks", image_landmarks(2, labels=["a", "b"]))
declare("t_array", array(number(max=10), min_length=1, max_length=3))
declare("t_file", file(extension=".txt"))
declare("t_directory", directory())

if __name__ == "__main__":
    modelcloud.run(host="127.0.0.1")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("types_server")
    script = folder / "cloud_model.py"
    script.write_text(textwrap.dedent(SERVER_SOURCE))
    proc = start_script(script, env={"TMPDIR": str(folder)})
    yield proc
    proc.stop()


SMALL_GRAY = np.array([[0, 50, 100], [150, 200, 250]], dtype=np.uint8)
SEG_IDS = np.array([[0, 1], [1, 0]], dtype=np.uint8)

HTTP_GOOD = [
    ("t_any", {"a": [1, None, "x"]}, {"a": [1, None, "x"]}, "dict"),
    ("t_text", "hello", "hello", "str"),
    ("t_number", 2.5, 2.5, "float"),
    ("t_boolean", False, False, "bool"),
    ("t_category", "dog", "dog", "str"),
    ("t_vector", [1, 2, 3], [1.0, 2.0, 3.0], "ndarray float32 [3]"),
    ("t_image", data_uri(encode(Image.fromarray(SMALL_GRAY, "L"))), SMALL_GRAY, "Image L 3x2"),
    (
        "t_segmentation",
        data_uri(encode(Image.fromarray(SEG_IDS, "L"))),
        SEG_IDS,
        "ndarray uint8 [2, 2]",
    ),
    ("t_image_point", [0.5, 1], [0.5, 1.0], "list"),
    ("t_image_bounding_box", [0, 0.1, 0.5, 0.6], [0.0, 0.1, 0.5, 0.6], "list"),
    ("t_image_landmarks", [[0, 0], [1, 1]], [[0.0, 0.0], [1.0, 1.0]], "list"),
    ("t_array", [1, 10], [1, 10], "list"),
    ("t_file", data_uri(b"file body", "text/plain"), b"file body", "file upload.txt"),
    (
        "t_directory",
        data_uri(zip_bytes(DIR_FILES)),
        DIR_FILES,
        "dir a.txt,sub/b.bin,sub/deeper/c.txt",
    ),
]

HTTP_BAD = [
    ("t_any", None, "deep"),  # any takes every JSON value: the test nests one past its limit
    ("t_text", "a", "must be at least 2 characters long, got 1"),
    ("t_number", 42, "must be at most 10, got 42"),
    ("t_boolean", "yes", "must be true or false"),
    ("t_category", "bird", "must be one of 'cat', 'dog'"),
    ("t_vector", [1, 2], "must have exactly 3 numbers, got 2"),
    ("t_image", "!!!", "is not valid base64"),
    ("t_segmentation", data_uri(encode(Image.fromarray(SEG_IDS * 3, "L"))), "holds label ids [3]"),
    ("t_image_point", [0.5, 2], "coordinates between 0 and 1"),
    ("t_image_bounding_box", [0.5, 0, 0.1, 1], "xmin <= xmax"),
    ("t_image_landmarks", [[0, 0]], "must have exactly 2 points, got 1"),
    ("t_array", [1, 42], "item 1 must be at most 10, got 42"),
    ("t_file", "/etc/passwd", "not a path on the server"),
    ("t_directory", data_uri(zip_bytes({"../escaped.txt": b"x"})), "unsafe path"),
]


def test_http_covers_every_type(server):
    manifest = server.get("/meta").json()
    declared = {c["name"]: c["inputs"][0]["type"] for c in manifest["commands"]}
    assert sorted(declared.values()) == sorted(ALL_TYPE_NAMES)
    assert {name for name, *_ in HTTP_GOOD} == set(declared) == {name for name, *_ in HTTP_BAD}


@pytest.mark.parametrize("command, value, expected, kind", HTTP_GOOD, ids=[c[0] for c in HTTP_GOOD])
def test_http_good_value(server, command, value, expected, kind):
    r = server.post(f"/{command}", json={"x": value})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"x", "kind"}
    assert body["kind"] == kind
    x = body["x"]
    if command in ("t_image", "t_segmentation"):
        np.testing.assert_array_equal(np.asarray(open_uri(x)), expected)
    elif command == "t_file":
        assert decode_uri(x) == ("text/plain", expected)
    elif command == "t_directory":
        with zipfile.ZipFile(io.BytesIO(decode_uri(x)[1])) as zf:
            assert {n: zf.read(n) for n in zf.namelist()} == expected
    else:
        assert x == expected


@pytest.mark.parametrize("command, value, fragment", HTTP_BAD, ids=[c[0] for c in HTTP_BAD])
def test_http_bad_value(server, command, value, fragment):
    if command == "t_any":
        value = [0]
        for _ in range(dt._MAX_ANY_DEPTH):
            value = [value]
    r = server.post(f"/{command}", json={"x": value})
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"error", "field"}
    assert body["field"] == "x"
    assert body["error"].startswith("Input 'x' ")
    assert fragment in body["error"]
    assert server.get("/healthcheck").json() == {"status": "RUNNING", "ongoing": 0}


def test_http_multipart_image_and_file(server):
    png = encode(Image.fromarray(SMALL_GRAY, "L"))
    r = server.post("/t_image", files={"x": ("photo.png", png, "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "Image L 3x2"
    np.testing.assert_array_equal(np.asarray(open_uri(r.json()["x"])), SMALL_GRAY)
    # a colour JPEG part becomes the declared single channel
    r = server.post("/t_image", files={"x": ("c.jpg", encode(make_image(), "JPEG"), "image/jpeg")})
    assert r.status_code == 200 and r.json()["kind"] == "Image L 8x6"

    r = server.post("/t_file", files={"x": ("notes.txt", b"line one\n", "text/plain")})
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "file notes.txt"
    assert decode_uri(r.json()["x"])[1] == b"line one\n"
    r = server.post("/t_directory", files={"x": ("d.tar.gz", tar_bytes(list(DIR_FILES.items())))})
    assert r.status_code == 200 and r.json()["kind"] == "dir a.txt,sub/b.bin,sub/deeper/c.txt"


@pytest.mark.parametrize(
    "command, part, fragment",
    [
        ("t_image", ("photo.png", b"these are not pixels", "image/png"), "is not an image"),
        (
            "t_image",
            ("big.png", encode(make_image("L", (65, 2))), "image/png"),
            "at most 64 pixels wide",
        ),
        ("t_image", ("bomb.png", png_bomb(100_000, 100_000, False), "image/png"), "pixels"),
        (
            "t_file",
            ("notes.exe", b"MZ", "application/octet-stream"),
            "must be a .txt file, got 'notes.exe'",
        ),
        ("t_directory", ("d.zip", b"PK\x03\x04 broken", "application/zip"), "archive"),
    ],
)
def test_http_multipart_bad_parts(server, command, part, fragment):
    r = server.post(f"/{command}", files={"x": part})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["field"] == "x" and body["error"].startswith("Input 'x' ")
    assert fragment in body["error"]


def test_http_form_fields_are_typed(server):
    r = server.post("/t_number", files={"x": (None, "3.5")})
    assert r.status_code == 200 and r.json() == {"x": 3.5, "kind": "float"}
    r = server.post("/t_vector", data={"x": "[1, 2, 3]"})
    assert r.status_code == 200 and r.json()["x"] == [1.0, 2.0, 3.0]
    r = server.post("/t_text", files={"x": (None, "12")})  # text fields stay text
    assert r.status_code == 200 and r.json() == {"x": "12", "kind": "str"}
    r = server.post("/t_number", data={"x": "11"})
    assert r.status_code == 400 and "must be at most 10, got 11" in r.json()["error"]


@pytest.mark.parametrize("channels", [1, 3])
def test_transparent_image_is_laid_on_white(channels):
    # Black ink on a transparent canvas whose hidden colour is black: the ink must stay visible.
    canvas = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    canvas.putpixel((3, 3), (0, 0, 0, 255))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    img = dt.image(channels=channels).deserialize(base64.b64encode(buf.getvalue()).decode())
    white = 255 if channels == 1 else (255, 255, 255)
    black = 0 if channels == 1 else (0, 0, 0)
    assert img.getpixel((0, 0)) == white
    assert img.getpixel((3, 3)) == black


def test_pictures_decoded_on_many_threads_leave_the_warning_filters_alone():
    """A batched command decodes pictures on several threads at once (Pillow lets go of the GIL while it
    decodes). Changing the process's warning filters around each decode raced: one thread put back the
    filters another had changed, and every warning of the process (the model's own too) went silent."""
    import threading
    import warnings

    rng = np.random.default_rng(3)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (700, 700, 3), dtype=np.uint8)).save(out, "PNG")
    picture = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    before = list(warnings.filters)
    errors: list = []

    def decode() -> None:
        try:
            for _ in range(6):
                assert dt.image().deserialize(picture).size == (700, 700)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=decode) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert warnings.filters == before
