"""Setup options on the hub: what a version's manifest declares, the values a version gives them, and
the uploaded files that ``file`` and ``directory`` options take.

Values are checked with modelcloud's own data types, rebuilt from the manifest's type dicts, so the
hub refuses exactly what the service's ``setup`` would. A file value is a reference to an uploaded
file, ``{"file": "<sha256>", "filename": "weights.pt"}``: files are kept once by content at
``<data>/files/<sha256>``. When a version starts, the values become ``ALGOLINK_MODEL_OPTIONS`` (JSON),
a file as a local path: a link named like the upload (so its extension is checked as the service
would) in ``<data>/services/<project>/<service>/<version>/options/<option>/``, a directory as the
uploaded archive unpacked once at ``<data>/files/<sha256>.d``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Optional

from modelcloud import data_types as dt
from modelcloud.errors import ValidationError

#: What a ``directory`` option's upload may be: an archive the hub unpacks.
ARCHIVE_EXTENSIONS = (".zip", ".tar.gz", ".tgz", ".tar")
#: Default limit of one uploaded option file (bytes): 8 GiB.
DEFAULT_MAX_FILE_BYTES = 8 << 30

#: Manifest keys (camelCase) -> constructor arguments, for the types whose names differ.
_ARGS = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "oneOf": "choices",
    "samplingMean": "sampling_mean",
    "samplingStd": "sampling_std",
    "minWidth": "min_width",
    "minHeight": "min_height",
    "maxWidth": "max_width",
    "maxHeight": "max_height",
    "defaultOutputFormat": "default_output_format",
    "labelToId": "label_to_id",
    "labelToColor": "label_to_color",
    "defaultLabel": "default_label",
    "itemType": "item_type",
}
_SKIP = {"name", "type", "default"}


class OptionError(ValueError):
    """A value or upload that an option refuses; ``option`` names it, the message says why.

    ``key`` and ``params`` name the same sentence in the web UI's catalog (``ERRORS[key]`` in handlers/i18n.py)."""

    def __init__(
        self,
        option_name: Optional[str],
        message: str,
        status: int = 400,
        key: Optional[str] = None,
        **params: Any,
    ) -> None:
        super().__init__(message)
        self.option = option_name
        self.message = message
        self.status = status
        self.key = key
        self.params = params


def type_from_dict(spec: dict) -> dt.BaseType:
    """The modelcloud data type a manifest's type dict describes (its default left out: the
    service applies defaults itself)."""
    cls = dt.TYPES.get(spec.get("type"))
    if cls is None:
        raise ValueError(f"unknown data type {spec.get('type')!r}")
    kwargs: dict = {}
    for key, value in spec.items():
        if key in _SKIP or value is None:
            continue
        arg = _ARGS.get(key, key)
        if arg == "item_type" and isinstance(value, dict):
            value = type_from_dict(value)
        kwargs[arg] = value
    if cls is dt.image and "default_output_format" in kwargs:
        kwargs["default_output_format"] = str(kwargs["default_output_format"]).lower()
    return cls(**kwargs)


def declared(manifest: Optional[dict]) -> list:
    """The options a manifest declares, as its type dicts (each with ``name``)."""
    return [
        o for o in ((manifest or {}).get("options") or []) if isinstance(o, dict) and "name" in o
    ]


def find_option(manifest: Optional[dict], name: str) -> dict:
    options = declared(manifest)
    for option in options:
        if option["name"] == name:
            return option
    known = ", ".join(repr(o["name"]) for o in options) or "none"
    raise OptionError(
        name,
        f"There is no setup option {name!r}: this service's options are {known}.",
        key="opt_unknown_option",
        option=name,
        known=known,
    )


def allowed_extensions(option: dict) -> Optional[list]:
    """The names an upload for this option may end with; None: any."""
    if option.get("type") == "directory":
        return list(ARCHIVE_EXTENSIONS)
    ext = option.get("extension")
    return [ext] if isinstance(ext, str) else (list(ext) if ext else None)


def check_upload_name(option: dict, filename: Any) -> str:
    """The upload's file name, or an OptionError naming the option and the allowed extensions."""
    name = option["name"]
    if option.get("type") not in ("file", "directory"):
        raise OptionError(
            name,
            f"The setup option {name!r} is a {option.get('type')}, not a file: set its value "
            "instead of uploading a file.",
            key="opt_not_file",
            option=name,
        )
    base = (
        os.path.basename(filename.replace("\\", "/")).strip() if isinstance(filename, str) else ""
    )
    if not base.strip(".") or "\x00" in base:
        raise OptionError(
            name,
            f"The upload for option {name!r} needs a file name, such as weights.pt: got "
            f"{filename!r}.",
        )
    filename = base[-255:]
    exts = allowed_extensions(option)
    if exts and not filename.lower().endswith(tuple(e.lower() for e in exts)):
        what = "an archive" if option.get("type") == "directory" else "a file"
        raise OptionError(
            name,
            f"The setup option {name!r} takes {what} ending in {' or '.join(exts)}, got "
            f"{filename!r}: upload a file with one of those extensions.",
            key="opt_extension",
            option=name,
            ext=" ".join(exts),
            filename=filename,
        )
    return filename


def check_values(manifest: Optional[dict], values: Any, file_exists: Any) -> dict:
    """Values checked against the options' rules: ``{name: value}`` (None: back to the default).

    ``file_exists(sha256)`` says whether an uploaded file is stored. Raises OptionError.
    """
    if not isinstance(values, dict):
        raise OptionError(
            None, 'The values must be a JSON object of option -> value, like {"threshold": 0.5}.'
        )
    checked: dict = {}
    for name, value in values.items():
        option = find_option(manifest, name)
        if value is None:
            checked[name] = None
            continue
        kind = option.get("type")
        if kind in ("file", "directory"):
            checked[name] = _check_file_value(option, value, file_exists)
            continue
        try:
            t = type_from_dict(option)
        except (TypeError, ValueError):  # a type this hub cannot rebuild: the service checks it
            checked[name] = value
            continue
        try:
            t.deserialize(value, dt.DecodeContext(allow_paths=False))
        except ValidationError as e:
            raise OptionError(
                name,
                f"The value of option {name!r} {e.message}: give a value that fits its rule.",
                key="opt_rule",
                option=name,
                reason=e.message,
            ) from None
        checked[name] = value
    return checked


def _check_file_value(option: dict, value: Any, file_exists: Any) -> dict:
    name = option["name"]
    if not (
        isinstance(value, dict)
        and isinstance(value.get("file"), str)
        and isinstance(value.get("filename"), str)
    ):
        raise OptionError(
            name,
            f"The value of option {name!r} must be an uploaded file, "
            '{"file": "<sha256>", "filename": "..."}: upload the file first, then use the value '
            "the upload answers.",
        )
    sha = value["file"]
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha) or not file_exists(sha):
        raise OptionError(
            name,
            f"The value of option {name!r} names the file {sha[:16]!r}, which this hub does not "
            "have: upload the file again.",
            key="opt_no_file",
            option=name,
        )
    return {"file": sha, "filename": check_upload_name(option, value["filename"])}


def merged_values(base: Optional[dict], changes: dict) -> dict:
    """A version's values with ``changes`` applied (None removes a value: the default again)."""
    out = dict(base or {})
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def options_model(manifest: Optional[dict], values: Optional[dict]) -> list:
    """The declared options with their current values, for the API and the page."""
    values = values or {}
    out = []
    for option in declared(manifest):
        entry = dict(option)
        entry["value"] = values.get(option["name"])
        entry["upload"] = option.get("type") in ("file", "directory")
        entry["extensions"] = allowed_extensions(option) if entry["upload"] else None
        out.append(entry)
    return out


# --- files --------------------------------------------------------------------------------------


def file_path(data: Path, sha256: str) -> Path:
    return Path(data) / "files" / sha256


def hash_prefix(path: Path, size: int) -> Any:
    """A sha256 object over the first ``size`` bytes of ``path`` (to resume an upload)."""
    hasher = hashlib.sha256()
    remaining = size
    with open(path, "rb") as f:
        while remaining > 0:
            chunk = f.read(min(1 << 20, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            remaining -= len(chunk)
    return hasher


def keep_file(data: Path, part: Path, sha256: str) -> bool:
    """Move a finished upload to ``files/<sha256>``; True when it is new (else the copy goes)."""
    target = file_path(data, sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        part.unlink(missing_ok=True)
        return False
    os.replace(part, target)
    os.chmod(target, 0o644)
    return True


def unpacked_directory(data: Path, sha256: str) -> Path:
    """A directory option's archive, unpacked once beside it (safely: no links, no ``..``)."""
    target = file_path(data, sha256).with_name(sha256 + ".d")
    if target.is_dir():
        return target
    tmp = target.with_name(f"{sha256}.d.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    archive = file_path(data, sha256)
    root = os.path.realpath(tmp)

    def safe(name: str) -> str:
        path = os.path.realpath(os.path.join(root, name))
        if path != root and not path.startswith(root + os.sep):
            raise ValueError(f"the archive holds an unsafe path {name!r}")
        return path

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                path = safe(info.filename)
                if info.is_dir():
                    os.makedirs(path, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with zf.open(info) as src, open(path, "wb") as out:
                    shutil.copyfileobj(src, out)
    else:
        with tarfile.open(archive, "r:*") as tf:
            for m in tf.getmembers():
                path = safe(m.name)
                if m.isdir():
                    os.makedirs(path, exist_ok=True)
                elif m.isfile():
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    src = tf.extractfile(m)
                    assert src is not None
                    with src, open(path, "wb") as out:
                        shutil.copyfileobj(src, out)
    os.replace(tmp, target)
    return target


def model_options_env(
    data: Path,
    options_dir: Path,
    manifest: Optional[dict],
    values: Optional[dict],
    group: Optional[int] = None,
    *,
    write: bool = True,
) -> Optional[str]:
    """``ALGOLINK_MODEL_OPTIONS`` for a version: its values as JSON, files as local paths; None
    when it gives no values (the service's defaults apply).

    The files are put in ``options_dir`` (the version's, which its process sees read-only): hard
    links to the stored files (copies across file systems), a directory as a tree of them; as root
    the folder is readable by the service's ``group`` only. With ``write`` False the files are taken
    to be there already (a process that runs is reading them)."""
    if not values:
        return None
    kinds = {o["name"]: o.get("type") for o in declared(manifest)}
    out: dict = {}
    if write:
        if options_dir.exists():
            shutil.rmtree(options_dir)
        options_dir.mkdir(parents=True)
    for name, value in values.items():
        kind = kinds.get(name)
        if kind in ("file", "directory") and isinstance(value, dict):
            folder = options_dir / re.sub(r"[^A-Za-z0-9_-]", "_", name)
            target = folder / value["filename"] if kind == "file" else folder
            if write and kind == "file":
                folder.mkdir()
                _link_or_copy(file_path(data, value["file"]), target)
                os.chmod(target, 0o644)
            elif write:
                source = unpacked_directory(data, value["file"])
                shutil.copytree(source, target, copy_function=_link_or_copy)
            out[name] = str(target)
        else:
            out[name] = value
    if write:
        _readable_by(options_dir, group)
    return json.dumps(out)


def _link_or_copy(src: Any, dst: Any) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _readable_by(folder: Path, group: Optional[int]) -> None:
    """Folders 0750 (0755 when no group is given), files as they are (0644)."""
    mode = 0o750 if group is not None else 0o755
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        if group is not None:
            os.chown(path, 0, group)
        os.chmod(path, mode)
