"""`algolink serve PATH`: a bundle folder or a cloud_model.py, as a real subprocess."""

from __future__ import annotations

import socket
import sys
import textwrap
from pathlib import Path

import pytest

from support import ServerProcess

ALGOLINK = str(Path(sys.executable).parent / "algolink")

MODEL = """
import modelcloud
from modelcloud import text

@modelcloud.command('upper', inputs={'s': text()}, outputs={'s': text()})
def upper(model, inputs):
    return inputs['s'].upper()
"""


_started: list = []


def serve(args: list, cwd: Path, env: dict | None = None) -> ServerProcess:
    server = ServerProcess([ALGOLINK, "serve", *args], cwd=cwd, env=env)
    _started.append(server)
    return server


@pytest.fixture(autouse=True)
def _stop_servers():
    yield
    while _started:
        _started.pop().stop()


def test_serve_a_bundle_folder_without_main_block(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "cloud_model.py").write_text(textwrap.dedent(MODEL))
    s = serve([str(bundle)], cwd=tmp_path).wait_started()
    try:
        assert s.lines[0] == "Setting up model..."
        assert s.post("/upper", json={"s": "abc"}).json() == {"s": "ABC"}
    finally:
        s.stop()


def test_serve_a_file_runs_from_its_folder_with_yml_port_and_flag_port(tmp_path):
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "labels.txt").write_text("from-the-bundle")
    (bundle / "cloud_model.py").write_text(
        textwrap.dedent(
            """
            import modelcloud
            from modelcloud import text
            label = open('labels.txt').read()

            @modelcloud.command('label', inputs={}, outputs={'label': text()})
            def get(model, inputs):
                return label

            if __name__ == '__main__':
                modelcloud.run()
            """
        )
    )
    (bundle / "algolink.yml").write_text(
        "python: '3.11'\nentrypoint: python cloud_model.py\nport: 0\n"
    )
    s = serve([str(bundle / "cloud_model.py")], cwd=tmp_path, env={"ALGOLINK_PORT": ""})
    s.wait_started()
    try:
        assert s.post("/label").json() == {"label": "from-the-bundle"}
    finally:
        s.stop()
    assert s.wait_exit() == 0


def test_serve_errors_name_the_path(tmp_path):
    s = serve([str(tmp_path / "missing")], cwd=tmp_path)
    assert s.wait_exit() == 2
    assert "does not exist" in s.output
    (tmp_path / "empty").mkdir()
    s = serve([str(tmp_path / "empty")], cwd=tmp_path)
    assert s.wait_exit() == 2
    assert "has no cloud_model.py" in s.output
    (tmp_path / "nothing.py").write_text("x = 1\n")
    s = serve([str(tmp_path / "nothing.py")], cwd=tmp_path)
    assert s.wait_exit() == 2
    assert "declares no @modelcloud.command" in s.output
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cloud_model.py").write_text(MODEL)
    (tmp_path / "bad" / "algolink.yml").write_text("port: [1\n")
    s = serve([str(tmp_path / "bad")], cwd=tmp_path)
    assert s.wait_exit() == 2
    assert "not valid YAML" in s.output


def test_environment_port_wins_over_algolink_yml(tmp_path):
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "cloud_model.py").write_text(textwrap.dedent(MODEL))
    with socket.socket() as taken:  # the yml names a port that is in use: it must not be tried
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        (bundle / "algolink.yml").write_text(f"port: {taken.getsockname()[1]}\n")
        s = serve([str(bundle)], cwd=tmp_path, env={"ALGOLINK_PORT": "0"}).wait_started()
        try:
            assert s.post("/upper", json={"s": "x"}).json() == {"s": "X"}
        finally:
            s.stop()
        s = serve([str(bundle)], cwd=tmp_path, env={"ALGOLINK_PORT": ""})
        assert s.wait_exit() == 1
        assert "already in use" in s.output
