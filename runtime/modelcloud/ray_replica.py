"""A Ray Serve replica that runs one version of an AlgoLink hub's service: the bundle's own, unchanged
server as a child process in the environment the hub built.

The hub (``algolink hub --backend ray``) deploys each published version as a Serve application of one
deployment, :class:`Replica`, through Serve's REST API, with ``import_path:
modelcloud.ray_replica:app`` and the version's ``spec`` as the application's ``args``. This module is
imported on the cluster's nodes only (it needs ``ray``); the hub itself never imports it.

Each replica:

- starts the spec's ``argv`` (the entrypoint, wrapped in the hub's sandbox when the hub has one) in
  ``cwd`` with the spec's ``env``, on a free port of its node's address, in a session of its own that
  ends with the replica (``PR_SET_PDEATHSIG``), and waits for ``GET /healthcheck`` to say
  ``RUNNING``;
- appends the child's output, each line marked with the replica, to the version's log (``log``);
- writes ``{"url", "node", "pid", "gpus"}`` to ``replicas/<replica id>.json`` in the spec's
  ``replicas`` folder, where the hub finds the addresses it sends ``/serve`` requests to directly;
- answers Serve's health checks from the child's ``/healthcheck``, and reports the child's
  requests in progress (``ongoing``) for :func:`ongoing_requests_policy`, the autoscaling policy the hub
  sets: the hub's requests do not pass through Serve, so Serve's own count would stay at zero;
- forwards what reaches it through Serve's own HTTP proxy to the child (slower; for comparison and
  for clients of the cluster that do not go through the hub).

The folders in the spec are the hub's: every node must see them at the same paths (a shared folder).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

__all__ = ["InProcessReplica", "Replica", "app", "on_serve_loop", "ongoing_requests_policy"]

#: Bytes of the version's log after which it is moved to ``<log>.1`` (the hub's own limit).
LOG_MAX_BYTES = 5 * 1024 * 1024
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Log:
    """Lines of the child (and of the replica) appended to the version's log, each marked."""

    def __init__(self, path: str, mark: str) -> None:
        self.path = path
        self.mark = mark
        self.lock = threading.Lock()
        self.tail: list[str] = []

    def line(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        entry = f"[{stamp}] [{self.mark}] {text.rstrip()}\n"
        with self.lock:
            self.tail = [*self.tail[-29:], text.rstrip()]
            try:
                with contextlib.suppress(OSError):
                    if os.path.getsize(self.path) > LOG_MAX_BYTES:
                        os.replace(self.path, self.path + ".1")
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(entry)
            except OSError:
                pass

    def pump(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            self.line(raw.decode("utf-8", "replace"))


def _health(url: str, timeout: float = 2.0) -> Optional[dict]:
    try:
        with urllib.request.urlopen(url + "/healthcheck", timeout=timeout) as answer:
            return json.loads(answer.read() or b"{}")
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _write_record(spec: dict, replica_id: str, url: str, node: str, pid: int) -> Path:
    """``replicas/<id>.json``: where the hub finds this replica (written whole, at once)."""
    record = Path(spec["replicas"]) / f"{replica_id}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")  # set by Ray for a replica given GPUs
    temporary = record.with_suffix(".tmp")
    temporary.write_text(json.dumps({"url": url, "node": node, "pid": pid, "gpus": gpus}))
    os.replace(temporary, record)
    return record


def _remove_record(replica: Any) -> None:
    record = getattr(replica, "record", None)
    if record is not None:
        with contextlib.suppress(OSError):
            record.unlink()


class Replica:
    """One replica: the bundle's server as a child process; see the module's text."""

    def __init__(self, spec: dict) -> None:
        import ray
        from ray import serve

        self.spec = spec
        context = serve.get_replica_context()
        self.replica_id = context.replica_id.unique_id
        self.node = ray.util.get_node_ip_address()
        self.host = spec.get("host") or self.node  # where the child listens
        # Where the hub reaches it: the node's own address when it listens on every address.
        reach = self.node if self.host in ("0.0.0.0", "::") else self.host
        self.log = _Log(spec["log"], f"replica {self.replica_id} on {self.node}")
        self.child: Optional[subprocess.Popen] = None
        self.ongoing = 0
        argv, cwd = [str(a) for a in spec["argv"]], str(spec["cwd"])
        for path, what in ((argv[0], "program"), (cwd, "working folder")):
            if not os.path.exists(path):
                raise RuntimeError(
                    f"The service's {what} {path} is not on node {self.node}: every node of the "
                    "cluster must see the hub's data folder at the same path (a shared folder)."
                )
        self.port = _free_port(self.host)
        self.url = _url(reach, self.port)
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES")  # set by Ray for a replica given GPUs
        env = {str(k): str(v) for k, v in spec["env"].items()}
        env.update(
            ALGOLINK_PORT=str(self.port),
            ALGOLINK_HOST=self.host,
            RW_PORT=str(self.port),
            RW_HOST=self.host,
        )
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        self.log.line(f"==> Starting `{spec['entrypoint']}` at {self.url} (GPUs: {gpus or 'none'})")
        self.child = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        threading.Thread(target=self.log.pump, args=(self.child.stdout,), daemon=True).start()
        try:
            self._wait_healthy(float(spec.get("health_timeout", 60)))
        except BaseException:
            self._stop_child()
            raise
        self.record = _write_record(spec, self.replica_id, self.url, self.node, self.child.pid)
        self.log.line(f"==> Online at {self.url} (pid {self.child.pid})")

    def _tail(self) -> str:
        return "\n".join(self.log.tail[-15:]) or "(nothing)"

    def _wait_healthy(self, timeout: float) -> None:
        assert self.child is not None
        deadline = time.monotonic() + timeout
        while True:
            code = self.child.poll()
            if code is not None:
                raise RuntimeError(
                    f"The service exited with status {code} before it was ready; its log ends "
                    f"with:\n{self._tail()}"
                )
            answer = _health(self.url, 1.0)
            status = (answer or {}).get("status")
            if status == "RUNNING":
                return
            if status == "SETUP_FAILED":
                raise RuntimeError(
                    "The service's setup failed (GET /healthcheck says SETUP_FAILED); its log "
                    f"ends with:\n{self._tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"The service was not ready within {timeout:g} s (GET /healthcheck never said "
                    f"RUNNING); its log ends with:\n{self._tail()}"
                )
            time.sleep(0.1)

    def check_health(self) -> None:
        """Serve's health check: the child runs and says ``RUNNING``."""
        if self.child is None or self.child.poll() is not None:
            code = None if self.child is None else self.child.returncode
            self.log.line(f"==> The service's process ended (status {code})")
            raise RuntimeError(f"The service's process ended (status {code}).")
        answer = _health(self.url)
        if answer is None or answer.get("status") != "RUNNING":
            status = "no answer" if answer is None else answer.get("status")
            raise RuntimeError(f"GET /healthcheck says {status}.")
        with contextlib.suppress(TypeError, ValueError):
            self.ongoing = int(answer.get("ongoing", 0))

    def record_autoscaling_stats(self) -> dict:
        """The child's requests in progress, for :func:`ongoing_requests_policy`."""
        answer = _health(self.url, 1.0)
        if answer is not None:
            with contextlib.suppress(TypeError, ValueError):
                self.ongoing = int(answer.get("ongoing", 0))
        return {"ongoing": float(self.ongoing)}

    async def __call__(self, request: Any) -> Any:
        """A request through Serve's own HTTP proxy: sent on to the child as it came."""
        import asyncio

        from starlette.responses import Response

        # The path under the application's route prefix (Serve's ASGI root_path).
        path = request.scope.get("path") or "/"
        for prefix in (request.scope.get("root_path") or "", self.spec.get("route_prefix") or ""):
            prefix = prefix.rstrip("/")
            if prefix and (path == prefix or path.startswith(prefix + "/")):
                path = path[len(prefix) :] or "/"
        query = request.url.query
        body = await request.body()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "connection", "transfer-encoding")
        }
        target = self.url + (path or "/") + (f"?{query}" if query else "")

        def send() -> tuple:
            req = urllib.request.Request(
                target, data=body or None, method=request.method, headers=headers
            )
            try:
                with urllib.request.urlopen(req, timeout=600) as answer:
                    return answer.status, answer.read(), answer.headers.get("Content-Type")
            except urllib.error.HTTPError as e:
                return e.code, e.read(), e.headers.get("Content-Type")

        status, content, kind = await asyncio.to_thread(send)
        return Response(content=content, status_code=status, media_type=kind)

    def _stop_child(self) -> None:
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()

    def __del__(self) -> None:
        _remove_record(self)
        if getattr(self, "child", None) is not None:
            self.log.line("==> Stopping")
            self._stop_child()


class _Lines:
    """A text stream whose lines go to the version's log as well as where they went before."""

    def __init__(self, log: _Log, before: Any) -> None:
        self.log, self.before, self.pending = log, before, ""

    def write(self, text: str) -> int:
        with contextlib.suppress(Exception):
            self.before.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.log.line(line)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.before.flush()


class InProcessReplica:
    """``replica: in_process`` in ``algolink.yml``: the bundle's code runs in the replica's own process
    (the cluster's Python, which must have the bundle's requirements), its server on a thread of
    it. The bundle's code can then use what Ray gives a replica: ``serve.get_replica_context()``,
    ``serve.get_deployment_handle(...)`` to call other applications, its GPUs. Otherwise as
    :class:`Replica` (address record, health, load, Serve's proxy)."""

    def __init__(self, spec: dict) -> None:
        import asyncio
        import runpy
        import sys

        import ray
        from ray import serve

        from .model import default_registry
        from .runner import resolve_settings

        self.spec = spec
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        self.node = ray.util.get_node_ip_address()
        self.host = spec.get("host") or self.node
        reach = self.node if self.host in ("0.0.0.0", "::") else self.host
        self.log = _Log(spec["log"], f"replica {self.replica_id} on {self.node}, in-process")
        sys.stdout = _Lines(self.log, sys.stdout)  # type: ignore[assignment]
        sys.stderr = _Lines(self.log, sys.stderr)  # type: ignore[assignment]
        self.gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
        keep = ("PATH", "HOME", "VIRTUAL_ENV", "TMPDIR", "USER", "LOGNAME", "CUDA_VISIBLE_DEVICES")
        for name, value in spec["env"].items():
            if name not in keep:
                os.environ[str(name)] = str(value)
        os.environ.update(ALGOLINK_NO_SERVE="1", ALGOLINK_PORT="0", ALGOLINK_HOST=self.host)
        if spec.get("concurrency"):  # max_ongoing_requests: requests that reach the model at once
            os.environ["ALGOLINK_CONCURRENCY"] = str(spec["concurrency"])
        global _SERVE_LOOP
        # The constructor runs on Serve's own event loop for this replica's code: on_serve_loop's.
        with contextlib.suppress(RuntimeError):
            _SERVE_LOOP = asyncio.get_running_loop()
        os.chdir(spec["cwd"])
        sys.path.insert(0, spec["cwd"])
        self.log.line(f"==> Loading {spec['entry']} in the replica's process (GPUs: {self.gpus})")
        runpy.run_path(os.path.join(spec["cwd"], spec["entry"]), run_name="algolink_bundle")
        settings = resolve_settings(self.host, 0, None, False, False, True)
        self.registry = default_registry
        if self.registry.status != "RUNNING":  # it did not call modelcloud.run() at import
            self.registry.run_setup(settings["model_options"])
        ready = threading.Event()
        found: dict = {}

        def serve_here() -> None:
            from tornado.httpserver import HTTPServer
            from tornado.netutil import bind_sockets

            from .server import ModelServer

            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                server = ModelServer(
                    self.registry,
                    max_body_size=settings["max_body_size"],
                    max_pixels=settings["max_pixels"],
                    concurrency=settings["concurrency"],
                    max_queue=settings["max_queue"],
                    behind_hub=settings.get("behind_hub", False),
                )
                sockets = bind_sockets(0, self.host)
                HTTPServer(server.make_app()).add_sockets(sockets)
                found.update(port=sockets[0].getsockname()[1], server=server)
            except Exception as e:  # told to __init__, which raises it
                found["error"] = e
            ready.set()
            loop.run_forever()

        threading.Thread(target=serve_here, daemon=True, name="algolink-server").start()
        ready.wait(60)
        if "error" in found or "port" not in found:
            raise RuntimeError(f"The model server did not start: {found.get('error', 'timeout')}")
        self.server = found["server"]
        self.url = _url(reach, found["port"])
        self.record = _write_record(spec, self.replica_id, self.url, self.node, os.getpid())
        self.log.line(f"==> Online at {self.url} (pid {os.getpid()}, in-process)")

    def check_health(self) -> None:
        if self.registry.status != "RUNNING":
            raise RuntimeError(f"The model's status is {self.registry.status}.")

    def record_autoscaling_stats(self) -> dict:
        return {"ongoing": float(self.server.ongoing)}

    __call__ = Replica.__call__

    def __del__(self) -> None:
        _remove_record(self)


_SERVE_LOOP: Any = None


def on_serve_loop(awaitable: Any, timeout: Optional[float] = None) -> Any:
    """Run ``awaitable`` on Ray Serve's event loop of this replica and return its result: how a
    modelcloud command (a plain function, on the server's worker thread) uses Serve's async tools in
    ``replica: in_process`` mode: a ``@serve.batch`` function, or a ``DeploymentHandle`` call.

    Example::

        from ray import serve
        from modelcloud.ray_replica import on_serve_loop

        @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
        async def predict(images):          # a list in, a list out, as Serve batches them
            return model(torch.stack(images)).tolist()

        @modelcloud.command("classify", inputs={"image": image}, outputs={"scores": vector})
        def classify(model, inputs):
            return {"scores": on_serve_loop(predict(to_tensor(inputs["image"])))}

    With ``max_ongoing_requests: 8`` in ``algolink.yml`` eight requests reach the command at once, so
    Serve has something to batch. Outside such a replica it raises RuntimeError."""
    if _SERVE_LOOP is None:
        raise RuntimeError(
            "on_serve_loop() works in a Ray Serve replica of `replica: in_process` only: run the "
            "hub with --backend ray, or call the function directly."
        )
    import asyncio

    return asyncio.run_coroutine_threadsafe(awaitable, _SERVE_LOOP).result(timeout)


def ongoing_requests_policy(ctx: Any) -> tuple:
    """Serve's autoscaling policy for these replicas: as many replicas as keep each one's requests
    in progress (the children's own count) near ``target_ongoing_requests``. Serve applies the
    bounds and the up- and down-scaling delays."""
    running = ctx.current_num_replicas
    if running == 0:
        return ctx.target_num_replicas, {}
    metrics = ctx.aggregated_metrics.get("ongoing") or {}
    total = float(sum(metrics.values())) if isinstance(metrics, dict) else float(metrics or 0)
    target = ctx.config.get_target_ongoing_requests() or 1.0
    return max(1, math.ceil(total / target)) if total else ctx.config.min_replicas, {}


def app(args: dict) -> Any:
    """The Serve application of one version (an application builder: ``args`` is the hub's spec)."""
    from ray import serve

    kind = InProcessReplica if args.get("in_process") else Replica
    return serve.deployment(kind, name="Replica").bind(args)
