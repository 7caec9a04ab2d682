"""Bundles: safe unpacking, content hashes, the content-addressed store, and algolink.yml."""

from __future__ import annotations

import io
import os
import stat
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from algolink_jupyter.hub.bundles import (
    BundleConfig,
    BundleError,
    bundle_hash,
    bundle_root,
    read_config,
    store,
    unpack_archive,
)

LIMITS = {"max_bytes": 1024 * 1024, "max_files": 50}
OWN_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


class Special:
    """A tar entry that is not a regular file: its tarfile type and, for links, the target."""

    def __init__(self, kind: bytes, linkname: str = ""):
        self.kind, self.linkname = kind, linkname


def make_tar(path: Path, members: list, mode: str = "w:gz") -> Path:
    """members: (name, bytes[, mode]) for files, or (name, Special(...)) for the rest."""
    with tarfile.open(path, mode) as tf:
        for m in members:
            name, data = m[0], m[1]
            info = tarfile.TarInfo(name)
            if isinstance(data, bytes):
                info.size = len(data)
                info.mode = m[2] if len(m) > 2 else 0o644
                tf.addfile(info, io.BytesIO(data))
            else:
                info.type, info.linkname = data.kind, data.linkname
                tf.addfile(info)
    return path


def make_zip(path: Path, members: list) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, *mode in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode:
                info.external_attr = mode[0] << 16
            zf.writestr(info, data)
    return path


GOOD = [
    ("cloud_model.py", b"print('hi')\n"),
    ("requirements.txt", b"pillow==12.3.0\n"),
    ("models/weights.bin", bytes(range(256)) * 10),
    ("run.sh", b"#!/bin/sh\necho hi\n", 0o755),
]


def read_tree(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("suffix,mode", [(".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar", "w")])
def test_tar_archives_unpack(tmp_path, suffix, mode):
    archive = make_tar(tmp_path / f"bundle{suffix}", GOOD, mode)
    dest = tmp_path / "out" / "bundle"
    unpack_archive(archive, dest, **LIMITS)
    assert read_tree(dest) == {name: data for name, data, *_ in GOOD}
    assert os.stat(dest / "run.sh").st_mode & 0o777 == 0o755
    assert os.stat(dest / "cloud_model.py").st_mode & 0o777 == 0o644
    assert sorted(os.listdir(tmp_path / "out")) == ["bundle"]


def test_zip_unpacks_and_format_is_read_from_content(tmp_path):
    archive = make_zip(tmp_path / "upload.bin", [(n, d, *m) for n, d, *m in GOOD])
    dest = tmp_path / "bundle"
    unpack_archive(archive, dest, **LIMITS)
    assert read_tree(dest) == {name: data for name, data, *_ in GOOD}
    assert os.stat(dest / "run.sh").st_mode & 0o111


def test_an_empty_existing_destination_is_used(tmp_path):
    dest = tmp_path / "bundle"
    dest.mkdir()
    unpack_archive(make_tar(tmp_path / "b.tgz", GOOD), dest, **LIMITS)
    assert (dest / "cloud_model.py").is_file()


BAD_TARS = {
    "absolute": ([("/tmp/evil.py", b"x")], "absolute path"),
    "dotdot": ([("cloud_model.py", b"x"), ("../evil.py", b"x")], "'..'"),
    "dotdot-deep": ([("a/b/../../../evil.py", b"x")], "'..'"),
    "symlink": (
        [("cloud_model.py", b"x"), ("link", Special(tarfile.SYMTYPE, "/etc/passwd"))],
        "a link",
    ),
    "hardlink": (
        [("cloud_model.py", b"x"), ("hard", Special(tarfile.LNKTYPE, "cloud_model.py"))],
        "a link",
    ),
    "chardev": ([("dev", Special(tarfile.CHRTYPE))], "device"),
    "fifo": ([("fifo", Special(tarfile.FIFOTYPE))], "device or FIFO"),
    "duplicate": ([("cloud_model.py", b"x"), ("cloud_model.py", b"y")], "twice"),
    "file-then-dir": ([("a", b"x"), ("a/b.py", b"y")], "file"),
}


@pytest.mark.parametrize("case", sorted(BAD_TARS))
def test_unsafe_tar_entries_are_refused_and_leave_nothing(tmp_path, case):
    members, words = BAD_TARS[case]
    archive = make_tar(tmp_path / "bad.tar.gz", members)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BundleError) as e:
        unpack_archive(archive, out / "bundle", **LIMITS)
    assert words in str(e.value)
    assert list(out.iterdir()) == []
    assert not (tmp_path / "evil.py").exists() and not Path("/tmp/evil.py").exists()


BAD_ZIPS = {
    "dotdot": ([("../evil.py", b"x")], "'..'"),
    "backslash-dotdot": ([("..\\..\\evil.py", b"x")], "'..'"),
    "absolute": ([("/evil.py", b"x")], "absolute path"),
    "drive": ([("C:/evil.py", b"x")], "absolute path"),
    "symlink": ([("cloud_model.py", b"x"), ("link", b"/etc/passwd", stat.S_IFLNK | 0o777)], "link"),
    "device": ([("dev", b"", stat.S_IFCHR | 0o644)], "device"),
}


@pytest.mark.parametrize("case", sorted(BAD_ZIPS))
def test_unsafe_zip_entries_are_refused_and_leave_nothing(tmp_path, case):
    members, words = BAD_ZIPS[case]
    archive = make_zip(tmp_path / "bad.zip", members)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BundleError) as e:
        unpack_archive(archive, out / "bundle", **LIMITS)
    assert words in str(e.value)
    assert list(out.iterdir()) == []


def test_too_many_files_is_refused(tmp_path):
    members = [(f"f{i}.txt", b"x") for i in range(51)]
    for archive in (
        make_tar(tmp_path / "many.tgz", members),
        make_zip(tmp_path / "many.zip", members),
    ):
        with pytest.raises(BundleError, match="more than 50 files"):
            unpack_archive(archive, tmp_path / "out" / "bundle", **LIMITS)
        assert list((tmp_path / "out").iterdir()) == []


def test_a_compression_bomb_is_stopped_by_the_bytes_written(tmp_path):
    zeros = bytes(3 * 1024 * 1024)  # compresses to a few KB
    tgz = make_tar(tmp_path / "bomb.tgz", [("cloud_model.py", b"x"), ("zeros.bin", zeros)])
    zipped = make_zip(tmp_path / "bomb.zip", [("cloud_model.py", b"x"), ("zeros.bin", zeros)])
    assert tgz.stat().st_size < 100_000 and zipped.stat().st_size < 100_000
    for archive in (tgz, zipped):
        with pytest.raises(BundleError, match="more than 1.0 MB"):
            unpack_archive(archive, tmp_path / "out" / "bundle", **LIMITS)
        assert list((tmp_path / "out").iterdir()) == []


def test_a_zip_that_lies_about_sizes_is_refused(tmp_path):
    """The central directory claims 10 bytes; the data inflates to 3 MB."""
    archive = make_zip(tmp_path / "liar.zip", [("big.bin", bytes(3 * 1024 * 1024))])
    raw = bytearray(archive.read_bytes())
    real = (3 * 1024 * 1024).to_bytes(4, "little")
    for start in range(len(raw) - 4):  # uncompressed size, in the local header and the directory
        if raw[start : start + 4] == real:
            raw[start : start + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises(BundleError):
        unpack_archive(archive, tmp_path / "out" / "bundle", max_bytes=10**9, max_files=50)
    assert list((tmp_path / "out").iterdir()) == []


def test_damaged_and_foreign_files_are_refused(tmp_path):
    good = make_tar(tmp_path / "good.tgz", GOOD).read_bytes()
    (tmp_path / "truncated.tgz").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.tgz").write_text("not an archive at all\n" * 50)
    (tmp_path / "empty.tgz").write_bytes(b"")
    for name in ("truncated.tgz", "text.tgz", "empty.tgz"):
        with pytest.raises(BundleError) as e:
            unpack_archive(tmp_path / name, tmp_path / "out" / "bundle", **LIMITS)
        assert str(e.value).endswith(".")
        assert list((tmp_path / "out").iterdir()) == []


def test_an_empty_archive_and_a_used_destination_are_refused(tmp_path):
    with pytest.raises(BundleError, match="empty"):
        unpack_archive(make_tar(tmp_path / "none.tgz", []), tmp_path / "b", **LIMITS)
    dest = tmp_path / "used"
    dest.mkdir()
    (dest / "file").write_text("x")
    with pytest.raises(BundleError, match="already exists"):
        unpack_archive(make_tar(tmp_path / "b.tgz", GOOD), dest, **LIMITS)
    assert read_tree(dest) == {"file": b"x"}


def test_bundle_root_accepts_a_flat_or_a_wrapped_bundle(tmp_path):
    flat = tmp_path / "flat"
    unpack_archive(make_tar(tmp_path / "flat.tgz", GOOD), flat, **LIMITS)
    assert bundle_root(flat) == flat
    wrapped = tmp_path / "wrapped"
    members = [(f"mybundle/{n}", d, *m) for n, d, *m in GOOD] + [("__MACOSX/._x", b"")]
    unpack_archive(make_zip(tmp_path / "w.zip", members), wrapped, **LIMITS)
    assert bundle_root(wrapped) == wrapped / "mybundle"
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "model.py").write_text("")
    with pytest.raises(BundleError, match="no cloud_model.py"):
        bundle_root(tmp_path / "none")


# --- hashing and storing -------------------------------------------------------------------------


def write_tree(folder: Path, files: dict) -> Path:
    for name, data in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return folder


def test_bundle_hash_is_stable_and_sensitive(tmp_path):
    files = {"cloud_model.py": b"a", "models/w.bin": b"\0" * 100, "z/y/x.txt": b"deep"}
    a = write_tree(tmp_path / "a", files)
    b = write_tree(tmp_path / "b", dict(reversed(list(files.items()))))  # other creation order
    os.utime(b / "cloud_model.py", (1, 1))
    os.chmod(b / "cloud_model.py", 0o600)
    write_tree(b, {"__pycache__/cloud_model.cpython-311.pyc": b"junk", "x.pyc": b"junk"})
    assert bundle_hash(a) == bundle_hash(b)
    assert len(bundle_hash(a)) == 64
    digest = bundle_hash(a)
    (a / "cloud_model.py").write_bytes(b"b")
    assert bundle_hash(a) != digest
    (a / "cloud_model.py").write_bytes(b"a")
    (a / "z/y/x.txt").rename(a / "z/y/w.txt")
    assert bundle_hash(a) != digest
    # moving bytes between files changes it too (sizes and names are part of the hash)
    c = write_tree(tmp_path / "c", {"ab": b"", "a": b"b"})
    d = write_tree(tmp_path / "d", {"ab": b"b", "a": b""})
    assert bundle_hash(c) != bundle_hash(d)


def test_store_copies_once_by_content(tmp_path):
    src = write_tree(tmp_path / "src", {"cloud_model.py": b"x", "models/m.bin": b"m" * 1000})
    os.chmod(src / "cloud_model.py", 0o755)
    root = tmp_path / "store"
    digest, path = store(src, root)
    assert path == root / digest and digest == bundle_hash(src)
    assert read_tree(path) == read_tree(src)
    assert os.stat(path / "cloud_model.py").st_mode & 0o111
    mtime = path.stat().st_mtime_ns
    assert store(src, root) == (digest, path)
    assert path.stat().st_mtime_ns == mtime
    assert sorted(os.listdir(root)) == [digest]  # no temporary folders left


def test_concurrent_stores_of_one_bundle_end_with_one_folder(tmp_path):
    src = write_tree(tmp_path / "src", {f"f{i}.bin": os.urandom(20000) for i in range(20)})
    src = write_tree(src, {"cloud_model.py": b"x"})
    root = tmp_path / "store"
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(store(src, root))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert os.listdir(root) == [results[0][0]]
    assert read_tree(results[0][1]) == read_tree(src)


def test_store_refuses_links(tmp_path):
    src = write_tree(tmp_path / "src", {"cloud_model.py": b"x"})
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(BundleError, match="link"):
        store(src, tmp_path / "store")
    assert not (tmp_path / "store").exists() or os.listdir(tmp_path / "store") == []


# --- algolink.yml --------------------------------------------------------------------------------


def bundle(tmp_path: Path, yml=None, requirements: bool = False) -> Path:
    folder = tmp_path / "bundle"
    folder.mkdir(exist_ok=True)
    (folder / "cloud_model.py").write_text("")
    if yml is not None:
        (folder / "algolink.yml").write_text(yml)
    if requirements:
        (folder / "requirements.txt").write_text("pillow\n")
    return folder


def test_defaults_without_algolink_yml(tmp_path):
    cfg = read_config(bundle(tmp_path))
    assert cfg == BundleConfig(python=OWN_PYTHON, cuda=None, entrypoint="python cloud_model.py")
    assert cfg.build_steps == [] and cfg.port is None and cfg.warnings == []
    cfg = read_config(bundle(tmp_path, requirements=True))
    assert cfg.build_steps == ["pip install -r requirements.txt"]
    assert read_config(bundle(tmp_path, yml="")).python == OWN_PYTHON  # an empty file: defaults


def test_a_full_algolink_yml(tmp_path):
    yml = (
        'python: "3.12"\ncuda: "12.4"\nentrypoint: python serve.py --fast\n'
        "build_steps:\n  - pip install -r requirements.txt\n  - python train.py\nport: 9100\n"
    )
    cfg = read_config(bundle(tmp_path, yml=yml))
    assert cfg.to_dict() == {
        "python": "3.12",
        "cuda": "12.4",
        "entrypoint": "python serve.py --fast",
        "build_steps": ["pip install -r requirements.txt", "python train.py"],
        "port": 9100,
    }
    assert cfg.warnings == []


def test_python_as_a_number_and_the_3_10_trap(tmp_path):
    cfg = read_config(bundle(tmp_path, yml="python: 3.11\n"))
    assert cfg.python == "3.11" and "quote it" in cfg.warnings[0]
    cfg = read_config(bundle(tmp_path, yml="python: 3.10\n"))
    assert cfg.python == "3.10"
    assert "3.1" in cfg.warnings[0] and '"3.10"' in cfg.warnings[0]
    cfg = read_config(bundle(tmp_path, yml='python: "3.10"\n'))
    assert cfg.python == "3.10" and cfg.warnings == []
    assert read_config(bundle(tmp_path, yml="python: 3.11.4\n")).python == "3.11.4"
    assert read_config(bundle(tmp_path, yml="cuda: 12.4\n")).cuda == "12.4"


def test_build_steps_given_empty(tmp_path):
    cfg = read_config(bundle(tmp_path, yml="build_steps: []\n", requirements=True))
    assert cfg.build_steps == []
    cfg = read_config(bundle(tmp_path, yml="build_steps:\n", requirements=True))
    assert cfg.build_steps == []


@pytest.mark.parametrize(
    "yml,field",
    [
        ("python: [3]\n", "python"),
        ("python: 3\n", "python"),
        ("python: true\n", "python"),
        ('python: "three"\n', "python"),
        ("cuda: yes\n", "cuda"),
        ("entrypoint: 5\n", "entrypoint"),
        ('entrypoint: ""\n', "entrypoint"),
        ("build_steps: pip install -r requirements.txt\n", "build_steps"),
        ("build_steps: [1, 2]\n", "build_steps"),
        ('port: "9000"\n', "port"),
        ("port: 70000\n", "port"),
        ("port: true\n", "port"),
    ],
)
def test_bad_fields_are_named(tmp_path, yml, field):
    with pytest.raises(BundleError) as e:
        read_config(bundle(tmp_path, yml=yml))
    assert str(e.value).startswith(f"algolink.yml: {field} must be")


def test_bad_yaml_and_unknown_keys(tmp_path):
    with pytest.raises(BundleError, match=r"not valid YAML .* at line \d+\)"):
        read_config(bundle(tmp_path, yml="python: '3.11'\nbuild_steps: [unclosed\n"))
    with pytest.raises(BundleError, match="must be a mapping"):
        read_config(bundle(tmp_path, yml="- a\n- b\n"))
    cfg = read_config(bundle(tmp_path, yml="entrypiont: python x.py\n"))
    assert "entrypiont" in cfg.warnings[0] and cfg.entrypoint == "python cloud_model.py"


def test_cloud_model_py_is_required(tmp_path):
    (tmp_path / "algolink.yml").write_text('python: "3.11"\n')
    with pytest.raises(BundleError, match="no cloud_model.py"):
        read_config(tmp_path)
