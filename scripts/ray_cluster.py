"""A Ray cluster of one machine for the Ray backend's tests and benchmark: a head node with the dashboard
(Serve's REST API) and, with ``--workers N``, N more nodes (Ray's local multi-node test cluster), all
on loopback.

Run it with the Python of an environment that has ``ray[serve]`` and ``modelcloud``. It prints one
JSON line ``{"dashboard": URL, "gcs": ADDRESS, "pids": [...], "nodes": N}`` once every node is up, then
holds the cluster until its standard input closes or it gets SIGTERM/SIGINT, and stops exactly the
processes it started (never ``ray stop``, which stops every Ray on the machine).

Set ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in its environment (the callers do): without it, Ray
still uses the machine's other address for some traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=0, help="nodes besides the head")
    parser.add_argument("--cpus", type=int, default=4, help="logical CPUs of each node")
    parser.add_argument("--gpus", type=float, default=0, help="GPUs of the head node")
    parser.add_argument("--temp-dir", required=True, help="Ray's session folder (short path)")
    parser.add_argument(
        "--serve-proxy",
        action="store_true",
        help="start Serve with its HTTP proxy on the head, on a free loopback port",
    )
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.makedirs(os.path.join(args.temp_dir, "ray"), exist_ok=True)
    os.environ["RAY_TMPDIR"] = args.temp_dir
    # Jobs and workers run `python` from PATH: this environment's, as on a cluster set up with it.
    os.environ["PATH"] = (
        os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )  # Ray's address file too: never the machine's /tmp/ray
    from ray.cluster_utils import Cluster

    common = {
        "node_ip_address": "127.0.0.1",
        "num_cpus": args.cpus,
        "object_store_memory": 96 * 1024 * 1024,
    }
    dashboard_port = free_port()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            **common,
            "num_gpus": args.gpus,
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": dashboard_port,
            # Ray's fixed defaults (52365, 10001) would meet another cluster on this machine.
            "dashboard_agent_listen_port": free_port(),
            "ray_client_server_port": free_port(),
            "temp_dir": args.temp_dir,
            "resources": {"head": 1},
        },
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        for n in range(args.workers):
            cluster.add_node(**common, resources={f"worker{n + 1}": 1})
        serve_url = ""
        if args.serve_proxy:
            import ray
            from ray import serve

            port = free_port()
            ray.init(address=cluster.address, logging_level="WARNING")
            serve.start(http_options={"host": "127.0.0.1", "port": port, "location": "HeadOnly"})
            ray.shutdown()
            serve_url = f"http://127.0.0.1:{port}"
        pids = []
        for node in [cluster.head_node, *cluster.worker_nodes]:
            for infos in node.all_processes.values():
                pids += [info.process.pid for info in infos if info.process is not None]
        print(
            json.dumps(
                {
                    "dashboard": f"http://127.0.0.1:{dashboard_port}",
                    "gcs": cluster.gcs_address,
                    "pids": pids,
                    "nodes": 1 + args.workers,
                    "serve": serve_url,
                }
            ),
            flush=True,
        )
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
