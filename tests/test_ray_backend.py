"""``algolink hub --backend ray`` (issue 19): versions as Ray Serve applications with replicas on a
cluster of two nodes, published, replaced, failed, autoscaled, killed and taken back under load.

A real Ray head with its dashboard and a second node (Ray's local multi-node test cluster), on
127.0.0.1, started by this module in an environment of its own (``tests/ray_support.py``; Ray is never
installed in the suite's environment) and stopped by pid; a real hub process on a real database; real
builds; real service processes in the replicas. Nothing of ours is mocked.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from hub_process import Hub, wait_for
from ray_support import RayCluster
from test_hub_pages import sign_in

pytestmark = pytest.mark.timeout(420)

MODEL = """
import os, time
import modelcloud
from modelcloud.data_types import number, text

TAG = {tag!r}


@modelcloud.setup
def setup():
    {setup}
    return TAG


@modelcloud.command("echo", inputs={{"text": text(), "sleep": number(default=0, min=0, max=5)}},
                    outputs={{"text": text(), "port": number()}})
def echo(model, inputs):
    if inputs["sleep"]:
        time.sleep(inputs["sleep"])
    # Which replica answered: its server's port (pids repeat: each runs in a sandbox of its own).
    return {{"text": model + ":" + inputs["text"], "port": int(os.environ["ALGOLINK_PORT"])}}


if __name__ == "__main__":
    modelcloud.run()
"""


def bundle(root: Path, tag: str, config: str, setup: str = "pass", model: str = "") -> Path:
    """A folder with ``model`` (default: the echo above, tagged) and ``algolink.yml``."""
    folder = root / tag
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cloud_model.py").write_text(model or MODEL.format(tag=tag, setup=setup))
    (folder / "algolink.yml").write_text("entrypoint: python cloud_model.py\n" + config)
    return folder


class Load:
    """Clients calling ``path`` without a pause, each on its own connection, until stopped."""

    def __init__(self, hub: Hub, path: str, clients: int = 4, sleep: float = 0.0) -> None:
        self.hub, self.path, self.sleep = hub, path, sleep
        self.stopped = threading.Event()
        self.answers: list = []
        self.failures: list = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]

    def run(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"token {self.hub.token}"
        n = 0
        while not self.stopped.is_set():
            n += 1
            try:
                r = session.post(
                    f"{self.hub.url}/serve/{self.path}",
                    json={"text": str(n), "sleep": self.sleep},
                    timeout=60,
                )
            except requests.RequestException as e:
                self.failures.append(repr(e))
                continue
            if r.status_code == 200:
                self.answers.append((time.monotonic(), r.json()))
            else:
                self.failures.append(f"{r.status_code} {r.text[:300]}")

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for t in self.threads:
            t.join(90)


@pytest.fixture(scope="module")
def cluster():
    c = RayCluster(
        workers=1,
        cpus=4,
        gpus=1,  # on the head: a logical GPU, which Ray hands out as it would a real one
        # Replicas report their load every half second (10 s by default): autoscaling in seconds.
        env={"RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5"},
    ).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def hub(cluster, tmp_path_factory):
    h = Hub(
        tmp_path_factory.mktemp("hub-ray"),
        extra_args=["--backend", "ray", "--ray-address", cluster.dashboard],
    ).start(timeout=180)
    h.ensure_group("p", "g")
    yield h
    h.stop(keep_services=True)
    serve_put(cluster, [])  # what this module's hubs left on its cluster
    # Its users go once no replica's server runs as one of them any more.
    wait_for(lambda: not serve_apps(cluster), 60, 0.5, "the applications to be deleted")
    h.remove_users()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-bundles")
    two = "replicas: 2\ncpus: 0.5\n"
    return {
        "v1": bundle(root, "v1", two),
        "v2": bundle(root, "v2", two),
        "broken": bundle(root, "broken", two, setup="raise RuntimeError('no weights here')"),
        "auto": bundle(
            root,
            "auto",
            "cpus: 0.5\nreplicas: {min: 1, max: 2, target: 1, upscale_delay: 1, "
            "downscale_delay: 2}\n",
        ),
    }


def serve_apps(cluster: RayCluster) -> dict:
    r = requests.get(cluster.dashboard + "/api/serve/applications/", timeout=30)
    r.raise_for_status()
    return r.json().get("applications") or {}


def serve_put(cluster: RayCluster, applications: list) -> None:
    requests.put(
        cluster.dashboard + "/api/serve/applications/",
        json={"applications": applications},
        timeout=60,
    )


def ours(cluster: RayCluster, needle: str) -> dict:
    return {name: app for name, app in serve_apps(cluster).items() if needle in name}


def running_replicas(hub: Hub, project: str, name: str, number: int) -> list:
    return [r for r in hub.version(project, name, number)["replicas"] if r["state"] == "RUNNING"]


def publish(hub: Hub, project: str, name: str, number: int, status: str = "online") -> dict:
    r = hub.publish(project, name, number)
    assert r.status_code in (200, 202), r.text
    return hub.wait_version(project, name, number, status, timeout=180)


def test_a_version_runs_as_replicas_on_two_nodes(hub, cluster, bundles):
    assert hub.get("/api/v1/").json()["backend"] == "ray"
    assert "Ray Serve backend: Ray" in hub.output
    r = hub.register("p", "g", "echo", bundles["v1"])
    assert r.status_code == 201, r.text
    publish(hub, "p", "echo", 1)
    replicas = running_replicas(hub, "p", "echo", 1)
    assert len(replicas) == 2, replicas
    assert len({r["node_id"] for r in replicas}) == 2, replicas  # one on each node
    apps = ours(cluster, ".p.echo.1")
    assert len(apps) == 1 and next(iter(apps.values()))["status"] == "RUNNING"
    # /serve goes to the replicas' own servers, in turn.
    ports = Counter(hub.serve("p/echo/echo", json={"text": "x"}).json()["port"] for _ in range(20))
    assert len(ports) == 2 and min(ports.values()) >= 5, ports
    assert hub.serve("p/echo/echo", json={"text": "hi"}).json()["text"] == "v1:hi"
    # Every replica's output reaches the version's log.
    log = hub.logs("p", "echo", 1)
    for replica in replicas:
        assert f"[replica {replica['id']} on" in log, log[-3000:]
    assert "Deploying Serve application" in log and "Online: 2 replica(s)" in log
    # The service page says how many replicas answer.
    page = sign_in(hub).get(hub.url + "/projects/p/services/echo", timeout=30).text
    assert "2 of 2 replicas" in page, page[-3000:]


def test_a_new_version_under_load_loses_no_request(hub, cluster, bundles):
    number = hub.new_version("p", "echo", bundles["v2"])["number"]
    with Load(hub, "p/echo/echo") as load:
        time.sleep(0.5)
        publish(hub, "p", "echo", number)
        time.sleep(1.0)
    assert not load.failures, load.failures[:5]
    texts = [answer["text"].split(":")[0] for _, answer in load.answers]
    assert "v1" in texts and "v2" in texts, Counter(texts)
    assert set(texts[-10:]) == {"v2"}
    assert len(running_replicas(hub, "p", "echo", number)) == 2
    # The first API version still answers, from its own application.
    assert hub.serve("p/echo/v1/echo", json={"text": "a"}).json()["text"] == "v1:a"


def test_a_failing_version_leaves_the_old_one_serving(hub, cluster, bundles):
    number = hub.new_version("p", "echo", bundles["broken"])["number"]
    with Load(hub, "p/echo/echo") as load:
        version = publish(hub, "p", "echo", number, status="failed")
    assert not load.failures, load.failures[:5]
    assert "no weights here" in version["error"], version["error"]
    service = hub.service("p", "echo")
    assert service["status"] == "online" and service["published_version"] == 2
    assert hub.serve("p/echo/echo", json={"text": "b"}).json()["text"] == "v2:b"
    wait_for(lambda: not ours(cluster, f".p.echo.{number}"), 30, 0.5, "the failed app to go")


def test_a_killed_replica_loses_no_request(hub, cluster):
    replicas = running_replicas(hub, "p", "echo", 2)
    assert len(replicas) == 2
    victim = replicas[0]
    with Load(hub, "p/echo/echo", clients=4) as load:
        time.sleep(1.0)
        os.kill(victim["pid"], signal.SIGKILL)  # the replica's actor; its server dies with it
        time.sleep(4.0)
    assert not load.failures, load.failures[:5]
    assert len(load.answers) > 50
    # Serve replaces it; the hub sends to the new one.
    wait_for(
        lambda: (
            len(running_replicas(hub, "p", "echo", 2)) == 2
            and victim["id"] not in {r["id"] for r in running_replicas(hub, "p", "echo", 2)}
        ),
        90,
        0.5,
        "a new replica",
    )
    ports = {hub.serve("p/echo/echo", json={"text": "c"}).json()["port"] for _ in range(10)}
    assert len(ports) == 2


def test_autoscaling_from_one_to_two_replicas_and_back(hub, cluster, bundles):
    r = hub.register("p", "g", "auto", bundles["auto"])
    assert r.status_code == 201, r.text
    publish(hub, "p", "auto", 1)
    assert len(running_replicas(hub, "p", "auto", 1)) == 1
    with Load(hub, "p/auto/echo", clients=4, sleep=0.2) as load:
        wait_for(lambda: len(running_replicas(hub, "p", "auto", 1)) == 2, 90, 0.5, "2 replicas")
        time.sleep(2.0)  # both take requests
    assert not load.failures, load.failures[:5]
    late = [answer["port"] for t, answer in load.answers if t > load.answers[-1][0] - 1.5]
    assert len(set(late)) == 2, Counter(late)
    wait_for(lambda: len(running_replicas(hub, "p", "auto", 1)) == 1, 90, 0.5, "back to 1")
    assert hub.serve("p/auto/echo", json={"text": "d"}).json()["text"] == "auto:d"
    assert "2 replica(s) answer" in hub.logs("p", "auto", 1)


IN_PROCESS = """
import os
import modelcloud
from modelcloud.data_types import number, text


@modelcloud.command("where", inputs={"text": text()}, outputs={"replica": text(), "pid": number()})
def where(model, inputs):
    from ray import serve  # the replica's own process: Ray's replica context is here

    return {"replica": serve.get_replica_context().replica_id.unique_id, "pid": os.getpid()}


try:
    from ray import serve
except ImportError:  # the hub reads the manifest in an environment without Ray
    serve = None
from modelcloud.ray_replica import on_serve_loop


async def double_all(xs):
    return [{"y": x * 2, "batch": len(xs)} for x in xs]


if serve is not None:  # Serve batches the calls that come together, on its own event loop
    double_all = serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)(double_all)


@modelcloud.command("double", inputs={"x": number()}, outputs={"y": number(), "batch": number()})
def double(model, inputs):
    return on_serve_loop(double_all(inputs["x"]))


if __name__ == "__main__":
    modelcloud.run()
"""


def test_in_process_replicas_run_the_bundle_in_rays_own_process(hub, tmp_path):
    config = "replica: in_process\ncpus: 0.5\nmax_ongoing_requests: 8\n"
    folder = bundle(tmp_path, "inproc", config, model=IN_PROCESS)
    assert hub.register("p", "g", "inproc", folder).status_code == 201
    publish(hub, "p", "inproc", 1)
    [replica] = running_replicas(hub, "p", "inproc", 1)
    answer = hub.serve("p/inproc/where", json={"text": "?"}).json()
    assert answer == {"replica": replica["id"], "pid": replica["pid"]}, (answer, replica)
    assert ", in-process] ==> Online at" in hub.logs("p", "inproc", 1)
    # Serve's @serve.batch, through on_serve_loop: eight clients at once, batched together.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda x: hub.serve("p/inproc/double", json={"x": x}).json(), range(32))
        )
    assert [a["y"] for a in answers] == [2 * x for x in range(32)], answers
    assert max(a["batch"] for a in answers) > 1, answers


ENV_MODEL = """
import os
import modelcloud
from modelcloud.data_types import text


@modelcloud.command("env", inputs={"name": text()}, outputs={"value": text()})
def env(model, inputs):
    return {"value": repr(os.environ.get(inputs["name"]))}


if __name__ == "__main__":
    modelcloud.run()
"""


def test_a_replica_given_half_a_gpu_sees_that_gpu(hub, cluster, tmp_path):
    folder = bundle(tmp_path, "gpu", "gpus: 0.5\ncpus: 0.5\n", model=ENV_MODEL)
    assert hub.register("p", "g", "gpu", folder).status_code == 201
    publish(hub, "p", "gpu", 1)
    [replica] = running_replicas(hub, "p", "gpu", 1)
    assert replica["gpus"] == "0", replica  # the head's GPU 0, the only node with one
    r = hub.serve("p/gpu/env", json={"name": "CUDA_VISIBLE_DEVICES"})
    assert r.status_code == 200 and r.json()["value"] == "'0'", r.text
    app = next(iter(ours(cluster, ".p.gpu.1").values()))
    [deployment] = app["deployments"].values()
    assert deployment["deployment_config"]["ray_actor_options"]["num_gpus"] == 0.5
    assert "GPUs: 0" in hub.logs("p", "gpu", 1)


def test_the_hub_restarted_finds_its_applications(hub, cluster):
    number = hub.service("p", "echo")["published_version"]
    before = {r["id"] for r in running_replicas(hub, "p", "echo", number)}
    assert len(before) == 2
    began = time.monotonic()
    hub.stop(keep_services=True)
    assert hub.proc.returncode == 0 and time.monotonic() - began < 20, hub.output[-2000:]
    hub.start(timeout=180)
    # Taken back before the hub listens: the first request is answered, nothing redeployed.
    r = hub.serve("p/echo/echo", json={"text": "e"})
    assert r.status_code == 200 and r.json()["text"] == f"v{number}:e", r.text
    assert {r["id"] for r in running_replicas(hub, "p", "echo", number)} == before
    assert "Taken back by a new hub" in hub.logs("p", "echo", number)
    # What the earlier hub kept warm (v1 for pinned clients) is not kept by this one.
    wait_for(lambda: not ours(cluster, ".p.echo.1"), 30, 0.5, "v1's application to go")


def test_offline_deletes_the_applications(hub, cluster):
    r = hub.post("/api/v1/projects/p/services/echo/offline")
    assert r.status_code in (200, 202), r.text
    wait_for(lambda: not ours(cluster, ".p.echo."), 60, 0.5, "the applications to be deleted")
    r = hub.serve("p/echo/echo", json={"text": "f"})
    assert r.status_code == 503 and "offline" in r.json()["error"], r.text
    assert not list((hub.data / "services" / "p" / "echo" / "2" / "replicas").glob("*.json"))


def test_an_unreachable_cluster_is_one_sentence(tmp_path):
    from hub_process import free_port

    h = Hub(
        tmp_path / "hub",
        extra_args=["--backend", "ray", "--ray-address", f"127.0.0.1:{free_port()}"],
    )
    with pytest.raises(AssertionError) as failed:
        h.start(timeout=60)
    lines = [line for line in h.output.splitlines() if line.startswith("algolink hub:")]
    assert len(lines) == 1, h.output
    assert "cannot be reached" in lines[0] and "--ray-address" in lines[0], lines
    assert "did not start" in str(failed.value)
