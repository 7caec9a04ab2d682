"""``make install`` (and so ``make run`` and ``make test``): the virtual environment and the packages,
with a progress line at least every 10 s.

Creates ``VENV`` when it has no Python, then installs ``modelcloud`` (``runtime/``) and
``algolink-jupyter[test]`` editable into it; the latter's build runs npm for the JupyterLab extension.
pip's whole output goes to ``.algolink/install.log``; the screen gets a line per stage and, while pip
works, a ``still installing…`` line every 10 s with what pip is doing. On a failure the log's last
lines are shown and the exit status is pip's. Standard library only: it runs before ``VENV`` exists.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from progress import Ticker, say

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv", nargs="?", default=".venv")
    parser.add_argument("--log", default=str(ROOT / ".algolink" / "install.log"))
    args = parser.parse_args(argv)
    venv = (ROOT / args.venv).resolve()
    python = venv / "bin" / "python"
    log_path = Path(args.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)

    if not python.exists():
        say(f"creating the virtual environment {args.venv}…")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)

    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    pip += ["--progress-bar", "off", "-e", "./runtime", "-e", ".[test]"]
    say(
        "installing the Python packages and building the JupyterLab extension with npm "
        f"(a few minutes the first time; log: {log_path})…"
    )
    last = [""]
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            pip, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None

        def read() -> None:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if line.strip():
                    last[0] = line.strip()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            with Ticker("installing", detail=lambda: f"pip: {last[0][:70]}" if last[0] else ""):
                status = proc.wait()
        except KeyboardInterrupt:  # pip had the terminal's Ctrl-C too: its last words to the log
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            reader.join(5)
            raise
        reader.join(10)
    if status:
        tail = log_path.read_text(errors="replace").splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        say(f"pip failed with status {status}; the whole output is in {log_path}", sys.stderr)
        return status
    say(f"installed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nStopped; the install did not finish (the next make run starts it again).")
        sys.exit(130)
