"""The hub's web pages over real HTTP against a real hub process: sign-in, XSRF, English and
Chinese, the seed's flow (project, group, service page, 上线) and script injection rendered inert."""

from __future__ import annotations

import re
import stat
import statistics
import time

import pytest
import requests
from hub_process import Hub, free_port, make_bundle, pack, png_bytes, wait_for

pytestmark = pytest.mark.timeout(300)

XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')
EVIL = "<script>alert('pwned')</script>"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-pages")).start()
    yield h
    h.stop()


def browser(lang: str = "en-US,en;q=0.9") -> requests.Session:
    s = requests.Session()
    s.headers["Accept"] = "text/html,application/xhtml+xml"
    s.headers["Accept-Language"] = lang
    return s


def xsrf(s: requests.Session, url: str) -> str:
    r = s.get(url, timeout=30)
    assert r.status_code == 200, r.text
    m = XSRF.search(r.text)
    assert m, r.text
    return m.group(1)


def sign_in(hub: Hub, lang: str = "en-US,en;q=0.9") -> requests.Session:
    s = browser(lang)
    token = xsrf(s, hub.url + "/login")
    r = s.post(
        hub.url + "/login",
        data={"_xsrf": token, "token": hub.token, "next": "/projects"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302, r.text
    assert r.headers["Location"] == "/projects"
    return s


def post_form(s: requests.Session, hub: Hub, page: str, action: str, **data) -> requests.Response:
    data["_xsrf"] = xsrf(s, hub.url + page)
    return s.post(hub.url + action, data=data, allow_redirects=False, timeout=60)


def test_root_is_json_for_the_api_and_the_ui_for_a_browser(hub):
    assert hub.get("/").json()["api"] == "/api/v1"
    r = browser().get(hub.url + "/", allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"] == "/projects"


@pytest.mark.parametrize("path", ["/projects", "/projects/demo", "/projects/demo/services/echo"])
def test_pages_need_a_signed_in_user(hub, path):
    r = browser().get(hub.url + path, allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/login?next=")
    page = browser().get(hub.url + path, timeout=30)
    assert 'name="token"' in page.text and 'type="password"' in page.text


def test_changes_need_sign_in_and_the_xsrf_token(hub):
    anon = browser()
    token = xsrf(anon, hub.url + "/login")
    r = anon.post(
        hub.url + "/projects", data={"_xsrf": token, "name": "nope"}, allow_redirects=False
    )
    assert r.status_code == 403
    s = sign_in(hub)
    r = s.post(hub.url + "/projects", data={"name": "noxsrf"}, allow_redirects=False, timeout=30)
    assert r.status_code == 403
    r = s.post(
        hub.url + "/projects",
        data={"name": "badxsrf", "_xsrf": "2|00000000|deadbeef|1"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 403
    assert hub.get("/api/v1/projects/noxsrf").status_code == 404
    assert hub.get("/api/v1/projects/badxsrf").status_code == 404
    # The REST API with a token keeps working without any XSRF token.
    r = hub.post("/api/v1/projects", json={"name": "viaapi", "type": "model", "version": "1.0"})
    assert r.status_code == 201, r.text


def test_sign_in_refuses_a_bad_token_and_never_stores_the_token(hub):
    s = browser()
    token = xsrf(s, hub.url + "/login")
    r = s.post(hub.url + "/login", data={"_xsrf": token, "token": "wrong"}, timeout=30)
    assert r.status_code == 403
    assert "not valid" in r.text
    s = sign_in(hub)
    assert all(hub.token not in (c.value or "") for c in s.cookies)
    page = s.get(hub.url + "/projects", timeout=30)
    assert page.status_code == 200 and "Signed in as admin" in page.text
    assert hub.token not in page.text
    assert stat.S_IMODE((hub.data / "cookie_secret").stat().st_mode) == 0o600
    r = post_form(s, hub, "/projects", "/logout")
    assert r.status_code == 302
    r = s.get(hub.url + "/projects", allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_english_and_chinese_by_browser_language_and_by_the_switch(hub):
    en = sign_in(hub).get(hub.url + "/projects", timeout=30)
    assert '<html lang="en">' in en.text and "New project" in en.text
    assert "新建项目" not in en.text
    s = sign_in(hub, "zh-CN,zh;q=0.9,en;q=0.5")
    zh = s.get(hub.url + "/projects", timeout=30)
    assert '<html lang="zh-CN">' in zh.text and "新建项目" in zh.text and "退出登录" in zh.text
    assert "New project" not in zh.text
    # The switch on the page: English in a Chinese browser, kept by a cookie.
    link = re.search(r'href="(/lang\?to=en[^"]*)"', zh.text).group(1).replace("&amp;", "&")
    r = s.get(hub.url + link, allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"] == "/projects"
    assert s.cookies.get("lang") == "en"
    assert "New project" in s.get(hub.url + "/projects", timeout=30).text
    # The switch refuses to send anyone off the hub.
    r = s.get(hub.url + "/lang?to=zh_CN&next=//evil.example", allow_redirects=False)
    assert r.headers["Location"] == "/projects"
    # The sign-in page, too.
    assert "登录" in browser("zh-CN").get(hub.url + "/login", timeout=30).text


def test_create_project_and_group_with_the_rules_checked_on_the_server(hub):
    s = sign_in(hub, "zh-CN")
    r = post_form(s, hub, "/projects", "/projects", name="has space", version="1.0")
    assert r.status_code == 400 and "名称只能包含字母" in r.text
    assert 'value="has space"' in r.text  # the form keeps what was typed
    r = post_form(s, hub, "/projects", "/projects", name="okname", version="1_0")
    assert r.status_code == 400 and "不允许下划线" in r.text
    r = post_form(
        s,
        hub,
        "/projects",
        "/projects",
        name="demo",
        type="model",
        version="1.0",
        description="识别 " + EVIL,
    )
    assert r.status_code == 302 and r.headers["Location"] == "/projects/demo"
    project = hub.get("/api/v1/projects/demo").json()
    assert project["version"] == "1.0" and project["type"] == "model"
    r = post_form(s, hub, "/projects", "/projects", name="demo", version="1.0")
    assert r.status_code == 400 and "已存在" in r.text
    listing = s.get(hub.url + "/projects", timeout=30).text
    assert "<script>alert" not in listing and "&lt;script&gt;alert" in listing
    r = post_form(s, hub, "/projects/demo", "/projects/demo/groups", name="vision")
    assert r.status_code == 302
    r = post_form(s, hub, "/projects/demo", "/projects/demo/groups", name="bad group")
    assert r.status_code == 400
    page = s.get(hub.url + "/projects/demo", timeout=30).text
    assert "分组: vision" in page or "分组：vision" in page or "vision" in page
    assert "模型服务" in page and "<script>alert" not in page
    assert hub.get("/api/v1/projects/demo").json()["groups"][0]["name"] == "vision"


def test_service_page_renders_scripts_inert_and_publishes(hub, tmp_path):
    hub.ensure_group("demo", "vision")
    metadata = (
        '{"name": "' + EVIL.replace("'", "") + '", "tagline": "Says it back", '
        '"description": "# Echo\\n\\n' + EVIL.replace("'", "") + "\\n\\n[bad](javascript:alert(1)) "
        '<img src=x onerror=alert(1)>", "license": "MIT", '
        '"links": [{"title": "Code", "url": "https://example.org/echo"}, '
        '{"title": "Evil", "url": "javascript:alert(1)"}]}'
    )
    r = hub.register(
        "demo",
        "vision",
        "echo",
        make_bundle(tmp_path / "echo"),
        metadata=metadata,
        images=[("cover.png", png_bytes())],
    )
    assert r.status_code == 201, r.text
    s = sign_in(hub)
    page = s.get(hub.url + "/projects/demo/services/echo", timeout=30)
    assert page.status_code == 200
    html = page.text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert" in html
    assert "onerror=alert" not in html.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert 'href="javascript:' not in html
    assert "<h1>Echo</h1>" in html  # the Markdown is rendered
    assert 'href="https://example.org/echo"' in html and "MIT" in html
    assert 'class="thumb" src="' in html and "/gallery/" in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "/serve/demo/echo/" in html
    # 上线 from the page: the button turns green once online.
    zh = sign_in(hub, "zh-CN")
    assert "上线" in zh.get(hub.url + "/projects/demo/services/echo", timeout=30).text
    r = post_form(s, hub, "/projects/demo/services/echo", "/projects/demo/services/echo/publish")
    assert r.status_code == 302 and r.headers["Location"] == "/projects/demo/services/echo"
    hub.wait_version("demo", "echo", 1)
    assert hub.version("demo", "echo", 1)["published_by"] == "admin"
    html = s.get(hub.url + "/projects/demo/services/echo", timeout=30).text
    assert 'class="publish online"' in html and "status-online" in html
    assert "curl -X POST" in html and "/serve/demo/echo/echo" in html
    assert "Authorization: token &lt;token&gt;" in html and hub.token not in html
    # Try it, relayed for the signed-in user (the service is not public).
    form = re.search(r'class="try-form" data-action="([^"]+)" data-xsrf="([^"]+)"', html)
    assert form, html
    r = s.post(hub.url + form.group(1), json={"text": "hi"}, timeout=60)
    assert r.status_code == 403  # no XSRF header
    r = s.post(
        hub.url + form.group(1),
        files={"text": (None, "hi")},
        headers={"X-XSRFToken": form.group(2)},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "v1:hi"}
    assert browser().post(hub.url + form.group(1), json={"text": "x"}).status_code == 403
    project = zh.get(hub.url + "/projects/demo", timeout=30).text
    assert "已上线" in project and 'class="publish online"' in project
    r = post_form(s, hub, "/projects/demo/services/echo", "/projects/demo/services/echo/offline")
    assert r.status_code == 302
    wait_for(lambda: hub.service("demo", "echo")["status"] == "offline", 30)
    html = s.get(hub.url + "/projects/demo/services/echo", timeout=30).text
    assert 'class="publish online"' not in html


def test_missing_pages_answer_404_in_html(hub):
    s = sign_in(hub)
    r = s.get(hub.url + "/projects/nosuch", timeout=30)
    assert r.status_code == 404 and "text/html" in r.headers["Content-Type"]
    assert "Not found" in r.text


def test_register_a_service_from_the_page_by_upload_and_by_folder(hub, tmp_path):

    hub.ensure_group("regproj", "nlp")
    s = sign_in(hub)
    page = s.get(hub.url + "/projects/regproj", timeout=30).text
    assert 'enctype="multipart/form-data"' in page and 'name="bundle"' in page
    token = XSRF.search(page).group(1)
    bundle = make_bundle(tmp_path / "echo")
    r = s.post(
        hub.url + "/projects/regproj/services",
        data={
            "_xsrf": token,
            "name": "uploaded",
            "group": "nlp",
            "tagline": "Echo for tests",
            "description": "**bold** " + EVIL,
            "license": "Apache-2.0",
            "links": "Paper https://example.org/paper\nEvil javascript:alert(1)",
        },
        files={
            "bundle": ("bundle.tar.gz", pack(bundle)),
            "images": ("first.png", png_bytes((10, 200, 10))),
        },
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code == 302, r.text
    assert r.headers["Location"] == "/projects/regproj/services/uploaded"
    service = hub.service("regproj", "uploaded")
    assert service["group"] == "nlp" and service["metadata"]["license"] == "Apache-2.0"
    assert service["metadata"]["links"][0] == {
        "title": "Paper",
        "url": "https://example.org/paper",
    }
    assert service["gallery"][0]["name"] == "first.png"
    html = s.get(hub.url + r.headers["Location"], timeout=30).text
    assert "<strong>bold</strong>" in html and "<script>alert" not in html
    assert 'href="javascript:' not in html and "Echo for tests" in html
    # A folder on the hub's machine, with a port.
    port = str(free_port())
    r = post_form(
        s,
        hub,
        "/projects/regproj",
        "/projects/regproj/services",
        name="fromfolder",
        group="nlp",
        path=str(bundle),
        port=port,
    )
    assert r.status_code == 302, r.text
    assert hub.service("regproj", "fromfolder")["port"] == int(port)
    # Refusals come back on the page, in the page's language.
    zh = sign_in(hub, "zh-CN")
    r = post_form(zh, hub, "/projects/regproj", "/projects/regproj/services", name="a b")
    assert r.status_code == 400 and "名称只能包含字母" in r.text
    r = post_form(
        zh, hub, "/projects/regproj", "/projects/regproj/services", name="np", group="nlp"
    )
    assert r.status_code == 400 and "表单被拒绝" in r.text and "No bundle" in r.text
    r = post_form(
        zh,
        hub,
        "/projects/regproj",
        "/projects/regproj/services",
        name="badport",
        group="nlp",
        path=str(bundle),
        port="80",
    )
    assert r.status_code == 400 and "1024" in r.text
    assert hub.get("/api/v1/projects/regproj/services/badport").status_code == 404
    # Without the XSRF token nothing is registered.
    r = zh.post(
        hub.url + "/projects/regproj/services",
        data={"name": "noxsrf", "group": "nlp", "path": str(bundle)},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 403
    assert hub.get("/api/v1/projects/regproj/services/noxsrf").status_code == 404


def test_pages_are_served_in_under_50_ms_with_100_services(hub, tmp_path):
    hub.ensure_group("many", "g0")
    for g in range(1, 5):
        hub.ensure_group("many", f"g{g}")
    bundle = make_bundle(tmp_path / "echo")
    for i in range(100):
        r = hub.post(
            "/api/v1/projects/many/services",
            data={"name": f"svc{i:03d}", "group": f"g{i % 5}", "path": str(bundle)},
        )
        assert r.status_code == 201, r.text
    assert len(hub.get("/api/v1/projects/many").json()["services"]) == 100

    def prepared() -> bool:  # the bundles' manifests are read in the background: let them finish
        services = hub.get("/api/v1/projects/many/services").json()
        return all(s["manifest"] for s in services)

    wait_for(prepared, 240, 1, "the 100 services' manifests")
    s = sign_in(hub)
    for path in ("/projects", "/projects/many", "/projects/many/services/svc042"):
        s.get(hub.url + path, timeout=30)  # warm: templates compiled
        times = []
        for _ in range(15):
            start = time.perf_counter()
            r = s.get(hub.url + path, timeout=30)
            times.append(time.perf_counter() - start)
            assert r.status_code == 200
        median = statistics.median(times)
        assert median < 0.050, f"{path}: median {median * 1000:.1f} ms"
    assert s.get(hub.url + "/projects/many", timeout=30).text.count("/services/svc") >= 100


def test_a_revoked_token_ends_its_sessions(hub):
    r = hub.post("/api/v1/tokens", json={"name": "alice"})
    assert r.status_code == 201, r.text
    made = r.json()
    s = browser()
    token = xsrf(s, hub.url + "/login")
    r = s.post(
        hub.url + "/login",
        data={"_xsrf": token, "token": made["token"]},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302
    page = s.get(hub.url + "/projects", timeout=30)
    assert "Signed in as alice" in page.text and made["token"] not in page.text
    assert hub.api("DELETE", f"/api/v1/tokens/{made['id']}").status_code in (200, 204)
    r = s.get(hub.url + "/projects", allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
