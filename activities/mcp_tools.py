"""MCP tools: discovered from the servers in tools.toml with the official `mcp` SDK, and called.

A server that cannot be reached is `ServerDown`, which the activity leaves for Temporal to
retry (a down server is an outage, not a failed task).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from exosuit.domain.tools import MCP_PREFIX, ToolSpec, mcp_tool_name
from exosuit.tooling import McpServerConfig, ToolsConfig

if TYPE_CHECKING:
    import mcp

log = logging.getLogger(__name__)
DISCOVERY_TTL_SECONDS = 60.0


class ServerDown(Exception):
    """The MCP server could not be reached (or failed before it took the call)."""


def split_name(name: str) -> tuple[str, str]:
    """`mcp.SERVER.TOOL` as (SERVER, TOOL)."""
    server, _, tool = name.removeprefix(MCP_PREFIX).partition(".")
    return server, tool


class McpTools:
    def __init__(self, config: ToolsConfig, env: Mapping[str, str]) -> None:
        self._config = config
        self._env = env
        self._cache: dict[str, tuple[float, list[ToolSpec]]] = {}

    def _client(self, server: McpServerConfig) -> mcp.Client:
        # The SDK (some 25 MB) is loaded by the first MCP call, not by every worker.
        import httpx2
        import mcp
        from mcp.client.stdio import StdioServerParameters
        from mcp.client.streamable_http import streamable_http_client

        if server.command is not None:
            env = {name: self._env.get(var, "") for name, var in server.env.items()}
            params = StdioServerParameters(
                command=server.command[0],
                args=server.command[1:],
                env={"PATH": self._env.get("PATH", "")} | env,
            )
            return mcp.Client(params, read_timeout_seconds=server.timeout_seconds)
        assert server.url is not None
        headers = {name: self._env.get(var, "") for name, var in server.headers_env.items()}
        http = httpx2.AsyncClient(headers=headers, timeout=server.timeout_seconds)
        transport: AbstractAsyncContextManager[Any] = streamable_http_client(server.url, http_client=http)
        return mcp.Client(transport, read_timeout_seconds=server.timeout_seconds)

    async def tools_of(self, server: McpServerConfig) -> list[ToolSpec]:
        """The server's tools (cached a minute); ServerDown if it cannot be reached."""
        cached = self._cache.get(server.name)
        if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_SECONDS:
            return cached[1]
        try:
            async with self._client(server) as client:
                listed = await client.list_tools()
        except Exception as exc:
            raise ServerDown(f"MCP server {server.name} is not reachable: {exc!r}") from None
        specs = [
            ToolSpec(
                mcp_tool_name(server.name, tool.name),
                tool.description or tool.name,
                side_effects=not bool(tool.annotations and tool.annotations.read_only_hint),
                input_schema=tool.input_schema,
            )
            for tool in listed.tools
        ]
        self._cache[server.name] = (time.monotonic(), specs)
        return specs

    async def discover(self) -> list[ToolSpec]:
        """Every configured server's tools; a server that is down offers none this time."""
        specs: list[ToolSpec] = []
        for server in self._config.mcp:
            try:
                specs += await self.tools_of(server)
            except ServerDown as exc:
                log.warning("%s; its tools are not offered to this plan", exc)
        return specs

    async def spec(self, name: str) -> ToolSpec | None:
        server_name, _ = split_name(name)
        server = self._config.server(server_name)
        if server is None:
            return None
        return next((s for s in await self.tools_of(server) if s.name == name), None)

    async def call(self, name: str, args: dict[str, Any], key: str) -> str:
        """Call the tool once, the key in the request's _meta; its content as text."""
        server_name, tool = split_name(name)
        server = self._config.server(server_name)
        if server is None:
            raise LookupError(f"no MCP server {server_name!r} in tools.toml")
        try:
            client_cm = self._client(server)
            await client_cm.__aenter__()
        except Exception as exc:
            raise ServerDown(f"MCP server {server.name} is not reachable: {exc!r}") from None
        try:
            result = await client_cm.call_tool(tool, args, meta={"idempotency_key": key})  # type: ignore[arg-type]
        finally:
            await client_cm.__aexit__(None, None, None)
        parts = []
        for block in result.content:
            text = getattr(block, "text", None)
            parts.append(text if isinstance(text, str) else json.dumps(block.model_dump(mode="json")))
        prefix = "error from the tool: " if result.is_error else ""
        return prefix + "\n".join(parts)
