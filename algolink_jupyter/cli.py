"""The ``algolink`` command line, assembled from the parts: ``serve`` and ``export`` here, ``hub`` (the
server, started from :mod:`.hub.app`), and the hub's client commands (:mod:`.client.commands`)."""

from __future__ import annotations

import argparse
import os
import re
import runpy
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import modelcloud

from .client.commands import add_commands as add_client_commands
from .errors import CLIError
from .export import ExportError
from .export.notebook import export_notebook
from .hub.settings import add_arguments as add_hub_arguments


def find_entrypoint(path: str) -> Path:
    """The ``cloud_model.py`` a PATH names: the file itself, or the one in a bundle folder (else the
    folder's ``runway_model.py``, a model written for Runway)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CLIError(f"{path} does not exist: give a bundle folder or a cloud_model.py file.")
    if p.is_dir():
        entry = p / "cloud_model.py"
        if not entry.is_file() and (p / "runway_model.py").is_file():
            entry = p / "runway_model.py"  # a model's folder as Runway laid it out
        if not entry.is_file():
            raise CLIError(
                f"{path} has no cloud_model.py: a bundle folder must hold the service's cloud_model.py "
                "(or a Runway model's runway_model.py)."
            )
        return entry.resolve()
    if p.suffix != ".py":
        raise CLIError(
            f"{path} is not a Python file: give a bundle folder or a cloud_model.py file."
        )
    return p.resolve()


def bundle_port(entry: Path) -> Optional[int]:
    """The ``port`` of the bundle's algolink.yml, if it names one."""
    config = entry.parent / "algolink.yml"
    if not config.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(config.read_text()) or {}
    except yaml.YAMLError as e:
        raise CLIError(f"{config} is not valid YAML: {e}") from None
    port = data.get("port") if isinstance(data, dict) else None
    if port is not None and (not isinstance(port, int) or not 0 <= port <= 65535):
        raise CLIError(f"{config}: port must be a number between 0 and 65535, got {port!r}.")
    return port


def cmd_serve(args: argparse.Namespace) -> int:
    entry = find_entrypoint(args.path)
    # --port wins, then ALGOLINK_PORT (as for `python cloud_model.py`), then the bundle's algolink.yml.
    yml_port = bundle_port(entry)  # read even when unused: a broken algolink.yml is reported
    if args.port is not None:
        os.environ["ALGOLINK_PORT"] = str(args.port)
    elif not os.environ.get("ALGOLINK_PORT") and yml_port is not None:
        os.environ["ALGOLINK_PORT"] = str(yml_port)
    if args.host:
        os.environ["ALGOLINK_HOST"] = args.host
    if args.debug:
        os.environ["ALGOLINK_DEBUG"] = "1"
    # A model written for Runway imports `runway`: modelcloud's alias, unless Runway's own is installed.
    from modelcloud.compat import enable_runway_alias

    enable_runway_alias()
    # Run it as `python cloud_model.py` would, from its own folder, so relative paths resolve there.
    os.chdir(entry.parent)
    sys.path.insert(0, str(entry.parent))
    sys.argv = [str(entry)]
    runpy.run_path(str(entry), run_name="__main__")
    # A cloud_model.py without `if __name__ == '__main__': modelcloud.run()` is served all the same.
    if modelcloud.default_registry.served:
        return 0
    if modelcloud.default_registry.commands:
        modelcloud.run()
        return 0
    raise CLIError(f"{entry} declares no @modelcloud.command: there is nothing to serve.")


def cmd_export(args: argparse.Namespace) -> int:
    if args.allow_unchecked and not args.verify:
        print(
            "algolink: error: --allow-unchecked goes with --verify (it accepts commands the "
            "verification could not check).",
            file=sys.stderr,
        )
        return 1
    try:
        export_notebook(
            args.notebook,
            args.output,
            verify=args.verify,
            allow_unchecked=args.allow_unchecked,
            timeout=args.timeout,
            kernel_name=args.kernel,
            port=args.port,
            max_state_size=args.max_state_size,
        )
    except ExportError as e:
        print(f"algolink: error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    """An OCI image of a bundle folder (built here) or of a hub's version (built by the hub)."""
    from .hub import image

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    target = Path(args.target).expanduser()
    try:
        if target.is_dir():
            output = Path(args.output or f"{image.image_name(target.resolve().name)}.tar")
            with tempfile.TemporaryDirectory(prefix="algolink-image-") as tmp:
                spec = image.local_spec(
                    target, Path(tmp) / "app", say, output=output, tag=args.tag, base=args.base
                )
                result = image.build_image(spec, log=say)
        else:
            if args.base or args.tag:
                raise CLIError(
                    f"--base and --tag apply to a bundle folder, and {args.target} is not one: the "
                    "hub names and builds its versions' images itself; leave them out."
                )
            output, digest = image_from_hub(args.target, args.output, say)
            result = None
        if args.push:
            image.push(output, args.push, say)
            say(f"Pushed to {args.push}.")
    except image.ImageError as e:
        print(f"algolink: error: {e}", file=sys.stderr)
        return 1
    if result is not None:
        digest = result.digest
    print(f"{output} {digest}")
    say(f"Load it with `docker load -i {output}` or `podman load -i {output}`.")
    return 0


def image_from_hub(text: str, output: Optional[str], say: Any) -> tuple:
    """Ask the hub for the image of PROJECT/SERVICE[:vN] (its online version, else its newest),
    follow its build log, download the archive: (path, digest)."""
    import time

    from .client.core import HubClient, HubRequestError, service_path, split_service

    name, _, number = text.partition(":")
    if not name.count("/") == 1:
        raise CLIError(
            f"{text} is neither a bundle folder nor PROJECT/SERVICE[:vN]: give a folder that "
            "exists, or a hub's service such as demo/digits:v2."
        )
    project, service = split_service(name)
    client = HubClient()
    base = service_path(project, service)
    if number:
        if not re.fullmatch(r"v?\d+", number):
            raise CLIError(f"{number!r} is not a version: write it as v2 (or 2).")
        n = int(number.lstrip("v"))
    else:
        info = client.call("GET", base)
        n = info.get("published_version") or max(
            (v["number"] for v in client.call("GET", base + "/versions")), default=0
        )
        if not n:
            raise CLIError(f"{name} has no version yet: push a bundle first.")
    url = f"{base}/versions/{n}/image"
    state = client.call("POST", url)
    say(f"The hub is building the image of {name} version {n} (log: {state['log_url']})")
    shown = 0
    while True:
        with client.open("GET", url + "/log") as r:
            lines = r.read().decode("utf-8", "replace").splitlines()
        for line in lines[shown:]:
            say(line)
        shown = len(lines)
        state = client.call("GET", url)
        if state["status"] != "building":
            break
        time.sleep(1)
    if state["status"] != "ready":
        raise image_error(f"The hub's image build failed: {state.get('error') or 'see its log'}")
    path = Path(output or f"{project}-{service}-v{n}.tar")
    tmp = path.with_name(f".{path.name}.part")
    try:
        with client.open("GET", url + ".tar", timeout=600) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
        os.replace(tmp, path)
    except (HubRequestError, OSError):
        tmp.unlink(missing_ok=True)
        raise
    return path, state["digest"]


def image_error(message: str) -> Exception:
    from .hub.image import ImageError

    return ImageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="algolink", description="Serve, export and publish models with AlgoLink."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    serve = sub.add_parser(
        "serve",
        help="serve a bundle folder or a cloud_model.py over HTTP",
        description=(
            "Serve a bundle folder or a cloud_model.py over HTTP, as `python cloud_model.py` would. "
            "ALGOLINK_* environment variables apply."
        ),
    )
    serve.add_argument("path", help="a bundle folder or a cloud_model.py")
    serve.add_argument(
        "--port", type=int, help="port to listen on (default: the bundle's, or 9000)"
    )
    serve.add_argument("--host", help="address to bind (default 0.0.0.0)")
    serve.add_argument("--debug", action="store_true", help="send tracebacks with errors")
    serve.set_defaults(func=cmd_serve)

    export = sub.add_parser(
        "export",
        help="run a notebook in a fresh kernel and export its commands as a bundle",
        description=(
            "Run NOTEBOOK from top to bottom in a fresh kernel (in the notebook's folder), then export "
            "its setup and commands from that kernel as a bundle, as %%algolink export does."
        ),
    )
    export.add_argument("notebook", help="the .ipynb notebook")
    export.add_argument("-o", "--output", required=True, help="the bundle folder to write")
    export.add_argument(
        "--verify",
        action="store_true",
        help="then run the bundle in a fresh environment and replay its saved examples",
    )
    export.add_argument(
        "--allow-unchecked",
        action="store_true",
        help="with --verify: accept a bundle with commands no example checks (reported as not checked)",
    )
    export.add_argument(
        "--port", type=int, help="the port the bundle serves on, written to algolink.yml"
    )
    export.add_argument(
        "--max-state-size",
        metavar="SIZE",
        help="stop when the data (not models) saved from the kernel is larger (default 10MB)",
    )
    export.add_argument(
        "--timeout", type=float, default=600, help="seconds each cell may run (default 600)"
    )
    export.add_argument(
        "--kernel", default="python3", help="the kernel to run it with (default python3)"
    )
    export.set_defaults(func=cmd_export)

    hub = sub.add_parser(
        "hub",
        help="run the AlgoLink hub",
        description="Run the AlgoLink hub: the REST API under /api/v1, /serve, and the service "
        "processes. SQLite in the data folder unless --db names PostgreSQL.",
    )
    add_hub_arguments(hub)
    hub.set_defaults(func=cmd_hub)

    img = sub.add_parser(
        "image",
        help="build an OCI container image of a bundle or of a hub's version",
        description="Build an OCI image (docker load / podman load) of a bundle folder, here, "
        "with its environment built as the hub builds it; or of a hub's version "
        "(PROJECT/SERVICE[:vN]), built by the hub and downloaded. No container engine is needed.",
    )
    img.add_argument("target", help="a bundle folder, or PROJECT/SERVICE[:vN] on the hub")
    img.add_argument("-o", "--output", help="the archive to write (default: NAME.tar here)")
    img.add_argument("--push", metavar="REGISTRY/NAME:TAG", help="push it to a registry (skopeo)")
    img.add_argument(
        "--base", metavar="IMAGE", help="base image from a registry instead of the Debian base"
    )
    img.add_argument("--tag", metavar="NAME:TAG", help="the image's name (default algolink/FOLDER)")
    img.set_defaults(func=cmd_image)

    add_client_commands(sub)  # register, publish, logs, status, options, login, predict, ...
    return parser


def cmd_hub(args: argparse.Namespace) -> int:
    # Imported here, when the hub is started, not for every `algolink` command: the server side
    # (SQLAlchemy, Alembic, the handlers) takes a second to import.
    from .hub.app import run_from_args

    return run_from_args(args)


def main(argv: Optional[list] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except CLIError as e:
        print(f"algolink: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
