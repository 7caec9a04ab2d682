"""``%%algolink_setup``, ``%%algolink_command`` and ``%algolink ...``: sugar over ``modelcloud``'s decorators.

A magic cell defines one function. The cell runs in the notebook's namespace (so the function is there to
call and to edit), then the function is declared to the kernel's registry exactly as the decorator would.
"""

from __future__ import annotations

import ast
import datetime
from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from . import kernel
from .client import HubClient, config_path, dev_service_lines, hub_settings, register_dev
from .errors import CLIError
from .export import ExportError, export, parse_size
from .spec import SpecError, batch_settings, command_arguments, parse_spec, setup_arguments
from .spec import unquote as _unquote
from .translation import kernel_translator
from .widgets.publish import for_kernel
from .widgets.test_form import for_command

SUBCOMMANDS = ("serve", "status", "stop", "test", "export", "connect", "publish")


def _parse_spec(text: str, where: str) -> dict:
    try:
        return parse_spec(_unquote(text), where)
    except SpecError as e:
        raise UsageError(str(e)) from None


@magics_class
class AlgoLinkMagics(Magics):
    def _define(self, cell: str, magic: str) -> Callable:
        """Run the cell in the user's namespace and return the one function it defines."""
        tr = kernel_translator()
        try:
            tree = ast.parse(cell)
        except SyntaxError as e:
            raise UsageError(
                tr(
                    "%%{magic}: the cell has a syntax error on line {line}: {error}.",
                    magic=magic,
                    line=e.lineno,
                    error=e.msg,
                )
            ) from None
        names = [
            n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        if len(names) != 1:
            example = (
                "def setup(opts):" if magic == "algolink_setup" else "def classify(model, inputs):"
            )
            if names:
                message = tr(
                    "%%{magic}: the cell defines {count} functions ({names}); it must define "
                    "exactly one, like `{example}` (put helpers in another cell).",
                    magic=magic,
                    count=len(names),
                    names=", ".join(names),
                    example=example,
                )
            else:
                message = tr(
                    "%%{magic}: the cell defines no function; it must define exactly one, like "
                    "`{example}` (put helpers in another cell).",
                    magic=magic,
                    example=example,
                )
            raise UsageError(message)
        shell = self.shell
        filename = shell.compile.cache(cell) if hasattr(shell.compile, "cache") else f"<{magic}>"
        exec(
            compile(cell, filename, "exec"), shell.user_ns
        )  # the cell's own code, as a cell would run
        fn = shell.user_ns[names[0]]
        return fn

    @setup_arguments
    @cell_magic
    def algolink_setup(self, line: str, cell: str) -> None:
        """Declare the cell's function as the model's setup and run it now; the model stays in the kernel."""
        args = parse_argstring(self.algolink_setup, line)
        options = _parse_spec(args.options, "--options")
        fn = self._define(cell, "algolink_setup")
        fn.__algolink_magic__ = {"magic": "algolink_setup", "line": line}
        kernel.registry.setup(fn, options=options or None)

    @command_arguments
    @cell_magic
    def algolink_command(self, line: str, cell: str) -> None:
        """Declare the cell's function as a command and serve it at once (re-running swaps it in place)."""
        args = parse_argstring(self.algolink_command, line)
        inputs = _parse_spec(args.inputs, "--inputs")
        outputs = _parse_spec(args.outputs, "--outputs")
        try:
            batch = batch_settings(args, "%%algolink_command")
        except SpecError as e:
            raise UsageError(str(e)) from None
        fn = self._define(cell, "algolink_command")
        fn.__algolink_magic__ = {"magic": "algolink_command", "line": line}
        try:
            kernel.registry.command(
                _unquote(args.name),
                inputs=inputs,
                outputs=outputs,
                description=_unquote(args.description),
                batch=batch,
            )(fn)
        except (TypeError, ValueError) as e:
            raise UsageError(f"%%algolink_command: {e}") from None

    @line_magic
    def algolink(self, line: str) -> Any:
        """%algolink serve|status|stop|test NAME|export DIR|connect|publish: run `%algolink SUBCOMMAND -h` for each one's options."""
        sub, _, rest = line.strip().partition(" ")
        if sub not in SUBCOMMANDS:
            tr = kernel_translator()
            raise UsageError(
                tr(
                    "%algolink: unknown subcommand {name}; use one of: serve, status, stop, "
                    "test NAME, export DIR, connect, publish.",
                    name=repr(sub),
                )
                if sub
                else tr(
                    "%algolink: say what to do: serve, status, stop, test NAME, export DIR, "
                    "connect or publish."
                )
            )
        return getattr(self, f"_{sub}")(rest)

    @magic_arguments(name="algolink serve")
    @argument("--port", type=int, default=0, help="port (default: any free port)")
    @argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    def _serve(self, rest: str) -> None:
        args = parse_argstring(self._serve, rest)
        try:
            info = kernel.start_serving(host=_unquote(args.host), port=args.port)
        except kernel.ServingError as e:
            raise UsageError(str(e)) from None
        _print_serving(info)

    @magic_arguments(name="algolink status")
    def _status(self, rest: str) -> None:
        parse_argstring(self._status, rest)
        server = kernel.get_server()
        registry = kernel.registry
        stats = server.stats
        tr = kernel_translator()
        if registry.setup_error:
            print(
                tr("Model: {status} ({error})", status=registry.status, error=registry.setup_error)
            )
        else:
            print(tr("Model: {status}", status=registry.status))
        if registry.model is not None:
            print(f"  {kernel.describe_model(registry.model)}")
        if server.running:
            print(tr("Server: serving at {url}", url=server.url))
        else:
            print(tr("Server: stopped"))
        print(tr("Commands: {names}", names=", ".join(sorted(registry.commands)) or tr("none")))
        print(
            tr(
                "Requests served: {requests}, errors: {errors}",
                requests=stats.requests,
                errors=stats.errors,
            )
        )
        if stats.last_error:
            print(tr("Last error: {error}", error=stats.last_error))
        if stats.log:
            print(tr("Log (latest last):"))
            for ts, text in list(stats.log)[-30:]:
                stamp = datetime.datetime.fromtimestamp(ts).strftime("%H:%M:%S")
                for i, part in enumerate(text.splitlines() or [""]):
                    print(f"  {stamp if i == 0 else ' ' * 8} {part}")

    @magic_arguments(name="algolink stop")
    def _stop(self, rest: str) -> None:
        parse_argstring(self._stop, rest)
        tr = kernel_translator()
        print(tr("Stopped serving.") if kernel.get_server().stop() else tr("Not serving."))

    @magic_arguments(name="algolink test")
    @argument("name", help="the command to try")
    def _test(self, rest: str) -> None:
        args = parse_argstring(self._test, rest)
        args.name = _unquote(args.name)
        if args.name not in kernel.registry.commands:
            tr = kernel_translator()
            known = ", ".join(sorted(kernel.registry.commands)) or tr("none")
            raise UsageError(
                tr(
                    "%algolink test: there is no command {name}; the commands are: {known}.",
                    name=repr(args.name),
                    known=known,
                )
            )
        show_form(args.name)

    @magic_arguments(name="algolink export")
    @argument("directory", help="the bundle folder to write (an earlier export there is replaced)")
    @argument(
        "--verify",
        action="store_true",
        help="then run the bundle in a fresh environment and replay the saved examples",
    )
    @argument(
        "--allow-unchecked",
        action="store_true",
        help="with --verify: accept a bundle with commands no example checks (reported as not checked)",
    )
    @argument("--port", type=int, help="the port the bundle serves on, written to algolink.yml")
    @argument(
        "--max-state-size",
        default="10MB",
        help="stop when the data (not models) saved from the kernel is larger (default 10MB)",
    )
    def _export(self, rest: str) -> None:
        args = parse_argstring(self._export, rest)
        if args.allow_unchecked and not args.verify:
            tr = kernel_translator()
            raise UsageError(
                tr(
                    "%algolink export: --allow-unchecked goes with --verify (it accepts commands "
                    "the verification could not check)."
                )
            )
        try:
            limit = parse_size(args.max_state_size)
        except ValueError as e:
            raise UsageError(f"%algolink export: {e}") from None
        try:
            export(
                _unquote(args.directory),
                verify=args.verify,
                allow_unchecked=args.allow_unchecked,
                port=args.port,
                shell=self.shell,
                max_state_size=limit,
            )
        except ExportError as e:
            raise UsageError(f"%algolink export: {e}") from None

    @magic_arguments(name="algolink connect")
    @argument("--project", default="dev", help="the hub project (created when missing)")
    @argument("--group", default="notebooks", help="the group (created when missing)")
    @argument("--name", default="notebook", help="the service's name on the hub")
    @argument("--hub", default=None, help="the hub's URL (default: $ALGOLINK_HUB_URL)")
    @argument("--public", action="store_true", help="let /serve answer without a token")
    def _connect(self, rest: str) -> None:
        """Register this kernel's own server with the hub in development mode (again: reconnect)."""
        args = parse_argstring(self._connect, rest)
        try:
            url, token, _where = hub_settings()
        except CLIError as e:
            raise UsageError(f"%algolink connect: {e}") from None
        hub = _unquote(args.hub) or url
        tr = kernel_translator()
        if not hub:
            raise UsageError(
                tr(
                    "%algolink connect: no hub is configured: set ALGOLINK_HUB_URL and "
                    "ALGOLINK_TOKEN in the kernel's environment (or hub_url and token in {config}), "
                    "or give --hub URL.",
                    config=config_path(),
                )
            )
        if not token:
            raise UsageError(
                tr(
                    "%algolink connect: no hub token: set ALGOLINK_TOKEN (or token in {config}) "
                    "to an API token of the hub at {hub} (the admin token is in its data folder, "
                    "file admin_token).",
                    config=config_path(),
                    hub=hub,
                )
            )
        client = HubClient(hub, token)
        try:
            info = kernel.ensure_serving(on_start=_print_serving)
            service = register_dev(
                client,
                _unquote(args.project),
                _unquote(args.group),
                _unquote(args.name),
                info["url"],
                info["token"],
                args.public,
            )
        except (CLIError, kernel.ServingError) as e:
            raise UsageError(f"%algolink connect: {e}") from None
        print("\n".join(dev_service_lines(client, service)))

    @magic_arguments(name="algolink publish")
    @argument("--project", default=None, help="the hub project (picked from the hub or created)")
    @argument("--group", default=None, help="the group (picked from the hub or created)")
    @argument("--name", default=None, help="the model's name: the service's name on the hub")
    @argument("--bundle", default=None, help="the bundle folder (default: bundles/NAME)")
    def _publish(self, rest: str) -> None:
        """Show the publish form: export, verify, register, build and start on the hub."""
        args = parse_argstring(self._publish, rest)
        display(
            for_kernel(
                self.shell,
                project=_unquote(args.project),
                group=_unquote(args.group),
                name=_unquote(args.name),
                bundle_dir=_unquote(args.bundle),
            )
        )


def _print_serving(info: dict) -> None:
    """What ``%algolink serve`` prints: where the kernel serves, its token and a ``curl`` to try."""
    tr = kernel_translator()
    commands = ", ".join(info["commands"]) or tr("none yet")
    print(tr("Serving at {url} (commands: {commands})", url=info["url"], commands=commands))
    print(tr("Token: {token}", token=info["token"]))
    curl = "curl -H 'Authorization: token " + info["token"] + "' " + info["url"] + "/meta"
    print(tr("Try: {curl}", curl=curl))


def show_form(name: str) -> None:
    """Display the test form of a command below the running cell."""
    display(for_command(kernel.registry, name))
