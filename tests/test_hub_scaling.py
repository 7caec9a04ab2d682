"""``algolink.yml``'s cluster settings on the local backend (issue 19): what one process can honour it
does (``gpus: 0`` hides the GPUs; a GPU asked for on a machine without one is refused, saying so),
the rest is said in the version's log as ignored, and a bad value is refused at registration with a
sentence that names it. A real hub process, real builds, real service processes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_process import Hub

from algolink_jupyter.hub.runner import local_gpus

pytestmark = pytest.mark.timeout(300)

MODEL = """
import os
import modelcloud
from modelcloud.data_types import text


@modelcloud.command("env", inputs={"name": text()}, outputs={"value": text()})
def env(model, inputs):
    return {"value": repr(os.environ.get(inputs["name"]))}


if __name__ == "__main__":
    modelcloud.run()
"""


def bundle(root: Path, tag: str, config: str) -> Path:
    folder = root / tag
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloud_model.py").write_text(MODEL)
    (folder / "algolink.yml").write_text(config)
    return folder


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-scaling")).start()
    h.ensure_group("s", "g")
    yield h
    h.stop()


def test_cluster_settings_the_local_backend_cannot_honour_are_said_and_ignored(hub, tmp_path):
    folder = bundle(
        tmp_path, "many", "replicas: 3\ncpus: 2\nmemory: 1GiB\nmax_ongoing_requests: 4\n"
    )
    assert hub.register("s", "g", "many", folder).status_code == 201
    assert hub.publish("s", "many", 1).status_code in (200, 202)
    version = hub.wait_version("s", "many", 1)
    log = hub.logs("s", "many", 1)
    assert "algolink.yml asks for replicas: 3, cpus: 2.0, memory: 1073741824, " in log, log
    assert "max_ongoing_requests: 4: the local backend ignores it" in log
    assert [r["id"] for r in version["replicas"]] == ["local"]
    assert version["replicas"][0]["state"] == "online"
    assert hub.get("/api/v1/").json()["backend"] == "local"


def test_gpus_zero_hides_the_gpus_and_a_gpu_asked_for_is_refused_without_one(hub, tmp_path):
    assert hub.register("s", "g", "cpu", bundle(tmp_path, "cpu", "gpus: 0\n")).status_code == 201
    assert hub.publish("s", "cpu", 1).status_code in (200, 202)
    hub.wait_version("s", "cpu", 1)
    r = hub.serve("s/cpu/env", json={"name": "CUDA_VISIBLE_DEVICES"})
    assert r.status_code == 200 and r.json()["value"] == "''", r.text

    assert hub.register("s", "g", "gpu", bundle(tmp_path, "gpu", "gpus: 0.5\n")).status_code == 201
    assert hub.publish("s", "gpu", 1).status_code in (200, 202)
    if local_gpus():  # a GPU machine: it runs, and the GPU stays visible
        hub.wait_version("s", "gpu", 1)
        r = hub.serve("s/gpu/env", json={"name": "CUDA_VISIBLE_DEVICES"})
        assert r.json()["value"] != "''"
        return
    version = hub.wait_version("s", "gpu", 1, status="failed")
    assert "asks for gpus: 0.5, and this machine has no GPU" in version["error"], version
    assert "--backend ray" in version["error"]


@pytest.mark.parametrize(
    ("config", "said"),
    [
        ("replicas: 0\n", "replicas must be at least 1"),
        ("replicas: {min: 3, max: 2}\n", "replicas: max (2) must be at least min (3)"),
        ("replicas: {min: 1, most: 4}\n", "replicas: has no setting most"),
        ("gpus: lots\n", "gpus must be a number such as 1 or 0.5, got 'lots'"),
        ("memory: plenty\n", "memory must be a size such as '2GiB'"),
        ("max_ongoing_requests: 2.5\n", "max_ongoing_requests must be a whole number"),
    ],
)
def test_a_bad_cluster_setting_is_refused_at_registration(hub, tmp_path, config, said):
    r = hub.register("s", "g", "bad", bundle(tmp_path, "bad", config))
    assert r.status_code == 400, r.text
    assert said in r.json()["error"], r.json()
