"""A ModelServer with a token (as the notebook kernel runs it), on a real socket in a thread."""

from __future__ import annotations

import asyncio
import threading

import pytest
import requests
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from modelcloud import Registry, text
from modelcloud.server import ModelServer


@pytest.fixture
def token_server():
    registry = Registry()

    @registry.command("echo", inputs={"s": text()}, outputs={"s": text()})
    def echo(model, inputs):
        return inputs["s"]

    registry.set_model(None)
    ready = threading.Event()
    state = {}

    def serve():
        async def main():
            server = ModelServer(registry, token="s3cret")
            http = HTTPServer(server.make_app())
            sockets = bind_sockets(0, "127.0.0.1")
            http.add_sockets(sockets)
            state["url"] = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
            state["stop"] = asyncio.Event()
            ready.set()
            await state["stop"].wait()
            http.stop()
            server.shutdown()

        state["loop"] = asyncio.new_event_loop()
        state["loop"].run_until_complete(main())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    ready.wait(10)
    yield state["url"]
    state["loop"].call_soon_threadsafe(state["stop"].set)
    t.join(10)


def test_token_required_everywhere(token_server):
    for path in ("/meta", "/healthcheck", "/openapi.json", "/echo"):
        r = requests.get(token_server + path)
        assert r.status_code == 401, path
        assert "token" in r.json()["error"]
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="modelcloud"', path
    r = requests.post(
        token_server + "/echo", json={"s": "a"}, headers={"Authorization": "token nope"}
    )
    assert r.status_code == 401


def test_token_header_or_query(token_server):
    r = requests.post(
        token_server + "/echo", json={"s": "a"}, headers={"Authorization": "token s3cret"}
    )
    assert r.json() == {"s": "a"}
    r = requests.post(token_server + "/echo?token=s3cret", json={"s": "b"})
    assert r.json() == {"s": "b"}
    r = requests.get(token_server + "/healthcheck", headers={"Authorization": "Bearer s3cret"})
    assert r.json() == {"status": "RUNNING", "ongoing": 0}


def test_preflight_needs_no_token(token_server):
    r = requests.options(token_server + "/echo")
    assert r.status_code == 204


def test_token_still_checked_once_the_command_runs_on_the_loop(token_server):
    """A command that has been fast lately is answered on the I/O loop without a RequestHandler: the
    token is checked there all the same."""
    good = {"Authorization": "token s3cret"}
    for i in range(40):  # well past the 16 fast runs that move a command onto the loop
        r = requests.post(token_server + "/echo", json={"s": str(i)}, headers=good)
        assert r.json() == {"s": str(i)}
    for headers in ({}, {"Authorization": "token nope"}, {"Authorization": "Bearer s3cre"}):
        r = requests.post(token_server + "/echo", json={"s": "a"}, headers=headers)
        assert r.status_code == 401, headers
        assert "token" in r.json()["error"]
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="modelcloud"', headers
    r = requests.post(token_server + "/echo?token=s3cret", json={"s": "q"})
    assert r.json() == {"s": "q"}
    r = requests.post(
        token_server + "/echo", json={"s": "b"}, headers={"Authorization": "bearer s3cret"}
    )
    assert r.json() == {"s": "b"}
