"""The service page's charts and request log in Chromium (issue 20): two versions, the second one
slower, called through /serve; the page draws requests per minute, latency and error rate per
version with uPlot and lists the requests; JupyterLab's AlgoLink sidebar draws the same last hour as
sparklines. Screenshots in test-artifacts/browser/.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from browser_support import artifacts_dir, signed_in_page
from hub_process import Hub
from test_hub_metrics import metrics_bundle
from test_labextension_browser import lab  # noqa: F401 - the fixture, with this module's hub

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir("browser")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-metrics-browser")).start()
    root = tmp_path_factory.mktemp("metrics-browser-bundles")
    h.ensure_group("shop", "g")
    r = h.register("shop", "g", "ranker", metrics_bundle(root / "v1"))
    assert r.status_code == 201, r.text
    assert h.publish("shop", "ranker").status_code in (200, 202)
    h.wait_version("shop", "ranker", 1)
    yield h
    h.stop()


def backdate_history(hub: Hub, minutes: int) -> None:
    """v1 published ``minutes + 5`` minutes ago, with a minute of traffic for each minute since
    (slower as it goes), written into the hub's database file beside the running hub."""
    now = time.time()
    stamp = lambda t: time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime(t))  # noqa: E731
    with sqlite3.connect(hub.data / "hub.sqlite", timeout=30) as db:
        sid = db.execute("SELECT id FROM services WHERE name = 'ranker'").fetchone()[0]
        db.execute(
            "UPDATE versions SET published_at = ?, created = ? WHERE service_id = ? AND number = 1",
            (stamp(now - (minutes + 5) * 60), stamp(now - (minutes + 6) * 60), sid),
        )
        for m in range(2, minutes + 2):
            minute = (int(now) // 60 - m) * 60
            n = 20 + (m * 7) % 13
            index = 28 + (minutes - m) // 15  # fine buckets: about 13 ms, rising slowly
            buckets = json.dumps({str(index): n - 2, str(index + 4): 2})
            errors = 1 if m % 9 == 0 else 0
            db.execute(
                "INSERT INTO serve_minutes (service_id, minute, version, command, requests, "
                "client_errors, errors, duration_sum, buckets, model_sum, model_count, "
                "queue_sum, bytes_in, bytes_out) VALUES (?, ?, 1, 'echo', ?, 0, ?, ?, ?, 0, 0, "
                "0, 0, 0)",
                (sid, stamp(minute), n, errors, 0.01 * n, buckets),
            )


def test_the_service_page_charts_requests_per_version(hub, browser, artifacts, tmp_path):
    for i in range(12):
        assert hub.serve("shop/ranker/echo", json={"text": str(i)}).status_code == 200
    assert hub.serve("shop/ranker/echo", json={"nope": 1}).status_code == 400
    assert hub.serve("shop/ranker/boom", json={"text": "x"}).status_code == 500
    # A slower second version: its line begins at its publish, above the first one's.
    number = hub.new_version("shop", "ranker", metrics_bundle(tmp_path / "v2", 0.08))["number"]
    assert hub.publish("shop", "ranker", number).status_code in (200, 202)
    hub.wait_version("shop", "ranker", number)
    for i in range(8):
        assert hub.serve("shop/ranker/echo", json={"text": str(i)}).status_code == 200
    data = hub.get("/api/v1/projects/shop/services/ranker/metrics?range=hour").json()
    assert data["all"]["requests"] == 22
    context, page = signed_in_page(browser, hub, "/projects/shop/services/ranker", height=1400)
    section = page.locator("#metrics[data-rendered=hour]")
    section.wait_for(timeout=30000)
    assert section.get_attribute("data-requests") == "22"
    # Three charts, each a uPlot canvas, with a legend entry per version.
    assert page.locator("#metrics .uplot canvas").count() == 3
    legend = page.locator("#chart-latency .u-legend").inner_text()
    assert "v1" in legend and "v2" in legend
    assert "22 requests, 1 failed (5xx), 1 refused (4xx)" in page.inner_text("#metrics-summary")
    # The request log: the newest first, the 500 and the 400 marked, the caller named.
    rows = page.locator("#requests table.requests tr.request")
    assert rows.count() == 22
    assert "admin" in rows.first.inner_text() and "echo" in rows.first.inner_text()
    assert page.locator("#requests tr.request.failed").count() == 1
    assert page.locator("#requests tr.request.refused").count() == 1
    page.locator("#metrics").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "20-service-metrics.png"), full_page=True)
    # An hour of history for v1 (backdated through the database file, as a day of traffic would
    # leave it): its line begins at its publish, v2's at its own.
    backdate_history(hub, minutes=45)
    page.reload()
    page.locator("#metrics[data-rendered=hour]").wait_for(timeout=30000)
    data = hub.get("/api/v1/projects/shop/services/ranker/metrics?range=hour").json()
    v1 = next(v for v in data["versions"] if v["version"] == 1)
    v2 = next(v for v in data["versions"] if v["version"] == 2)
    assert v1["since"] < v2["since"]
    started = [i for i, value in enumerate(v1["requests_per_minute"]) if value is not None]
    assert len(started) >= 45 and v2["requests_per_minute"][started[0]] is None
    assert page.get_attribute("#metrics", "data-requests") == str(data["all"]["requests"])
    page.locator("#metrics").screenshot(path=str(artifacts / "23-service-metrics-hour.png"))
    # The week: the same requests in coarser points; p99 on the latency chart.
    page.click("#metrics button[data-range=week]")
    page.locator("#metrics[data-rendered=week]").wait_for(timeout=30000)
    page.select_option("#metrics-quantile", "p99")
    assert "p99" in page.locator("#chart-latency .u-legend").inner_text()
    page.locator("#metrics").screenshot(path=str(artifacts / "21-service-metrics-week.png"))
    # Keeping inputs and outputs: off by default, an owner's form turns it on.
    assert page.is_checked("#record-bodies") is False
    page.check("#record-bodies")
    page.fill("#record-limit", "64")
    page.click("#record-form button[type=submit]")
    page.wait_for_url("**#requests")
    assert hub.serve("shop/ranker/echo", json={"text": "kept"}).status_code == 200
    page.reload()
    page.locator("#requests tr.bodies").first.wait_for(timeout=30000)
    first = page.locator("#requests tr.bodies").first
    first.locator("summary").first.click()
    assert '{"text": "kept"}' in first.inner_text()
    page.locator("#requests").screenshot(path=str(artifacts / "22-request-log.png"))
    context.close()


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory):
    """JupyterLab loads this worktree's build of the extension (``npm run build:prod`` in js/ writes
    it to algolink_jupyter/labextension) ahead of the installed one, when there is one."""
    built = REPO / "algolink_jupyter" / "labextension"
    saved = os.environ.get("JUPYTER_PATH")
    if (built / "package.json").is_file():
        root = tmp_path_factory.mktemp("jupyter-path")
        (root / "labextensions").mkdir()
        (root / "labextensions" / "algolink-jupyter").symlink_to(built)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root), saved]))
    yield
    if saved is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = saved


@pytest.fixture(scope="module")
def jupyterlab(jupyter_path, lab):  # noqa: F811 - the imported fixture
    return lab


def test_the_jupyterlab_sidebar_draws_each_services_last_hour(hub, jupyterlab, browser, artifacts):
    assert hub.serve("shop/ranker/echo", json={"text": "lab"}).status_code == 200
    context = browser.new_context(viewport={"width": 1300, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{jupyterlab['url']}/lab?reset&token={jupyterlab['token']}")
        page.click(".jp-SideBar .lm-TabBar-tab[data-id='algolink-panel']", timeout=120_000)
        item = page.locator("#algolink-panel .algolink-service[data-service='ranker']")
        activity = item.locator(".algolink-activity")
        activity.wait_for()
        total = hub.get("/api/v1/projects/shop/services/ranker/metrics").json()["all"]["requests"]
        assert 0 < int(activity.get_attribute("data-requests")) <= total
        assert activity.locator("svg.algolink-spark-requests").count() == 1
        assert activity.locator("svg.algolink-spark-latency").count() == 1
        assert activity.locator("svg polyline, svg circle").count() >= 2
        assert "requests" in activity.get_attribute("title")
        page.locator("#algolink-panel").screenshot(
            path=str(artifacts / "24-sidebar-sparklines.png")
        )
    finally:
        context.close()
