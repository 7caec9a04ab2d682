"""What runs without buildah: the Dockerfile an export writes beside its bundle, the files both images
leave out, the `cuda:` mapping, and the CLI's refusals (tests/test_image.py builds and runs images)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from algolink_jupyter import dockerfile as df
from algolink_jupyter.export.docker import write_docker_files
from algolink_jupyter.hub.image import ImageError, cuda_wheels
from support import REPO


def test_the_dockerfile_installs_the_runtime_and_requirements_before_copying_the_code(tmp_path):
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "cloud_model.py").write_text("import modelcloud\n")
    (bundle / "requirements.txt").write_text("pillow==12.3.0\n")
    (bundle / "models").mkdir()
    (bundle / "algolink.yml").write_text(
        'python: "3.10"\nport: 8123\nentrypoint: python cloud_model.py --quiet\n'
        "build_steps:\n  - pip install -r requirements.txt\n  - python prepare.py\n"
    )
    written = write_docker_files(bundle, {"org.opencontainers.image.title": "b"})
    assert [p.name for p in written][:2] == ["Dockerfile", ".dockerignore"]
    wheel = written[2]
    assert wheel.parent.name == df.WHEELS_DIR and wheel.name.startswith("modelcloud-")
    text = (bundle / "Dockerfile").read_text()
    lines = text.splitlines()
    assert lines[3] == "FROM python:3.10-slim-bookworm"
    order = [
        f"COPY {df.WHEELS_DIR}/ /opt/algolink/wheels/",
        "COPY requirements.txt ./",
        "RUN pip install --no-cache-dir --find-links /opt/algolink/wheels -r requirements.txt",
        f"COPY --chown={df.UID}:{df.UID} models/ ./models/",
        f"COPY --chown={df.UID}:{df.UID} . ./",
        f"USER {df.UID}:{df.UID}",
        "RUN python prepare.py",
        "EXPOSE 8123/tcp",
        'ENTRYPOINT ["python", "cloud_model.py", "--quiet"]',
    ]
    at = [lines.index(line) for line in order]
    assert at == sorted(at), text
    assert "ALGOLINK_PORT=8123" in text and f"WORKDIR {df.APP_DIR}" in text
    assert 'LABEL "org.opencontainers.image.title"="b"' in text
    assert (bundle / ".dockerignore").read_text().split("\n")[2:-1] == list(df.IGNORED)


def test_shell_entrypoints_and_vendored_runtimes(tmp_path):
    bundle = tmp_path / "b"
    (bundle / "modelcloud").mkdir(parents=True)
    (bundle / "modelcloud" / "__init__.py").write_text("")
    (bundle / "algolink.yml").write_text("entrypoint: ./start.sh && echo done\n")
    written = write_docker_files(bundle)
    assert len(written) == 2  # a bundle with its own modelcloud/ gets no wheel
    text = (bundle / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/bin/sh", "-c", "./start.sh && echo done"]' in text
    assert "COPY requirements.txt" not in text and "/opt/algolink/wheels" not in text


@pytest.mark.parametrize(
    "rel, left_out",
    [
        ("Dockerfile", True),
        (".dockerignore", True),
        ("pkg/__pycache__/x.cpython-311.pyc", True),
        ("a/b.pyc", True),
        (".ipynb_checkpoints/x.ipynb", True),
        (".git/config", True),
        ("models/net.pt", False),
        ("sub/Dockerfile", False),
        (".algolink-wheels/modelcloud-0.1.0-py3-none-any.whl", False),
    ],
)
def test_what_both_images_leave_out(rel, left_out):
    assert df.ignored(rel) is left_out


def test_cuda_values_map_to_pypi_wheels():
    assert cuda_wheels("12.1")[0] == "nvidia-cuda-runtime-cu12==12.1.*"
    assert cuda_wheels("12")[0] == "nvidia-cuda-runtime-cu12==12.9.*"
    assert cuda_wheels("11.8")[0] == "nvidia-cuda-runtime-cu11==11.8.*"
    assert cuda_wheels("13.0")[0] == "nvidia-cuda-runtime==13.0.*"
    for old in ("9.2", "10.1", "11.2"):
        with pytest.raises(ImageError, match=f"cuda: {old} has no runtime libraries on PyPI"):
            cuda_wheels(old)


def test_the_cli_says_what_to_give_for_a_target_that_is_neither(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "algolink_jupyter.cli", "image", str(tmp_path / "missing")],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "is neither a bundle folder nor PROJECT/SERVICE[:vN]" in proc.stderr


def test_the_cli_refuses_base_and_tag_for_a_hub_version():
    proc = subprocess.run(
        [sys.executable, "-m", "algolink_jupyter.cli", "image", "demo/digits:v1", "--tag", "x:1"],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--base and --tag apply to a bundle folder" in proc.stderr
