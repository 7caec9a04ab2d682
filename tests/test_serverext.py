"""The Jupyter server extension, through a real Jupyter server (pytest-jupyter) and a real kernel.

The server is configured from the shipped ``jupyter-config`` file, so these tests also check that the
extension loads under the name that file enables. The kernel is a real ipykernel started as a notebook's
session; it serves through the notebook magics (``%load_ext algolink_jupyter``, ``%%algolink_command``,
``%algolink serve``), which announce its server in the Jupyter server's runtime directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Optional

import pytest
from jupyter_server.auth import Authorizer
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from algolink_jupyter.kernel import announce
from modelcloud.server import DEFAULT_MAX_BODY_SIZE

pytest_plugins = ["pytest_jupyter.jupyter_server"]

REPO = Path(__file__).resolve().parent.parent
CONFIG_FILE = REPO / "jupyter-config" / "jupyter_server_config.d" / "algolink_jupyter.json"
NOTEBOOK = "work/demo.ipynb"


def shipped_config(**server_app) -> Config:
    """The config that installing the package enables, with ServerApp settings of a test on top."""
    config = json.loads(CONFIG_FILE.read_text())
    config["ServerApp"].update(server_app)
    return Config(config)


@pytest.fixture
def jp_server_config():
    return shipped_config()


# -- helpers ------------------------------------------------------------------------------------------------
def body_of(response: HTTPResponse):
    return json.loads(response.body.decode())


class Recorder:
    """Every response the tests get, so that the kernel's secrets can be looked for in all of them."""

    def __init__(self) -> None:
        self.responses: list = []

    def add(self, response: HTTPResponse) -> HTTPResponse:
        self.responses.append(response)
        return response

    def assert_never_shows(self, *secrets_: str) -> None:
        assert self.responses
        for response in self.responses:
            text = response.body.decode("utf-8", "replace") + "\n" + str(response.headers)
            for secret in secrets_:
                assert secret not in text, f"{response.effective_url} revealed a secret"


@pytest.fixture
def fetch(jp_fetch):
    """jp_fetch with the server's token, that returns error responses instead of raising."""
    recorder = Recorder()

    async def do(*parts, **kwargs):
        kwargs.setdefault("raise_error", False)
        return recorder.add(await jp_fetch(*parts, **kwargs))

    do.recorder = recorder
    return do


@pytest.fixture
def anonymous(http_server_client, jp_base_url):
    """A client without credentials, on a path below the base URL."""

    async def do(path, **kwargs):
        kwargs.setdefault("raise_error", False)
        return await http_server_client.fetch(jp_base_url + path, **kwargs)

    return do


class Kernel:
    """A kernel of the Jupyter server, started as a notebook's session, and a client to run code in it."""

    def __init__(self, kernel_id: str, client) -> None:
        self.id = kernel_id
        self.client = client

    async def run(self, code: str) -> str:
        out: list = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        reply = await self.client.execute_interactive(
            textwrap.dedent(code), timeout=30, output_hook=hook
        )
        assert reply["content"]["status"] == "ok", "".join(out)
        return "".join(out)


async def start_kernel(fetch, serverapp) -> Kernel:
    from jupyter_client.asynchronous import AsyncKernelClient

    r = await fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps(
            {
                "path": NOTEBOOK,
                "name": "demo.ipynb",
                "type": "notebook",
                "kernel": {"name": "python3"},
            }
        ),
    )
    assert r.code == 201, r.body
    kernel_id = body_of(r)["kernel"]["id"]
    client = AsyncKernelClient()
    client.load_connection_info(
        serverapp.kernel_manager.get_kernel(kernel_id).get_connection_info()
    )
    client.start_channels()
    await client.wait_for_ready(timeout=60)
    return Kernel(kernel_id, client)


# The notebook's cells, as a user writes them.
LOAD = "%load_ext algolink_jupyter"
SHOUT = """
%%algolink_command shout --inputs "words=text" --outputs "loud=text"
def shout(model, inputs):
    return {"loud": inputs["words"].upper() + "!"}
"""
SHOUT_AGAIN = """
%%algolink_command shout --inputs "words=text" --outputs "loud=text"
def shout(model, inputs):
    return {"loud": inputs["words"].upper() + "!!!"}
"""
NAP = """
%%algolink_command nap --inputs "seconds=number" --outputs "slept=number"
def nap(model, inputs):
    import time
    time.sleep(inputs["seconds"])
    return {"slept": inputs["seconds"]}
"""
SERVE = "%algolink serve"
INFO = """
import algolink_jupyter
from algolink_jupyter.kernel import announce
from modelcloud.server import DEFAULT_MAX_BODY_SIZE
print(announce.kernel_id(), algolink_jupyter.serving_info()["url"], algolink_jupyter.serving_info()["token"])
"""


async def serving_kernel(fetch, serverapp) -> tuple:
    """A notebook's kernel that serves two commands: (kernel, its server's port, its server's token)."""
    kernel = await start_kernel(fetch, serverapp)
    for cell in (LOAD, SHOUT, NAP):
        await kernel.run(cell)
    assert "Token:" in await kernel.run(SERVE)
    kid, url, token = (await kernel.run(INFO)).split()
    assert kid == kernel.id  # the kernel knows its own id from its connection file
    # The announcement is in this Jupyter server's runtime directory.
    assert announce.path_for(kid, Path(serverapp.runtime_dir)).is_file()
    return kernel, url.rsplit(":", 1)[1], token


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- authentication ----------------------------------------------------------------------------------------
ROUTES = [
    ("GET", "algolink/api/endpoints"),
    ("GET", "algolink/kernels/{kid}/meta"),
    ("GET", "algolink/kernels/{kid}/"),
    ("POST", "algolink/kernels/{kid}/shout"),
    ("OPTIONS", "algolink/kernels/{kid}/shout"),
]


@pytest.mark.parametrize(
    "jp_server_config",
    [shipped_config(), shipped_config(allow_unauthenticated_access=False)],
    ids=["default", "no-unauthenticated-access"],
)
@pytest.mark.filterwarnings("ignore:Extension endpoints without")  # jupyter_server_terminals' own
async def test_every_route_needs_jupyter_credentials(anonymous, fetch, jp_serverapp):
    kid = str(uuid.uuid4())
    for method, route in ROUTES:
        path = route.format(kid=kid)
        body = '{"words": "hi"}' if method == "POST" else None
        for headers in ({}, {"Authorization": "token wrong"}, {"Cookie": "username-x=forged"}):
            r = await anonymous(path, method=method, body=body, headers=headers)
            assert r.code == 403, (method, path, headers, r.code)
    # The same routes with the server's token: the extension is loaded and answers.
    r = await fetch("algolink", "api", "endpoints")
    assert r.code == 200 and body_of(r) == []
    r = await fetch("algolink", "kernels", kid, "meta")
    assert r.code == 404


async def test_browser_login_cookie_needs_the_xsrf_token(anonymous, fetch, jp_serverapp):
    """A browser is logged in by cookie: it may read, and POST only with Jupyter's XSRF token."""
    kid = str(uuid.uuid4())
    r = await fetch("algolink", "api", "endpoints")
    login = [c.split(";", 1)[0] for c in r.headers.get_list("Set-Cookie") if "_xsrf" not in c]
    assert login, "a token-authenticated request sets Jupyter's login cookie"
    cookie = "; ".join(login)

    r = await anonymous("algolink/api/endpoints", headers={"Cookie": cookie})
    assert r.code == 200 and body_of(r) == []
    post = {"method": "POST", "body": '{"words": "hi"}'}
    r = await anonymous(f"algolink/kernels/{kid}/shout", headers={"Cookie": cookie}, **post)
    assert r.code == 403  # no XSRF token
    xsrf = {"Cookie": cookie + "; _xsrf=0123456789abcdef", "X-XSRFToken": "0123456789abcdef"}
    r = await anonymous(f"algolink/kernels/{kid}/shout", headers=xsrf, **post)
    assert r.code == 404 and "%algolink serve" in body_of(r)["error"]


# pytest-jupyter gives the server a random token unless the config names ServerApp.token.
@pytest.mark.parametrize("jp_server_config", [shipped_config(token="")])
async def test_server_without_authentication(anonymous, jp_serverapp):
    """With Jupyter's authentication turned off, the routes are open as the rest of Jupyter is."""
    assert not jp_serverapp.identity_provider.token
    r = await anonymous("algolink/api/endpoints")
    assert r.code == 200 and body_of(r) == []
    r = await anonymous(f"algolink/kernels/{uuid.uuid4()}/meta")
    assert r.code == 404 and "%algolink serve" in body_of(r)["error"]


class ReadOnly(Authorizer):
    """An authorizer that lets users look but not run anything."""

    asked: list = []

    def is_authorized(self, handler, user, action, resource):
        self.asked.append((handler.request.method, action, resource))
        return action == "read"


@pytest.mark.parametrize("jp_server_config", [shipped_config(authorizer_class=ReadOnly)])
async def test_jupyter_authorizer_decides(fetch, jp_serverapp):
    ReadOnly.asked.clear()
    kid = str(uuid.uuid4())
    r = await fetch("algolink", "api", "endpoints")
    assert r.code == 200
    r = await fetch("algolink", "kernels", kid, "meta")
    assert r.code == 404  # allowed to look: the kernel does not serve
    r = await fetch("algolink", "kernels", kid, "shout", method="POST", body='{"words": "hi"}')
    assert r.code == 403  # not allowed to run a command
    assert ReadOnly.asked == [
        ("GET", "read", "kernels"),
        ("GET", "read", "kernels"),
        ("POST", "execute", "kernels"),
    ]


# -- forwarding to a real kernel ------------------------------------------------------------------------------
async def test_forwards_to_the_kernel_server(fetch, anonymous, jp_serverapp, jp_base_url):
    kernel, port, token = await serving_kernel(fetch, jp_serverapp)
    kid = kernel.id
    runtime_dir = Path(jp_serverapp.runtime_dir)
    try:
        # The live endpoints: the kernel, its commands, its URL through Jupyter and its notebook.
        r = await fetch("algolink", "api", "endpoints")
        assert r.code == 200
        assert body_of(r) == [
            {
                "kernel_id": kid,
                "commands": ["nap", "shout"],
                "url": f"{jp_base_url}algolink/kernels/{kid}/",
                "notebook": NOTEBOOK,
            }
        ]

        # Without credentials: refused before anything reaches the kernel.
        for method, route in ROUTES:
            body = '{"words": "hi"}' if method == "POST" else None
            r = await anonymous(route.format(kid=kid), method=method, body=body)
            assert r.code == 403
            assert b"shout" not in r.body

        # GET routes of the kernel's server.
        r = await fetch("algolink", "kernels", kid, "meta")
        assert r.code == 200 and r.headers["Content-Type"].startswith("application/json")
        assert {c["name"] for c in body_of(r)["commands"]} == {"nap", "shout"}
        for root in ("algolink/kernels/" + kid, "algolink/kernels/" + kid + "/"):
            r = await fetch(root)
            assert r.code == 200 and "commands" in body_of(r)
        r = await fetch("algolink", "kernels", kid, "healthcheck")
        assert r.code == 200 and body_of(r) == {"status": "RUNNING", "ongoing": 0}
        r = await fetch("algolink", "kernels", kid, "openapi.json")
        assert r.code == 200 and "/shout" in body_of(r)["paths"]
        r = await fetch("algolink", "kernels", kid, "shout")
        assert r.code == 200 and body_of(r)["name"] == "shout"

        # A command, with a JSON body and with the body as `curl -d` sends it.
        r = await fetch(
            "algolink",
            "kernels",
            kid,
            "shout",
            method="POST",
            body='{"words": "hello"}',
            headers={"Content-Type": "application/json"},
        )
        assert r.code == 200, r.body
        assert body_of(r) == {"loud": "HELLO!"}
        curl = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "curl/8.5.0"}
        r = await fetch(
            "algolink", "kernels", kid, "shout", method="POST", body='{"words": "hi"}', headers=curl
        )
        assert r.code == 200 and body_of(r) == {"loud": "HI!"}
        # Jupyter's token in the URL instead of the header.
        r = await fetch(
            "algolink",
            "kernels",
            kid,
            "shout",
            method="POST",
            body='{"words": "q"}',
            headers={"Authorization": ""},
            params={"token": jp_serverapp.identity_provider.token},
        )
        assert r.code == 200 and body_of(r) == {"loud": "Q!"}

        # The kernel's errors come back as they are: status and JSON body.
        r = await fetch("algolink", "kernels", kid, "nothing", method="POST", body="{}")
        assert r.code == 404 and "error" in body_of(r)
        r = await fetch("algolink", "kernels", kid, "shout", method="POST", body="{not json")
        assert r.code == 400 and "JSON" in body_of(r)["error"]
        r = await fetch("algolink", "kernels", kid, "shout", method="POST", body="{}")
        assert r.code == 400 and body_of(r)["field"] == "words"
        r = await fetch("algolink", "kernels", kid, "shout", method="OPTIONS")
        assert r.code == 204
        # A body over the model server's limit is refused by the proxy, which goes on serving.
        big = b"x" * (DEFAULT_MAX_BODY_SIZE + 1)
        r = await fetch("algolink", "kernels", kid, "shout", method="POST", body=big)
        assert r.code == 413 and "limit" in body_of(r)["error"]
        del big

        # Jupyter keeps answering while a command runs in the kernel's server.
        nap = asyncio.ensure_future(
            fetch("algolink", "kernels", kid, "nap", method="POST", body='{"seconds": 1.5}')
        )
        await asyncio.sleep(0.2)
        r = await fetch("api", "status")
        assert r.code == 200 and not nap.done()
        r = await nap
        assert r.code == 200 and body_of(r) == {"slept": 1.5}

        # Re-running a command cell swaps it in place; a new command is listed at once.
        await kernel.run(SHOUT_AGAIN)
        r = await fetch("algolink", "kernels", kid, "shout", method="POST", body='{"words": "a"}')
        assert r.code == 200 and body_of(r) == {"loud": "A!!!"}
        await kernel.run(NAP.replace("nap", "doze"))
        r = await fetch("algolink", "api", "endpoints")
        assert body_of(r)[0]["commands"] == ["doze", "nap", "shout"]

        # The kernel's token and port never reach a client.
        fetch.recorder.assert_never_shows(token, f":{port}")

        # `%algolink stop` takes the announcement away: not serving, 404 with what to do.
        live = announce.read(kid, runtime_dir)
        assert live is not None and live["token"] == token
        assert "Stopped" in await kernel.run("%algolink stop")
        r = await fetch("algolink", "kernels", kid, "shout", method="POST", body='{"words": "a"}')
        assert r.code == 404
        assert list(body_of(r)) == ["error"] and "%algolink serve" in body_of(r)["error"]
        r = await fetch("algolink", "api", "endpoints")
        assert body_of(r) == []

        # An announcement whose server is gone (a crash) while its kernel lives: 502, with what to do.
        announce.write(kid, live, directory=runtime_dir)
        r = await fetch("algolink", "kernels", kid, "meta")
        assert r.code == 502 and "%algolink serve" in body_of(r)["error"]

        # Serving again: reachable again, with a new token that stays just as hidden.
        await kernel.run(SERVE)
        _, url, token2 = (await kernel.run(INFO)).split()
        r = await fetch("algolink", "kernels", kid, "shout", method="POST", body='{"words": "b"}')
        assert r.code == 200 and body_of(r) == {"loud": "B!!!"}
        fetch.recorder.assert_never_shows(token, token2, f":{port}", url)
    finally:
        kernel.client.stop_channels()


async def test_stale_and_foreign_announcements_are_ignored(fetch, jp_serverapp):
    kernel, port, token = await serving_kernel(fetch, jp_serverapp)
    runtime_dir = Path(jp_serverapp.runtime_dir)
    live = announce.read(kernel.id, runtime_dir)
    try:
        assert live is not None
        r = await fetch("algolink", "kernels", kernel.id, "healthcheck")
        assert r.code == 200

        # The same kernel's announcement, left behind by a process that is gone: ignored, though the
        # port it names answers.
        announce.write(kernel.id, {**live, "pid": dead_pid()}, directory=runtime_dir)
        r = await fetch("algolink", "kernels", kernel.id, "healthcheck")
        assert r.code == 404 and "%algolink serve" in body_of(r)["error"]
        assert body_of(await fetch("algolink", "api", "endpoints")) == []

        # A live announcement for a kernel this Jupyter server does not run: ignored too.
        other = str(uuid.uuid4())
        announce.write(
            other, {**live, "kernel_id": other, "pid": os.getpid()}, directory=runtime_dir
        )
        r = await fetch("algolink", "kernels", other, "healthcheck")
        assert r.code == 404
        assert body_of(await fetch("algolink", "api", "endpoints")) == []

        # Put back, the kernel serves through Jupyter again.
        announce.write(kernel.id, live, directory=runtime_dir)
        r = await fetch("algolink", "kernels", kernel.id, "healthcheck")
        assert r.code == 200
        endpoints = body_of(await fetch("algolink", "api", "endpoints"))
        assert [e["kernel_id"] for e in endpoints] == [kernel.id]
        fetch.recorder.assert_never_shows(token, f":{port}")
    finally:
        kernel.client.stop_channels()


# -- what the panel's curl lines need: how curl authenticates, the recorded examples -------------------------
@pytest.mark.parametrize(
    ("jp_server_config", "expected"),
    [
        (shipped_config(), {"mode": "token", "xsrf": True}),
        (shipped_config(token=""), {"mode": "none", "xsrf": True}),
        (shipped_config(token="", disable_check_xsrf=True), {"mode": "none", "xsrf": False}),
    ],
    ids=["token", "no-authentication", "no-xsrf-check"],
)
async def test_access_says_how_curl_authenticates(fetch, anonymous, jp_serverapp, expected):
    r = await fetch("algolink", "api", "access")
    assert r.code == 200 and body_of(r) == expected
    r = await anonymous("algolink/api/access")
    assert r.code == (403 if expected["mode"] == "token" else 200)
    if jp_serverapp.identity_provider.token:
        fetch.recorder.assert_never_shows(jp_serverapp.identity_provider.token)


PASSWORD = "correct horse battery"


def password_config() -> Config:
    from jupyter_server.auth import passwd

    config = shipped_config(token="")
    config.PasswordIdentityProvider.hashed_password = passwd(PASSWORD)
    return config


@pytest.mark.parametrize("jp_server_config", [password_config()])
async def test_access_of_a_password_server(anonymous, jp_serverapp):
    """A password only: no token exists that curl could send, and the panel has to say so."""
    assert not jp_serverapp.identity_provider.token
    r = await anonymous("algolink/api/access")
    assert r.code == 403
    # Logged in as a browser is, with the password.
    r = await anonymous("login")
    xsrf = next(
        c.split(";", 1)[0].split("=", 1)[1]
        for c in r.headers.get_list("Set-Cookie")
        if c.startswith("_xsrf=")
    )
    r = await anonymous(
        "login",
        method="POST",
        body=f"password={PASSWORD.replace(' ', '+')}&_xsrf={xsrf}",
        headers={"Cookie": f"_xsrf={xsrf}"},
        follow_redirects=False,
    )
    assert r.code == 302, r.body
    login = [c.split(";", 1)[0] for c in r.headers.get_list("Set-Cookie") if "_xsrf" not in c]
    r = await anonymous("algolink/api/access", headers={"Cookie": "; ".join(login)})
    assert r.code == 200 and body_of(r) == {"mode": "password", "xsrf": True}


class NoContents(Authorizer):
    """An authorizer that lets users use kernels but not read files."""

    def is_authorized(self, handler, user, action, resource):
        return resource != "contents"


@pytest.mark.parametrize("jp_server_config", [shipped_config(authorizer_class=NoContents)])
async def test_examples_need_the_right_to_read_files(fetch, jp_serverapp):
    r = await fetch("algolink", "api", "examples", str(uuid.uuid4()), "shout")
    assert r.code == 403


SAVE_EXAMPLES = """
from algolink_jupyter import examples
examples.save("shout", {"words": "first"}, {"loud": "FIRST!"})
examples.save("shout", {"words": "x" * 20000}, {"loud": "X"})
examples.save("shout", {"words": "second"}, {"loud": "SECOND!"})
"""


async def test_examples_route_answers_the_newest_recorded_examples(
    fetch, anonymous, jp_serverapp, jp_root_dir
):
    (jp_root_dir / "work").mkdir()
    kernel, _port, _token = await serving_kernel(fetch, jp_serverapp)
    folder = jp_root_dir / "work" / "algolink_examples" / "shout"
    try:
        r = await fetch("algolink", "api", "examples", kernel.id, "shout")
        assert r.code == 200 and body_of(r) == {"examples": []}

        # Saved in the kernel, as the test form's "Save as example" does: beside the notebook.
        await kernel.run(SAVE_EXAMPLES)
        assert sorted(p.name for p in folder.iterdir()) == ["001.json", "002.json", "003.json"]
        (folder / "004.json").write_text("{not json")
        (folder / "005.json").write_text('{"inputs": ["not", "an", "object"]}')
        r = await fetch("algolink", "api", "examples", kernel.id, "shout")
        # Newest first; the one too large for a line to paste and the broken ones left out.
        assert body_of(r) == {
            "examples": [
                {"file": "algolink_examples/shout/003.json", "inputs": {"words": "second"}},
                {"file": "algolink_examples/shout/001.json", "inputs": {"words": "first"}},
            ]
        }
        # At most five.
        await kernel.run(
            "for i in range(6): examples.save('shout', {'words': str(i)}, {'loud': str(i)})"
        )
        r = await fetch("algolink", "api", "examples", kernel.id, "shout")
        assert [e["inputs"]["words"] for e in body_of(r)["examples"]] == ["5", "4", "3", "2", "1"]

        # A command the kernel does not serve, a kernel that does not serve, no credentials.
        for command in ("nothing", "..", "sh%20out"):
            r = await fetch("algolink", "api", "examples", kernel.id, command)
            assert r.code == 404, command
        r = await fetch("algolink", "api", "examples", str(uuid.uuid4()), "shout")
        assert r.code == 404 and "%algolink serve" in body_of(r)["error"]
        r = await anonymous(f"algolink/api/examples/{kernel.id}/shout")
        assert r.code == 403
    finally:
        kernel.client.stop_channels()


# -- the panel's curl lines, run ----------------------------------------------------------------------------
JS = REPO / "js"

#: A command that takes one input of every type the panel makes a sample for.
INSPECT = """
%%algolink_command inspect --inputs "photo=image(width=20, height=12), mask=segmentation(label_to_id={'bg': 3, 'cat': 1}, default_label='bg'), doc=file(extension='.csv'), folder=directory, point=image_point, box=image_bounding_box, marks=image_landmarks(2), vec=vector(length=3), tags=array(item_type=text(min_length=7), min_length=2), n=number(min=2, max=9, step=0.5), flag=boolean, mood=category(choices=['calm', 'wild']), note=text(max_length=3), blob=any, kept=file(extension='.bin', default='kept.bin')" --outputs "report=any"
def inspect(model, inputs):
    import os
    photo = inputs["photo"]
    with open(inputs["doc"], "rb") as f:
        doc = f.read().decode()
    return {"report": {
        "photo": [photo.size[0], photo.size[1], photo.mode, photo.getextrema()],
        "mask": [list(inputs["mask"].shape), sorted(set(inputs["mask"].ravel().tolist()))],
        "doc": [os.path.basename(inputs["doc"]), doc],
        "folder": os.listdir(inputs["folder"]),
        "kept": [os.path.basename(inputs["kept"]), open(inputs["kept"]).read()],
        "rest": [inputs[k] for k in ("point", "box", "marks", "tags", "n", "flag", "mood", "note", "blob")],
        "vec": inputs["vec"].tolist(),
    }}
"""

#: What the panel does on "Copy curl", with its own functions (js/src/model.ts, compiled by `npm test`).
PANEL_LINES = """
const m = require(process.argv[1]);
const given = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const access = m.parseAccess(given.access);
const endpoint = m.parseEndpoints(given.endpoints)[0];
process.stdout.write(JSON.stringify(endpoint.commands.map(command => {
  const { body, example } = m.requestBody(
    m.parseInputs(given.specs[command]), m.parseExamples(given.examples[command]));
  return { command, example, line: m.curlLine(m.commandUrl(given.origin, endpoint, command), body, access) };
})));
"""


@pytest.fixture(scope="session")
def panel_model() -> Path:
    """The panel's line builder, compiled from js/src as `npm test` compiles it (again when stale)."""
    tsc = JS / "node_modules" / ".bin" / "tsc"
    node = shutil.which("node")
    if node is None or not tsc.exists():
        pytest.skip("node or the extension's npm packages are missing: run `make js-test`")
    built = JS / "build-test" / "src" / "model.js"
    newest = max(p.stat().st_mtime for p in (JS / "src").glob("*.ts"))
    if not built.exists() or built.stat().st_mtime < newest:
        subprocess.run([str(tsc), "-p", "tsconfig.test.json"], cwd=JS, check=True, timeout=300)
    return built


async def run(*args: str, stdin: bytes = b"", env: Optional[dict] = None) -> str:
    """A process run without blocking the event loop the Jupyter server under test runs on."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


# Jupyter's own API asks a POST without a token for its XSRF pair, as the panel's lines send it.
XSRF_PAIR = {"X-XSRFToken": "algolink", "Cookie": "_xsrf=algolink"}


@pytest.mark.parametrize("jp_server_config", [shipped_config(token="")])
async def test_panel_curl_lines_run_as_given_without_authentication(
    jp_fetch, anonymous, jp_serverapp, jp_root_dir, jp_http_port, jp_base_url, panel_model
):
    """With Jupyter's authentication off, the lines carry no token and run as they are, each input a
    sample the kernel's server takes (or the recorded example)."""

    async def fetch(*parts, **kwargs):
        kwargs.setdefault("raise_error", False)
        return await jp_fetch(*parts, headers=XSRF_PAIR, **kwargs)

    (jp_root_dir / "work").mkdir()
    kernel, _port, _token = await serving_kernel(fetch, jp_serverapp)
    try:
        await kernel.run(INSPECT)
        await kernel.run(SAVE_EXAMPLES)
        given: dict = {"origin": f"http://127.0.0.1:{jp_http_port}", "specs": {}, "examples": {}}
        for key, path in (
            ("access", "algolink/api/access"),
            ("endpoints", "algolink/api/endpoints"),
        ):
            given[key] = body_of(await anonymous(path))
        for command in ("inspect", "nap", "shout"):
            base = f"algolink/kernels/{kernel.id}/{command}"
            given["specs"][command] = body_of(await anonymous(base))
            examples_path = f"algolink/api/examples/{kernel.id}/{command}"
            given["examples"][command] = body_of(await anonymous(examples_path))
        assert given["access"] == {"mode": "none", "xsrf": True}
        lines = json.loads(
            await run("node", "-e", PANEL_LINES, str(panel_model), stdin=json.dumps(given).encode())
        )
        assert [(c["command"], c["example"]) for c in lines] == [
            ("inspect", None),
            ("nap", None),
            ("shout", "algolink_examples/shout/003.json"),
        ]
        answers = {}
        env = {k: v for k, v in os.environ.items() if k != "JUPYTER_TOKEN"}
        for c in lines:
            assert "JUPYTER_TOKEN" not in c["line"] and "Authorization" not in c["line"]
            assert f"{jp_base_url}algolink/kernels/{kernel.id}/{c['command']}" in c["line"]
            out = await run("bash", "-c", c["line"] + " -sS -w '\\n%{http_code}'", env=env)
            body, code = out.rsplit("\n", 1)
            assert code == "200", (c["line"][:300], out)
            answers[c["command"]] = json.loads(body)
        assert answers["shout"] == {"loud": "SECOND!"}
        assert answers["nap"] == {"slept": 0}
        assert answers["inspect"] == {
            "report": {
                "photo": [20, 12, "RGB", [[255, 255], [255, 255], [255, 255]]],
                "mask": [[8, 8], [3]],
                "doc": ["example.csv", "hello\n"],
                "folder": [],
                # A file's default is a path on the server, which a client may not send: a sample.
                "kept": ["example.bin", "hello\n"],
                "rest": [
                    [0.5, 0.5],
                    [0.25, 0.25, 0.75, 0.75],
                    [[0.5, 0.5], [0.5, 0.5]],
                    ["hello!!", "hello!!"],
                    2,
                    False,
                    "calm",
                    "hel",
                    "hello",
                ],
                "vec": [0.0, 0.0, 0.0],
            }
        }
    finally:
        kernel.client.stop_channels()
