"""The Python client (``algolink_jupyter.client.Client``) and ``algolink predict``, against a real model
server started from source and through a real hub."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hub_process import Hub, make_bundle
from PIL import Image

from algolink_jupyter.client import Client, PredictError

REPO = Path(__file__).resolve().parent.parent

MODEL = """
import os
import modelcloud
from modelcloud.data_types import (
    any, array, boolean, category, directory, file, image, image_bounding_box, image_landmarks,
    image_point, number, segmentation, text, vector,
)
from PIL import ImageOps


@modelcloud.command(
    "mix",
    inputs={
        "name": text(),
        "k": number(min=0, max=10),
        "loud": boolean(default=False),
        "color": category(choices=["red", "green"]),
        "v": vector(length=3),
        "xs": array(item_type=number()),
    },
    outputs={
        "greeting": text(),
        "k2": number(),
        "quiet": boolean(),
        "color": category(choices=["red", "green"]),
        "v2": vector(length=3),
        "total": number(),
    },
)
def mix(model, inputs):
    greeting = "hello " + inputs["name"]
    return {
        "greeting": greeting.upper() if inputs["loud"] else greeting,
        "k2": inputs["k"] * 2,
        "quiet": not inputs["loud"],
        "color": "green" if inputs["color"] == "red" else "red",
        "v2": inputs["v"] * 2,
        "total": sum(inputs["xs"]),
    }


@modelcloud.command("invert", inputs={"photo": image()}, outputs={"photo": image(default_output_format="PNG")})
def invert(model, inputs):
    return ImageOps.invert(inputs["photo"].convert("RGB"))


@modelcloud.command("size", inputs={"doc": file()}, outputs={"size": number(), "copy": file()})
def size(model, inputs):
    return {"size": os.path.getsize(inputs["doc"]), "copy": inputs["doc"]}


LABELS = {"background": 0, "cat": 1}


@modelcloud.command(
    "shapes",
    inputs={
        "box": image_bounding_box(),
        "point": image_point(),
        "marks": image_landmarks(length=2),
        "mask": segmentation(label_to_id=LABELS),
        "folder": directory(),
        "extra": any(),
    },
    outputs={
        "box": image_bounding_box(),
        "point": image_point(),
        "marks": image_landmarks(length=2),
        "mask": segmentation(label_to_id=LABELS),
        "folder": directory(),
        "files": array(item_type=text()),
        "extra": any(),
    },
)
def shapes(model, inputs):
    return {
        "box": inputs["box"],
        "point": inputs["point"],
        "marks": inputs["marks"][::-1],
        "mask": 1 - inputs["mask"],
        "folder": inputs["folder"],
        "files": sorted(os.listdir(inputs["folder"])),
        "extra": inputs["extra"],
    }


if __name__ == "__main__":
    modelcloud.run()
"""


@pytest.fixture
def server(model_server):
    return model_server(MODEL)


def test_the_client_round_trips_each_type(server, tmp_path):
    client = Client(url=server.url)
    out = client.run(
        "mix", name="ada", k=3, loud=True, color="red", v=np.array([1, 2, 3.5]), xs=(1, 2, 3)
    )
    assert out["greeting"] == "HELLO ADA"
    assert out["k2"] == 6
    assert out["quiet"] is False
    assert out["color"] == "green"
    assert isinstance(out["v2"], np.ndarray) and out["v2"].tolist() == [2, 4, 7]
    assert out["total"] == 6

    # image: a path, a PIL image and a numpy array in; a PIL image out.
    path = tmp_path / "red.png"
    Image.new("RGB", (5, 4), (200, 30, 30)).save(path)
    for photo in (str(path), path, Image.open(path), np.asarray(Image.open(path))):
        got = client.run("invert", photo=photo)["photo"]
        assert isinstance(got, Image.Image) and got.size == (5, 4)
        assert got.convert("RGB").getpixel((0, 0)) == (55, 225, 225)

    # file: a path or an open file in; its bytes out.
    doc = tmp_path / "notes.txt"
    doc.write_bytes(b"twelve bytes")
    assert client.run("size", doc=doc) == {"size": 12, "copy": b"twelve bytes"}
    with doc.open("rb") as f:
        assert client.run("size", doc=f)["size"] == 12

    # the image geometry types, segmentation, directory and any.
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("A")
    mask = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    out = client.run(
        "shapes",
        box=(0.1, 0.2, 0.5, 0.6),
        point=np.array([0.5, 0.25]),
        marks=[[0, 0], [1, 1]],
        mask=mask,
        folder=folder,
        extra={"any": [1, "two", None]},
    )
    assert out["box"] == [0.1, 0.2, 0.5, 0.6] and out["point"] == [0.5, 0.25]
    assert out["marks"] == [[1, 1], [0, 0]]
    assert isinstance(out["mask"], Image.Image)
    assert np.asarray(out["mask"]).tolist() == [[1, 0], [0, 1]]
    assert out["files"] == ["a.txt"] and out["extra"] == {"any": [1, "two", None]}
    with zipfile.ZipFile(io.BytesIO(out["folder"])) as zf:
        assert zf.read("a.txt") == b"A"


def test_the_servers_sentence_comes_back_as_a_typed_error(server):
    client = Client(url=server.url)
    with pytest.raises(PredictError) as e:
        client.run("mix", name="a", k=42, color="red", v=[1, 2, 3], xs=[])
    assert e.value.status == 400 and e.value.field == "k"
    assert "must be at most 10, got 42" in e.value.message
    with pytest.raises(PredictError) as e:
        client.run("nope", x=1)
    assert (
        e.value.status == 404 and "the commands are: invert, mix, shapes, size" in e.value.message
    )
    with pytest.raises(PredictError, match="has no input 'bogus'") as e:
        client.run("invert", bogus=1)
    assert e.value.status is None


def algolink(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "algolink_jupyter.cli", *args],
        cwd=cwd,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "runtime")]),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_algolink_predict_with_a_file_input_and_an_image_output(server, tmp_path):
    Image.new("RGB", (3, 3), (0, 0, 255)).save(tmp_path / "x.png")
    r = algolink("predict", server.url, "invert", "-i", "photo=@x.png", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    written = json.loads(r.stdout)["photo"]
    assert written == os.path.join("out", "photo.png")
    assert Image.open(tmp_path / written).getpixel((1, 1)) == (255, 255, 0)

    r = algolink(
        "predict",
        server.url,
        "mix",
        *("-i", "name=bo", "-i", "k=2.5", "-i", "color=green", "-i", "v=[0, 1, 2]"),
        *("-i", "xs=[1, 1]", "-i", "loud=no"),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {
        "greeting": "hello bo",
        "k2": 5.0,
        "quiet": True,
        "color": "red",
        "v2": [0.0, 2.0, 4.0],
        "total": 2,
    }

    r = algolink("predict", server.url, "mix", "-i", "k=12", "-i", "name=x", cwd=tmp_path)
    assert r.returncode == 2
    assert "Input 'k' must be at most 10, got 12" in r.stderr


def test_a_large_file_goes_as_multipart_streamed_from_disk(model_server, tmp_path):
    # The server takes 3.5 MB bodies: a 3 MB file fits as bytes, not as base64 in JSON (4 MB).
    server = model_server(MODEL, env={"ALGOLINK_MAX_BODY_SIZE": "3500000"})
    big = tmp_path / "big.bin"
    content = os.urandom(3_000_000)
    big.write_bytes(content)
    client = Client(url=server.url)
    assert client.run("size", doc=big) == {"size": 3_000_000, "copy": content}
    with big.open("rb") as f:  # an open file streams too, from where it stands
        f.seek(1_000_000)
        assert client.run("size", doc=f)["size"] == 2_000_000
    # Below the threshold the same file is base64 in JSON, and over this server's limit.
    with pytest.raises(PredictError) as e:
        Client(url=server.url, multipart_threshold=10_000_000).run("size", doc=big)
    # (a 413, or the connection closed on the rest of the body: the client was still sending)
    assert e.value.status == 413 or "may be over its size limit" in e.value.message
    # Other inputs travel as form fields beside the file part, read as their types want them.
    photo = tmp_path / "p.png"
    Image.new("RGB", (600, 600), (0, 0, 255)).save(photo, format="BMP")
    assert photo.stat().st_size > 1000
    got = Client(url=server.url, multipart_threshold=1000).run("invert", photo=photo)["photo"]
    assert got.getpixel((5, 5)) == (255, 255, 0)


def test_algolink_predict_starts_a_local_bundle_folder(tmp_path):
    bundle = make_bundle(tmp_path / "types")
    (bundle / "cloud_model.py").write_text(textwrap.dedent(MODEL))
    Image.new("RGB", (3, 3), (0, 0, 255)).save(tmp_path / "x.png")
    (tmp_path / "big.bin").write_bytes(b"7" * 1_500_000)  # over the multipart threshold
    r = algolink(*("predict", "./types", "invert", "-i", "photo=@x.png", "-o", "out"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    written = json.loads(r.stdout)["photo"]
    assert Image.open(tmp_path / written).getpixel((1, 1)) == (255, 255, 0)
    r = algolink("predict", "types/cloud_model.py", "size", "-i", "doc=@big.bin", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["size"] == 1_500_000
    assert (tmp_path / out["copy"]).read_bytes() == b"7" * 1_500_000

    # A bundle that fails to start: one sentence with its last line and where its log is.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "cloud_model.py").write_text("raise RuntimeError('weights.bin is missing')\n")
    r = algolink("predict", "broken", "run", cwd=tmp_path)
    assert r.returncode == 2, r.stdout
    last = r.stderr.strip().splitlines()[-1]  # (after "starting..." when it took a while)
    assert "did not start" in last and "weights.bin is missing" in last and ".log" in last
    (tmp_path / "empty").mkdir()
    r = algolink("predict", "empty", "run", cwd=tmp_path)
    assert r.returncode == 2 and "without a cloud_model.py" in r.stderr


def test_calls_through_a_real_hub(tmp_path):
    hub = Hub(tmp_path / "hub").start()
    try:
        hub.ensure_group("demo", "text")
        r = hub.register("demo", "text", "echo", make_bundle(tmp_path / "echo", tag="t1"))
        assert r.status_code == 201, r.text
        types = make_bundle(tmp_path / "types")
        (types / "cloud_model.py").write_text(textwrap.dedent(MODEL))
        r = hub.register("demo", "text", "types", types)
        assert r.status_code == 201, r.text
        for name in ("echo", "types"):
            assert hub.publish("demo", name).status_code == 202
        for name in ("echo", "types"):
            hub.wait_version("demo", name, 1)

        client = Client(hub.url, hub.token)
        assert client.run("demo/echo", "echo", text="hi") == {"text": "t1:hi"}
        assert client.run("demo/echo/v1", "echo", text="v") == {"text": "t1:v"}
        r = hub.api(
            "PUT", "/api/v1/projects/demo/services/echo/aliases/stable", json={"version": 1}
        )
        assert r.status_code in (200, 201), r.text
        assert client.run("demo/echo@stable", "echo", text="s") == {"text": "t1:s"}
        photo = Image.new("RGB", (2, 2), (10, 20, 30))
        got = client.run("demo/types", "invert", photo=photo)["photo"]
        assert isinstance(got, Image.Image) and got.getpixel((0, 0)) == (245, 235, 225)
        out = client.run("demo/types", "mix", name="x", k=1, color="red", v=[1, 2, 3], xs=[2.5])
        assert out["v2"].tolist() == [2, 4, 6] and out["total"] == 2.5
        big = tmp_path / "big.bin"  # over the threshold: multipart, relayed by /serve as it came
        big.write_bytes(os.urandom(1_200_000))
        assert client.run("demo/types", "size", doc=big) == {
            "size": 1_200_000,
            "copy": big.read_bytes(),
        }
        with pytest.raises(PredictError) as e:
            Client(hub.url, "").run("demo/echo", "echo", text="hi")
        assert e.value.status == 401

        env = {"ALGOLINK_HUB_URL": hub.url, "ALGOLINK_TOKEN": hub.token}
        r = algolink("predict", "demo/echo", "echo", "-i", "text=yo", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"text": "t1:yo"}
        photo.save(tmp_path / "p.png")
        r = algolink(
            *("predict", "demo/types", "invert", "-i", "photo=@p.png", "-o", "o"),
            cwd=tmp_path,
            env=env,
        )
        assert r.returncode == 0, r.stderr
        assert Image.open(tmp_path / "o" / "photo.png").getpixel((1, 1)) == (245, 235, 225)
    finally:
        hub.stop()


def test_targets_and_command_line_values(tmp_path):
    from algolink_jupyter.client.calls import service_base
    from algolink_jupyter.client.predict import parse_input
    from algolink_jupyter.errors import CLIError

    assert service_base("p/s") == "/serve/p/s"
    assert service_base("p/s/v2") == "/serve/p/s/v2"
    assert service_base("p/s@stable") == "/serve/p/s/@stable"
    with pytest.raises(CLIError, match="project/service/v2"):
        service_base("p/s/x")

    (tmp_path / "words.txt").write_text("[1, 2]\n")
    assert parse_input("k", "2.5", {"type": "number"}) == 2.5
    assert parse_input("b", "No", {"type": "boolean"}) is False
    assert parse_input("t", "007", {"type": "text"}) == "007"
    assert parse_input("v", f"@{tmp_path / 'words.txt'}", {"type": "vector"}) == [1, 2]
    assert parse_input("t", f"@{tmp_path / 'words.txt'}", {"type": "text"}) == "[1, 2]\n"
    assert parse_input("f", f"@{tmp_path / 'words.txt'}", {"type": "file"}) == str(
        tmp_path / "words.txt"
    )
    with pytest.raises(CLIError, match="k is a number; give it as JSON"):
        parse_input("k", "ten", {"type": "number"})
    with pytest.raises(CLIError, match="there is no file"):
        parse_input("f", "@nowhere.png", {"type": "image"})
