"""Setup options on the hub: declared options, values checked by their rules, uploaded checkpoint files
streamed to disk and stored once by content, new versions per change (and so rollback), the values
handed to the service, and the ``algolink options`` command.

A real hub process, real builds, real service processes; nothing of ours is mocked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest
from hub_process import ALGOLINK, PILLOW, REPO, Hub, rss_kb, wait_for

pytestmark = pytest.mark.timeout(300)

MODEL = """
import json
import os

import modelcloud
from modelcloud.data_types import directory, file, number, text
from PIL import Image  # a Pillow-only bundle: its environment comes from uv's cache


@modelcloud.setup(options={
    # optional: the setup handles their absence (without default=None it would refuse to start)
    "checkpoint": file(extension=".pt", default=None, description="The weights to load"),
    "scale": number(default=1, min=0, max=10, description="Multiplies every weight"),
    "vocab": directory(default=None, description="Extra files the model reads"),
})
def setup(opts):
    path = opts["checkpoint"]
    weights = None
    if path:
        with open(path, "rb") as f:
            weights = json.loads(f.readline())["weights"]
    return {
        "weights": weights,
        "size": os.path.getsize(path) if path else None,
        "name": os.path.basename(path) if path else None,
        "scale": opts["scale"],
        "vocab": {
            os.path.relpath(os.path.join(root, name), opts["vocab"]): open(os.path.join(root, name)).read()
            for root, _dirs, names in os.walk(opts["vocab"]) for name in names
        } if opts["vocab"] else None,
    }


@modelcloud.command("predict", inputs={"x": number()}, outputs={"answer": text()})
def predict(model, inputs):
    ws = model["weights"] or [0]
    y = sum(w * model["scale"] * inputs["x"] for w in ws)
    return {"answer": json.dumps({**model, "y": y})}


if __name__ == "__main__":
    modelcloud.run()
"""

MB = 1 << 20


def make_options_bundle(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloud_model.py").write_text(MODEL)
    (folder / "requirements.txt").write_text(f"pillow=={PILLOW}\n")
    (folder / "algolink.yml").write_text(
        "entrypoint: python cloud_model.py\nbuild_steps:\n  - pip install -r requirements.txt\n"
    )
    return folder


def make_checkpoint(path: Path, weights: list, size: int) -> Path:
    """A ``.pt`` checkpoint: a JSON line of weights, padded to ``size`` bytes with random bytes."""
    header = (json.dumps({"weights": weights}) + "\n").encode()
    with open(path, "wb") as f:
        f.write(header)
        left = size - len(header)
        block = os.urandom(MB)
        while left > 0:
            f.write(block[: min(MB, left)])
            left -= MB
    return path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MB), b""):
            h.update(chunk)
    return h.hexdigest()


def stored_files(hub: Hub) -> list:
    folder = hub.data / "files"
    return sorted(p.name for p in folder.iterdir() if re.fullmatch(r"[0-9a-f]{64}", p.name))


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-options")).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def service(hub, tmp_path_factory):
    """``opt/svc``, registered, its manifest read (the environment built once)."""
    bundle = make_options_bundle(tmp_path_factory.mktemp("options-bundle"))
    hub.ensure_group("opt", "g")
    r = hub.register("opt", "g", "svc", bundle)
    assert r.status_code == 201, r.text
    wait_for(
        lambda: hub.version("opt", "svc", 1)["manifest"] is not None,
        240,
        0.2,
        "the manifest of version 1",
    )
    return "/api/v1/projects/opt/services/svc"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    return make_checkpoint(folder / "weights.pt", [0.5, 1.5, 2.0], 110 * MB)


def upload(hub: Hub, path: str, option: str, file: Path, filename: str = "") -> dict:
    size = file.stat().st_size
    r = hub.post(
        f"{path}/uploads", json={"option": option, "filename": filename or file.name, "size": size}
    )
    assert r.status_code == 201, r.text
    started = r.json()
    assert started["offset"] == 0 and started["size"] == size
    with open(file, "rb") as f:
        r = hub.api("PUT", f"/api/v1/uploads/{started['id']}", data=f, timeout=300)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["complete"] is True
    return answer


def test_the_options_a_version_declares(hub, service):
    r = hub.get(f"{service}/options")
    assert r.status_code == 200, r.text
    model = r.json()
    assert model["version"] == 1 and model["known"] is True and model["values"] == {}
    by_name = {o["name"]: o for o in model["options"]}
    assert by_name["checkpoint"]["type"] == "file"
    assert by_name["checkpoint"]["extension"] == [".pt"]
    assert by_name["checkpoint"]["upload"] is True
    assert by_name["checkpoint"]["description"] == "The weights to load"
    assert by_name["scale"]["type"] == "number"
    assert (by_name["scale"]["default"], by_name["scale"]["min"], by_name["scale"]["max"]) == (
        1,
        0,
        10,
    )
    assert by_name["scale"]["upload"] is False
    assert model["max_file_bytes"] == 8 << 30


def test_a_big_checkpoint_streams_to_disk_and_the_service_loads_it(hub, service, checkpoint):
    pid = hub.proc.pid
    before = rss_kb(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        answer = upload(hub, service, "checkpoint", checkpoint)
    finally:
        done.set()
        sampler.join(5)
    growth_mb = (peak[0] - before) / 1024
    size_mb = checkpoint.stat().st_size / MB
    print(
        f"hub RSS {before / 1024:.1f} MB before, peak {peak[0] / 1024:.1f} MB during the upload "
        f"of {size_mb:.0f} MB (+{growth_mb:.1f} MB)"
    )
    assert growth_mb < 25, (
        f"the hub's memory grew by {growth_mb:.1f} MB for a {size_mb:.0f} MB file"
    )

    digest = sha256_of(checkpoint)
    assert answer["sha256"] == digest and answer["stored"] == "new"
    assert answer["value"] == {"file": digest, "filename": "weights.pt"}
    assert (hub.data / "files" / digest).stat().st_size == checkpoint.stat().st_size
    assert not list((hub.data / "uploads").glob("*.part"))

    r = hub.api(
        "PUT",
        f"{service}/options",
        json={"values": {"checkpoint": answer["value"], "scale": 3}, "publish": True},
    )
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["version"] == 2 and v["publishing"] is True
    assert v["values"] == {"checkpoint": answer["value"], "scale": 3}
    hub.wait_version("opt", "svc", 2, timeout=180)
    out = hub.serve("opt/svc/predict", json={"x": 2})
    assert out.status_code == 200, out.text
    got = json.loads(out.json()["answer"])
    assert got["weights"] == [0.5, 1.5, 2.0]
    assert got["size"] == checkpoint.stat().st_size
    assert got["name"] == "weights.pt"
    assert got["scale"] == 3
    assert got["y"] == pytest.approx((0.5 + 1.5 + 2.0) * 3 * 2)
    # The same bundle: the environment was reused, not built again.
    assert (
        hub.version("opt", "svc", 2)["bundle_hash"] == hub.version("opt", "svc", 1)["bundle_hash"]
    )
    assert "Reusing environment" in hub.logs("opt", "svc", 2)


def test_the_same_file_twice_is_stored_once(hub, service, checkpoint):
    before = stored_files(hub)
    assert len(before) == 1
    again = upload(hub, service, "checkpoint", checkpoint, filename="copy.pt")
    assert again["stored"] == "existing"
    assert stored_files(hub) == before
    assert again["value"] == {"file": before[0], "filename": "copy.pt"}


def test_a_wrong_extension_is_refused(hub, service, checkpoint, tmp_path):
    versions = len(hub.service("opt", "svc")["versions"])
    r = hub.post(
        f"{service}/uploads", json={"option": "checkpoint", "filename": "weights.pkl", "size": 10}
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert "'checkpoint'" in error and ".pt" in error and "weights.pkl" in error
    # A stored file given under a name with the wrong extension is refused too.
    sha = stored_files(hub)[0]
    r = hub.api(
        "PUT",
        f"{service}/options",
        json={"values": {"checkpoint": {"file": sha, "filename": "weights.pkl"}}},
    )
    assert r.status_code == 400 and "'checkpoint'" in r.json()["error"]
    # An option that takes no file takes no upload.
    r = hub.post(f"{service}/uploads", json={"option": "scale", "filename": "a.pt", "size": 1})
    assert r.status_code == 400 and "'scale'" in r.json()["error"]
    assert len(hub.service("opt", "svc")["versions"]) == versions


def test_a_value_that_breaks_its_rule_is_a_400_naming_the_option(hub, service):
    versions = len(hub.service("opt", "svc")["versions"])
    cases = [
        ({"scale": 11}, "'scale'", "at most 10"),
        ({"scale": "big"}, "'scale'", "number"),
        ({"sharpness": 1}, "'sharpness'", "'scale'"),
        ({"checkpoint": "/etc/passwd"}, "'checkpoint'", "upload"),
        ({"checkpoint": {"file": "0" * 64, "filename": "x.pt"}}, "'checkpoint'", "upload"),
    ]
    for values, name, words in cases:
        r = hub.api("PUT", f"{service}/options", json={"values": values})
        assert r.status_code == 400, (values, r.text)
        error = r.json()["error"]
        assert name in error and words in error, error
    r = hub.api("PUT", f"{service}/options", json={"values": [1]})
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
    assert len(hub.service("opt", "svc")["versions"]) == versions


def test_a_new_value_is_a_new_version_and_publishing_the_old_one_rolls_back(hub, service):
    online = hub.service("opt", "svc")["published_version"]
    r = hub.api("PUT", f"{service}/options", json={"values": {"scale": 5}})
    assert r.status_code == 201, r.text
    number = r.json()["version"]
    assert number > online
    # Values carry over from the version it was made from; only scale changed.
    assert r.json()["values"]["scale"] == 5 and "checkpoint" in r.json()["values"]
    assert hub.version("opt", "svc", number)["status"] == "registered"
    assert hub.publish("opt", "svc", number).status_code == 202
    hub.wait_version("opt", "svc", number)
    assert json.loads(hub.serve("opt/svc/predict", json={"x": 1}).json()["answer"])["scale"] == 5
    assert hub.publish("opt", "svc", online).status_code == 202
    hub.wait_version("opt", "svc", online)
    assert json.loads(hub.serve("opt/svc/predict", json={"x": 1}).json()["answer"])["scale"] == 3
    assert hub.get(f"{service}/options?version={number}").json()["values"]["scale"] == 5


def test_an_upload_cut_short_resumes_where_it_stopped(hub, service, tmp_path):
    file = make_checkpoint(tmp_path / "small.pt", [9.0], 3 * MB + 17)
    data = file.read_bytes()
    r = hub.post(
        f"{service}/uploads",
        json={"option": "checkpoint", "filename": "small.pt", "size": len(data)},
    )
    assert r.status_code == 201, r.text
    url = f"/api/v1/uploads/{r.json()['id']}"
    half = len(data) // 2
    r = hub.api("PUT", url, data=data[:half])
    assert r.status_code == 200 and r.json() == {**r.json(), "complete": False, "offset": half}
    assert hub.get(url).json()["offset"] == half
    r = hub.api("PUT", f"{url}?offset={half + 5}", data=data[half + 5 :])
    assert r.status_code == 409 and str(half) in r.json()["error"]
    end = len(data) - 100
    r = hub.api(
        "PUT",
        url,
        data=data[half:end],
        headers={"Content-Range": f"bytes {half}-{end - 1}/{len(data)}"},
    )
    assert r.status_code == 200 and r.json()["offset"] == end
    r = hub.api("PUT", f"{url}?offset={end}", data=data[end:])
    assert r.status_code == 200 and r.json()["complete"] is True
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert hub.get(url).status_code == 404
    # An upload given up is deleted with what it had received.
    r = hub.post(f"{service}/uploads", json={"option": "checkpoint", "filename": "y.pt", "size": 9})
    gone = r.json()["url"].replace(hub.url, "")
    assert hub.api("PUT", gone, data=b"1234").json()["offset"] == 4
    assert hub.api("DELETE", gone).status_code == 204
    assert hub.get(gone).status_code == 404
    assert not (hub.data / "uploads" / f"{r.json()['id']}.part").exists()
    # More bytes than were announced are refused, and nothing is kept.
    r = hub.post(f"{service}/uploads", json={"option": "checkpoint", "filename": "x.pt", "size": 4})
    r = hub.api("PUT", r.json()["url"].replace(hub.url, ""), data=b"123456789")
    assert r.status_code == 400 and "4 bytes" in r.json()["error"]


def test_a_file_over_the_limit_is_a_413(hub, service):
    r = hub.post(
        f"{service}/uploads",
        json={"option": "checkpoint", "filename": "huge.pt", "size": 9 << 30},
    )
    assert r.status_code == 413
    error = r.json()["error"]
    assert "'checkpoint'" in error and "huge.pt" in error and "--max-file-size" in error


def test_options_need_a_token(hub, service):
    import requests

    r = requests.put(hub.url + f"{service}/options", json={"values": {"scale": 2}}, timeout=30)
    assert r.status_code == 401
    r = requests.post(
        hub.url + f"{service}/uploads",
        json={"option": "checkpoint", "filename": "a.pt", "size": 1},
        timeout=30,
    )
    assert r.status_code == 401


def test_the_cli_shows_sets_and_uploads(hub, service, tmp_path):
    env = {**os.environ, "ALGOLINK_HUB_URL": hub.url, "ALGOLINK_TOKEN": hub.token}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*ALGOLINK, *args], cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120
        )

    shown = cli("options", "opt/svc")
    assert shown.returncode == 0, shown.stderr
    assert "checkpoint: file" in shown.stdout and "scale: number" in shown.stdout
    assert "Multiplies every weight" in shown.stdout and "max=10" in shown.stdout

    file = make_checkpoint(tmp_path / "cli.pt", [4.0], 2 * MB)
    before = len(hub.service("opt", "svc")["versions"])
    out = cli("options", "opt/svc", "--set", "scale=2", "--upload", f"checkpoint={file}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Uploading cli.pt" in out.stderr and "(100%)" in out.stderr
    number = before + 1
    assert f"Version {number} of opt/svc" in out.stdout
    values = hub.version("opt", "svc", number)["options"]
    assert values["scale"] == 2
    assert values["checkpoint"] == {"file": sha256_of(file), "filename": "cli.pt"}

    bad = cli("options", "opt/svc", "--set", "scale=12")
    assert bad.returncode != 0 and "'scale'" in bad.stderr
    wrong = tmp_path / "w.pkl"
    wrong.write_bytes(b"x")
    bad = cli("options", "opt/svc", "--upload", f"checkpoint={wrong}")
    assert bad.returncode != 0 and ".pt" in bad.stderr
    assert len(hub.service("opt", "svc")["versions"]) == number


def test_a_directory_option_takes_an_archive_unpacked_for_the_service(hub, service, tmp_path):
    archive = tmp_path / "vocab.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("labels.txt", "lemon\nlime\n")
        zf.writestr("sub/readme.md", "# vocab")
    r = hub.post(f"{service}/uploads", json={"option": "vocab", "filename": "vocab.txt", "size": 3})
    assert r.status_code == 400 and "'vocab'" in r.json()["error"] and ".zip" in r.json()["error"]
    value = upload(hub, service, "vocab", archive)["value"]
    newest = len(hub.service("opt", "svc")["versions"])
    base = hub.get(f"{service}/options?version={newest}").json()["values"]
    r = hub.api("PUT", f"{service}/options", json={"values": {"vocab": value}, "publish": True})
    assert r.status_code == 201, r.text
    number = r.json()["version"]
    hub.wait_version("opt", "svc", number)
    got = json.loads(hub.serve("opt/svc/predict", json={"x": 1}).json()["answer"])
    assert got["vocab"] == {"labels.txt": "lemon\nlime\n", "sub/readme.md": "# vocab"}
    # The other values carried over from the newest version.
    assert hub.version("opt", "svc", number)["options"] == {**base, "vocab": value}
    assert got["scale"] == base.get("scale", 1)


def test_an_upload_whose_connection_breaks_resumes_from_what_arrived(hub, service, tmp_path):
    data = make_checkpoint(tmp_path / "cut.pt", [7.0], 2 * MB).read_bytes()
    r = hub.post(
        f"{service}/uploads", json={"option": "checkpoint", "filename": "cut.pt", "size": len(data)}
    )
    url = f"/api/v1/uploads/{r.json()['id']}"
    host, port = hub.url.split("//")[1].split(":")
    sent = 1 * MB + 12345
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            (
                f"PUT {url} HTTP/1.1\r\nHost: {host}\r\nAuthorization: token {hub.token}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data[:sent]
        )
        wait_for(lambda: hub.get(url).json()["offset"] == sent, 30, 0.05, "the bytes to arrive")
    wait_for(lambda: hub.get(url).json()["offset"] == sent, 10, 0.05, "the cut to be kept")
    r = hub.api("PUT", f"{url}?offset={sent}", data=data[sent:])
    assert r.status_code == 200, r.text
    assert r.json()["complete"] is True
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert (hub.data / "files" / r.json()["sha256"]).read_bytes() == data


def test_after_a_hub_restart_the_values_and_unfinished_uploads_are_still_there(hub, service):
    data = os.urandom(MB + 3)
    r = hub.post(
        f"{service}/uploads",
        json={"option": "checkpoint", "filename": "late.pt", "size": len(data)},
    )
    url = f"/api/v1/uploads/{r.json()['id']}"
    assert hub.api("PUT", url, data=data[:1000]).json()["offset"] == 1000
    published = hub.service("opt", "svc")["published_version"]
    values = hub.version("opt", "svc", published)["options"]
    hub.stop()
    hub.start()
    hub.wait_version("opt", "svc", published)
    got = json.loads(hub.serve("opt/svc/predict", json={"x": 1}).json()["answer"])
    assert got["scale"] == values.get("scale", 1)
    assert got["name"] == values["checkpoint"]["filename"]
    # The upload resumes in the new hub process (its hash taken again from the bytes on disk).
    assert hub.get(url).json()["offset"] == 1000
    r = hub.api("PUT", f"{url}?offset=1000", data=data[1000:])
    assert r.status_code == 200 and r.json()["sha256"] == hashlib.sha256(data).hexdigest()


ROUND_TRIP = [
    "text(default='hi', min_length=1, max_length=5, description='d')",
    "number(default=2, min=0, max=10, step=0.5)",
    "boolean(default=True)",
    "category(choices=['a', 'b'], default='b')",
    "vector(length=3, sampling_mean=1, sampling_std=2)",
    "image(channels=1, width=8, height=8, default_output_format='JPEG')",
    "image(min_width=2, max_width=9)",
    "segmentation(label_to_id={'bg': 0, 'cat': 1}, width=4, height=4)",
    "image_point()",
    "image_bounding_box()",
    "image_landmarks(length=2, labels=['l', 'r'], connections=[['l', 'r']])",
    "array(item_type=number(min=0), min_length=1, max_length=3)",
    "file(extension=['.pt', '.pth'])",
    "directory()",
    "any(default=[1, 2])",
]


@pytest.mark.parametrize("spec", ROUND_TRIP)
def test_the_hub_rebuilds_every_data_type_from_its_manifest_entry(spec):
    import modelcloud
    from algolink_jupyter.hub import options as hub_options

    original = eval(spec, vars(modelcloud))
    rebuilt = hub_options.type_from_dict({"name": "x", **original.to_dict()})
    expected = {k: v for k, v in original.to_dict().items() if k != "default"}
    assert {k: v for k, v in rebuilt.to_dict().items() if k != "default"} == expected


def test_rules_are_checked_as_the_service_checks_them():
    from algolink_jupyter.hub import options as hub_options

    manifest = {
        "options": [
            {"name": "k", "type": "category", "oneOf": ["a", "b"]},
            {"name": "n", "type": "array", "itemType": {"type": "number", "max": 1}},
            {"name": "t", "type": "text", "maxLength": 3},
        ]
    }
    ok = hub_options.check_values(manifest, {"k": "a", "n": [0.5], "t": "abc"}, lambda s: False)
    assert ok == {"k": "a", "n": [0.5], "t": "abc"}
    for values, name in (({"k": "c"}, "'k'"), ({"n": [2]}, "'n'"), ({"t": "abcd"}, "'t'")):
        with pytest.raises(hub_options.OptionError) as e:
            hub_options.check_values(manifest, values, lambda s: False)
        assert e.value.option == name.strip("'") and name in e.value.message


def test_deleting_removes_the_option_files_and_uploads_no_version_uses(hub, tmp_path):
    """Files are kept once by content and shared: deleting a version removes its file only when no
    other version names it; deleting the service removes its unfinished uploads too."""
    hub.ensure_group("opt", "g")
    assert hub.register("opt", "g", "gc", make_options_bundle(tmp_path / "b")).status_code == 201
    path = "/api/v1/projects/opt/services/gc"
    wait_for(lambda: hub.version("opt", "gc", 1)["manifest"] is not None, 240, 0.2, "manifest")
    files = {}
    for name, weights in (("a", [1.0]), ("b", [2.0])):
        file = make_checkpoint(tmp_path / f"{name}.pt", weights, 64 * 1024)
        value = upload(hub, path, "checkpoint", file)["value"]
        r = hub.api("PUT", f"{path}/options", json={"values": {"checkpoint": value}, "version": 1})
        assert r.status_code == 201, r.text
        files[name] = (value["file"], r.json()["number"])
    # A third version with file b again: b is named twice.
    value_b = {"file": files["b"][0], "filename": "b.pt"}
    r = hub.api("PUT", f"{path}/options", json={"values": {"checkpoint": value_b}, "version": 1})
    assert r.status_code == 201
    on_disk = lambda sha: (hub.data / "files" / sha).exists()  # noqa: E731
    assert on_disk(files["a"][0]) and on_disk(files["b"][0])
    # An upload never finished.
    r = hub.post(f"{path}/uploads", json={"option": "checkpoint", "filename": "x.pt", "size": 10})
    part = hub.data / "uploads" / f"{r.json()['id']}.part"
    assert part.exists()

    assert hub.api("DELETE", f"{path}/versions/{files['a'][1]}").status_code == 200
    wait_for(lambda: not on_disk(files["a"][0]), 15, 0.2, "file a to go")
    assert hub.api("DELETE", f"{path}/versions/{files['b'][1]}").status_code == 200
    time.sleep(2)  # a collection ran (it runs a second after a change)
    assert on_disk(files["b"][0])  # the third version still names it
    assert hub.api("DELETE", path).status_code == 200
    wait_for(lambda: not on_disk(files["b"][0]) and not part.exists(), 15, 0.2, "b and the upload")
    # The other service's file (opt/svc) is untouched.
    assert all(on_disk(sha) for sha in stored_files(hub)) and stored_files(hub)
