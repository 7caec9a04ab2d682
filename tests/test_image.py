"""`algolink image`: the digits example's OCI image, built without a daemon, run with buildah on a
loopback port, checked against its Dockerfile, rebuilt after a code change, and made by the hub.

The layers are cached in ``$ALGOLINK_IMAGE_CACHE`` (default ``~/.cache/algolink/images``) between
runs: only the first run on a machine runs debootstrap (about a minute). Skipped where buildah or
debootstrap is missing (``make test`` installs them: the ``image-tools`` target) or cannot run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
import requests
from hub_process import ALGOLINK, Hub, free_port, wait_for

from algolink_jupyter import dockerfile as df
from algolink_jupyter.export.docker import write_docker_files
from algolink_jupyter.hub import image
from support import REPO

EXAMPLE = REPO / "examples" / "digits"
TOOLS = [t for t in ("buildah", "debootstrap") if not shutil.which(t)]
pytestmark = pytest.mark.skipif(
    bool(TOOLS) or os.geteuid() != 0,
    reason=f"building and running images needs root and {', '.join(TOOLS) or 'buildah'} "
    "(make image-tools installs them from Debian)",
)


def copy_example(folder: Path) -> Path:
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("models", "__pycache__"))
    write_docker_files(folder)
    return folder


def build(bundle: Path, work: Path, output: Path) -> image.ImageResult:
    spec = image.local_spec(bundle, work, print, output=output, tag="algolink/digits-test:latest")
    return image.build_image(spec, log=print)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("image")
    bundle = copy_example(root / "digits")
    result = build(bundle, root / "work" / "app", root / "digits.tar")
    return {"root": root, "bundle": bundle, "result": result, "work": root / "work" / "app"}


def members(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        return {
            m.name: tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.isfile() and (not m.name.startswith("blobs/") or m.size < (1 << 20))
        }


def layer_files(archive: Path, digest: str) -> dict:
    """path in the image -> TarInfo, of one layer of the archive."""
    with tarfile.open(archive) as outer:
        f = outer.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
        with tarfile.open(fileobj=f, mode="r|") as tar:
            return {m.name: m for m in tar}


def test_the_archive_is_an_oci_layout_and_a_docker_archive(built):
    archive = built["result"].archive
    files = members(archive)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    desc = index["manifests"][0]
    manifest_bytes = files[f"blobs/sha256/{desc['digest'].split(':', 1)[1]}"]
    assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == desc["digest"]
    assert desc["digest"] == built["result"].digest
    manifest = json.loads(manifest_bytes)
    config_bytes = files[f"blobs/sha256/{manifest['config']['digest'].split(':', 1)[1]}"]
    assert "sha256:" + hashlib.sha256(config_bytes).hexdigest() == manifest["config"]["digest"]
    config = json.loads(config_bytes)
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
    docker = json.loads(files["manifest.json"])
    assert docker[0]["RepoTags"] == ["algolink/digits-test:latest"]
    assert docker[0]["Layers"] == [
        f"blobs/sha256/{layer['digest'].split(':', 1)[1]}" for layer in manifest["layers"]
    ]
    with tarfile.open(archive) as tar:  # every blob is what its name says
        for m in tar.getmembers():
            if m.name.startswith("blobs/sha256/") and m.isfile():
                sha = hashlib.sha256()
                f = tar.extractfile(m)
                while block := f.read(1 << 20):
                    sha.update(block)
                assert sha.hexdigest() == m.name.rsplit("/", 1)[1]
    if shutil.which("skopeo"):
        out = subprocess.run(
            ["skopeo", "inspect", f"oci-archive:{archive}"], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        seen = json.loads(out.stdout)
        assert seen["Digest"] == built["result"].digest
        assert seen["Labels"]["io.algolink.commands"] == "classify"
        assert seen["Labels"]["org.opencontainers.image.description"].startswith("Reads")
    c = config["config"]
    assert c["User"] == f"{df.UID}:{df.UID}"
    assert c["ExposedPorts"] == {"9000/tcp": {}}
    assert c["Healthcheck"]["Test"][0] == "CMD" and "/healthcheck" in c["Healthcheck"]["Test"][-1]
    whats = [layer.what.split()[0] for layer in built["result"].layers]
    assert whats == ["os", "python", "dependencies", "models", "app"], whats


@pytest.fixture(scope="module")
def container(built, tmp_path_factory):
    """The image imported into buildah's own store (overlay, else vfs) as a working container."""
    store = tmp_path_factory.mktemp("buildah")
    for driver in ("overlay", "vfs"):
        base = [
            "buildah",
            "--root",
            str(store / driver / "root"),
            "--runroot",
            str(store / driver / "run"),
            "--storage-driver",
            driver,
        ]
        out = subprocess.run(
            [*base, "from", "--name", "digits", f"oci-archive:{built['result'].archive}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if out.returncode == 0:
            break
    else:
        pytest.skip(f"buildah cannot import images here: {out.stderr.strip()[-300:]}")
    yield base
    subprocess.run([*base, "rm", "digits"], capture_output=True, timeout=120)
    subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True, timeout=120)


def buildah_run(base: list, argv: list, env: dict = None, **kw) -> list:
    flags = [x for k, v in (env or {}).items() for x in ("--env", f"{k}={v}")]
    return [*base, "run", "--isolation", "chroot", *flags, "digits", "--", *argv]


def test_the_image_runs_as_its_user_and_classifies_a_digit(built, container):
    config = built["result"].config["config"]
    who = subprocess.run(
        buildah_run(container, ["id", "-u"]), capture_output=True, text=True, timeout=120
    )
    assert who.stdout.strip() == str(df.UID), who.stderr
    port = free_port()
    env = {"ALGOLINK_PORT": str(port), "ALGOLINK_HOST": "127.0.0.1"}
    proc = subprocess.Popen(
        buildah_run(container, config["Entrypoint"], env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy():
            try:
                return requests.get(url + "/healthcheck", timeout=2).status_code == 200
            except requests.RequestException:
                assert proc.poll() is None, proc.stdout.read()
                return False

        wait_for(healthy, 120, 0.3, "the image's service to answer")
        sample = EXAMPLE / "samples" / "digit_3.png"
        r = requests.post(
            url + "/classify", files={"photo": (sample.name, sample.read_bytes())}, timeout=30
        )
        assert r.status_code == 200, r.text
        assert r.json()["digit"] == 3
        health = subprocess.run(  # the image's HEALTHCHECK, run inside it as Docker runs it
            buildah_run(container, config["Healthcheck"]["Test"][1:], env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode == 0, health.stderr
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
    health = subprocess.run(
        buildah_run(container, config["Healthcheck"]["Test"][1:], env),
        capture_output=True,
        timeout=60,
    )
    assert health.returncode != 0  # the check fails once nothing answers


def test_the_dockerfile_matches_the_image(built):
    bundle, result = built["bundle"], built["result"]
    text = (bundle / "Dockerfile").read_text()
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]
    directive = {}
    for line in lines:
        word, _, rest = line.partition(" ")
        directive.setdefault(word, []).append(rest.strip())
    config = result.config["config"]
    assert json.loads(directive["ENTRYPOINT"][-1]) == config["Entrypoint"]
    assert directive["WORKDIR"] == [config["WorkingDir"]]
    assert directive["USER"] == [config["User"]]
    assert directive["EXPOSE"] == list(config["ExposedPorts"])
    assert (
        json.loads(directive["HEALTHCHECK"][0].split(" CMD ", 1)[1])
        == config["Healthcheck"]["Test"][1:]
    )
    assert any("python train.py --if-missing" in r for r in directive["RUN"])
    # The files: what `COPY . ./` copies (the folder less .dockerignore), plus what the build
    # steps make (the weights train.py writes), are the image's app and models layers.
    ignore = (bundle / ".dockerignore").read_text().split()
    assert set(df.IGNORED) <= set(ignore)
    copied = {
        p.relative_to(bundle).as_posix()
        for p in bundle.rglob("*")
        if p.is_file() and not df.ignored(p.relative_to(bundle).as_posix())
    }
    made = {"models/digits.pt"}
    in_image = set()
    app = df.APP_DIR.strip("/") + "/"
    for layer in result.layers[-2:]:
        for name, info in layer_files(result.archive, layer.digest).items():
            if name.startswith(app) and info.isfile():
                in_image.add(name[len(app) :])
                assert info.uid == df.UID
    assert in_image == copied | made
    assert f"{df.WHEELS_DIR}/" in text and (bundle / df.WHEELS_DIR).is_dir()


def test_a_code_change_reuses_the_base_and_dependency_layers(built, tmp_path):
    bundle = built["work"]  # trained: models/digits.pt is there, as in a bundle that ships weights
    first = build(bundle, tmp_path / "work0" / "app", tmp_path / "digits1.tar")
    source = bundle / "cloud_model.py"
    source.write_text(source.read_text().replace("0 to 9, from a picture", "0-9 in a picture"))
    t0 = time.monotonic()
    second = build(bundle, tmp_path / "work" / "app", tmp_path / "digits2.tar")
    seconds = time.monotonic() - t0
    before = {layer.what.split()[0]: layer for layer in first.layers}
    after = {layer.what.split()[0]: layer for layer in second.layers}
    for what in ("os", "python", "dependencies", "models"):
        assert after[what].digest == before[what].digest and after[what].reused, what
    assert after["app"].digest != before["app"].digest
    assert second.digest != first.digest
    assert seconds < 60, f"a rebuild after a code change took {seconds:.0f} s"


def test_after_a_build_the_cache_keeps_within_its_budget(built, tmp_path, monkeypatch):
    """A cache (the layers of the first build, linked, and a stale layer no build needs) with a
    budget of 0: the build reuses its layers, then removes the stale one and says so."""
    cache = image.LayerCache(tmp_path / "cache")
    default = image.LayerCache(image.cache_root())
    for layer in built["result"].layers[:-1]:  # all but the app layer
        try:
            os.link(layer.path, cache.blobs / layer.path.name)
        except OSError:  # another file system
            shutil.copy2(layer.path, cache.blobs / layer.path.name)
    for key in default.keys.glob("*.json"):
        shutil.copy2(key, cache.keys / key.name)
    stale = cache.blobs / ("0" * 64)
    stale.write_bytes(b"x" * 100_000)
    os.utime(stale, (time.time() - 86400,) * 2)
    monkeypatch.setenv("ALGOLINK_IMAGE_CACHE_BUDGET", "0")
    spec = image.local_spec(built["work"], tmp_path / "work" / "app", print)
    spec.output = tmp_path / "budget.tar"
    lines: list = []
    result = image.build_image(spec, cache=cache.root, log=lines.append)
    assert [layer.reused for layer in result.layers] == [True] * (len(result.layers) - 1) + [False]
    assert not stale.exists()
    assert sorted(cache.blobs.iterdir()) == sorted({layer.path for layer in result.layers})
    assert lines[-1].startswith(f"Image cache {cache.root}: removed 1 layer (")
    assert lines[-1].endswith(
        ", used least recently, to keep it within 0 ($ALGOLINK_IMAGE_CACHE_BUDGET)."
    )
    # What the build used is still there, by its keys: the next build reuses every layer but app.
    keys = {json.loads(p.read_text())["digest"] for p in cache.keys.glob("*.json")}
    assert keys == {layer.digest for layer in result.layers[:-1]}


XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')


def signed_in(hub: Hub) -> requests.Session:
    s = requests.Session()
    s.headers["Accept"] = "text/html"
    token = XSRF.search(s.get(hub.url + "/login", timeout=30).text).group(1)
    r = s.post(
        hub.url + "/login",
        data={"_xsrf": token, "token": hub.token, "next": "/projects"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302, r.text
    return s


def test_the_hub_builds_and_serves_a_versions_image(built, tmp_path_factory):
    hub = Hub(
        tmp_path_factory.mktemp("hub-image"),
        env={"ALGOLINK_IMAGE_CACHE": str(image.cache_root())},
    ).start()
    try:
        hub.ensure_group("img", "g")
        # The trained working copy (models/digits.pt there: train.py --if-missing does nothing).
        r = hub.register("img", "g", "digits", built["work"])
        assert r.status_code == 201, r.text
        url = "/api/v1/projects/img/services/digits/versions/1/image"
        early = hub.post(url)
        assert early.status_code == 409 and "publish it once" in early.json()["error"]
        assert hub.publish("img", "digits", 1).status_code == 202
        hub.wait_version("img", "digits", 1, timeout=600)
        # The versions table's Image button (a developer's form) starts the build.
        browser = signed_in(hub)
        page = browser.get(hub.url + "/projects/img/services/digits", timeout=30).text
        assert 'class="small image-build"' in page
        r = browser.post(
            hub.url + "/projects/img/services/digits/versions/1/image",
            data={"_xsrf": XSRF.search(page).group(1)},
            allow_redirects=False,
            timeout=60,
        )
        assert r.status_code == 302, r.text
        state = wait_for(
            lambda: (s := hub.get(url).json())["status"] != "building" and s,
            600,
            1,
            "the hub's image build",
        )
        assert state["status"] == "ready", hub.get(url + "/log").text
        assert "Layer os" in hub.get(url + "/log").text
        r = hub.get(url.replace("/image", "/image.tar"))
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == state["digest"]
        # `algolink image P/S:vN` asks the hub again (every layer reused), follows its log and
        # downloads the archive.
        archive = tmp_path_factory.mktemp("download") / "v1.tar"
        env = {**os.environ, "ALGOLINK_HUB_URL": hub.url, "ALGOLINK_TOKEN": hub.token}
        proc = subprocess.run(
            [*ALGOLINK, "image", "img/digits:v1", "-o", str(archive)],
            cwd=str(REPO),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "reused" in proc.stderr and "Layer dependencies" in proc.stderr
        state = hub.get(url).json()
        assert proc.stdout.split() == [str(archive), state["digest"]]
        assert archive.stat().st_size == state["size"]
        files = members(archive)
        assert json.loads(files["index.json"])["manifests"][0]["digest"] == state["digest"]
        manifest = json.loads(files["blobs/sha256/" + state["digest"].split(":", 1)[1]])
        config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":", 1)[1]])
        labels = config["config"]["Labels"]
        assert labels["io.algolink.project"] == "img" and labels["io.algolink.version"] == "1"
        page = browser.get(hub.url + "/projects/img/services/digits", timeout=30).text
        assert state["digest"][:19] in page
        # Rights: a viewer of the project may neither build nor download it.
        viewer = hub.add_user("imgviewer", {"img": "viewer"})
        headers = {"Authorization": f"token {viewer}"}
        assert hub.post(url, headers=headers).status_code == 403
        assert hub.get(url.replace("/image", "/image.tar"), headers=headers).status_code == 403
        assert hub.get(url + "/log", headers=headers).status_code == 403
        anonymous = requests.get(hub.url + url.replace("/image", "/image.tar"), timeout=30)
        assert anonymous.status_code == 401
        # Deleting the version deletes its image too.
        folder = hub.data / "images" / "img" / "digits" / "1"
        assert (folder / "image.tar").is_file()
        assert hub.post("/api/v1/projects/img/services/digits/offline").status_code == 200
        r = hub.api("DELETE", "/api/v1/projects/img/services/digits/versions/1")
        assert r.status_code == 200, r.text
        assert not folder.exists()
    finally:
        hub.stop_services()
        hub.stop()


def test_a_base_image_from_a_registry_takes_the_place_of_the_debian_base(built, tmp_path):
    """--base: a gzip-compressed image (here an OCI layout of the os layer, as a registry serves
    it) is fetched with skopeo and unpacked: the image's first layer is that base's, as a plain tar."""
    if not shutil.which("skopeo"):
        pytest.skip("--base needs skopeo (make image-tools installs it)")
    result = built["result"]
    os_layer = result.layers[0]
    layout = tmp_path / "base"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    packed = tmp_path / "os.tar.gz"
    subprocess.run(["gzip", "-1", "-c", str(os_layer.path)], stdout=packed.open("wb"), check=True)
    data = packed.read_bytes()
    gz_digest = hashlib.sha256(data).hexdigest()
    (blobs / gz_digest).write_bytes(data)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]},
        "rootfs": {"type": "layers", "diff_ids": [os_layer.diff_id]},
    }
    config_bytes = json.dumps(config).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    (blobs / config_digest).write_bytes(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": image.MANIFEST_TYPE,
        "config": {
            "mediaType": image.CONFIG_TYPE,
            "digest": f"sha256:{config_digest}",
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": image.LAYER_TAR + "+gzip",
                "digest": f"sha256:{gz_digest}",
                "size": len(data),
            }
        ],
    }
    manifest_bytes = json.dumps(manifest).encode()
    manifest_digest = hashlib.sha256(manifest_bytes).hexdigest()
    (blobs / manifest_digest).write_bytes(manifest_bytes)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": image.MANIFEST_TYPE,
                        "digest": f"sha256:{manifest_digest}",
                        "size": len(manifest_bytes),
                    }
                ],
            }
        )
    )
    spec = image.local_spec(
        built["bundle"], tmp_path / "work" / "app", print, output=tmp_path / "b.tar"
    )
    spec.base = f"oci:{layout}"
    with_base = image.build_image(spec, log=print)
    first = with_base.layers[0]
    assert first.what.startswith("base (") and first.media_type == image.LAYER_TAR
    assert first.digest == os_layer.digest  # the gzip unpacked to the very same tar
    assert [layer.what.split()[0] for layer in with_base.layers[1:3]] == ["python", "dependencies"]
    assert "LANG=C.UTF-8" in with_base.config["config"]["Env"]


def test_podman_loads_the_archive(built, tmp_path):
    if not shutil.which("podman"):
        pytest.skip("podman is not installed (apt-get install podman)")
    run = tempfile.mkdtemp(prefix="podman-", dir="/tmp")  # podman wants it under 50 characters
    base = ["podman", "--root", str(tmp_path / "root"), "--runroot", run]
    base += ["--storage-driver", "overlay"]
    out = subprocess.run(
        [*base, "load", "-i", str(built["result"].archive)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        assert out.returncode == 0, out.stderr
        seen = subprocess.run(
            [*base, "image", "inspect", "algolink/digits-test:latest"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert seen.returncode == 0, seen.stderr
        info = json.loads(seen.stdout)[0]
        assert info["Config"]["User"] == f"{df.UID}:{df.UID}"
        assert info["Config"]["Entrypoint"] == ["python", "cloud_model.py"]
    finally:
        subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True, timeout=300)
        shutil.rmtree(run, ignore_errors=True)


def test_push_sends_the_image_to_a_registry(built, tmp_path):
    """--push: the archive goes to a registry (Debian's docker-registry, on loopback) with skopeo,
    and comes back from it with the same config, labels and layers."""
    if not (shutil.which("docker-registry") and shutil.which("skopeo")):
        pytest.skip("a registry to push to needs docker-registry and skopeo (make image-tools)")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path / 'storage'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    registry = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def up():
            try:
                return requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, 30, 0.2, "the registry to start")
        dest = f"127.0.0.1:{port}/algolink/digits:v1"
        image.push(built["result"].archive, dest, print)
        seen = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{dest}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seen.returncode == 0, seen.stderr
        info = json.loads(seen.stdout)
        assert info["Labels"]["io.algolink.commands"] == "classify"
        assert len(info["Layers"]) == len(built["result"].layers)
        raw = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--config", f"docker://{dest}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        pushed = json.loads(raw.stdout)
        assert pushed["rootfs"]["diff_ids"] == built["result"].config["rootfs"]["diff_ids"]
        assert pushed["config"]["Entrypoint"] == ["python", "cloud_model.py"]
    finally:
        os.killpg(registry.pid, 15)
        registry.wait(30)
