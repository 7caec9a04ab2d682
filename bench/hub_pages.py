"""The hub's web pages with 100 services registered: each page's median time, target under 50 ms.

Starts a real hub (``algolink hub`` as a subprocess, via ``tests/hub_process.py``), registers 100
services of a small echo bundle in 5 groups of one project, waits until their manifests are read, signs
in and times ``/projects``, the project page, a service page, its model card editor and ``/tokens``
(median and p90 of ``--repeat`` GETs over one keep-alive session). Baseline, same run: ``GET /api/v1/projects/{project}``, the API's JSON of
the same project. Writes ``bench/results/hub_pages.json``.
Run: ``.venv/bin/python bench/hub_pages.py [--services 100] [--repeat 50]``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from hub_process import Hub, make_bundle, wait_for  # noqa: E402

TARGET_MS = 50.0


def timed(session, url: str, repeat: int) -> dict:
    session.get(url, timeout=30)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        r = session.get(url, timeout=30)
        times.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, (url, r.status_code)
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(len(times) * 0.9) - 1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "hub_pages.json"))
    args = parser.parse_args()
    import requests

    with tempfile.TemporaryDirectory(prefix="hub-pages-bench-") as tmp:
        hub = Hub(Path(tmp) / "data").start()
        try:
            for g in range(5):
                hub.ensure_group("bench", f"g{g}")
            bundle = make_bundle(Path(tmp) / "echo")
            for i in range(args.services):
                r = hub.post(
                    "/api/v1/projects/bench/services",
                    data={"name": f"svc{i:03d}", "group": f"g{i % 5}", "path": str(bundle)},
                )
                assert r.status_code == 201, r.text
            wait_for(
                lambda: all(
                    s["manifest"] for s in hub.get("/api/v1/projects/bench/services").json()
                ),
                600,
                1,
                "the manifests",
            )
            s = requests.Session()
            s.headers["Accept"] = "text/html"
            page = s.get(hub.url + "/login", timeout=30).text
            token = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
            s.post(hub.url + "/login", data={"_xsrf": token, "token": hub.token}, timeout=30)
            rows = []
            for name, path in (
                ("projects page", "/projects"),
                ("project page (100 services)", "/projects/bench"),
                ("service page", "/projects/bench/services/svc042"),
                ("model card editor", "/projects/bench/services/svc042/edit"),
                ("tokens page", "/tokens"),
                ("baseline: API project JSON", "/api/v1/projects/bench"),
            ):
                row = {"page": name, "path": path, **timed(s, hub.url + path, args.repeat)}
                rows.append(row)
                print(f"{name:32s} median {row['median_ms']:6.1f} ms   p90 {row['p90_ms']:6.1f} ms")
        finally:
            hub.stop()
    ok = all(r["median_ms"] < TARGET_MS for r in rows if not r["page"].startswith("baseline"))
    print(f"target: every page under {TARGET_MS:.0f} ms (median): {'met' if ok else 'NOT met'}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"services": args.services, "target_ms": TARGET_MS, "rows": rows}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
