"""A real `exosuit web` process stopped with SIGTERM (a deploy's restart) answers its waiting
requests before it exits: a long-poll gets the task as it is, an event stream ends cleanly.
Cut off when the server's grace ran out, they were answered 500 (found by benchmarks/soak.py).
The answer says `Connection: close`: the server closes the connection after it, so a client
must not send its next request on it. While it runs, it keeps an idle connection open longer
than clients keep theirs, so that it never closes one under a request on its way."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import httpx

from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.soak import TEAM, SoakSystem
from tests.support.system import until
from web.api.waiting import TIMEOUT_HEADER

IN_FLIGHT = re.escape('exosuit_requests_in_flight{pool="waiting"}')


async def test_a_stopping_web_process_answers_its_long_polls_and_ends_its_streams(
    model_server: ModelServer, tmp_path: Path
) -> None:
    system = SoakSystem(tmp_path / "web", model_server.register(ScriptedModel()))
    try:
        await system.start()
        headers = {"Authorization": f"Bearer {system.approve_token}"}
        async with (
            httpx.AsyncClient(base_url=system.base_url, headers=headers, timeout=60) as http,
            httpx.AsyncClient(base_url=system.base_url) as anonymous,
        ):
            body = {"title": "Wait", "instructions": "Go.", "team": TEAM, "autonomy": "supervised"}
            submitter = {"Authorization": f"Bearer {system.submit_token}"}
            created = await http.post("/api/v1/tasks", json=body, headers=submitter)
            assert created.status_code == 201, created.text
            path = f"/api/v1/tasks/{created.json()['id']}"
            at_gate = await http.get(f"{path}/wait", params={"for": "gate", "timeout": 30})
            assert at_gate.json()["open_gate"] is not None  # it stays there: nobody decides it

            async def stream() -> list[str]:
                async with http.stream("GET", f"{path}/events") as events:
                    return [line async for line in events.aiter_lines() if line.startswith("data: ")]

            waiting = asyncio.create_task(http.get(f"{path}/wait", params={"for": "finished", "timeout": 50}))
            streaming = asyncio.create_task(stream())

            async def both_wait() -> bool:
                metrics = (await anonymous.get("/metrics")).text
                found = re.search(rf"^{IN_FLIGHT} (\S+)$", metrics, re.MULTILINE)
                return found is not None and float(found.group(1)) >= 2

            await until(both_wait, "the long-poll and the stream to be waiting")
            assert system.web is not None
            system.web.send_signal(signal.SIGTERM)
            answer = await asyncio.wait_for(waiting, 20)
            frames = await asyncio.wait_for(streaming, 20)
            assert await asyncio.wait_for(system.web.wait(), 20) == 0
        assert answer.status_code == 200, answer.text
        assert answer.headers[TIMEOUT_HEADER] == "timeout"
        assert answer.headers["connection"] == "close"
        assert answer.json()["status"] == "awaiting_approval"
        assert len(frames) == 1  # the task as it was; then the stream ended, not cut off
    finally:
        await system.stop()


async def _get_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """GET /healthz on an open connection; the status line, or b"" if the server closed it."""
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    status = await reader.readline()
    headers = (await reader.readuntil(b"\r\n\r\n")).decode() if status else ""
    length = re.search(r"(?im)^content-length: (\d+)", headers)
    await reader.readexactly(int(length.group(1)) if length else 0)
    return status.strip()


async def test_an_idle_connection_stays_open_longer_than_clients_keep_theirs(
    model_server: ModelServer, tmp_path: Path
) -> None:
    """A client reusing a connection idle for longer than uvicorn's default 5 s still gets its
    answer: the server does not close the connection under a request on its way (httpx keeps
    idle connections 5 s, so at 5 s the two closed and sent at the same moment)."""
    system = SoakSystem(tmp_path / "web", model_server.register(ScriptedModel()))
    try:
        await system.start()
        host, port = system.base_url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            assert await _get_on(reader, writer) == b"HTTP/1.1 200 OK"
            await asyncio.sleep(6)  # past uvicorn's default keep-alive of 5 s
            assert await _get_on(reader, writer) == b"HTTP/1.1 200 OK"  # the same connection
        finally:
            writer.close()
    finally:
        await system.stop()
