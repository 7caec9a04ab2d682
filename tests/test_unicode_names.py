"""Unicode group (分组) names through a real hub: a group called 表格模型 is created, listed, renamed,
shown in the pages and used by the API with percent-encoded UTF-8 paths and by the CLI; project and
service names keep the ASCII rule (they are path segments of /serve/P/S and of the hub's files)."""

from __future__ import annotations

import os
import re
import subprocess
import unicodedata
from urllib.parse import quote

import pytest
from hub_process import ALGOLINK, Hub, make_bundle
from test_hub_pages import post_form, sign_in

pytestmark = pytest.mark.timeout(300)

TABLE = "表格模型"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-unicode")).start()
    yield h
    h.stop()


def groups(hub: Hub, project: str) -> list:
    r = hub.get(f"/api/v1/projects/{project}/groups")
    assert r.status_code == 200, r.text
    return [g["name"] for g in r.json()]


def test_a_unicode_group_through_the_api_with_percent_encoded_paths(hub, tmp_path):
    hub.ensure_group("tables", "plain")
    r = hub.post("/api/v1/projects/tables/groups", json={"name": TABLE})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == TABLE
    assert TABLE in groups(hub, "tables")
    encoded = quote(TABLE, safe="")
    assert encoded == "%E8%A1%A8%E6%A0%BC%E6%A8%A1%E5%9E%8B"
    assert hub.get(f"/api/v1/projects/tables/groups/{encoded}").json()["name"] == TABLE
    # the same name again, and the same name written decomposed (NFD), is one name
    assert hub.post("/api/v1/projects/tables/groups", json={"name": TABLE}).status_code == 409
    accented = "modèles"
    assert hub.post("/api/v1/projects/tables/groups", json={"name": accented}).status_code == 201
    nfd = unicodedata.normalize("NFD", accented)
    assert nfd != accented
    r = hub.post("/api/v1/projects/tables/groups", json={"name": nfd})
    assert r.status_code == 409, r.text
    assert hub.get(f"/api/v1/projects/tables/groups/{quote(nfd)}").json()["name"] == accented
    # a service registers into it and is listed with it
    r = hub.register("tables", TABLE, "sheet", make_bundle(tmp_path / "sheet"))
    assert r.status_code == 201, r.text
    assert hub.service("tables", "sheet")["group"] == TABLE
    # renamed: the service follows, the old path is gone
    r = hub.api("PATCH", f"/api/v1/projects/tables/groups/{encoded}", json={"name": "表格模型-v2"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "表格模型-v2"
    assert hub.service("tables", "sheet")["group"] == "表格模型-v2"
    assert hub.get(f"/api/v1/projects/tables/groups/{encoded}").status_code == 404
    r = hub.api(
        "PATCH", f"/api/v1/projects/tables/groups/{quote('表格模型-v2')}", json={"name": "plain"}
    )
    assert r.status_code == 409 and "already has a group 'plain'" in r.json()["error"]
    r = hub.api(
        "PATCH", f"/api/v1/projects/tables/groups/{quote('表格模型-v2')}", json={"name": TABLE}
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    "name, said",
    [
        ("表格 模型", "has a space"),
        ("表格/模型", "has '/'"),
        ("表格@模型", "has '@'"),
        ("表格😀", "has '😀'"),
        ("表" * 65, "too long"),
    ],
)
def test_a_group_name_still_has_rules(hub, name, said):
    hub.ensure_group("rules", "g")
    r = hub.post("/api/v1/projects/rules/groups", json={"name": name})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert said in error, error
    rule = "at most 64 characters" if said == "too long" else "letters of any language"
    assert rule in error, error


def test_project_and_service_names_stay_ascii(hub, tmp_path):
    r = hub.post("/api/v1/projects", json={"name": TABLE})
    assert r.status_code == 400
    assert "has '表'" in r.json()["error"] and "letters, digits, '_' and '-'" in r.json()["error"]
    hub.ensure_group("ascii", TABLE)
    r = hub.register("ascii", TABLE, "模型", make_bundle(tmp_path / "b"))
    assert r.status_code == 400 and "service name" in r.json()["error"]


def test_a_unicode_group_in_the_pages_created_renamed_and_refused_in_chinese(hub):
    hub.ensure_group("pages", "first")
    s = sign_in(hub, "zh-CN")
    r = post_form(s, hub, "/projects/pages", "/projects/pages/groups", name=TABLE)
    assert r.status_code == 302, r.text
    page = s.get(hub.url + "/projects/pages", timeout=30).text
    assert f"<h3>分组：{TABLE}</h3>" in page
    action = f"/projects/pages/groups/{quote(TABLE, safe='')}/rename"
    assert f'action="{action}"' in page
    r = post_form(s, hub, "/projects/pages", action, name="表格模型二")
    assert r.status_code == 302 and r.headers["Location"] == "/projects/pages#groups"
    assert "表格模型二" in groups(hub, "pages") and TABLE not in groups(hub, "pages")
    # refused in the page's language, naming the input; nothing renamed
    bad = f"/projects/pages/groups/{quote('表格模型二', safe='')}/rename"
    r = post_form(s, hub, "/projects/pages", bad, name="表格 模型")
    assert r.status_code == 400
    assert "分组名称“表格 模型”包含空格" in r.text
    r = post_form(s, hub, "/projects/pages", bad, name="first")
    assert r.status_code == 409 and "项目“pages”已有分组“first”" in r.text
    assert sorted(groups(hub, "pages")) == sorted(["first", "表格模型二"])


def test_the_cli_registers_into_lists_and_deletes_a_unicode_group(hub, tmp_path):
    env = {**os.environ, "ALGOLINK_HUB_URL": hub.url, "ALGOLINK_TOKEN": hub.token}
    env["ALGOLINK_CONFIG"] = str(tmp_path / "none.json")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*ALGOLINK, *args], env=env, capture_output=True, text=True, timeout=120
        )

    bundle = make_bundle(tmp_path / "cli")
    r = cli("register", str(bundle), "--project", "clip", "--group", TABLE, "--name", "sheet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Created group {TABLE} in clip." in r.stdout
    assert hub.service("clip", "sheet")["group"] == TABLE
    r = cli("status", "clip/sheet")
    assert r.returncode == 0, r.stderr
    assert re.search(rf"group {TABLE}\b", r.stdout), r.stdout
    r = cli("delete", "clip", "--group", TABLE, "--yes")
    assert r.returncode != 0 and "still has services" in r.stderr
    assert cli("delete", "clip/sheet", "--yes").returncode == 0
    r = cli("delete", "clip", "--group", TABLE, "--yes")
    assert r.returncode == 0, r.stderr
    assert f"Deleted the group {TABLE} of clip." in r.stdout
    assert TABLE not in groups(hub, "clip")


def test_only_developers_rename_a_group(hub):
    import requests

    hub.ensure_group("guarded", TABLE)
    viewer = hub.add_user("vera", {"guarded": "viewer"})
    outsider = hub.add_user("otto")
    path = f"{hub.url}/api/v1/projects/guarded/groups/{quote(TABLE, safe='')}"
    for token, status in ((viewer, 403), (outsider, 404), (None, 401)):
        headers = {"Authorization": f"token {token}"} if token else {}
        r = requests.patch(path, json={"name": "taken"}, headers=headers, timeout=30)
        assert r.status_code == status, (token, r.status_code, r.text)
    assert groups(hub, "guarded") == [TABLE]
    developer = hub.add_user("dev", {"guarded": "developer"})
    r = requests.patch(
        path, json={"name": "表格"}, headers={"Authorization": f"token {developer}"}, timeout=30
    )
    assert r.status_code == 200, r.text
    assert groups(hub, "guarded") == ["表格"]
