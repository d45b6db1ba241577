"""Requests Exosuit sends on its own (the HTTP tool, webhooks) against a real HTTP sink on
loopback: what was checked is what is sent, to the address that was checked."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from activities.acting import ToolRefused, http_request
from activities.webhooks import post_pinned
from exosuit.tooling import HttpConfig, SecretHeader, ToolsConfig
from tests.support.model_server import serve, shutdown
from tests.support.sinks import HttpSink

TOKEN = "s3cret-never-echoed"


@pytest.fixture
async def sink() -> AsyncIterator[tuple[HttpSink, int]]:
    sink = HttpSink()
    server, task, port = await serve(sink.app())
    yield sink, port
    await shutdown(server, task)


def tools(port: int, host: str = "127.0.0.1") -> ToolsConfig:
    hooks = f"http://{host}:{port}/hooks/"
    secret = SecretHeader(prefix=hooks, name="Authorization", env="HOOK_TOKEN", format="Bearer {}")
    return ToolsConfig(http=HttpConfig(allow=[hooks], secret_headers=[secret]))


async def send(port: int, args: dict[str, Any], config: ToolsConfig | None = None) -> str:
    return await http_request(config or tools(port), args, "t:s:1", {"HOOK_TOKEN": TOKEN})


async def test_a_percent_encoded_climb_never_reaches_the_server(sink: tuple[HttpSink, int]) -> None:
    received, port = sink
    with pytest.raises(ToolRefused):
        await send(port, {"method": "POST", "url": f"http://127.0.0.1:{port}/hooks/%2e%2e/admin/delete-all"})
    assert received.requests == []


async def test_dot_segments_inside_the_prefix_are_sent_resolved(sink: tuple[HttpSink, int]) -> None:
    received, port = sink
    await send(port, {"method": "GET", "url": f"http://127.0.0.1:{port}/hooks/a/%2e%2e/b"})
    assert [r.path for r in received.requests] == ["/hooks/b"]


@pytest.mark.parametrize("name", ["Transfer-Encoding", "Host", "authorization"])
async def test_drafted_framing_host_and_secret_headers_are_never_sent(
    sink: tuple[HttpSink, int], name: str
) -> None:
    received, port = sink
    args = {"method": "POST", "url": f"http://127.0.0.1:{port}/hooks/x", "headers": {name: "chunked"}}
    with pytest.raises(ToolRefused, match="header"):
        await send(port, args, tools(port))
    assert received.requests == []


async def test_the_configured_secret_is_masked_in_what_an_echoing_endpoint_answers(
    sink: tuple[HttpSink, int],
) -> None:
    received, port = sink
    received.reply = f"you sent: authorization: Bearer {TOKEN}"
    output = await send(port, {"method": "GET", "url": f"http://127.0.0.1:{port}/hooks/echo"})
    assert received.requests[0].headers["authorization"] == f"Bearer {TOKEN}"  # it was sent
    assert TOKEN not in output and "[secret withheld]" in output


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The process's resolver, answering for `rebind.test`: 127.0.0.1 the first time, then
    127.0.0.2 (where nothing listens) - as a rebinding name would, only on loopback."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = "127.0.0.1" if not asked else "127.0.0.2"
        asked.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


async def test_a_webhook_goes_to_the_address_that_was_checked(
    sink: tuple[HttpSink, int], rebinding: list[str]
) -> None:
    received, port = sink
    async with httpx.AsyncClient(follow_redirects=False) as http:
        response = await post_pinned(
            http, f"http://rebind.test:{port}/hooks/w", "{}", {"x-test": "1"}, allow_loopback=True
        )
    assert response.status_code == 201 and rebinding == ["127.0.0.1"]  # one resolution
    assert received.requests[0].headers["host"] == f"rebind.test:{port}"


async def test_the_http_tool_goes_to_the_address_that_was_checked(
    sink: tuple[HttpSink, int], rebinding: list[str]
) -> None:
    received, port = sink
    config = tools(port, "rebind.test")
    assert config.http is not None
    config.http.allow_private_network = True
    output = await send(port, {"method": "GET", "url": f"http://rebind.test:{port}/hooks/t"}, config)
    assert output.startswith("HTTP 201") and rebinding == ["127.0.0.1"]
    assert received.requests[0].headers["host"] == f"rebind.test:{port}"
