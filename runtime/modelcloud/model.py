"""The registry: one setup function and its options, the commands, the model card metadata, and the
model that setup returned. It checks every input against its data type, calls the command, and checks
and serializes what the command returned. It knows nothing of HTTP: the server and the notebook kernel
both drive it.
"""

from __future__ import annotations

import atexit
import inspect
import json
import os
import re
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Optional

from .batching import Batching, as_batching, split_results
from .data_types import MISSING, DecodeContext, accepts_output_format, from_spec, is_builtin
from .errors import (
    InferenceError,
    InputError,
    MissingOptionError,
    ModelCloudError,
    NotReady,
    SetupError,
    UnknownCommand,
    ValidationError,
)
from .streaming import Canceled, is_stream, split_yield
from .version import __version__

STARTING, RUNNING, SETUP_FAILED = "STARTING", "RUNNING", "SETUP_FAILED"

#: Routes of the protocol that a command may not shadow.
RESERVED_NAMES = {"meta", "healthcheck", "setup", "openapi.json", "favicon.ico", "ws", "jobs"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
#: Input, output and option names: JSON keys and form field names, so spaces and punctuation are fine
#: (Runway allowed them); no control characters, quotes or backslashes (they break multipart headers).
_FIELD_RE = re.compile(r'^[^\x00-\x1f\x7f"\\]{1,100}$')

META_FIELDS = ("name", "tagline", "description", "license", "performance_notes", "links", "images")


def _type_dict(types: dict) -> list:
    out = []
    for name, t in types.items():
        d = t.to_dict()
        d.pop("name", None)  # a custom type's to_dict may hold its own idea of the name
        out.append({"name": name, **d})
    return out


def _spec_types(kind: str, where: str, spec: Optional[dict]) -> dict:
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise TypeError(f"{where}: {kind} must be a dict of name -> data type, got {spec!r}")
    out = {}
    for name, t in spec.items():
        if not isinstance(name, str) or not _FIELD_RE.match(name) or name != name.strip():
            raise ValueError(
                f"{where}: {kind} name {name!r} must be 1 to 100 characters without quotes, "
                "backslashes, control characters or spaces at either end"
            )
        try:
            out[name] = from_spec(t)
        except TypeError as e:
            raise TypeError(f"{where}: {kind[:-1]} {name!r}: {e}") from None
        try:
            out[name].name = name  # Runway's attribute: a custom type's messages use it
        except AttributeError:
            pass
    return out


def _option_dicts(options: dict) -> list:
    """The options as the manifest shows them: an option without a declared default shows the
    implicit one it gets (Runway's manifest did the same)."""
    out = _type_dict(options)
    for d, t in zip(out, options.values()):
        if "default" not in d:
            implicit = t.implicit_default()
            if implicit is not MISSING:
                d["default"] = implicit
    return out


@dataclass
class Command:
    name: str
    fn: Callable
    inputs: dict
    outputs: dict
    description: Optional[str] = None
    #: Set for a batched command: its function takes a list of inputs dicts (see batching.py).
    batch: Optional[Batching] = None
    #: Consecutive runs that were fast: the server runs a command that stays fast on its I/O loop.
    fast_runs: int = 0

    @property
    def streams(self) -> bool:
        """Whether the function yields (its outputs and progress stream over SSE and WebSocket)."""
        fn = inspect.unwrap(self.fn)
        return inspect.isgeneratorfunction(fn) or bool(getattr(fn, "streams", False))

    def to_dict(self) -> dict:
        spec = {
            "name": self.name,
            "description": self.description,
            "inputs": _type_dict(self.inputs),
            "outputs": _type_dict(self.outputs),
        }
        if self.streams:
            spec["streams"] = True
        if self.batch is not None:
            spec["batch"] = self.batch.to_dict()
        return spec


def gpu_available() -> bool:
    """True when the model's process can use a CUDA GPU. torch is asked only if the model imported it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            return bool(torch.cuda.is_available())
        except Exception:
            return False
    return False


def _takes_argument(fn: Callable) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )


class Registry:
    """Everything a ``cloud_model.py`` declares, and the live model.

    ``modelcloud.setup``, ``modelcloud.command`` and ``modelcloud.meta`` fill the default registry; a
    notebook kernel fills the same one, and a re-declared command replaces the old one in place: a request
    already running finishes on the function it started with.
    """

    def __init__(self) -> None:
        self.setup_fn: Optional[Callable] = None
        self.setup_takes_options = False
        self.options: dict = {}
        self.commands: dict = {}
        self.metadata: dict = {}
        self.base_dir: Optional[str] = None
        self.model: Any = None
        self.status = STARTING
        self.setup_error: Optional[str] = None
        self.started_at = time.time()
        self.last_command_at: Optional[float] = None
        #: Called as listener(kind, name) after a setup ("setup") or command ("command") is declared;
        #: the notebook kernel uses it to set up and serve at once.
        self.listeners: list = []
        self.served = False  # set by run(): `algolink serve` then knows the script served itself
        self._setup_lock = threading.Lock()
        self._options_ctx = DecodeContext()  # the files the current model's options were written to
        atexit.register(self._options_ctx_cleanup)

    # -- declaring ---------------------------------------------------------------------------------------
    def setup(self, fn: Optional[Callable] = None, *, options: Optional[dict] = None) -> Any:
        """``@setup`` or ``@setup(options={...})``: the function that builds the model."""
        if fn is not None and not callable(fn):
            raise TypeError("setup: use @modelcloud.setup or @modelcloud.setup(options={...})")

        def register(f: Callable) -> Callable:
            opts = _spec_types("options", "setup", options)
            takes = _takes_argument(f)
            if opts and not takes:
                raise TypeError(
                    f"setup: {f.__name__}() declares options but takes no argument; "
                    f"write def {f.__name__}(opts):"
                )
            self.setup_fn = f
            self.setup_takes_options = takes
            self.options = opts
            self.base_dir = _declaring_dir(f)
            self._notify("setup", f.__name__)
            return f

        return register(fn) if fn is not None else register

    def command(
        self,
        name: Optional[str] = None,
        inputs: Optional[dict] = None,
        outputs: Optional[dict] = None,
        description: Optional[str] = None,
        batch: Any = None,
    ) -> Callable:
        """``@command('name', inputs={...}, outputs={...}, description='...')``; with
        ``batch=modelcloud.batching(max_size=32, max_latency_ms=10)`` the function takes a list of inputs
        dicts and returns one outputs dict per input (see :mod:`modelcloud.batching`)."""
        if callable(name):
            raise TypeError(
                "command: give it a name and types, e.g. "
                "@modelcloud.command('classify', inputs={'photo': image()}, outputs={'label': text()})"
            )

        def register(fn: Callable) -> Callable:
            cmd_name = name or fn.__name__
            if not isinstance(cmd_name, str) or not _NAME_RE.match(cmd_name):
                raise ValueError(
                    f"command name {cmd_name!r} may only hold letters, digits, '_' and '-' "
                    "(it becomes the URL path)"
                )
            if cmd_name in RESERVED_NAMES:
                raise ValueError(
                    f"command name {cmd_name!r} is taken by the server's own route /{cmd_name}: "
                    "choose another name"
                )
            where = f"command {cmd_name!r}"
            self.commands[cmd_name] = Command(
                cmd_name,
                fn,
                _spec_types("inputs", where, inputs),
                _spec_types("outputs", where, outputs),
                description,
                as_batching(batch, where),
            )
            self._notify("command", cmd_name)
            return fn

        return register

    def meta(self, **fields: Any) -> dict:
        """Model card metadata shown by the hub: name, tagline, description (Markdown), license,
        performance_notes, links ([{'title', 'url'}]) and images (gallery paths; the first is the thumbnail)."""
        unknown = set(fields) - set(META_FIELDS)
        if unknown:
            raise TypeError(
                f"meta: unknown field(s) {', '.join(sorted(unknown))}; the fields are {', '.join(META_FIELDS)}"
            )
        name = fields.get("name")
        if name is not None and (not isinstance(name, str) or not _NAME_RE.match(name)):
            raise ValueError(
                f"meta: name {name!r} may only hold letters, digits, '_' and '-', without spaces"
            )
        for key in ("tagline", "description", "license", "performance_notes"):
            if fields.get(key) is not None and not isinstance(fields[key], str):
                raise TypeError(f"meta: {key} must be a string")
        links = fields.get("links")
        if links is not None:
            if not isinstance(links, (list, tuple)):
                raise TypeError("meta: links must be a list of {'title': ..., 'url': ...}")
            for link in links:
                if not isinstance(link, dict) or not isinstance(link.get("url"), str):
                    raise TypeError(
                        f"meta: link {link!r} must be a dict with a 'url' (and a 'title')"
                    )
            fields["links"] = [
                {"title": link.get("title") or link["url"], "url": link["url"]} for link in links
            ]
        images = fields.get("images")
        if images is not None:
            if isinstance(images, str) or not all(isinstance(i, str) for i in images):
                raise TypeError("meta: images must be a list of image paths")
            fields["images"] = list(images)
        self.metadata.update({k: v for k, v in fields.items() if v is not None})
        return dict(self.metadata)

    def _options_ctx_cleanup(self) -> None:
        self._options_ctx.cleanup()

    def _notify(self, kind: str, name: str) -> None:
        for listener in list(self.listeners):
            listener(kind, name)

    # -- describing ------------------------------------------------------------------------------------
    def manifest(self) -> dict:
        now = time.time()
        return {
            "sdkVersion": __version__,
            "metadata": dict(self.metadata),
            "options": _option_dicts(self.options),
            "commands": [c.to_dict() for c in list(self.commands.values())],
            "millisRunning": int((now - self.started_at) * 1000),
            "millisSinceLastCommand": None
            if self.last_command_at is None
            else int((now - self.last_command_at) * 1000),
            "GPU": gpu_available(),
        }

    def get_command(self, name: str) -> Command:
        cmd = self.commands.get(name)
        if cmd is None:
            known = ", ".join(sorted(self.commands)) or "none"
            raise UnknownCommand(f"There is no command {name!r}; the commands are: {known}.")
        return cmd

    # -- setup -----------------------------------------------------------------------------------------
    def parse_options(self, raw: Optional[dict], ctx: DecodeContext) -> dict:
        """Options checked against their types; a missing one gets its default, else Runway's implicit
        default (text '', number its min, max or 0, boolean False, category its first choice), else
        MissingOptionError names it. Defaults are the code's own, so a default path is always allowed;
        ``ctx.allow_paths`` governs given values."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise InputError(
                'Setup options must be a JSON object of option -> value, like {"checkpoint": "models/x.pt"}.'
            )
        unknown = [k for k in raw if k not in self.options]
        if unknown:
            known = ", ".join(repr(k) for k in self.options) or "none"
            raise InputError(
                f"Unknown setup option {unknown[0]!r}; the options are: {known}.", field=unknown[0]
            )
        ctx.base_dir = self.base_dir
        defaults_ctx = DecodeContext(allow_paths=True, base_dir=self.base_dir, keep_files=True)
        opts = {}
        for name, t in self.options.items():
            try:
                if raw.get(name) is not None:
                    opts[name] = t.deserialize(raw[name], ctx)
                elif t.has_default:
                    opts[name] = t.default_value(defaults_ctx)
                else:
                    opts[name] = self._implicit_option(name, t, defaults_ctx)
            except ValidationError as e:
                raise InputError(f"Option {name!r} {e.message}.", field=name) from None
            except ModelCloudError:
                raise
            except Exception as e:  # a custom type's deserialize refusing the value its own way
                if is_builtin(t):
                    raise
                raise InputError(
                    f"Option {name!r} is not a valid {t.type_name}: {type(e).__name__}: {e}.",
                    field=name,
                ) from None
        return opts

    @staticmethod
    def _implicit_option(name: str, t: Any, ctx: DecodeContext) -> Any:
        value = t.implicit_default()
        if value is not MISSING:
            try:
                return t.deserialize(value, ctx)
            except ValidationError:
                pass  # e.g. text(min_length=3): '' breaks its own rule
        raise MissingOptionError(name)

    def run_setup(self, raw_options: Optional[dict] = None, allow_paths: bool = True) -> None:
        """Build the model. Bad options raise InputError and leave the current model in place; a setup
        function that raises leaves the status SETUP_FAILED and raises SetupError.

        ``allow_paths``: option values may name files on this machine. True for the operator's own
        channels (``run(model_options=...)``, ``ALGOLINK_MODEL_OPTIONS``); False for ``POST /setup``, where
        a client must send a file's content. Files written for one setup are removed by the next."""
        with self._setup_lock:
            ctx = DecodeContext(allow_paths=allow_paths)
            try:
                opts = self.parse_options(raw_options, ctx)
            except BaseException:
                ctx.cleanup()
                raise
            before = (self.status, self.setup_error)
            self.status = STARTING
            self.setup_error = None
            try:
                if self.setup_fn is None:
                    model = None
                elif self.setup_takes_options:
                    model = self.setup_fn(opts)
                else:
                    model = self.setup_fn()
            except ModelCloudError as e:
                if not 400 <= e.status < 500:
                    raise self._setup_failed(ctx, e) from e
                # InvalidArgumentError and the like: the options' fault; a running model stays
                ctx.cleanup()
                if before[0] == RUNNING:
                    self.status, self.setup_error = before
                else:
                    self.status, self.setup_error, self.model = SETUP_FAILED, e.message, None
                raise
            except BaseException as e:
                raise self._setup_failed(ctx, e) from e
            self._options_ctx.cleanup()
            self._options_ctx = ctx
            self.model = model
            self.status = RUNNING

    def _setup_failed(self, ctx: DecodeContext, e: BaseException) -> SetupError:
        ctx.cleanup()
        self.status = SETUP_FAILED
        self.model = None
        self.setup_error = f"{type(e).__name__}: {e}"
        return SetupError(f"Setup failed: {self.setup_error}", traceback=traceback.format_exc())

    def set_model(self, model: Any) -> None:
        """Put a model built elsewhere (a notebook cell) in place."""
        self.model = model
        self.status = RUNNING
        self.setup_error = None

    # -- commands --------------------------------------------------------------------------------------
    def check_ready(self) -> None:
        if self.status == STARTING:
            raise NotReady("The model is still setting up; retry in a moment (GET /healthcheck).")
        if self.status == SETUP_FAILED:
            raise NotReady(
                f"The model's setup failed ({self.setup_error}); fix it and POST /setup to retry."
            )

    def parse_inputs(self, cmd: Command, raw: Any, ctx: DecodeContext) -> dict:
        if not isinstance(raw, dict):
            raise InputError(
                f"The body must be a JSON object of inputs, like {_example_body(cmd)}."
            )
        unknown = [k for k in raw if k not in cmd.inputs]
        if unknown:
            known = ", ".join(repr(k) for k in cmd.inputs) or "none"
            raise InputError(
                f"Unknown input {unknown[0]!r} for {cmd.name!r}; its inputs are: {known}.",
                field=str(unknown[0]),
            )
        inputs = {}
        for name, t in cmd.inputs.items():
            try:
                if name in raw:
                    inputs[name] = t.deserialize(raw[name], ctx)
                elif t.has_default:
                    inputs[name] = t.default_value(ctx)
                else:
                    raise InputError(
                        f"Input {name!r} is missing: send it in the body, like {_example_body(cmd)}.",
                        field=name,
                    )
            except ValidationError as e:
                raise InputError(f"Input {name!r} {e.message}.", field=name) from None
            except ModelCloudError:
                raise
            except Exception as e:  # a custom type's deserialize refusing the value its own way
                if is_builtin(t):
                    raise
                raise InputError(
                    f"Input {name!r} is not a valid {t.type_name}: {type(e).__name__}: {e}.",
                    field=name,
                ) from None
        return inputs

    def check_output_formats(self, cmd: Command, formats: Optional[dict]) -> dict:
        """The output formats a client asked for (``X-Runway-Output-Format: name=PNG;...``), checked
        before the command runs: every name an image output (or a custom type that takes a format)."""
        checked: dict = {}
        for name, fmt in (formats or {}).items():
            t = cmd.outputs.get(name)
            if t is None:
                known = ", ".join(repr(k) for k in cmd.outputs) or "none"
                raise InputError(
                    f"X-Runway-Output-Format names {name!r}, which is not an output of {cmd.name!r}; "
                    f"its outputs are: {known}.",
                    field=name,
                )
            if not accepts_output_format(t):
                raise InputError(
                    f"X-Runway-Output-Format names {name!r}, a {t.type_name} output: only image "
                    "outputs have a format.",
                    field=name,
                )
            check = getattr(t, "check_output_format", None)
            try:
                checked[name] = check(fmt) if check else fmt
            except ValidationError as e:
                raise InputError(
                    f"The output format for {name!r} {e.message} (X-Runway-Output-Format).",
                    field=name,
                ) from None
        return checked

    def call(
        self,
        cmd: Command,
        inputs: dict,
        on_event: Optional[Callable[[Optional[float], Optional[dict]], None]] = None,
        is_canceled: Optional[Callable[[], bool]] = None,
        output_formats: Optional[dict] = None,
    ) -> dict:
        """Run the command on checked inputs and serialize its outputs (``output_formats``: from
        :meth:`check_output_formats`). A command that yields is followed to its end:
        ``on_event(progress, outputs)`` is called per yield (outputs serialized, or None for a
        progress-only yield), and the last outputs are the answer; ``is_canceled()`` is asked before
        each next step, and True closes the generator there (:class:`Canceled`)."""
        if cmd.batch is not None:  # a batched command called alone: a batch of one
            outputs = self.serialize_outputs(cmd, self.run_batch(cmd, [inputs])[0], output_formats)
            if on_event is not None:
                on_event(None, outputs)
            return outputs
        try:
            result = cmd.fn(self.model, inputs)
        except BaseException as e:
            self.last_command_at = time.time()
            raise_command_error(e)
        if is_stream(result):
            try:
                return self.follow(cmd, result, on_event, is_canceled, output_formats)
            finally:
                self.last_command_at = time.time()
        self.last_command_at = time.time()
        outputs = self.serialize_outputs(cmd, result, output_formats)
        if on_event is not None:
            on_event(None, outputs)
        return outputs

    def follow(
        self,
        cmd: Command,
        steps: Any,
        on_event: Optional[Callable] = None,
        is_canceled: Optional[Callable[[], bool]] = None,
        output_formats: Optional[dict] = None,
    ) -> dict:
        """The yields of ``steps`` (a command's iterator), checked and serialized one by one."""
        last: Optional[dict] = None
        try:
            while True:
                if is_canceled is not None and is_canceled():
                    raise Canceled(f"The run of {cmd.name!r} was canceled.")
                try:
                    item = next(steps)
                except StopIteration as stop:
                    if stop.value is None:
                        break
                    item = stop.value
                    steps = iter(())  # the return value is the last yield
                except BaseException as e:
                    raise_command_error(e)
                progress, values = split_yield(cmd, item)
                outputs = (
                    None if values is None else self.serialize_outputs(cmd, values, output_formats)
                )
                if outputs is not None:
                    last = outputs
                if on_event is not None:
                    on_event(progress, outputs)
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                try:
                    close()  # GeneratorExit at the yield it waits at: its finally blocks run
                except Exception:
                    pass
        if last is None:
            if not cmd.outputs:
                return {}
            raise InferenceError(
                f"Command {cmd.name!r} yielded no outputs: yield a dict with "
                f"{', '.join(map(repr, cmd.outputs))} at least once."
            )
        return last

    def run_batch(self, cmd: Command, batch: list) -> list:
        """Call a batched command once on a list of checked inputs: its raw results, one per input, in
        order, still to be serialized (:meth:`serialize_outputs`)."""
        try:
            result = cmd.fn(self.model, batch)
        except BaseException as e:
            raise_command_error(e, batch=len(batch))
        finally:
            self.last_command_at = time.time()
        return split_results(cmd.name, cmd.outputs, result, len(batch))

    def serialize_outputs(
        self, cmd: Command, result: Any, output_formats: Optional[dict] = None
    ) -> dict:
        outputs = cmd.outputs
        if not outputs:
            return {}
        if isinstance(result, dict) and result and set(result) <= set(outputs):
            values = result
        elif len(outputs) == 1:
            values = {next(iter(outputs)): result}
        elif isinstance(result, dict):
            values = result
        else:
            raise InferenceError(
                f"Command {cmd.name!r} returned a {type(result).__name__}; it has "
                f"{len(outputs)} outputs, so it must return a dict with {', '.join(map(repr, outputs))}."
            )
        out = {}
        for name, t in outputs.items():
            if name not in values:
                raise InferenceError(f"Command {cmd.name!r} returned no value for output {name!r}.")
            try:
                fmt = (output_formats or {}).get(name)
                out[name] = (
                    t.serialize(values[name], output_format=fmt)
                    if fmt
                    else t.serialize(values[name])
                )
            except Exception as e:
                raise InferenceError(
                    f"Command {cmd.name!r} returned an invalid {name!r}: {e}."
                ) from e
        return out

    def run_command(
        self,
        name: str,
        raw: Any,
        ctx: Optional[DecodeContext] = None,
        on_event: Optional[Callable[[Optional[float], Optional[dict]], None]] = None,
        is_canceled: Optional[Callable[[], bool]] = None,
    ) -> dict:
        """Everything a request does, in-process: check readiness and inputs, call, serialize.
        ``on_event`` and ``is_canceled`` as for :meth:`call`."""
        cmd = self.get_command(name)
        self.check_ready()
        ctx = ctx or DecodeContext()
        try:
            inputs = self.parse_inputs(cmd, raw, ctx)
            return self.call(cmd, inputs, on_event, is_canceled)
        finally:
            ctx.cleanup()


def raise_command_error(e: BaseException, batch: Optional[int] = None) -> NoReturn:
    """Raise what a command's own exception answers (call it in the ``except``): a client error it
    raised on purpose (InvalidArgumentError and other 4xx) as it is, anything else an InferenceError
    with the traceback. The same for a plain call, a generator's step and a batch."""
    if isinstance(e, ModelCloudError) and 400 <= e.status < 500:
        raise e
    where = f" (a batch of {batch})" if batch is not None else ""
    raise InferenceError(
        f"Error during inference{where}: {type(e).__name__}: {e}",
        traceback=traceback.format_exc(),
    ) from e


def _example_body(cmd: Command) -> str:
    parts = []
    for name, t in list(cmd.inputs.items())[:3]:
        sample = {
            "text": '"..."',
            "number": "1",
            "boolean": "true",
            "image": '"data:image/png;base64,..."',
            "file": '"data:;base64,..."',
            "category": json.dumps(getattr(t, "choices", ["..."])[0]),
        }.get(t.type_name, "...")
        parts.append(f"{json.dumps(name)}: {sample}")
    return "{" + ", ".join(parts) + "}"


def _declaring_dir(fn: Callable) -> Optional[str]:
    """The folder of the file that defines ``fn``: relative option defaults resolve against it."""
    filename = getattr(getattr(fn, "__code__", None), "co_filename", None)
    if filename and os.path.isfile(filename):
        return os.path.dirname(os.path.abspath(filename))
    return os.getcwd()


#: The registry ``modelcloud.setup`` / ``command`` / ``meta`` fill.
default_registry = Registry()
