"""The hub's streaming form reader against Tornado's own parser, fed in every chunk size."""

from __future__ import annotations

import os

import pytest
from tornado import httputil
from urllib3 import encode_multipart_formdata

from algolink_jupyter.hub.multipart import FormError, FormParser, boundary_of


def form(fields: dict) -> tuple:
    body, content_type = encode_multipart_formdata(fields)
    return body, content_type


FIELDS = {
    "name": "echo",
    "metadata": '{"tagline": "\\u56fe\\u7247 --boundary look-alike \\r\\n"}',
    "empty": "",
    "bundle": ("bundle.tar.gz", os.urandom(200_003), "application/gzip"),
    "images": ("a.png", b"\x89PNG" + b"\r\n--" * 50, "image/png"),
}


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096, 1 << 20])
def test_the_streaming_reader_agrees_with_tornado(tmp_path, chunk):
    body, content_type = form(FIELDS)
    args: dict = {}
    files: dict = {}
    httputil.parse_body_arguments(content_type, body, args, files)
    parser = FormParser(boundary_of(content_type), tmp_path)
    for i in range(0, len(body), chunk):
        parser.feed(body[i : i + chunk])
    parser.close()
    assert parser.arguments == args
    assert set(parser.files) == set(files)
    for name, parts in files.items():
        mine = parser.files[name]
        assert [p.filename for p in mine] == [p.filename for p in parts]
        assert [p.body for p in mine] == [p.body for p in parts]
        assert [p.content_type for p in mine] == [p.content_type for p in parts]
    parser.cleanup()
    assert list(tmp_path.iterdir()) == []  # spooled files are gone once not kept


def test_bad_forms_are_refused_with_a_sentence(tmp_path):
    body, content_type = form({"big": "x" * (2 << 20)})
    parser = FormParser(boundary_of(content_type), tmp_path)
    with pytest.raises(FormError, match="over 1024 KB"):
        parser.feed(body)
    body, content_type = form({"a": "b"})
    parser = FormParser(boundary_of(content_type), tmp_path)
    parser.feed(body[:-10])
    with pytest.raises(FormError, match="cut short"):
        parser.close()
    assert boundary_of("application/json") is None
    assert boundary_of("multipart/form-data") is None  # no boundary: not a form to stream
