"""The hub's web UI in a real browser: Playwright driving Debian's Chromium (headless, --no-sandbox)
walks the seed's flow against a real hub: sign in, 新建项目, 分组, register a 模型服务, 上线 with
the button turning green, the language switch, and script injection rendered inert. Screenshots go to
``test-artifacts/browser/`` (or ``$ALGOLINK_TEST_ARTIFACTS``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import artifacts_dir, signed_in_page
from hub_process import Hub, make_bundle

pytestmark = pytest.mark.timeout(300)

EVIL = "<script>window.pwned = 1; alert(1)</script>"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir("browser")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-browser")).start()
    yield h
    h.stop()


def test_the_seed_flow_in_the_browser(hub, browser, artifacts, tmp_path):
    bundle = make_bundle(tmp_path / "echo")
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    dialogs: list = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_default_timeout(30_000)

    page.goto(hub.url + "/")
    assert "/login" in page.url
    page.fill("#name", "admin")
    page.fill("#password", hub.admin_password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/projects")
    page.screenshot(path=str(artifacts / "01-projects-empty.png"), full_page=True)

    # Rules checked as the user types.
    page.fill("#p-name", "has space")
    assert page.eval_on_selector("#p-name", "e => e.validity.valid") is False
    assert "only letters" in page.eval_on_selector("#p-name", "e => e.validationMessage")
    page.fill("#p-name", "vision")
    assert page.eval_on_selector("#p-name", "e => e.validity.valid") is True
    page.fill("#p-version", "1_0")
    assert page.eval_on_selector("#p-version", "e => e.validity.valid") is False
    page.fill("#p-version", "1.0")
    page.select_option("#p-type", "model")
    page.fill("#p-desc", "Image models " + EVIL)
    page.click("#new-project button[type=submit]")
    page.wait_for_url("**/projects/vision")

    page.fill("#g-name", "classify")
    page.click("#new-group button[type=submit]")
    page.wait_for_url("**/projects/vision")
    assert "classify" in page.inner_text("#groups")

    page.fill("#s-name", "echo")
    page.fill("#s-path", str(bundle))
    page.fill("#s-tagline", "Says it back")
    page.fill("#s-description", "# Echo\n\nIt **echoes**. " + EVIL)
    page.fill("#s-license", "MIT")
    page.fill("#s-links", "Code https://example.org/echo")
    page.click("#register-form button[type=submit]")
    page.wait_for_url("**/projects/vision/services/echo")
    assert page.inner_text("h1#service-name") == "echo"
    assert page.inner_text("#license") == "MIT"
    assert page.locator("#description h1").inner_text() == "Echo"
    assert "<script>" in page.inner_text("#description")  # shown as text, not run
    assert page.evaluate("window.pwned") is None and dialogs == []
    page.screenshot(path=str(artifacts / "02-service-registered.png"), full_page=True)

    # 上线: the button turns green once the service is online (the page polls the service JSON).
    page.click("#publish")
    page.wait_for_selector("#publish.online", timeout=180_000)
    assert page.inner_text("#status") == "Online"
    color = page.eval_on_selector("#publish", "e => getComputedStyle(e).backgroundColor")
    assert color == "rgb(31, 157, 85)"
    page.reload()
    assert "curl -sS -X POST" in page.inner_text("#api-panel code.curl")
    # Try it: the form generated from the manifest runs the command.
    page.fill("#try-echo-text", "hello " + EVIL)
    page.click("#try form.try-form button[type=submit]")
    page.wait_for_selector("#try .try-output .value")
    assert page.inner_text("#try .try-output .value") == "v1:hello " + EVIL
    assert page.evaluate("window.pwned") is None and dialogs == []
    page.wait_for_function("() => document.getElementById('log').textContent.length > 0")
    # The log is streamed (?follow=1), appended as it is written, not polled.
    page.wait_for_function("() => document.getElementById('log').dataset.streaming === '1'")
    page.screenshot(path=str(artifacts / "03-service-online.png"), full_page=True)

    # Edit the model card: the preview renders as typed (sanitised), the page shows what was saved.
    page.click("#edit")
    page.wait_for_url("**/projects/vision/services/echo/edit")
    page.fill("#e-tagline", "Edited in the browser")
    page.fill("#e-description", "## Edited\n\nNow *with* a preview. " + EVIL)
    page.wait_for_function(
        "() => (document.querySelector('#e-preview h2') || {}).textContent === 'Edited'"
    )
    page.screenshot(path=str(artifacts / "06-edit-model-card.png"), full_page=True)
    page.click("#edit-form button[type=submit]")
    page.wait_for_url("**/projects/vision/services/echo")
    assert page.locator("#description h2").inner_text() == "Edited"
    assert page.inner_text(".tagline") == "Edited in the browser"
    assert page.evaluate("window.pwned") is None and dialogs == []

    # Tokens: a new token's secret is shown once, on the answer page only.
    page.click("#nav-tokens")
    page.wait_for_url("**/tokens")
    page.fill("#t-name", "ci")
    page.click("#new-token button[type=submit]")
    secret = page.inner_text("#token-secret").strip()
    assert len(secret) == 40, secret
    page.screenshot(path=str(artifacts / "07-token-created.png"), full_page=True)
    page.goto(hub.url + "/tokens")
    assert "ci" in page.inner_text("#tokens") and secret not in page.content()
    page.goto(hub.url + "/projects/vision/services/echo")

    # The language switch: the same page in Chinese.
    page.click("a.lang-switch[hreflang=zh-CN]")
    page.wait_for_url("**/projects/vision/services/echo")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.inner_text("#publish") == "版本 1 服务中" and page.inner_text("#status") == "已上线"
    assert "退出登录" in page.inner_text("header")
    page.screenshot(path=str(artifacts / "04-service-zh.png"), full_page=True)
    page.click("#nav-tokens")
    page.wait_for_url("**/tokens")
    assert page.inner_text("h1") == "API 令牌" and "吊销" in page.inner_text("#tokens")

    # A phone-sized screen.
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, storage_state=context.storage_state()
    )
    mobile = phone.new_page()
    mobile.goto(hub.url + "/projects/vision")
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    mobile.screenshot(path=str(artifacts / "05-project-phone.png"), full_page=True)
    for path in ("/projects/vision/services/echo", "/tokens"):
        mobile.goto(hub.url + path)
        width = mobile.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
    mobile.screenshot(path=str(artifacts / "08-tokens-phone.png"), full_page=True)
    phone.close()

    page.goto(hub.url + "/projects")
    assert "<script>" in page.inner_text("#projects")
    assert page.evaluate("window.pwned") is None and dialogs == []
    page.click("#sign-out")
    page.wait_for_url("**/login")
    context.close()


#: What every part of the service page says about which version is online (read in the page).
PAGE_PARTS = """() => {
  const text = (sel) => (document.querySelector(sel) || {}).textContent || "";
  const rows = [...document.querySelectorAll("#versions tbody tr")];
  return {
    marker: window.stillTheSamePage || null,
    status: document.getElementById("status").dataset.status,
    button: text("#publish"),
    buttonDisabled: document.getElementById("publish").disabled,
    online: text("#online-version"),
    endpoint: text("#endpoint"),
    curls: [...document.querySelectorAll("code.curl")].map((c) => c.textContent),
    serving: rows.filter((r) => r.querySelector(".tag:not(.alias)")).map((r) => r.id),
    rowStatus: Object.fromEntries(rows.map((r) => [r.id, r.querySelector(".status").dataset.version
      && r.querySelector(".status").className.replace("status status-", "")])),
    current: [...document.querySelectorAll("#api-versions li")]
      .filter((li) => /serving/.test(li.textContent)).map((li) => li.dataset.api),
    rows: rows.map((r) => r.id),
  };
}"""


def agree_online(page, number: int, api: str) -> dict:
    """Wait until the page (never reloaded) says version ``number`` is online as ``api`` in every
    part of it, and return what it says."""
    page.wait_for_function(
        """([n, api]) => {
          const s = document.getElementById("status");
          const row = document.querySelector("#version-" + n + " .tag:not(.alias)");
          return s && s.dataset.status === "online" && row
            && (document.getElementById("endpoint") || {}).textContent.includes("/" + api + "/");
        }""",
        arg=[number, api],
        timeout=120_000,
    )
    parts = page.evaluate(PAGE_PARTS)
    assert parts["marker"] == 1, "the page was reloaded"
    assert parts["status"] == "online"
    assert parts["button"] == f"Version {number} is online" and parts["buttonDisabled"]
    assert parts["online"] == f"version {number} online as {api}"
    assert parts["endpoint"].endswith(f"/serve/pages/echo/{api}/")
    assert parts["curls"] and all(f"/serve/pages/echo/{api}/echo" in c for c in parts["curls"])
    assert parts["serving"] == [f"version-{number}"]
    assert parts["rowStatus"][f"version-{number}"] == "online"
    assert parts["current"] == [api]
    return parts


def test_the_service_page_follows_a_rollback_without_a_reload(hub, browser, artifacts, tmp_path):
    hub.ensure_group("pages", "g")
    assert hub.register("pages", "g", "echo", make_bundle(tmp_path / "v1", "v1")).status_code == 201
    assert hub.publish("pages", "echo", 1).status_code == 202
    hub.wait_version("pages", "echo", 1)
    hub.new_version("pages", "echo", make_bundle(tmp_path / "v2", "v2"))
    assert hub.publish("pages", "echo", 2).status_code == 202
    hub.wait_version("pages", "echo", 2)

    context, page = signed_in_page(browser, hub, "/projects/pages/services/echo")
    page.evaluate("window.stillTheSamePage = 1")
    agree_online(page, 2, "v2")
    page.screenshot(path=str(artifacts / "10-versions-v2-online.png"), full_page=True)

    # A rollback made elsewhere (the API, a colleague): every part of the page follows it.
    assert hub.publish("pages", "echo", 1).status_code == 202
    parts = agree_online(page, 1, "v1")
    assert parts["rowStatus"]["version-2"] == "offline"
    page.screenshot(path=str(artifacts / "11-versions-rolled-back.png"), full_page=True)

    # 下线: the page says offline everywhere, and its 上线 button names the rolled-back version.
    assert hub.post("/api/v1/projects/pages/services/echo/offline").status_code == 200
    page.wait_for_function("() => document.getElementById('status').dataset.status === 'offline'")
    parts = page.evaluate(PAGE_PARTS)
    assert parts["marker"] == 1 and parts["online"] == "" and parts["serving"] == []
    assert parts["button"] == "Publish version 1" and not parts["buttonDisabled"]
    assert set(parts["rowStatus"].values()) == {"offline"}
    page.screenshot(path=str(artifacts / "12-versions-offline.png"), full_page=True)

    # 上线 from the page brings back version 1, not the newest.
    page.click("#publish")
    page.wait_for_url("**/projects/pages/services/echo")
    page.evaluate("window.stillTheSamePage = 1")
    agree_online(page, 1, "v1")
    assert hub.serve("pages/echo/echo", json={"text": "x"}).json() == {"text": "v1:x"}

    # A new version uploaded elsewhere appears, and the button then offers it.
    hub.new_version("pages", "echo", make_bundle(tmp_path / "v3", "v3"))
    page.wait_for_selector("#version-3")
    page.wait_for_function(
        "() => document.getElementById('publish').textContent === 'Publish version 3'"
    )
    parts = page.evaluate(PAGE_PARTS)
    assert parts["marker"] == 1 and parts["online"] == "version 1 online as v1"
    assert parts["serving"] == ["version-1"] and parts["rows"] == [
        "version-1",
        "version-2",
        "version-3",
    ]

    # The log of each version, chosen on the page.
    page.select_option("#log-version", "2")
    page.wait_for_function(
        "() => document.getElementById('log').textContent.includes('online as v2')"
    )
    assert "online as v1" not in page.inner_text("#log")

    # An alias set on the page; a version deleted on the page, after the confirmation.
    page.fill("#alias-name", "stable")
    page.select_option("#alias-version", "2")
    page.click("#alias-form button[type=submit]")
    page.wait_for_url("**/projects/pages/services/echo#aliases")
    assert "@stable" in page.inner_text("#version-2")
    assert hub.serve("pages/echo/@stable/echo", json={"text": "x"}).json() == {"text": "v2:x"}
    page.once("dialog", lambda d: d.dismiss())
    page.click("#version-3 button.delete-version")
    assert page.locator("#version-3").count() == 1  # dismissed: nothing deleted
    page.once("dialog", lambda d: d.accept())
    page.click("#version-3 button.delete-version")
    page.wait_for_url("**/projects/pages/services/echo#versions")
    assert page.locator("#version-3").count() == 0
    assert [v["number"] for v in hub.service("pages", "echo")["versions"]] == [1, 2]
    page.screenshot(path=str(artifacts / "13-versions-alias-and-delete.png"), full_page=True)

    # The service deleted from its page: the name must be typed again.
    page.once("dialog", lambda d: d.accept("wrong"))
    page.click("#delete-service-button")
    assert hub.get("/api/v1/projects/pages/services/echo").status_code == 200
    page.once("dialog", lambda d: d.accept("echo"))
    page.click("#delete-service-button")
    page.wait_for_url("**/projects/pages")
    assert hub.get("/api/v1/projects/pages/services/echo").status_code == 404
    context.close()


def test_the_api_docs_page_tries_a_command_in_chromium(browser, tmp_path, artifacts):
    """A service's API docs page: Swagger UI shipped with the hub (no CDN), the service's commands
    from its OpenAPI, and "Try it out" answered through the page's try-it route as the signed-in
    user; a user with no role sees no docs of a private service."""
    hub = Hub(tmp_path / "data").start()
    try:
        hub.ensure_group("docs", "g")
        r = hub.register("docs", "g", "echo", make_bundle(tmp_path / "b", "d1"))
        assert r.status_code == 201, r.text
        assert hub.publish("docs", "echo").status_code == 202
        hub.wait_version("docs", "echo", 1)
        page_path = "/projects/docs/services/echo"
        context, page = signed_in_page(browser, hub, page_path)
        outside: list = []
        page.on(
            "request",
            lambda req: (
                outside.append(req.url) if not req.url.startswith((hub.url, "data:")) else None
            ),
        )
        page.click("#docs-link")
        page.wait_for_url("**/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        assert page.inner_text(".opblock-summary-path").strip() == "/echo"
        page.click(".opblock-summary")
        page.click("button.try-out__btn")
        page.fill(".body-param__text", '{"text": "hi"}')
        page.click("button.execute")
        page.wait_for_selector(".live-responses-table tbody .response-col_status")
        answer = page.inner_text(".live-responses-table tbody")
        assert "200" in answer and '"d1:hi"' in answer, answer
        page.screenshot(path=str(artifacts / "14-api-docs.png"), full_page=True)
        assert outside == [], outside
        context.close()
        # another user, no role in the project: neither the page nor the document
        hub.add_user("nosy", {"other": "developer"}, password="nosy-password-1")
        context, page = signed_in_page(browser, hub, user="nosy", password="nosy-password-1")
        assert page.goto(hub.url + page_path + "/docs").status == 404
        assert page.goto(hub.url + page_path + "/openapi.json").status == 404
        context.close()
    finally:
        hub.stop()
