"""The caches in a user's home keep within a budget: the image layer cache (blobs written by the
cache itself, keys that name them, environments, base images) and the verification environments
(real bundles verified in real environments), the least recently used going first, never what is in
use."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import pytest

from algolink_jupyter import budget, runtime
from algolink_jupyter.export import VerifyError, verify_bundle
from algolink_jupyter.export.verify import prune_environments
from algolink_jupyter.hub import image
from algolink_jupyter.hub.builder import COMPLETE_MARKER

# -- sizes from the environment ---------------------------------------------------------------------


def test_a_budget_is_a_size_zero_or_none_and_a_bad_one_names_its_variable(monkeypatch):
    var = "ALGOLINK_IMAGE_CACHE_BUDGET"
    monkeypatch.delenv(var, raising=False)
    assert image.cache_budget() == 10 * 2**30
    for text, want in (("500M", 500 * 2**20), ("1.5G", int(1.5 * 2**30)), ("0", 0), ("none", None)):
        monkeypatch.setenv(var, text)
        assert image.cache_budget() == want, text
    monkeypatch.setenv(var, "lots")
    with pytest.raises(
        image.ImageError, match=r"\$ALGOLINK_IMAGE_CACHE_BUDGET='lots' is not a size"
    ):
        image.cache_budget()
    with pytest.raises(budget.SizeError, match="'-3G' is not a size: give one such as 20G"):
        budget.byte_size("-3G")
    for n in (10 * 2**30, 1536 * 2**20, 500 * 2**20, 812):  # a budget said as it is written
        assert budget.byte_size(budget.size_text(n)) == n


# -- the image layer cache ----------------------------------------------------------------------------


def write(cache: image.LayerCache, folder: Path, name: str, size: int) -> image.Layer:
    """A layer of one file of ``size`` random bytes, written by the cache."""
    src = folder / name
    src.mkdir(parents=True)
    (src / "data.bin").write_bytes(os.urandom(size))
    return cache.write_layer(
        name, [image.LayerFile("data", None), image.LayerFile("data/data.bin", src / "data.bin")]
    )


def used_at(path: Path, seconds_ago: float) -> None:
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


def test_the_layer_cache_removes_the_least_recently_used_first_and_keeps_what_is_in_use(tmp_path):
    cache = image.LayerCache(tmp_path / "cache")
    layers = {}
    for i, name in enumerate("abcd"):
        layers[name] = write(cache, tmp_path / "src", name, 200_000 + i * 1000)
        cache.remember(f"key-{name}", layers[name])
    orphan = write(cache, tmp_path / "src", "app", 150_000)  # an app layer: a blob no key names
    env = cache.envs / "py3.11-0123456789"  # an environment `algolink image` built
    (env / "lib").mkdir(parents=True)
    (env / "lib" / "big.so").write_bytes(os.urandom(120_000))
    (env / COMPLETE_MARKER).write_text("{}")
    base = cache.bases / "debian_bookworm"  # a --base image, fetched long ago
    (base / "blobs").mkdir(parents=True)
    (base / "blobs" / "layer").write_bytes(os.urandom(100_000))
    (base / "index.json").write_text("{}")
    # Last uses, oldest first: the base, d (in use by this build all the same), b, the environment,
    # c, the orphan; then a, found by a lookup now.
    for path, ago in (
        (base / "index.json", 9000),
        (layers["d"].path, 900),
        (layers["b"].path, 800),
        (env / COMPLETE_MARKER, 700),
        (layers["c"].path, 600),
        (orphan.path, 500),
        (layers["a"].path, 1000),
    ):
        used_at(path, ago)
    assert cache.lookup("key-a").path == layers["a"].path
    assert layers["a"].path.stat().st_mtime > time.time() - 60  # the hit marked it used

    sizes = {c.name: c.size for c in cache.candidates()}
    name = {k: os.path.realpath(v.path) for k, v in layers.items()}
    name.update(orphan=os.path.realpath(orphan.path), env=os.path.realpath(env))
    name.update(base=os.path.realpath(base))
    assert set(sizes) == set(name.values())
    total = sum(sizes.values())
    keep = [layers["d"].path]

    # Room for all but b and the environment: those two go (d, older, is in use), in that order;
    # but the environment is being built by another process (its lock held): c goes in its place.
    with open(cache.envs / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        removed = cache.prune(total - sizes[name["b"]] - sizes[name["env"]], keep)
    assert [c.name for c in removed] == [name["b"], name["c"]]
    assert [c.kind for c in removed] == ["layer", "layer"]
    assert cache.lookup("key-b") is None and cache.lookup("key-c") is None
    assert not layers["b"].path.exists() and env.is_dir()
    keys = {json.loads(p.read_text())["digest"] for p in cache.keys.glob("*.json")}
    assert keys == {layers["a"].digest, layers["d"].digest}  # the keys of removed blobs went too
    total -= sizes[name["b"]] + sizes[name["c"]]

    # Free now, the environment goes first; then the orphan; then a (touched now, but a layer goes
    # before any base image), and the old base image stays: the rest fits.
    budget_left = sizes[name["d"]] + sizes[name["base"]]
    removed = cache.prune(budget_left, keep)
    assert [c.name for c in removed] == [name["env"], name["orphan"], name["a"]]
    assert not env.exists() and base.is_dir() and cache.lookup("key-a") is None
    assert cache.lookup("key-d").path == layers["d"].path

    # A budget of 0 removes the base image too, and still not what is in use.
    assert [c.name for c in cache.prune(0, keep)] == [name["base"]]
    assert cache.lookup("key-d") is not None and list(cache.blobs.iterdir()) == [layers["d"].path]
    # A key whose blob was deleted by hand is a miss, and the next prune removes it.
    layers["d"].path.unlink()
    assert cache.lookup("key-d") is None
    assert cache.prune(0) == [] and list(cache.keys.iterdir()) == []


def test_the_layer_cache_is_not_pruned_while_another_build_runs(tmp_path):
    cache = image.LayerCache(tmp_path / "cache")
    layer = write(cache, tmp_path / "src", "a", 10_000)
    cache.remember("key-a", layer)
    with open(cache.root / "lock", "w") as other:  # another build holds the cache shared
        fcntl.flock(other, fcntl.LOCK_SH)
        assert cache.prune(0) is None
    assert cache.lookup("key-a") is not None
    assert [c.name for c in cache.prune(0)] == [os.path.realpath(layer.path)]


# -- the verification environments --------------------------------------------------------------------

MODEL = """
import modelcloud
from modelcloud.data_types import number


@modelcloud.command("double", inputs={"x": number()}, outputs={"y": number()})
def double(model, inputs):
    return {"y": inputs["x"] * 2}


if __name__ == "__main__":
    modelcloud.run()
"""


def bundle(folder: Path, requirements: list) -> Path:
    (folder / "examples" / "double").mkdir(parents=True)
    (folder / "cloud_model.py").write_text(MODEL)
    (folder / "requirements.txt").write_text("\n".join([runtime.requirement(), *requirements]))
    record = {"inputs": {"x": 2.5}, "outputs": {"y": 5.0}}
    (folder / "examples" / "double" / "001.json").write_text(json.dumps(record))
    return folder


@pytest.mark.timeout(300)
def test_verification_environments_past_the_budget_go_least_recently_used_first(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("ALGOLINK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ALGOLINK_VERIFY_BUDGET", raising=False)
    envs = tmp_path / "cache" / "envs"
    first = bundle(tmp_path / "first", [])
    second = bundle(tmp_path / "second", ["six"])  # a different set of requirements
    lines: list = []
    one = verify_bundle(first, out=lines.append)
    assert not one.reused and one.environment.is_dir()
    assert not any("Removed" in line for line in lines)  # 5G by default: nothing to remove
    # Room for one environment, not two.
    size = budget.tree_size(one.environment)
    monkeypatch.setenv("ALGOLINK_VERIFY_BUDGET", str(int(size * 1.5)))
    lines.clear()
    two = verify_bundle(second, out=lines.append)
    assert not two.reused and two.environment != one.environment
    assert two.environment.is_dir() and not one.environment.exists()
    said = [line for line in lines if line.startswith("  Removed ")]
    assert said == [
        f"  Removed 1 environment ({budget.size_words(size)}) of earlier verifications, used "
        f"least recently, to keep {envs} within {budget.size_text(int(size * 1.5))} "
        "($ALGOLINK_VERIFY_BUDGET)."
    ], lines
    assert lines[-1].startswith("Verified in"), lines[-1]  # the summary stays the last line
    # The first bundle again: its environment is built anew and works; the second's goes, unless
    # another verification uses it (its .use file held) at that moment.
    with open(envs / f"{two.environment.name}.use", "a") as other:
        fcntl.flock(other, fcntl.LOCK_SH)
        again = verify_bundle(first, out=lines.append)
        assert not again.reused and again.environment == one.environment
        assert again.examples == 1 and two.environment.is_dir()
    removed = prune_environments(int(size * 1.5))
    assert [c.name for c in removed] == [two.environment.name]
    assert again.environment.is_dir() and not two.environment.exists()
    # Reused: marked used now (its marker's time), and a budget of 0 keeps the one just used.
    monkeypatch.setenv("ALGOLINK_VERIFY_BUDGET", "0")
    before = (again.environment / "algolink-env.json").stat().st_mtime
    time.sleep(0.05)
    last = verify_bundle(first, out=lines.append)
    assert last.reused and (again.environment / "algolink-env.json").stat().st_mtime > before
    assert sorted(p.name for p in envs.iterdir() if p.is_dir()) == [again.environment.name]
    monkeypatch.setenv("ALGOLINK_VERIFY_BUDGET", "lots")
    with pytest.raises(VerifyError, match=r"\$ALGOLINK_VERIFY_BUDGET='lots' is not a size"):
        verify_bundle(first, out=lines.append)
