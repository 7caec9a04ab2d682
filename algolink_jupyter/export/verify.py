"""Verification: the bundle, in a fresh virtual environment built from its requirements.txt alone, starts,
describes the notebook's commands, and answers every recorded example as the notebook did.

Environments are built with uv and kept in a cache folder (``$ALGOLINK_CACHE_DIR``, else
``$XDG_CACHE_HOME/algolink``, else ``~/.cache/algolink``), one per distinct set of requirements, so a second
verification of the same bundle reuses its environment and takes about as long as the bundle takes to
start. A reuse marks the environment used (its ``algolink-env.json``'s time); after a verification, those
used least recently are removed until all fit ``$ALGOLINK_VERIFY_BUDGET`` (default 5G; ``0``: only the one
just used; ``none``: no limit), never one another verification builds or runs in (its ``<key>.lock`` or
``<key>.use`` held). uv does not read pip's configuration, so the package indexes, find-links, constraints and
certificates pip is configured with here are passed to it. Where this environment runs a local build of a
pinned package (``torch 2.13.0+cpu``), the verification installs that very build.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .. import budget, runtime
from .cells import analyze
from .requirements import NOTEBOOK_ONLY, pin

STARTED = re.compile(r"Starting model server at http://[^:\s]+:(\d+)\.\.\.")
_REQ_LINE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")
ENV_MARKER = "algolink-env.json"
KEEP_ENV = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ", "SSL_CERT_FILE")
KEEP_ENV_PREFIXES = ("CUDA_", "NVIDIA_", "OMP_", "MKL_")
#: The verification environments' budget when ``$ALGOLINK_VERIFY_BUDGET`` is not set.
DEFAULT_BUDGET = 5 * 2**30
BUDGET_VAR = "ALGOLINK_VERIFY_BUDGET"


class VerifyError(Exception):
    """The bundle failed verification; the message says which step and what to do."""


@dataclass
class Report:
    environment: Path
    reused: bool
    env_seconds: float
    start_seconds: float
    examples: int
    seconds: float
    unchecked: tuple = ()  # commands no example checked (accepted with allow_unchecked)


# -- settings ---------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    explicit = os.environ.get("ALGOLINK_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "algolink"


def envs_budget() -> Optional[int]:
    """The bytes the verification environments may take: ``$ALGOLINK_VERIFY_BUDGET`` (such as
    ``5G``; ``0``: only the one the last verification used; ``none``: no limit), else 5 GiB."""
    try:
        return budget.budget_from_env(BUDGET_VAR, DEFAULT_BUDGET)
    except budget.SizeError as e:
        raise VerifyError(str(e)) from None


_pip_settings: Optional[tuple] = None


def pip_settings() -> tuple:
    """``(uv_arguments, environment)`` equivalent to pip's configuration here (files and PIP_* vars)."""
    global _pip_settings
    if _pip_settings is not None:
        return _pip_settings
    values: dict = {}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = proc.stdout.splitlines() if proc.returncode == 0 else []
    except (OSError, subprocess.SubprocessError):
        lines = []
    rank = {"global": 0, "install": 1, ":env:": 2}
    best: dict = {}
    for line in lines:
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        section, _, name = key.partition(".")
        if section not in rank:
            continue
        value = raw.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if rank[section] >= best.get(name, -1):
            best[name] = rank[section]
            values[name] = value
    args: list = []
    env: dict = {}
    if values.get("index-url"):
        args += ["--index-url", values["index-url"]]
    for url in values.get("extra-index-url", "").split():
        args += ["--extra-index-url", url]
    for link in values.get("find-links", "").split():
        args += ["--find-links", link]
    for path in values.get("constraint", "").split():
        if os.path.isfile(path):
            args += ["--constraint", path]
    for host in values.get("trusted-host", "").split():
        args += ["--allow-insecure-host", host]
    if values.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        args.append("--no-index")
    if "--extra-index-url" in args or "--find-links" in args:
        # pip takes the best version from every index; uv by default only from the first that has one.
        args += ["--index-strategy", "unsafe-best-match"]
    if values.get("cert"):
        env["SSL_CERT_FILE"] = values["cert"]
    if values.get("default-timeout") or values.get("timeout"):
        env["UV_HTTP_TIMEOUT"] = values.get("default-timeout") or values["timeout"]
    _pip_settings = (args, env)
    return _pip_settings


def uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except Exception:
        found = shutil.which("uv")
        if found:
            return found
    raise VerifyError(
        "Verification builds its environment with uv, which is missing: pip install uv."
    )


def exact_builds(requirements: str) -> list:
    """``name==version+local`` for each pin this environment runs as a local build of that version."""
    out = []
    for line in requirements.splitlines():
        m = _REQ_LINE.match(line)
        if not m or "+" in m.group(2):
            continue
        p = pin(m.group(1))
        if p is not None and p.version == m.group(2) and p.installed != p.version:
            out.append(f"{p.name}=={p.installed}")
    return out


# -- the environment --------------------------------------------------------------------------------------
def prune_environments(limit: int, keep: Iterable[str] = ()) -> list:
    """Remove verification environments (``cache_dir()/envs/<key>``), the least recently used
    first, until they take ``limit`` bytes or less; never one named in ``keep`` nor one another
    process builds or uses (its ``.lock`` or ``.use`` held). The removed :class:`..budget.Candidate` s."""
    envs = cache_dir() / "envs"
    found = []
    try:
        children = sorted(envs.iterdir())
    except OSError:
        return []
    for env in children:
        marker = env / ENV_MARKER
        if not env.is_dir() or not marker.is_file():
            continue  # a lock file, or an environment being built

        def remove(env: Path = env) -> bool:
            with budget.unless_busy(envs / f"{env.name}.lock", envs / f"{env.name}.use") as free:
                if free:
                    budget.remove_tree(env)
                return free

        try:
            used = marker.stat().st_mtime
        except OSError:
            continue
        size = budget.tree_size(env)
        found.append(budget.Candidate(env.name, used, size, remove, 0, "environment"))
    return budget.evict(found, limit, keep)


def _stream(cmd: list, out: Callable[[str], None], env: dict, cwd: Optional[Path] = None) -> tuple:
    """Run a command, passing each line of its output on as it comes; ``(returncode, tail)``."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=str(cwd) if cwd else None,
    )
    tail: list = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            out(f"    {line}")
            tail = (tail + [line])[-20:]
    return proc.wait(), tail


@contextlib.contextmanager
def environment_in_use(requirements: Path, out: Callable[[str], None] = print) -> Iterator[tuple]:
    """``(python, reused)``: an environment with exactly the bundle's requirements, from the cache,
    kept from :func:`prune_environments` until the block ends (a shared lock on its ``.use`` file)."""
    text = requirements.read_text(encoding="utf-8")
    wanted = sorted(
        line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()
    )
    exact = exact_builds(text)
    args, extra_env = pip_settings()
    # The runtime the notebook runs, as a wheel that the bundle's modelcloud==X takes (no network).
    wheels = cache_dir() / "wheels"
    runtime_wheel = runtime.wheel(wheels)
    args = [*args, "--find-links", str(wheels)]
    if "--index-strategy" not in args:
        args += ["--index-strategy", "unsafe-best-match"]
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable) or sys.executable)
    key = hashlib.sha256(
        json.dumps(
            [sys.version, base, wanted, exact, args, sorted(extra_env.items()), runtime_wheel.name]
        ).encode()
    ).hexdigest()[:20]
    envs = cache_dir() / "envs"
    env_dir = envs / key
    python = env_dir / "bin" / "python"
    with budget.locked(envs / f"{key}.use", shared=True):
        with budget.locked(envs / f"{key}.lock"):
            reused = _make_environment(requirements, env_dir, wanted, exact, args, extra_env, out)
        yield python, reused


def environment(requirements: Path, out: Callable[[str], None] = print) -> tuple:
    """``(python, reused)``: an environment with exactly the bundle's requirements, from the cache
    (marked used now)."""
    with environment_in_use(requirements, out) as found:
        return found


def _make_environment(
    requirements: Path,
    env_dir: Path,
    wanted: list,
    exact: list,
    args: list,
    extra_env: dict,
    out: Callable[[str], None],
) -> bool:
    """Build the environment in ``env_dir`` unless it is there (then mark it used): True if it was."""
    python = env_dir / "bin" / "python"
    marker = env_dir / ENV_MARKER
    if marker.is_file() and python.exists():
        with contextlib.suppress(OSError):
            os.utime(marker)  # its last use, which the budget goes by
        return True
    shutil.rmtree(env_dir, ignore_errors=True)
    uv = uv_binary()
    run_env = {**os.environ, **extra_env, "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME"):
        run_env.pop(var, None)
    code, tail = _stream(
        [uv, "venv", "--quiet", "--python", sys.executable, str(env_dir)], out, run_env
    )
    if code != 0:
        raise VerifyError(
            f"uv could not create a virtual environment in {env_dir} ({(tail or ['no output'])[-1]}): "
            "check that uv works here (uv venv /tmp/x)."
        )
    cmd = [uv, "pip", "install", "--python", str(python), "-r", str(requirements), *args]
    if exact:
        constraints = env_dir / "exact-builds.txt"
        constraints.write_text("\n".join(exact) + "\n")
        cmd += ["--constraint", str(constraints)]
    out("  Installing requirements.txt into a new environment with uv:")
    code, tail = _stream(cmd, out, run_env)
    if code != 0:
        shutil.rmtree(env_dir, ignore_errors=True)
        raise VerifyError(
            f"requirements.txt did not install ({_reason(tail)}): fix the pin it names, or make "
            "that package available to pip here."
        )
    marker.write_text(json.dumps({"requirements": wanted, "exact": exact, "created": time.time()}))
    return False


def _reason(tail: list) -> str:
    """The line of uv's output that says why, shortened."""
    for prefix in ("cause:", "error:", "×", "Caused by:"):
        for line in tail:
            if line.strip().startswith(prefix):
                text = line.strip()
                return text if len(text) <= 240 else text[:237] + "..."
    text = (tail or ["no output"])[-1].strip()
    return text if len(text) <= 240 else text[:237] + "..."


# -- running the bundle -----------------------------------------------------------------------------------
def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV or k.startswith(KEEP_ENV_PREFIXES)}
    env.update({"ALGOLINK_HOST": "127.0.0.1", "ALGOLINK_PORT": "0", "PYTHONUNBUFFERED": "1"})
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ left in the bundle
    return env


def _contents(bundle: Path) -> set:
    """Every path under ``bundle``, relative, folders included."""
    found: set = set()
    for root, dirs, files in os.walk(bundle):
        rel = Path(root).relative_to(bundle)
        found.update(str(rel / name) for name in dirs + files)
    return found


def _leave_as_found(bundle: Path, before: set) -> list:
    """Remove what running the bundle added to it (``__pycache__``, files its code wrote); returns
    the removed paths, relative."""
    removed = []
    for rel in sorted(_contents(bundle) - before):
        path = bundle / rel
        if not os.path.lexists(path):
            continue  # inside a folder removed already
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        removed.append(rel)
    return removed


_PROBE = """
import importlib.util, json, sys
names = %r
found = [n for n in names if importlib.util.find_spec(n) is not None]
spec = importlib.util.find_spec("modelcloud")
print(json.dumps({"notebook": found, "modelcloud": spec.origin if spec else None}))
"""


def check_isolation(python: Path, bundle: Path) -> None:
    """No Jupyter package can be imported there, and modelcloud comes from the environment (the
    installed runtime), or from the bundle's own copy in a bundle an older AlgoLink vendored it in."""
    proc = subprocess.run(
        [str(python), "-E", "-s", "-c", _PROBE % (sorted(NOTEBOOK_ONLY),)],
        cwd=str(bundle),
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise VerifyError(
            f"The verification environment's Python does not run ({proc.stderr.strip()[-200:]}): "
            f"delete {python.parent.parent} and verify again."
        )
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    if found["notebook"]:
        raise VerifyError(
            f"requirements.txt installs {', '.join(found['notebook'])}, which a bundle must not "
            "need: take the import that pulls it in out of the code the commands run."
        )
    origin = found["modelcloud"] or ""
    env = python.parent.parent
    if not (origin.startswith(str(env)) or origin.startswith(str(bundle.resolve()))):
        raise VerifyError(
            f"modelcloud is not installed in the verification environment (it came from "
            f"{origin or 'nowhere'}): requirements.txt must name {runtime.requirement()}; "
            "export again."
        )


class _Server:
    def __init__(self, python: Path, bundle: Path, out: Callable[[str], None]):
        self.out = out
        self.lines: list = []
        self.port: Optional[int] = None
        self._started = threading.Event()
        self.proc = subprocess.Popen(
            [str(python), "-u", "-E", "-s", "cloud_model.py"],
            cwd=str(bundle),
            env=_clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self.out(f"    | {line}")
            m = STARTED.search(line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._started.set()
        self._started.set()

    def wait_started(self, timeout: float) -> None:
        if not self._started.wait(timeout):
            self.stop()
            raise VerifyError(
                f"The bundle did not start within {timeout:.0f} s: see its output above, and make "
                "its setup faster or allow more time."
            )
        if self.port is None:
            self.proc.wait(10)
            raise VerifyError(
                f"The bundle exited with status {self.proc.returncode} before serving: its output "
                "above says why."
            )

    def cause(self) -> str:
        """The last line of a traceback the bundle printed (``NameError: name 'json' is not ...``)."""
        for line in reversed(self.lines[-200:]):
            text = line.strip()
            if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(:|$)", text):
                return text
        return ""

    def request(self, method: str, path: str, body: Any = None, timeout: float = 300) -> tuple:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read() or b"null")
            except ValueError:
                return e.code, None
        except (OSError, ValueError) as e:  # refused, reset, timed out, or not JSON
            reason = getattr(e, "reason", None) or e
            raise VerifyError(
                f"The bundle gave no answer to {method} {path} ({reason}): see its output above."
            ) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- comparing answers --------------------------------------------------------------------------------------
def _image(uri: str) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGBA")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def difference(expected: Any, actual: Any, where: str) -> Optional[str]:
    """How ``actual`` differs from ``expected`` (numbers within 1e-4, images within 2/255 on average)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        same = expected is actual or expected == actual and type(expected) is type(actual)
        return (
            None
            if same
            else f"{where} is {_short(actual)}, the notebook answered {_short(expected)}"
        )
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if math.isclose(expected, actual, rel_tol=1e-4, abs_tol=1e-6):
            return None
        return f"{where} is {actual!r}, the notebook answered {expected!r}"
    if isinstance(expected, str) and isinstance(actual, str):
        if expected == actual:
            return None
        if expected.startswith("data:image/") and actual.startswith("data:image/"):
            try:
                import numpy as np

                a, b = _image(expected), _image(actual)
                if a.size != b.size:
                    return f"{where} is a {b.size[0]}x{b.size[1]} image, the notebook's is {a.size[0]}x{a.size[1]}"
                diff = float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())
                return (
                    None
                    if diff <= 2.0
                    else f"{where} differs from the notebook's image by {diff:.1f}/255 on average"
                )
            except Exception:
                pass
        return f"{where} is {_short(actual)}, the notebook answered {_short(expected)}"
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected:
            if key not in actual:
                return f"{where} has no {key!r}"
            found = difference(
                expected[key], actual[key], f"{where}[{key!r}]" if where else repr(key)
            )
            if found:
                return found
        extra = set(actual) - set(expected)
        return (
            f"{where or 'the answer'} has {sorted(extra)[0]!r}, which the notebook's has not"
            if extra
            else None
        )
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{where} has {len(actual)} items, the notebook's has {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            found = difference(e, a, f"{where}[{i}]")
            if found:
                return found
        return None
    return (
        None
        if expected == actual
        else f"{where} is {_short(actual)}, the notebook answered {_short(expected)}"
    )


def _manifest_part(manifest: dict) -> dict:
    commands = sorted(manifest.get("commands") or [], key=lambda c: c["name"])
    return json.loads(
        json.dumps(
            {
                "commands": commands,
                "options": manifest.get("options") or [],
                "metadata": manifest.get("metadata") or {},
            }
        )
    )


def _manifest_difference(expected: dict, actual: dict) -> Optional[str]:
    e, a = _manifest_part(expected), _manifest_part(actual)
    e_names = [c["name"] for c in e["commands"]]
    a_names = [c["name"] for c in a["commands"]]
    if e_names != a_names:
        return f"its commands are {', '.join(a_names) or 'none'}, the notebook's are {', '.join(e_names)}"
    for ec, ac in zip(e["commands"], a["commands"]):
        if ec != ac:
            return f"command {ec['name']!r} is declared differently ({difference(ec, ac, '') or 'its spec differs'})"
    if e["options"] != a["options"]:
        return "its setup options differ from the notebook's"
    if e["metadata"] != a["metadata"]:
        return "its metadata (modelcloud.meta) differs from the notebook's"
    return None


def undefined_names(source: str) -> list:
    """Module-level names ``source`` reads (in any function too) that it never binds and that are not
    builtins: each one a NameError waiting where it is read."""
    import builtins

    try:
        names = analyze(source)
        tree = ast.parse(source)
    except SyntaxError:
        return []
    if any(
        isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)
        for n in ast.walk(tree)
    ):
        return []  # `from x import *` binds names no one can list here
    return sorted(
        n
        for n in names.uses - names.binds
        if not hasattr(builtins, n) and not (n.startswith("__") and n.endswith("__"))
    )


def load_examples(bundle: Path) -> list:
    """``(command, filename, record)`` of every example under examples/, in order."""
    out = []
    root = bundle / "examples"
    if not root.is_dir():
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as e:
                raise VerifyError(
                    f"examples/{folder.name}/{path.name} is not valid JSON ({e}): fix or delete it."
                ) from None
            out.append((folder.name, path.name, record))
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def verify_bundle(
    directory: Any,
    expected: Optional[dict] = None,
    out: Callable[[str], None] = print,
    start_timeout: float = 300,
    *,
    allow_unchecked: bool = False,
    no_example: Optional[dict] = None,
) -> Report:
    """Build (or reuse) a fresh environment from the bundle's requirements.txt, start the bundle there,
    check its manifest against ``expected`` (the notebook's) and replay every example.

    Every command must be checked by an example: one with none fails the verification, unless
    ``allow_unchecked``, where it is reported as not checked. ``no_example``: command -> why it has none
    (what the export met), for the message. The bundle is left as it was found."""
    bundle = Path(directory).resolve()
    if not (bundle / "cloud_model.py").is_file() or not (bundle / "requirements.txt").is_file():
        raise VerifyError(
            f"{bundle} is not a bundle (no cloud_model.py or requirements.txt): export it first."
        )
    limit = envs_budget()
    before = _contents(bundle)
    pruning = _Pruning(limit, out)
    try:
        with contextlib.ExitStack() as hold:
            try:
                return _verify(
                    bundle,
                    expected,
                    out,
                    start_timeout,
                    allow_unchecked,
                    no_example or {},
                    hold,
                    pruning,
                )
            finally:
                pruning()  # (done already, before the last line, unless the verification failed)
    finally:
        _leave_as_found(bundle, before)


class _Pruning:
    """Once, after a verification: the environments kept within ``limit``, all but the one it used
    (:attr:`used`), and a line said when some went."""

    def __init__(self, limit: Optional[int], out: Callable[[str], None]):
        self.limit = limit
        self.out = out
        self.used: list = []
        self.done = False

    def __call__(self) -> None:
        if self.done or self.limit is None:
            return
        self.done = True
        try:
            removed = prune_environments(self.limit, self.used)
        except OSError as e:
            self.out(f"  Note: old verification environments could not be removed ({e}).")
            return
        if removed:
            self.out(
                f"  Removed {budget.describe(removed)} of earlier verifications, used least "
                f"recently, to keep {cache_dir() / 'envs'} within {budget.size_text(self.limit)} "
                f"(${BUDGET_VAR})."
            )


def _verify(
    bundle: Path,
    expected: Optional[dict],
    out: Callable[[str], None],
    start_timeout: float,
    allow_unchecked: bool,
    no_example: dict,
    hold: contextlib.ExitStack,
    pruning: _Pruning,
) -> Report:
    started = time.perf_counter()
    out("Verifying the bundle in a fresh environment built from its requirements.txt...")
    undefined = undefined_names((bundle / "cloud_model.py").read_text(encoding="utf-8"))
    undefined_hint = ""
    if undefined:
        shown = ", ".join(f"`{n}`" for n in undefined)
        undefined_hint = (
            f"cloud_model.py reads {shown}, which it never imports or defines: a NameError where "
            f"{'it is' if len(undefined) == 1 else 'they are'} read"
        )
        out(f"  Warning: {undefined_hint}.")
    t = time.perf_counter()
    python, reused = hold.enter_context(environment_in_use(bundle / "requirements.txt", out))
    pruning.used.append(python.parent.parent.name)
    env_seconds = time.perf_counter() - t
    out(
        f"  Environment {'reused' if reused else 'built'} in {env_seconds:.1f} s: {python.parent.parent}"
    )
    check_isolation(python, bundle)
    out("  No Jupyter package is importable there; modelcloud is the installed runtime.")
    examples = load_examples(bundle)
    out("  Starting python cloud_model.py:")
    t = time.perf_counter()
    server = _Server(python, bundle, out)
    try:
        try:
            server.wait_started(start_timeout)
        except VerifyError as e:
            cause = server.cause()
            text = str(e)
            if cause:
                text = text.rstrip(".") + f"; it says {cause}"
            if undefined_hint:
                text = text.rstrip(".") + f" ({undefined_hint})"
            raise VerifyError(text + ("" if text.endswith(".") else ".")) from None
        start_seconds = time.perf_counter() - t
        status, health = server.request("GET", "/healthcheck")
        if status != 200 or not isinstance(health, dict) or health.get("status") != "RUNNING":
            raise VerifyError(
                f"The bundle started but its /healthcheck says {health!r}: see its output above."
            )
        status, manifest = server.request("GET", "/meta")
        if status != 200 or not isinstance(manifest, dict):
            raise VerifyError(f"The bundle's GET /meta answered {status}: see its output above.")
        if expected is not None:
            problem = _manifest_difference(expected, manifest)
            if problem:
                raise VerifyError(f"The bundle's /meta does not match the notebook: {problem}.")
        names = ", ".join(c["name"] for c in manifest.get("commands", []))
        out(
            f"  Started in {start_seconds:.1f} s; /meta lists {names}"
            + (", as the notebook does." if expected else ".")
        )
        commands = {c["name"] for c in manifest.get("commands", [])}
        failures: list = []
        for command, filename, record in examples:
            label = f"examples/{command}/{filename}"
            if command not in commands:
                out(f"  {label}: FAILED, {command!r} is not a command of the bundle")
                failures.append(
                    f"{label} is for {command!r}, which the bundle does not serve: delete it or "
                    "export that command"
                )
                continue
            t0 = time.perf_counter()
            status, answer = server.request("POST", f"/{command}", record.get("inputs") or {})
            ms = (time.perf_counter() - t0) * 1000
            if status != 200:
                error = answer.get("error") if isinstance(answer, dict) else answer
                problem = f"the bundle answered {status} ({error})"
            else:
                found = difference(record.get("outputs"), answer, "")
                problem = f"the bundle's output {found}" if found else None
            if problem:
                out(f"  {label}: FAILED, {problem}")
                failures.append(f"{label}: {problem}")
            else:
                out(f"  {label}: same answer as the notebook ({ms:.0f} ms)")
        served = [c["name"] for c in manifest.get("commands", [])]
        checked = {command for command, _filename, _record in examples}
        unchecked = [c for c in served if c not in checked]
        for command in unchecked:
            why = no_example.get(command) or f"there is no example under examples/{command}/"
            out(f"  {command}: NOT CHECKED, {why.rstrip('.')}")
        if failures:
            hint = f" ({undefined_hint})" if undefined_hint else ""
            more = f" (and {len(failures) - 1} more, listed above)" if len(failures) > 1 else ""
            raise VerifyError(
                f"{len(failures)} of {len(examples)} example(s) failed; {failures[0]}{more}{hint}."
            )
    finally:
        server.stop()
        pruning()
    seconds = time.perf_counter() - started
    names = ", ".join(repr(c) for c in unchecked)
    if unchecked and not allow_unchecked:
        them = "it" if len(unchecked) == 1 else "them"
        raise VerifyError(
            f"{len(unchecked)} of {_plural(len(served), 'command')} not checked ({names}: no example "
            f"to check {them} with, see above): save an example from the test form (%algolink test "
            f'{unchecked[0]}, then "Save as example") and export again, or give --allow-unchecked to '
            f"accept the bundle without checking {them}."
        )
    answers = (
        f"answers its {len(examples)} example(s) as the notebook did"
        if examples
        else "serves the notebook's commands"
    )
    if unchecked:
        out(
            f"Partly verified in {seconds:.1f} s: the bundle starts in a fresh environment and "
            f"{answers}; {len(unchecked)} of {_plural(len(served), 'command')} ({names}) not "
            "checked, accepted with --allow-unchecked."
        )
    else:
        out(f"Verified in {seconds:.1f} s: the bundle starts in a fresh environment and {answers}.")
    return Report(
        python.parent.parent,
        reused,
        env_seconds,
        start_seconds,
        len(examples),
        seconds,
        tuple(unchecked),
    )
