"""Notebook export: the live kernel's setup and commands as a bundle that runs without Jupyter.

``%algolink export DIR [--verify [--allow-unchecked]]`` in a notebook, or ``algolink export NOTEBOOK -o DIR
[--verify]`` from a terminal (which runs the notebook in a fresh kernel first, then runs the very same export there).

1. :mod:`.cells` reads the cells the kernel ran, in execution order, as statements with the names they
   bind and read;
2. :mod:`.slicing` follows the names the registered functions read and decides, per name, whether the
   bundle imports it, defines it, computes it again, or loads the value saved from the kernel;
3. :mod:`.bundle` writes cloud_model.py, the pinned requirements.txt, algolink.yml, the saved state,
   the vendored ``modelcloud`` runtime, the files the code names and the recorded examples;
4. :mod:`.verify` (optional) starts the bundle in a fresh, cached virtual environment and replays the
   examples against it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

from .. import examples
from ..kernel import registry as kernel_registry
from ..runtime import requirement as runtime_requirement
from . import recording
from .bundle import MAX_STATE_BYTES, Bundle, BundleError, describe_state, write
from .cells import kernel_cells
from .slicing import Plan, SliceError, slice_notebook
from .verify import Report, VerifyError, verify_bundle

__all__ = [
    "Bundle",
    "ExportError",
    "Plan",
    "Report",
    "VerifyError",
    "export",
    "slice_notebook",
    "verify_bundle",
]


class ExportError(Exception):
    """The export could not be done; the message is one sentence that says what to do."""


def _say(text: str) -> None:
    print(text, flush=True)


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} bytes"


def parse_size(text: str) -> int:
    """``"10MB"``, ``"500 kB"``, ``"1.5GB"``, ``"2000000"`` -> bytes (powers of 1000, as the export
    prints sizes); ValueError with a sentence otherwise."""
    raw = str(text).strip().replace(" ", "")
    units = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9}
    number = raw.rstrip("bBkKmMgG")
    unit = raw[len(number) :].lower()
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in units or value < 0:
        raise ValueError(f"--max-state-size takes a size such as 10MB, 500kB or 1GB, not {text!r}.")
    return int(value * units[unit])


def _relative(path: Path) -> str:
    try:
        rel = path.relative_to(Path.cwd())
        return f"./{rel}" if str(rel) != "." else "."
    except ValueError:
        return str(path)


def _ranges(numbers: list) -> str:
    """[3, 4, 5, 9] -> "[3]-[5], [9]"."""
    parts: list = []
    for n in numbers:
        if parts and parts[-1][1] == n - 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(f"[{a}]" if a == b else f"[{a}]-[{b}]" for a, b in parts) or "none"


def _names(names: list, limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def summarize(plan: Plan, bundle: Bundle, seconds: float, say: Callable[[str], None]) -> None:
    what = f"{len(plan.commands)} command{'s' if len(plan.commands) != 1 else ''} ({', '.join(plan.commands)})"
    if plan.has_setup:
        what += " and the setup"
    say(f"Exported {what} to {bundle.path} in {seconds:.2f} s:")
    say(f"  cloud_model.py    {bundle.source_lines} lines, from cells In {_ranges(plan.cells)}")
    if plan.defined:
        say(f"                    defined: {_names(plan.defined)}")
    if plan.recomputed:
        say(f"                    computed again where it runs: {_names(plan.recomputed)}")
    if plan.state:
        say(
            f"  models/           {describe_state(plan)}: {_size(bundle.state_bytes)}, saved from the "
            "kernel"
        )
        if any(s.format == "pickle" for s in plan.saved.values()):
            pickled = [n for n, s in plan.saved.items() if s.format == "pickle"]
            say(
                f"                    {', '.join(pickled)}: only pickle could save "
                f"{'them' if len(pickled) > 1 else 'it'}, which runs code when loaded (see README.md)"
            )
    for line in bundle.data:
        say(f"  data              {line}")
    for name, words in plan.reduced.items():
        say(f"  kept of {name}{' ' * max(10 - len(name), 1)}{words}: the data itself stays out")
    say(f"  requirements.txt  {', '.join(p.line for p in bundle.pins)}")
    if bundle.examples:
        counts = ", ".join(
            f"{c}: {n}" + (" made up and run in the kernel" if c in bundle.recorded else "")
            for c, n in bundle.examples.items()
        )
        say(f"  examples/         {sum(bundle.examples.values())} recorded ({counts})")
    copied = sorted(set(bundle.files) | {p.name for p in plan.local_modules.values()})
    if copied:
        say(f"  copied            {', '.join(copied)}")
    say(
        f"  runtime           {runtime_requirement()}, named in requirements.txt (pip install modelcloud)"
    )
    for warning in bundle.warnings:
        say(f"Warning: {warning}")
    say(
        f"Run it: cd {_relative(bundle.path)} && pip install -r requirements.txt && python cloud_model.py"
    )


def export(
    directory: Union[str, Path],
    verify: bool = False,
    *,
    allow_unchecked: bool = False,
    port: Optional[int] = None,
    shell: Any = None,
    registry: Any = None,
    say: Callable[[str], None] = _say,
    max_state_size: Optional[int] = None,
) -> Bundle:
    """Export the running kernel's setup and commands as a bundle in ``directory`` (relative paths are
    relative to the notebook's folder); with ``verify``, also run it in a fresh environment, where a
    command no example checks fails the export unless ``allow_unchecked``."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            get_ipython = None  # type: ignore[assignment]
        shell = get_ipython() if get_ipython else None
    if shell is None:
        raise ExportError(
            "Export reads a running notebook kernel: use %algolink export in the notebook, or "
            "`algolink export NOTEBOOK -o DIR` from a terminal."
        )
    if registry is None:
        registry = kernel_registry
    start = time.perf_counter()
    workdir = Path.cwd()
    target = Path(directory).expanduser()
    target = target if target.is_absolute() else workdir / target
    try:
        plan = slice_notebook(
            kernel_cells(shell),
            shell.user_ns,
            registry,
            hidden=set(getattr(shell, "user_ns_hidden", ())),
            workdir=workdir,
        )
        examples_dir = workdir / examples.DEFAULT_DIR
        recorded: dict = {}
        no_example: dict = {}
        for command in plan.commands:
            if (examples_dir / command).is_dir() and any((examples_dir / command).glob("*.json")):
                continue
            record, why = recording.record(registry, command)
            if record is None:
                plan.warnings.append(f"No example of {command!r} to verify it with: {why}.")
                no_example[command] = why
            else:
                recorded[command] = [record]
        bundle = write(
            plan,
            target,
            dict(registry.metadata),
            workdir,
            examples_dir,
            port=port,
            model=getattr(registry, "model", None),
            recorded=recorded,
            max_state_size=MAX_STATE_BYTES if max_state_size is None else max_state_size,
        )
    except (SliceError, BundleError) as e:
        raise ExportError(str(e)) from None
    summarize(plan, bundle, time.perf_counter() - start, say)
    if verify:
        try:
            verify_bundle(
                bundle.path,
                expected=registry.manifest(),
                out=say,
                allow_unchecked=allow_unchecked,
                no_example=no_example,
            )
        except VerifyError as e:
            text = str(e)
            if text[:2].istitle():  # "The bundle ..." reads on after a colon as "the bundle ..."
                text = text[0].lower() + text[1:]
            raise ExportError(f"Verification failed: {text}") from None
    return bundle
