"""The /mcp endpoint, loaded on its first call.

The MCP SDK and its server add some 17 MB and 160 modules to a web process, which most
deployments never call: the endpoint is built on the first request to /mcp. Its transport's
task group runs in a task of the app's lifespan (entered and left in that one task, as anyio
requires), started when the first request asks for it and stopped with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from web.deps import Services

if TYPE_CHECKING:
    from web.mcp_server import McpEndpoint


class McpOnDemand:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._endpoint: McpEndpoint | None = None
        self._wanted = asyncio.Event()
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._failure: BaseException | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """For the app's lifespan: the endpoint's transport runs (once asked for) until it ends."""
        serving = asyncio.create_task(self._serve())
        try:
            yield
        finally:
            self._stop.set()
            self._wanted.set()
            await serving

    async def _serve(self) -> None:
        await self._wanted.wait()
        if self._stop.is_set():
            return
        try:
            from web.mcp_server import McpEndpoint

            endpoint = McpEndpoint(self.services)
            async with endpoint.running():
                self._endpoint = endpoint
                self._ready.set()
                await self._stop.wait()
        except Exception as error:  # each /mcp request then fails (500) with this as its cause
            self._failure = error
            self._ready.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._wanted.set()
        await self._ready.wait()
        if self._endpoint is None:
            raise RuntimeError("the MCP endpoint did not start") from self._failure
        await self._endpoint(scope, receive, send)
