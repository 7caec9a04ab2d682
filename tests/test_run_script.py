"""``scripts/run.py`` (what ``make run`` starts) as a user sees it in the terminal.

A line per stage while it starts, the hub's and JupyterLab's own logs in files under the data folder,
the two addresses as the last lines on screen; Ctrl-C (SIGINT to the script alone, as a terminal's
Ctrl-C reaches it: the two servers run in sessions of their own) prints the addresses again, stops both
servers and ends with one ``Stopped.``, status 0, no traceback. ``scripts/install.py``'s ticker and
progress lines, and its summary of a (fake) pip run that works and of one that fails.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from hub_process import free_port

from support import REPO, ServerProcess, wait_until

pytestmark = pytest.mark.timeout(300)

HUB_LINE = re.compile(r"^  AlgoLink hub:\s+http://127\.0\.0\.1:(\d+)/\s+\(sign in as admin, .+\)$")
LAB_LINE = re.compile(r"^  JupyterLab:\s+http://127\.0\.0\.1:(\d+)/lab/tree/\S+\?token=\w+$")
STAGE = re.compile(r"^\[\s*\d+ s\] ")


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_run_prints_progress_then_the_addresses_last_and_stops_cleanly_on_ctrl_c(tmp_path):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(REPO / "notebooks" / "quickstart.ipynb", tmp_path / "notebooks")
    data = tmp_path / ".algolink"
    hub_port, lab_port = free_port(), free_port()
    args = [sys.executable, str(REPO / "scripts" / "run.py"), "--no-browser", "--data", str(data)]
    args += ["--hub-port", str(hub_port), "--lab-port", str(lab_port), "--root-dir", str(tmp_path)]
    env = {"JUPYTER_CONFIG_DIR": str(tmp_path / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    proc = ServerProcess(args, cwd=REPO, env=env)
    try:
        wait_until(lambda: any(LAB_LINE.match(x) for x in proc.lines), timeout=240)
        time.sleep(3)  # nothing comes after the addresses: the servers' logs go to files
        shown = [line for line in proc.lines if line.strip()]
        assert HUB_LINE.match(shown[-2]) and LAB_LINE.match(shown[-1]), proc.output
        assert STAGE.match(shown[0]) and "starting the hub" in shown[0], proc.output
        assert any(STAGE.match(x) and "starting JupyterLab" in x for x in shown), proc.output
        assert f"{data / 'hub.log'}" in proc.output and f"{data / 'lab.log'}" in proc.output
        assert "Jupyter Server" in (data / "lab.log").read_text()
        assert "AlgoLink hub running" in (data / "hub.log").read_text()
        assert listening(hub_port) and listening(lab_port)

        proc.proc.send_signal(signal.SIGINT)  # the script only, as the terminal's Ctrl-C
        assert proc.wait_exit(30) in (0, 130), proc.output
    finally:
        proc.stop()
    out = proc.output
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert [x for x in proc.lines if x.strip()][-1] == "Stopped.", out
    assert out.count("Stopped.") == 1, out
    assert sum(bool(LAB_LINE.match(x)) for x in proc.lines) == 2, out  # the addresses again
    assert sum(bool(HUB_LINE.match(x)) for x in proc.lines) == 2, out
    assert not listening(hub_port) and not listening(lab_port), out
    assert "Traceback" not in (data / "lab.log").read_text()
    assert "Traceback" not in (data / "hub.log").read_text()


def test_the_install_ticker_says_what_it_waits_for_every_few_seconds():
    code = (
        "import time, progress\n"
        "progress.say('installing the Python packages…')\n"
        "with progress.Ticker('installing', every=0.5, detail=lambda: 'pip: Collecting x'):\n"
        "    time.sleep(1.8)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO / "scripts",
        env={"PATH": "/usr/bin:/bin", "ALGOLINK_MAKE_START": str(time.time() - 12)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and lines[0] == "[  12 s] installing the Python packages…", out
    ticks = [x for x in lines[1:] if re.match(r"^\[\s*1[234] s\] still installing… \d+ s", x)]
    assert 2 <= len(ticks) <= 4 and all(x.endswith("(pip: Collecting x)") for x in ticks), lines


FAKE_PIP = """#!/bin/sh
echo "Collecting torch==2.13.0"
echo "  Building editable for algolink-jupyter (pyproject.toml): started"
echo "{last}"
exit {status}
"""


@pytest.mark.parametrize("status", [0, 1])
def test_install_shows_stages_and_on_a_failure_the_end_of_pips_log(tmp_path, status):
    """A "virtual environment" whose python is a script that talks like pip."""
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    fake = tmp_path / "venv" / "bin" / "python"
    last = "ERROR: No matching distribution found for torch" if status else "Successfully installed"
    fake.write_text(FAKE_PIP.format(last=last, status=status))
    fake.chmod(0o755)
    log = tmp_path / "install.log"
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "install.py"), str(tmp_path / "venv")]
        + ["--log", str(log)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == status, out
    assert STAGE.match(out.stdout) and f"log: {log}" in out.stdout, out
    assert "Collecting torch" in log.read_text() and last in log.read_text()
    if status:
        assert last in out.stderr and f"pip failed with status 1; the whole output is in {log}" in (
            out.stderr
        ), out
    else:
        assert re.search(r"\] installed in \d+ s$", out.stdout.strip()), out
        assert "Collecting" not in out.stdout, out  # pip's lines go to the log
