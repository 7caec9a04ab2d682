"""The service page's try-it form (hints from the declared rules, previews of chosen files and of image
outputs, the recorded examples one click away) and shareable result links, against a real hub with a
real service process: in Chromium (screenshots in ``test-artifacts/browser/``), and attacked over HTTP
(a private service's results are never kept, links cannot be guessed or walked out of the results
folder, what a result holds is shown inert)."""

from __future__ import annotations

import base64
import io
import json
import re
import time

import pytest
import requests
from browser_support import artifacts_dir
from hub_process import Hub, make_bundle
from PIL import Image

from algolink_jupyter.hub.results import MAX_RESULT, ResultStore

pytestmark = pytest.mark.timeout(300)

MODEL = """
import modelcloud
from modelcloud.data_types import boolean, category, file, image, number, text
from PIL import ImageOps


@modelcloud.command(
    "tint",
    description="Inverts a photo and says how",
    inputs={
        "photo": image(max_width=64, max_height=64, description="a small photo"),
        "strength": number(min=0, max=2, step=0.25, default=1),
        "label": text(max_length=12),
        "mode": category(choices=["warm", "cold"], default="cold"),
        "loud": boolean(default=False),
    },
    outputs={"photo": image(default_output_format="PNG"), "said": text(), "page": file()},
)
def tint(model, inputs):
    said = f"{inputs['label']} x{inputs['strength']:g} {inputs['mode']}"
    path = "page.html"
    with open(path, "w") as f:
        f.write("<script>window.pwned = 1</script>" + said)
    return {"photo": ImageOps.invert(inputs["photo"].convert("RGB")), "said": said, "page": path}


if __name__ == "__main__":
    modelcloud.run()
"""


def png_uri(color: tuple, size: tuple = (24, 16)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("try-it")
    h = Hub(root / "hub").start()
    h.ensure_group("demo", "g")
    bundle = make_bundle(root / "tint")
    (bundle / "cloud_model.py").write_text(MODEL)
    examples = bundle / "examples" / "tint"
    examples.mkdir(parents=True)
    for n, (color, label, strength) in enumerate(
        [((250, 200, 0), "sunny", 0.5), ((0, 90, 200), "sea", 1.75)], 1
    ):
        record = {
            "command": "tint",
            "inputs": {"photo": png_uri(color), "strength": strength, "label": label},
            "outputs": {},
        }
        (examples / f"{n:03d}.json").write_text(json.dumps(record))
    for name, public in (("pub", "true"), ("priv", "false")):
        r = h.register("demo", "g", name, bundle, public=public)
        assert r.status_code == 201, r.text
        assert h.publish("demo", name).status_code == 202
    for name in ("pub", "priv"):
        h.wait_version("demo", name, 1)
    yield h
    h.stop()


def results_kept(hub: Hub) -> list:
    return sorted((hub.data / "results").glob("*.json"))


def test_the_try_it_form_in_the_browser(hub, browser, tmp_path):
    artifacts = artifacts_dir("browser")
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(hub.url + "/projects/demo/services/pub")  # public: no sign-in
    form = page.locator("form.try-form")

    # Hints from the declared rules, and the rules as attributes the browser checks.
    hints = {
        name: form.locator(f'.try-field[data-input="{name}"] .try-hint').inner_text()
        for name in ("photo", "strength", "label", "mode")
    }
    assert hints["photo"] == "RGB · width at most 64 pixels · height at most 64 pixels"
    assert hints["strength"] == "0 to 2 · step 0.25 · default: 1"
    assert hints["label"] == "at most 12 characters"
    assert hints["mode"] == "default: cold"
    strength = page.locator("#try-tint-strength")
    assert [strength.get_attribute(a) for a in ("min", "max", "step", "value")] == [
        "0",
        "2",
        "0.25",
        "1",
    ]
    assert page.locator("#try-tint-label").get_attribute("maxlength") == "12"
    assert page.locator("#try-tint-mode").input_value() == "cold"
    strength.fill("0.3")  # not a step: the browser says so before anything is sent
    assert page.eval_on_selector("#try-tint-strength", "e => e.validity.stepMismatch") is True

    # A chosen file is previewed.
    photo = tmp_path / "green.png"
    Image.new("RGB", (30, 20), (0, 160, 0)).save(photo)
    page.set_input_files("#try-tint-photo", str(photo))
    preview = form.locator('.try-field[data-input="photo"] .try-preview img')
    preview.wait_for()
    page.wait_for_function("() => document.querySelector('.try-preview img').naturalWidth === 30")
    assert "green.png" in form.locator(".try-preview").inner_text()

    # The recorded examples fill the form in one click, their image included.
    assert form.locator(".try-example").all_inner_texts() == ["Example 1", "Example 2"]
    form.locator(".try-example").nth(1).click()
    assert strength.input_value() == "1.75"
    assert page.locator("#try-tint-label").input_value() == "sea"
    assert "photo.png" in form.locator(".try-preview").inner_text()
    page.wait_for_function("() => document.querySelector('.try-preview img').naturalWidth === 24")
    page.screenshot(path=str(artifacts / "try-it-hints-example.png"), full_page=True)

    # Run, keeping a shareable link: the image output shown, the file output a download.
    form.locator(".try-share-box").check()
    form.locator("button[type=submit]").click()
    form.locator('.try-output[data-output="photo"] img').wait_for()
    assert form.locator('.try-output[data-output="said"]').inner_text() == "said: sea x1.75 cold"
    download = form.locator('.try-output[data-output="page"] a')
    assert download.get_attribute("href").startswith("data:application/octet-stream;base64,")
    link = form.locator(".try-share-link a")
    link.wait_for()
    url = link.get_attribute("href")
    assert re.fullmatch(r"/results/[A-Za-z0-9_-]{24}", url)
    page.screenshot(path=str(artifacts / "try-it-result-shared.png"), full_page=True)
    context.close()

    # Anyone with the link sees the inputs and outputs; the HTML the service wrote stays inert.
    other = browser.new_context(locale="zh-CN", viewport={"width": 1100, "height": 900})
    page = other.new_page()
    page.goto(hub.url + url)
    assert "demo/pub 的运行结果" in page.inner_text("h1")
    page.locator('#result-inputs dd[data-name="photo"] img').wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.result-image')].every(i => i.naturalWidth === 24)"
    )
    assert page.inner_text('#result-outputs dd[data-name="said"]') == "sea x1.75 cold"
    assert page.inner_text('#result-inputs dd[data-name="strength"]') == "1.75"
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(artifacts / "try-it-shared-result-zh.png"), full_page=True)

    # The one who made the link can delete it from the form.
    page.goto(hub.url + "/projects/demo/services/pub")
    form = page.locator("form.try-form")
    form.locator(".try-example").first.click()
    form.locator(".try-share-box").check()
    form.locator("button[type=submit]").click()
    second = form.locator(".try-share-link a")
    second.wait_for()
    gone = second.get_attribute("href")
    assert requests.get(hub.url + gone, timeout=30).status_code == 200
    form.locator(".try-share-delete").click()
    form.get_by_text("链接已删除").wait_for()
    assert requests.get(hub.url + gone, timeout=30).status_code == 404
    assert requests.get(hub.url + url, timeout=30).status_code == 200  # the other one stays
    other.close()


def try_it(session: requests.Session, hub: Hub, name: str, share: bool = True, **fields):
    xsrf = session.cookies.get("_xsrf") or ""
    files = {"photo": ("p.png", base64.b64decode(png_uri((9, 9, 9)).split(",")[1]), "image/png")}
    data = {"label": "hi", **fields}
    return session.post(
        f"{hub.url}/projects/demo/services/{name}/try/tint" + ("?share=1" if share else ""),
        data=data,
        files=files,
        headers={"X-XSRFToken": xsrf},
        timeout=60,
    )


def anonymous(hub: Hub) -> requests.Session:
    s = requests.Session()
    s.get(hub.url + "/login", timeout=30)  # the _xsrf cookie
    return s


def test_shared_results_attacked_through_the_hub(hub):
    before = results_kept(hub)
    # A private service's result is never kept, even for its admin who asks.
    admin = anonymous(hub)
    r = admin.post(
        hub.url + "/login",
        data={"_xsrf": admin.cookies["_xsrf"], "token": hub.token},
        allow_redirects=False,
    )
    assert r.status_code == 302
    r = try_it(admin, hub, "priv")
    assert r.status_code == 200, r.text
    assert "X-AlgoLink-Result" not in r.headers and results_kept(hub) == before
    # A public one's only when asked.
    s = anonymous(hub)
    r = try_it(s, hub, "pub", share=False)
    assert r.status_code == 200 and "X-AlgoLink-Result" not in r.headers
    assert results_kept(hub) == before
    # Asked: an unguessable link, served to anyone, not indexed, its address never sent on.
    r = r_shared = try_it(s, hub, "pub", label="<b>x</b>")
    link = r.headers["X-AlgoLink-Result"]
    assert len(results_kept(hub)) == len(before) + 1
    page = requests.get(hub.url + link, timeout=30)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in page.headers["X-Robots-Tag"]
    assert "<b>x</b>" not in page.text and "&lt;b&gt;x&lt;/b&gt; x1 cold" in page.text
    # The service's HTML file output is offered as bytes to save, never as a page to open.
    assert "data:text/html" not in page.text
    assert 'download="page" href="data:application/octet-stream;base64,' in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]

    # Guessing and walking out of the results folder find nothing.
    admin_token = (hub.data / "admin_token").read_text().strip()
    for path in (
        "/results/" + "A" * 24,
        "/results/" + link.rsplit("/", 1)[1][:-1] + ("B" if link[-1] != "B" else "C"),
        "/results/..%2F..%2Fadmin_token",
        "/results/%2e%2e%2fadmin_token",
        "/results/" + link.rsplit("/", 1)[1] + ".json",
    ):
        r = requests.get(hub.url + path, timeout=30)
        assert r.status_code == 404, path
        assert admin_token not in r.text

    # A service made private takes its shared results with it.
    r = hub.api("PATCH", "/api/v1/projects/demo/services/pub", json={"public": False})
    assert r.status_code == 200, r.text
    try:
        assert requests.get(hub.url + link, timeout=30).status_code == 404
        r = try_it(s, hub, "pub")  # nor can anyone keep a new one (nor run it anonymously)
        assert "X-AlgoLink-Result" not in r.headers
    finally:
        hub.api("PATCH", "/api/v1/projects/demo/services/pub", json={"public": True})
    assert requests.get(hub.url + link, timeout=30).status_code == 200

    # Only the delete key that came with the link deletes it (and the page's XSRF token is needed).
    key = r_shared.headers["X-AlgoLink-Result-Delete-Key"]
    headers = {"X-XSRFToken": s.cookies["_xsrf"]}
    for wrong in ("", key[:-1], "x" * len(key)):
        r = s.post(hub.url + link + "/delete", data={"key": wrong}, headers=headers, timeout=30)
        assert r.status_code == 404
    r = requests.post(hub.url + link + "/delete", data={"key": key}, timeout=30)
    assert r.status_code == 403  # no XSRF token: not from the page
    assert requests.get(hub.url + link, timeout=30).status_code == 200
    r = s.post(hub.url + link + "/delete", data={"key": key}, headers=headers, timeout=30)
    assert r.status_code == 204
    assert requests.get(hub.url + link, timeout=30).status_code == 404


def test_the_result_store_is_bounded_and_expires(tmp_path):
    store = ResultStore(tmp_path / "results", days=1, budget=10_000)
    ids = [store.keep({"outputs": {"x": "y" * 3000}})[0] for _ in range(5)]
    assert all(ids)
    sizes = sum(p.stat().st_size for p in (tmp_path / "results").glob("*.json"))
    assert sizes <= 10_000
    assert store.get(ids[0]) is None and store.get(ids[-1])["outputs"]["x"] == "y" * 3000
    assert store.keep({"outputs": {"x": "y" * 20_000}}) is None  # over the whole budget
    big = ResultStore(tmp_path / "big", days=1, budget=1 << 40)
    assert big.keep({"outputs": {"x": "y" * (MAX_RESULT + 1)}}) is None
    for bad in ("../x", "", "A" * 23, "A" * 25, "A" * 23 + "/"):
        assert store.get(bad) is None
    short = ResultStore(tmp_path / "short", days=1 / 86400)  # one second
    kept, _key = short.keep({"outputs": {}})
    assert short.get(kept) is not None
    time.sleep(1.1)
    assert short.get(kept) is None and not list((tmp_path / "short").glob("*.json"))
    assert ResultStore(tmp_path / "off", days=0).keep({"outputs": {}}) is None


def test_hints_in_chinese(hub):
    r = requests.get(
        hub.url + "/projects/demo/services/pub", headers={"Accept-Language": "zh-CN"}, timeout=30
    )
    assert "0 至 2 · 步长 0.25 · 默认值：1" in r.text
    assert "宽 至多 64 像素" in r.text and "示例 1" in r.text


def test_a_deleted_service_takes_its_links_with_it(hub, tmp_path):
    s = anonymous(hub)
    link = try_it(s, hub, "pub").headers["X-AlgoLink-Result"]
    assert requests.get(hub.url + link, timeout=30).status_code == 200
    r = hub.api("DELETE", "/api/v1/projects/demo/services/pub")
    assert r.status_code in (200, 204), r.text
    assert requests.get(hub.url + link, timeout=30).status_code == 404
    # A new public service of the same name (maybe under the same row id) does not inherit them.
    r = hub.register("demo", "g", "pub", make_bundle(tmp_path / "again"), public="true")
    assert r.status_code == 201, r.text
    assert requests.get(hub.url + link, timeout=30).status_code == 404
