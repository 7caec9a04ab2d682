"""Writing the bundle: cloud_model.py from the plan, pinned requirements, algolink.yml, the vendored
modelcloud runtime, the saved state, the files the code names, and the recorded examples.

The bundle is written into a temporary folder beside the target and moved into place at the end, so a
failed export never leaves half a bundle; an earlier export in the target folder is replaced, any other
content is refused.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..runtime import requirement as runtime_requirement
from . import requirements as reqs
from .docker import write_docker_files
from .slicing import Item, Plan, is_data
from .state import FORMATS_NOTE, PICKLE_FILE, loader, on_gpu, save

MARKER = "# Exported from a notebook by AlgoLink (%algolink export); export again to update it."
RESERVED = {
    "cloud_model.py",
    "requirements.txt",
    "algolink.yml",
    "modelcloud",
    "examples",
    "README.md",
    "Dockerfile",
    ".dockerignore",
    ".algolink-wheels",
}
MAX_COPY_BYTES = 1 << 30  # a folder the code names is copied up to this size
MAX_STATE_BYTES = (
    10_000_000  # data (not models) saved from the kernel, unless --max-state-size says
)
#: Formats that hold a model, not data: --max-state-size does not count them.
MODEL_FORMATS = {"torch_module", "lightgbm", "xgboost", "catboost", "skops"}
_EXAMPLE_RE = re.compile(r"^\d+\.json$")


class BundleError(Exception):
    """The bundle cannot be written; the message names the folder or file and what to do."""


@dataclass
class Bundle:
    """What was written, for the summary and for verification."""

    path: Path
    pins: list  # requirements.Pin, in requirements.txt order
    state_files: list  # files under models/ holding the saved values
    state_bytes: int
    files: list  # relative paths copied from the notebook's folder
    examples: dict  # command -> number of examples
    source_lines: int
    warnings: list = field(default_factory=list)
    recorded: list = field(default_factory=list)  # commands whose example the export recorded
    data: list = field(
        default_factory=list
    )  # one line per data value shipped, as the summary says it


# -- cloud_model.py --------------------------------------------------------------------------------------
def _meta_call(metadata: dict) -> str:
    parts = []
    for key, value in metadata.items():
        if isinstance(value, str) and "\n" in value and '"""' not in value and "\\" not in value:
            text = '"""\\\n' + value + ('"""' if value.endswith("\n") else '\\\n"""')
        else:
            text = repr(value)  # strings, and lists of dicts of strings: valid Python as they are
        parts.append(f"    {key}={text},\n")
    return "modelcloud.meta(\n" + "".join(parts) + ")\n"


_FORMAT_WORDS = {
    "torch_module": "state_dict",
    "torch": "tensors",
    "npy": ".npy",
    "lightgbm": "LightGBM model text",
    "xgboost": "XGBoost JSON",
    "catboost": "CatBoost cbm",
    "skops": "skops",
    "json": "JSON",
    "pickle": "pickle",
}


def describe_state(plan: Plan) -> str:
    """``net (DigitNet: state_dict), offset (ndarray: .npy)``."""
    return ", ".join(
        f"{n} ({type(plan.state[n]).__name__}: {_FORMAT_WORDS[s.format]})"
        for n, s in plan.saved.items()
    )


def _comment(text: str) -> str:
    return "\n".join(f"# {line}" if line else "#" for line in text.splitlines()) + "\n"


def render(plan: Plan, metadata: dict) -> str:
    """The text of cloud_model.py."""
    title = metadata.get("name") or "A model service"
    commands = ", ".join(plan.commands)
    state_note = (
        f"Values the notebook computed ({', '.join(plan.state)}) were saved from the kernel into\n"
        "models/ and are loaded below instead of being computed again (formats: see below).\n"
        if plan.state
        else ""
    )
    header = (
        f'"""{title}: {commands}, exported from a notebook by AlgoLink (`%algolink export`).\n\n'
        "What the setup and the commands need, taken from the cells in the order the kernel ran them\n"
        '("In [N]" says which cell each piece comes from).\n'
        f"{state_note}\n"
        "    pip install -r requirements.txt && python cloud_model.py\n"
        '"""\n'
    )
    imports = list(plan.imports)
    has_modelcloud = any(re.match(r"import modelcloud(\s|$)", line) for line in imports)
    import_block = "\n".join(imports) + ("\n" if imports else "")
    if not has_modelcloud:
        import_block += ("\n" if imports else "") + "import modelcloud\n"
    blocks = [header + "\n" + import_block]
    torch_pickle = bool(plan.probe and plan.probe.uses_torch)
    if plan.state:
        blocks.append(_comment(FORMATS_NOTE) + "\n\n" + loader(plan.saved, torch_pickle))
    previous = None
    for item in plan.items:
        where = f"# In [{item.cell}]\n" if item.cell is not None else ""
        if (
            item.kind == "stmt"
            and previous is not None
            and previous.kind == "stmt"
            and previous.cell == item.cell
            and "\n" not in item.source.strip()
        ):  # one-line statements of one cell stay together, as they were written
            blocks[-1] += item.source.rstrip() + "\n"
            previous = item
            continue
        previous = item
        if item.kind == "state":
            lines = [f"# Saved from the kernel: {describe_state(plan)}"]
            if any(s.format == "pickle" for s in plan.saved.values()):
                lines.append(f'_pickled = _load_pickled("{PICKLE_FILE}")')
            for n, s in plan.saved.items():
                lines.extend(_comment(s.note).splitlines() if s.note else [])
                lines.append(f"{n} = {s.expr}")
            blocks.append("\n".join(lines) + "\n")
        else:
            blocks.append(where + item.source.rstrip() + "\n")
    if metadata:
        blocks.append(_meta_call(metadata))
    blocks.append('if __name__ == "__main__":\n    modelcloud.run()\n')
    return "\n\n".join(b.rstrip("\n") + "\n" for b in blocks if b.strip()).replace(
        "\n\n\n\n", "\n\n\n"
    )


# -- requirements.txt and algolink.yml -----------------------------------------------------------------
def pins_for(plan: Plan, warnings: list) -> tuple:
    """``(code_pins, runtime_pins)``: what the code and state import, and what modelcloud needs."""
    code: dict = {}
    for module, why in sorted(plan.modules.items()):
        if module == "modelcloud" or module in plan.local_modules or reqs.is_stdlib(module):
            continue
        if reqs.is_runway_alias(module):  # modelcloud's `runway`: the runtime provides it
            continue
        dists = reqs.distributions_of(module)
        if not dists and not reqs.importable(module):
            # The kernel cannot import it either, and the code ran: its import is guarded
            # (``try: import ujson except ImportError: ...``), so the bundle does as the kernel did.
            continue
        if not dists:
            origin = reqs.module_origin(module)
            where = f" (the kernel loads it from {origin})" if origin else ""
            warnings.append(
                f"No installed package provides `{module}`{where}, needed by `{why}`: the bundle "
                "will fail where it imports it; put the module next to the notebook (it is copied "
                "then), or add its package to requirements.txt by hand."
            )
            continue
        for dist in dists:
            if reqs.is_notebook_distribution(dist):
                raise BundleError(
                    f"The exported code imports `{module}` (`{why}`), which comes from {dist}, a "
                    "Jupyter package a bundle must not need: take that use out of the code the "
                    "commands run, then export."
                )
            p = reqs.pin(dist)
            if p is not None:
                code.setdefault(reqs.canonical(p.name), p)
    runtime: dict = {}
    for dist in reqs.RUNTIME:
        p = reqs.pin(dist)
        if p is None:
            raise BundleError(
                f"{dist} is not installed, and the modelcloud runtime needs it: pip install {dist}."
            )
        if reqs.canonical(p.name) not in code:
            runtime[reqs.canonical(p.name)] = p
    return sorted(code.values(), key=lambda p: p.name.lower()), sorted(
        runtime.values(), key=lambda p: p.name.lower()
    )


def requirements_text(code: list, runtime: list) -> str:
    lines = [
        "# Pinned from the notebook kernel's environment by AlgoLink (%algolink export).",
        f"# Python {sys.version.split()[0]}. What the exported code and its saved state import:",
    ]
    lines += [_pin_line(p) for p in code] or ["# (nothing beyond the runtime)"]
    lines.append("# The AlgoLink runtime SDK (pip install modelcloud) and what it needs:")
    lines.append(runtime_requirement())
    lines += [_pin_line(p) for p in runtime]
    return "\n".join(lines) + "\n"


def _pin_line(p: reqs.Pin) -> str:
    """``torch==2.13.0  # the kernel had 2.13.0+cpu (a local build; pip installs the public one)``."""
    if p.installed == p.version:
        return p.line
    return f"{p.line}  # the kernel had {p.installed} (a local build; pip installs the public one)"


def algolink_yml(cuda: Optional[str], port: Optional[int] = None, state: bool = False) -> str:
    text = (
        f"{MARKER}\n"
        + (_comment(FORMATS_NOTE) if state else "")
        + f'python: "{sys.version_info.major}.{sys.version_info.minor}"\n'
        f"cuda: {json.dumps(cuda) if cuda else 'null'}\n"
        "entrypoint: python cloud_model.py\n"
        "build_steps:\n"
        "  - pip install -r requirements.txt\n"
    )
    if port is not None:
        text += f"port: {int(port)}\n"
    return text


def cuda_version(plan: Plan, model: Any = None) -> Optional[str]:
    """torch's CUDA version when the model (or a saved module or tensor) sits on a GPU, else None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if not (any(s.on_gpu for s in plan.saved.values()) or on_gpu(model)):
        return None
    return getattr(torch.version, "cuda", None)


def size_words(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{int(n)} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} bytes"


def _data_sizes(plan: Plan, models: Path) -> dict:
    """Saved name -> bytes it takes in the bundle, for every value that is not a model."""
    import pickle

    sizes: dict = {}
    for name, s in plan.saved.items():
        if s.format in MODEL_FORMATS:
            continue
        if s.format == "pickle":
            if not is_data(plan.state[name]):
                continue  # an object of the notebook's: counted with the pickle, not as data
            try:
                sizes[name] = len(pickle.dumps(plan.state[name], protocol=4))
            except Exception:
                continue
        else:
            sizes[name] = (models / s.file).stat().st_size
    return sizes


def data_lines(plan: Plan, sizes: dict) -> list:
    """``X: a 178x13 DataFrame, 34.5 kB, training data (train_test_split in In [3]), as pickle``: the
    data values worth a line (tables, training data, anything over 100 kB)."""

    lines = []
    for name, size in sizes.items():
        value = plan.state[name]
        fit = plan.training.get(name)
        table = type(value).__name__ in ("DataFrame", "Series")
        if not (fit or table or size >= 100_000) or not is_data(value):
            continue
        shape = "x".join(str(n) for n in getattr(value, "shape", ())) or str(len(value))
        what = "training data" + (f" (given to {fit})" if fit else "") if fit else "data"
        lines.append(
            f"{name}: a {shape} {type(value).__name__}, {size_words(size)}, {what} from the kernel, "
            f"saved whole ({_FORMAT_WORDS[plan.saved[name].format]}) because the code reads it whole"
        )
    return lines


def readme(plan: Plan, metadata: dict, data: Optional[list] = None) -> str:
    title = metadata.get("name") or "Model service"
    lines = [
        f"# {title}",
        "",
        f"Exported from a notebook by AlgoLink (`%algolink export`): commands {', '.join(plan.commands)}.",
        "",
        "    pip install -r requirements.txt && python cloud_model.py",
        "",
        "It needs the AlgoLink runtime SDK, `modelcloud` (named in requirements.txt), and nothing else",
        "of AlgoLink; an AlgoLink hub installs its own.",
    ]
    if plan.reduced:
        lines += [
            "",
            "Read of a value instead of the value itself (its data stays out of the bundle):",
            "",
        ]
        lines += [f"- `{n}`: {words}" for n, words in plan.reduced.items()]
    if plan.saved:
        lines += ["", "## Saved state", "", FORMATS_NOTE.replace("\n", " "), ""]
        for name, s in plan.saved.items():
            lines.append(f"- `{name}`: models/{s.file} ({_FORMAT_WORDS[s.format]})")
        if any(s.format == "pickle" for s in plan.saved.values()):
            pickled = ", ".join(f"`{n}`" for n, s in plan.saved.items() if s.format == "pickle")
            lines += [
                "",
                f"**models/{PICKLE_FILE} is a pickle ({pickled}: no safe format holds "
                f"{'them' if ', ' in pickled else 'it'}): loading it executes code named in the "
                "file.** Run this bundle only if you trust where it came from.",
            ]
        if data:
            lines += ["", "Data from the notebook in this bundle:", ""]
            lines += [f"- {line}" for line in data]
    return "\n".join(lines) + "\n"


# -- files -------------------------------------------------------------------------------------------------
def _size(path: Path, limit: int) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
            if total > limit:
                return total
    return total


def referenced_paths(
    source: str, metadata: dict, workdir: Path, target: Path, warnings: list
) -> tuple:
    """``(paths, texts)``: the files and folders under the notebook's folder that the code names in a
    string literal, as ``(relative path, real path)``, and each literal -> its relative path."""
    strings: list = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.append(node.value)
    strings.extend(metadata.get("images") or [])
    root = workdir.resolve()
    target = target.resolve()
    found: dict = {}
    texts: dict = {}
    for text in strings:
        if not text or len(text) > 260 or "\n" in text or text.strip() in (".", "..", "/", "~"):
            continue
        if "://" in text or text.startswith("data:"):
            continue
        candidate = Path(text).expanduser()
        full = candidate if candidate.is_absolute() else root / candidate
        try:
            exists = full.exists()
        except OSError:
            continue
        if not exists:
            continue
        real = full.resolve()
        try:
            rel = real.relative_to(root)
        except ValueError:
            if candidate.is_absolute() and real.is_file():
                warnings.append(
                    f"The code names {text}, outside the notebook's folder: the bundle does not "
                    "include it; copy it next to the notebook and use a relative path."
                )
            continue
        if rel == Path(".") or real == target or target in real.parents or real in target.parents:
            continue
        if rel.parts[0] in RESERVED or rel.parts[0] in ("algolink_examples", ".ipynb_checkpoints"):
            continue
        found[str(rel)] = real
        texts[text] = str(rel)
    return sorted(found.items()), texts


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(
            src,
            dest,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"),
        )
    else:
        shutil.copy2(src, dest)


def _copy_examples(commands: list, examples_dir: Path, dest: Path, warnings: list) -> dict:
    counts: dict = {}
    for command in commands:
        folder = examples_dir / command
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if _EXAMPLE_RE.match(p.name)):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                ok = isinstance(record, dict) and isinstance(record.get("inputs"), dict)
            except (OSError, ValueError):
                ok = False
            if not ok:
                warnings.append(f"{path} is not a saved example (no inputs): it was left out.")
                continue
            _copy(path, dest / command / path.name)
            counts[command] = counts.get(command, 0) + 1
    return counts


# -- the folder ----------------------------------------------------------------------------------------
def is_export(folder: Path) -> bool:
    config = folder / "algolink.yml"
    try:
        return config.is_file() and config.read_text(encoding="utf-8").startswith(MARKER)
    except OSError:
        return False


def check_target(target: Path, workdir: Path) -> None:
    if target.exists() and not target.is_dir():
        raise BundleError(f"{target} is a file: give a folder for the bundle.")
    real, root = target.resolve(), workdir.resolve()
    if real == root or real in root.parents:
        raise BundleError(
            f"{target} holds the notebook itself: give a new folder for the bundle, such as ./bundle."
        )
    if target.is_dir() and any(target.iterdir()) and not is_export(target):
        raise BundleError(
            f"{target} already holds files that are not an AlgoLink export: choose a new or empty "
            "folder for the bundle."
        )


def write(
    plan: Plan,
    target: Path,
    metadata: dict,
    workdir: Path,
    examples_dir: Path,
    *,
    port: Optional[int] = None,
    model: Any = None,
    recorded: Optional[dict] = None,
    max_state_size: int = MAX_STATE_BYTES,
) -> Bundle:
    """Write the bundle for ``plan`` at ``target`` (replacing an earlier export there). ``recorded``:
    command -> examples the export recorded itself for commands that had none saved."""
    target = Path(target)
    check_target(target, workdir)
    warnings = list(plan.warnings)
    user_code = "\n\n".join(i.source for i in plan.items if i.kind != "state")
    references, texts = referenced_paths(user_code, metadata, workdir, target, warnings)
    to_copy: list = []
    for rel, real in references:
        size = _size(real, MAX_COPY_BYTES)
        if size > MAX_COPY_BYTES:
            warnings.append(
                f"{rel} is over {MAX_COPY_BYTES >> 30} GiB, so it was not copied: name the files "
                "the code needs one by one, or copy it into the bundle yourself."
            )
            texts = {t: r for t, r in texts.items() if r != rel}
            continue
        to_copy.append((rel, real))
    if texts:
        plan = _relocated(plan, texts)
    source = render(plan, metadata)
    try:
        compile(source, "cloud_model.py", "exec")
    except SyntaxError as e:  # a bug of ours, not the user's: say where
        raise BundleError(
            f"The generated cloud_model.py does not compile (line {e.lineno}: {e.msg}); please "
            "report it with the notebook."
        ) from None
    code_pins, runtime_pins = pins_for(plan, warnings)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.export-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a bundle is an ordinary folder
    try:
        (tmp / "cloud_model.py").write_text(source, encoding="utf-8")
        (tmp / "requirements.txt").write_text(requirements_text(code_pins, runtime_pins))
        (tmp / "algolink.yml").write_text(
            algolink_yml(cuda_version(plan, model), port, bool(plan.saved))
        )
        state_files: list = []
        state_bytes = 0
        data: list = []
        if plan.state:
            torch_pickle = bool(plan.probe and plan.probe.uses_torch)
            for path in save(plan.state, plan.saved, tmp / "models", torch_pickle):
                state_files.append(path.name)
                state_bytes += path.stat().st_size
            sizes = _data_sizes(plan, tmp / "models")
            data = data_lines(plan, sizes)
            if sum(sizes.values()) > max_state_size:
                biggest = max(sizes, key=sizes.get)
                lines = data_lines(plan, {biggest: sizes[biggest]}) or [biggest]
                raise BundleError(
                    f"The bundle would ship {size_words(sum(sizes.values()))} of data saved from "
                    f"the kernel, over --max-state-size {size_words(max_state_size)} (the largest, "
                    f"{lines[0].split(', saved whole')[0]}): let the commands read only attributes "
                    f"of it (such as {biggest}.columns or {biggest}.shape, which ship alone), load it "
                    "from a file in the setup, or raise the limit with --max-state-size."
                )
        (tmp / "README.md").write_text(readme(plan, metadata, data), encoding="utf-8")
        for module, path in plan.local_modules.items():
            name = path.name if path.is_file() else module
            _copy(path, tmp / name)
        copied = []
        for rel, real in to_copy:
            if (tmp / rel).exists():
                continue
            _copy(real, tmp / rel)
            copied.append(rel)
        examples = _copy_examples(plan.commands, examples_dir, tmp / "examples", warnings)
        for command, records in (recorded or {}).items():
            folder = tmp / "examples" / command
            folder.mkdir(parents=True, exist_ok=True)
            for n, record in enumerate(records, 1):
                text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
                (folder / f"{n:03d}.json").write_text(text, encoding="utf-8")
                examples[command] = examples.get(command, 0) + 1
        labels = {"org.opencontainers.image.title": str(metadata.get("name") or target.name)}
        if metadata.get("tagline"):
            labels["org.opencontainers.image.description"] = str(metadata["tagline"])
        write_docker_files(tmp, labels)
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Bundle(
        path=target.resolve(),
        pins=code_pins + runtime_pins,
        state_files=state_files,
        state_bytes=state_bytes,
        files=copied,
        examples=examples,
        source_lines=source.count("\n"),
        warnings=warnings,
        recorded=sorted(recorded or {}),
        data=data,
    )


HERE_HELPER = '''\
def _here(path):
    """A file the notebook read, copied into the bundle: found next to this file wherever it runs."""
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), path)
'''


def _relocated(plan: Plan, texts: dict) -> Plan:
    """The plan with every string literal naming a copied file replaced by ``_here("rel/path")``."""
    items = []
    changed = False
    for item in plan.items:
        if item.kind in ("def", "stmt", "root"):
            new = _rewrite_paths(item.source, texts)
            if new != item.source:
                changed = True
                item = dataclasses.replace(item, source=new)
        items.append(item)
    if not changed:
        return plan
    helper = Item("def", HERE_HELPER, -1.0, frozenset({"_here"}), frozenset(), frozenset())
    return dataclasses.replace(plan, items=[helper] + items)


def _rewrite_paths(source: str, texts: dict) -> str:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    skip: set = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in ast.walk(node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip.add(id(body[0].value))  # a docstring
    spots = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in texts
            and id(node) not in skip
            and node.end_lineno is not None
        ):
            spots.append(node)
    if not spots:
        return source
    lines = [line.encode("utf-8") for line in source.splitlines(keepends=True)]
    for node in sorted(spots, key=lambda n: (n.lineno, n.col_offset), reverse=True):
        first, last = node.lineno - 1, node.end_lineno - 1
        start, end = node.col_offset, node.end_col_offset
        call = f"_here({json.dumps(texts[node.value])})".encode()
        lines[first] = lines[first][:start] + call + lines[last][end:]
        del lines[first + 1 : last + 1]
    return b"".join(lines).decode("utf-8")


def _swap(tmp: Path, target: Path) -> None:
    """Put the new bundle in place; an earlier export moves aside first and is removed after."""
    old: Optional[Path] = None
    if target.exists():
        if any(target.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rmdir(old)
            os.rename(target, old)
        else:
            os.rmdir(target)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
