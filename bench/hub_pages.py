"""The hub's web pages with 100 services registered: each page's median time (target under 50 ms), and
what users, roles and scoped tokens cost a request (target under 1 ms).

Baseline, same run: the same pages served by the hub before users existed (the code of ``--before``,
default 355bb07, taken from git history and run as its own process) over the same data folder.

1. The old hub registers 100 services of a small echo bundle in 5 groups of one project and reads their
   manifests; its pages are timed signed in with its admin token.
2. Today's hub opens the same folder (migrating it), a developer of the project is added, and the same
   pages are timed signed in as that developer with a password (so every role check runs), and the
   API's project JSON with the developer's token.
3. In this process, over the same database: the permission check a request makes (the caller from
   its token through ``access.Gate``, then ``Caller.may``), cached as a busy hub has it, and with an
   empty cache (a database read).

Prints each page's median and p90 beside the old hub's, as a ratio; writes
``bench/results/hub_pages.json``.
Run: ``.venv/bin/python bench/hub_pages.py [--services 100] [--repeat 50] [--before REV]``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from hub_process import Hub, make_bundle, wait_for  # noqa: E402

TARGET_MS = 50.0
CHECK_TARGET_MS = 1.0
PAGES = (
    ("projects page", "/projects"),
    ("project page (100 services)", "/projects/bench"),
    ("service page", "/projects/bench/services/svc000"),
    ("model card editor", "/projects/bench/services/svc000/edit"),
    ("tokens page", "/tokens"),
)
API = ("API project JSON", "/api/v1/projects/bench")


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


def old_code(rev: str, into: Path) -> Path:
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "algolink_jupyter"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def signed_in(hub: Hub, **form: str):
    import requests

    s = requests.Session()
    s.headers["Accept"] = "text/html"
    page = s.get(hub.url + "/login", timeout=30).text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    r = s.post(hub.url + "/login", data={"_xsrf": xsrf, **form}, allow_redirects=False)
    assert r.status_code == 302, r.text
    return s


def time_pages(hub: Hub, session, api_token: str, repeat: int) -> dict:
    rows = {name: timed(session, hub.url + path, repeat) for name, path in PAGES}
    import requests

    api = requests.Session()
    api.headers["Authorization"] = f"token {api_token}"
    rows[API[0]] = timed(api, hub.url + API[1], repeat)
    return rows


def check_cost(data: Path, token: str, rounds: int) -> dict:
    """Microseconds of the permission check of one request, cached and not."""
    from algolink_jupyter.hub import access, orm

    engine = orm.make_engine(f"sqlite:///{data / 'hub.sqlite'}")
    try:
        gate = access.Gate(orm.session_factory(engine))
        hashed = orm.hash_token(token)
        with gate.session() as db:
            service = (
                db.query(orm.Service)
                .join(orm.Project)
                .filter(orm.Project.name == "bench", orm.Service.name == "svc000")
                .one()
            )
            ids = (service.project_id, service.id)

        def once() -> None:
            caller = gate.from_hash(hashed, "127.0.0.1")
            assert caller.may("change", *ids) and not caller.may("manage", *ids)

        user_id = gate.from_hash(hashed).user_id

        def rate(forget: bool, n: int) -> float:
            once()
            start = time.perf_counter()
            for _ in range(n):
                if forget:  # the token, the user and the roles read from the database again
                    gate.forget_token(hashed)
                    gate.forget_user(user_id)
                once()
            return (time.perf_counter() - start) / n * 1e6

        return {"cached_us": rate(False, rounds), "uncached_us": rate(True, max(rounds // 50, 20))}
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--before", default="355bb07", help="the hub before users (a git revision)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "hub_pages.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hub-pages-bench-") as tmp:
        data = Path(tmp) / "data"
        code = old_code(args.before, Path(tmp) / "old")
        old = Hub(data, cwd=code, env={"PYTHONPATH": str(code)}).start()
        try:
            for g in range(5):
                old.ensure_group("bench", f"g{g}")
            bundle = make_bundle(Path(tmp) / "echo")
            for i in range(args.services):
                r = old.post(
                    "/api/v1/projects/bench/services",
                    data={"name": f"svc{i:03d}", "group": f"g{i % 5}", "path": str(bundle)},
                )
                assert r.status_code == 201, r.text
            wait_for(
                lambda: all(
                    s["manifest"] for s in old.get("/api/v1/projects/bench/services").json()
                ),
                600,
                1,
                "the manifests",
            )
            before = time_pages(old, signed_in(old, token=old.token), old.token, args.repeat)
        finally:
            old.stop()

        new = Hub(data).start()
        try:
            token = new.add_user("dev", {"bench": "developer"}, password="bench-password-1")
            session = signed_in(new, name="dev", password="bench-password-1")
            after = time_pages(new, session, token, args.repeat)
        finally:
            new.stop()
        checks = check_cost(data, token, 20000)

    rows = []
    print(f"{'':32s} {'today':>22s}   {'before users':>22s}   ratio")
    for name in [n for n, _ in PAGES] + [API[0]]:
        a, b = after[name], before[name]
        ratio = a["median_ms"] / b["median_ms"]
        rows.append({"page": name, "median_ms": a["median_ms"], "p90_ms": a["p90_ms"],
                     "before_median_ms": b["median_ms"], "before_p90_ms": b["p90_ms"],
                     "ratio": ratio})  # fmt: skip
        print(
            f"{name:32s} median {a['median_ms']:5.1f} p90 {a['p90_ms']:5.1f}   "
            f"median {b['median_ms']:5.1f} p90 {b['p90_ms']:5.1f}   {ratio:4.2f}x"
        )
    print(
        f"permission check of a request: {checks['cached_us']:.1f} µs (cached), "
        f"{checks['uncached_us']:.0f} µs (read from the database)"
    )
    pages_ok = all(r["median_ms"] < TARGET_MS for r in rows if r["page"] != API[0])
    check_ok = checks["uncached_us"] / 1000 < CHECK_TARGET_MS
    print(
        f"target: every page under {TARGET_MS:.0f} ms (median): {'met' if pages_ok else 'NOT met'}"
    )
    print(
        f"target: the permission check under {CHECK_TARGET_MS:.0f} ms a request, even uncached: "
        f"{'met' if check_ok else 'NOT met'}"
    )
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "services": args.services,
                "before": args.before,
                "target_ms": TARGET_MS,
                "rows": rows,
                "permission_check": checks,
            }
        )
    )
    return 0 if pages_ok and check_ok else 1


if __name__ == "__main__":
    sys.exit(main())
