"""The world tool steps act on, for the tests: an HTTP sink, an SMTP server, the notes MCP
server over stdio and over HTTP, and a tools.toml that points at them."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from tests.support.model_server import serve, shutdown
from tests.support.notes_mcp import notes_app
from tests.support.paths import ROOT
from tests.support.sinks import HttpSink, SmtpSink

HOOK_TOKEN = "s3cret-hook-token-never-shown"


@dataclass
class World:
    sink: HttpSink
    smtp: SmtpSink
    sink_port: int
    mcp_port: int
    stdio_notes: Path
    http_notes: Path
    tools_file: Path
    _mcp: tuple[uvicorn.Server, Any] | None = None

    @property
    def hooks(self) -> str:
        return f"http://127.0.0.1:{self.sink_port}/hooks/"

    async def stop_mcp(self) -> None:
        if self._mcp is not None:
            await shutdown(*self._mcp)
            self._mcp = None

    async def start_mcp(self) -> None:
        server, task, _ = await serve(notes_app(self.http_notes), port=self.mcp_port)
        self._mcp = (server, task)


def tools_toml(world: World) -> str:
    return f"""
[http]
allow = ["{world.hooks}", "http://127.0.0.1:{world.sink_port}/jump"]
timeout_seconds = 20

[[http.secret_headers]]
prefix = "{world.hooks}"
name = "Authorization"
env = "EXOSUIT_TEST_HOOK_TOKEN"
format = "Bearer {{}}"

[email]
smtp_host = "127.0.0.1"
smtp_port = {world.smtp.port}
sender = "exosuit@example.com"
allow_domains = ["example.com"]

[[mcp]]
name = "notes"
command = ["{sys.executable}", "-m", "tests.support.notes_mcp"]
env = {{ NOTES_FILE = "EXOSUIT_TEST_NOTES_FILE", PYTHONPATH = "EXOSUIT_TEST_PYTHONPATH" }}

[[mcp]]
name = "remote"
url = "http://127.0.0.1:{world.mcp_port}/mcp"

[floors]
send_email = "high"
"""


def world_env(world: World) -> dict[str, str]:
    """What the worker's environment needs: the secrets tools.toml names."""
    return {
        "EXOSUIT_TEST_HOOK_TOKEN": HOOK_TOKEN,
        "EXOSUIT_TEST_NOTES_FILE": str(world.stdio_notes),
        "EXOSUIT_TEST_PYTHONPATH": str(ROOT),
    }


@asynccontextmanager
async def tool_world(folder: Path) -> AsyncIterator[World]:
    sink = HttpSink()
    sink_server, sink_task, sink_port = await serve(sink.app())
    smtp = SmtpSink()
    smtp.start()
    http_notes = folder / "http-notes.jsonl"
    mcp_server, mcp_task, mcp_port = await serve(notes_app(http_notes))
    world = World(
        sink,
        smtp,
        sink_port,
        mcp_port,
        folder / "stdio-notes.jsonl",
        http_notes,
        folder / "tools.toml",
        (mcp_server, mcp_task),
    )
    world.tools_file.write_text(tools_toml(world))
    try:
        yield world
    finally:
        await world.stop_mcp()
        smtp.stop()
        await shutdown(sink_server, sink_task)
