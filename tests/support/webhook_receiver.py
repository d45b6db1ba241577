"""A webhook (and Apprise json://) receiver of the tests' own, on a real loopback port."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.model_server import serve, shutdown

# Settings for a system whose deliveries and digests retry and close in tenths of a second.
FAST = {
    "webhook_allow_loopback": True,
    "webhook_retry_initial_seconds": 0.1,
    "webhook_retry_max_seconds": 0.4,
    "notify_digest_seconds": 0.6,
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    status: int  # what the receiver answered
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    answer: int = 200  # what POSTs get; 503 plays a receiver that is up but failing
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _take(self, request: Request) -> Response:
        body = (await request.body()).decode()
        loop = asyncio.get_running_loop()
        status = self.answer
        self.received.append(Received(request.url.path, dict(request.headers), body, status, loop.time()))
        return Response(status_code=status)

    async def start(self) -> Receiver:
        """Listen (again on the same port after a stop)."""
        app = Starlette(routes=[Route("/{path:path}", self._take, methods=["POST"])])
        self._server, self._task, self.port = await serve(app, self.port)
        return self

    async def stop(self) -> None:
        """Down: connections are refused until `start`."""
        assert self._server is not None and self._task is not None
        await shutdown(self._server, self._task)
        self._server = self._task = None

    def delivered(self, prefix: str = "/") -> list[Received]:
        return [r for r in self.received if r.path.startswith(prefix) and 200 <= r.status < 300]

    async def wait_for(self, check: Any, within: float = 20.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not check():
            assert loop.time() < deadline, (
                f"timed out; received {[(r.path, r.status) for r in self.received]}"
            )
            await asyncio.sleep(0.02)
