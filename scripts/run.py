"""`make run`: the hub and JupyterLab on the quickstart, wired to each other, until Ctrl-C.

Starts ``algolink hub`` with SQLite in ``.algolink/hub`` (kept between runs: services registered
yesterday come back), waits until it answers, then starts JupyterLab on ``notebooks/quickstart.ipynb``
with ``ALGOLINK_HUB_URL`` and ``ALGOLINK_TOKEN`` in its environment, so every kernel it starts (and the
AlgoLink server extension) can publish without a configuration step. Stopping one stops the other; the
exit status says which one failed.

What it prints: a ``[ elapsed s]`` line per stage (a ``still …`` line every 10 s while one waits), then
both addresses and how to sign in to the hub, last, so they stay on screen: the hub's and JupyterLab's
own logs go to ``hub.log`` and ``lab.log`` in the data folder. Ctrl-C (or SIGTERM) prints the addresses
once more, stops both and ends with ``Stopped.`` and status 0, no traceback; the two servers run in their
own sessions, so the terminal's Ctrl-C reaches this script only and they stop in order.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from progress import Ticker, say

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` when nothing listens there, else a port the system picks."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def admin_sign_in(hub_data: Path) -> str:
    """How to sign in as the first admin: the password file while it holds the first password."""
    kept = hub_data / "admin_password"
    if kept.is_file():
        return f"admin, password in {kept}"
    return "admin with the password you gave it (algolink hub printed it on its first start)"


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float, log: Path) -> None:
    """Until ``url`` answers any HTTP status; a process that exits first is an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            status = proc.returncode
            raise SystemExit(
                f"{log_tail(log)}\n{what} exited with status {status} before answering; "
                f"its log: {log}"
            )
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise SystemExit(f"{what} did not answer at {url} within {timeout:.0f} s; its log: {log}")


def stop(*procs: Optional[subprocess.Popen], timeout: float = 8) -> None:
    """Both at once (JupyterLab by SIGINT, the hub by SIGTERM), killed after ``timeout`` seconds."""
    running = [p for p in procs if p is not None and p.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGINT if "jupyter" in str(proc.args) else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start(cmd: list, cwd: Path, log: Path, env: Optional[dict] = None) -> subprocess.Popen:
    """``cmd`` with its output appended to ``log``, in its own session (Ctrl-C reaches us only)."""
    with log.open("a") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd[:2])}\n")
        out.flush()
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


#: JupyterLab settings for this stack, written once (the user's later changes stay): start the
#: notebook's kernel without asking which one, and fetch no news (this machine may be offline).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def lab_settings(folder: Path) -> Path:
    for plugin, values in LAB_SETTINGS.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=2) + "\n")
    return folder


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends a run the way Ctrl-C does: both servers stopped, then "Stopped."."""
    raise KeyboardInterrupt


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / ".algolink"), help="folder for the hub's data")
    parser.add_argument("--hub-port", type=int, default=8800, help="hub port (8800, or a free one)")
    parser.add_argument(
        "--lab-port", type=int, default=8888, help="JupyterLab port (8888, or free)"
    )
    parser.add_argument(
        "--root-dir", default=str(ROOT), help="JupyterLab's root folder (this repo)"
    )
    parser.add_argument("--notebook", default="notebooks/quickstart.ipynb", help="under --root-dir")
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    args = parser.parse_args(argv)

    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    hub_port = free_port(args.hub_port)
    lab_port = free_port(args.lab_port)
    hub_url = f"http://127.0.0.1:{hub_port}"
    hub_cmd = [str(BIN / "algolink"), "hub", "--data", str(data / "hub"), "--port", str(hub_port)]
    hub_cmd.append("--stop-services-on-exit")  # Ctrl-C stops everything make run started

    hub = lab = None
    addresses = ""
    hub_log, lab_log = data / "hub.log", data / "lab.log"
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # even where started with SIGINT ignored (`cmd &`)
    try:
        say(f"starting the hub on port {hub_port} (log: {hub_log})…")
        hub = start(hub_cmd, ROOT, hub_log)
        with Ticker("starting the hub"):
            wait_http(f"{hub_url}/api/v1/projects", hub, "The hub", 120, hub_log)
        token = (data / "hub" / "admin_token").read_text().strip()

        lab_token = secrets.token_hex(24)
        env = dict(os.environ, ALGOLINK_HUB_URL=hub_url, ALGOLINK_TOKEN=token)
        lab_cmd = [
            str(BIN / "jupyter"),
            "lab",
            f"--port={lab_port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={lab_token}",
            f"--ServerApp.root_dir={Path(args.root_dir).resolve()}",
            f"--LabApp.user_settings_dir={lab_settings(data / 'lab-settings')}",
        ]
        if args.no_browser:
            lab_cmd.append("--no-browser")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lab_cmd.append("--allow-root")
        lab_cmd.append(args.notebook)
        say(f"starting JupyterLab on port {lab_port} (log: {lab_log})…")
        lab = start(lab_cmd, Path(args.root_dir).resolve(), lab_log, env)
        lab_base = f"http://127.0.0.1:{lab_port}"
        with Ticker("starting JupyterLab"):
            wait_http(f"{lab_base}/api/status?token={lab_token}", lab, "JupyterLab", 180, lab_log)

        addresses = (
            f"  AlgoLink hub:  {hub_url}/   (sign in as {admin_sign_in(data / 'hub')})\n"
            f"  JupyterLab:    {lab_base}/lab/tree/{args.notebook}?token={lab_token}"
        )
        say("both are up.")
        print(
            f"  Logs: {hub_log} and {lab_log}\n"
            "  The notebook's kernels have ALGOLINK_HUB_URL and ALGOLINK_TOKEN set: "
            "`%algolink publish` goes to this hub. Ctrl-C stops both.\n\n"
            f"{addresses}",
            flush=True,
        )
        while True:
            for proc, what, log in ((hub, "The hub", hub_log), (lab, "JupyterLab", lab_log)):
                if proc.poll() is not None:
                    print(
                        f"{log_tail(log)}\n{what} exited with status {proc.returncode}; "
                        f"stopping (its log: {log}).",
                        file=sys.stderr,
                    )
                    return proc.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the stop short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(flush=True)
        if addresses:
            print(f"{addresses}\n", flush=True)
        say("stopping JupyterLab and the hub…")
        stop(lab, hub)
        print("Stopped.", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(lab, hub)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before the servers started: 0 too, so make adds no "Error" line
        print("\nStopped.", flush=True)
        sys.exit(0)
