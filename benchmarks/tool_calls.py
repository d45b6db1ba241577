"""Tool steps, side by side: what an MCP tool call adds over a direct HTTP tool call, and the
time from an approved tool gate to the sink receiving the request.

1. Direct: the same worker code the activity runs, N times each: `http_request` to a local
   HTTP sink; an MCP tool over Streamable HTTP and over stdio (the tests' notes server),
   each call opening its session as the worker does.
2. Through the system: a supervised task of tool steps on the embedded Temporal dev server;
   each step gate is approved over HTTP and the clock stops when the sink has the request.

    .venv/bin/python benchmarks/tool_calls.py [--calls 30] [--steps 10]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activities.acting import http_request
from activities.mcp_tools import McpTools
from exosuit.cli.temporal_server import DEV_SERVER_DYNAMIC_CONFIG, temporal_cli
from exosuit.cli.worker import build_worker
from exosuit.domain.autonomy import Role
from exosuit.llm.client import ModelClient
from exosuit.llm.providers import Provider
from exosuit.settings import Settings
from exosuit.storage.db import Database, migrate
from exosuit.storage.identity import Directory
from exosuit.tooling import load_tools_config
from tests.support.model_server import ModelServer, ScriptedModel, serve, shutdown
from tests.support.tool_world import World, tool_world, world_env
from web.app import create_app
from web.deps import Services


def summary(label: str, ms: list[float]) -> str:
    p90 = statistics.quantiles(ms, n=10)[-1] if len(ms) > 1 else ms[0]
    return f"{label:<44} n={len(ms):<3} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms"


async def timed(n: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    await call(-1)  # warm up
    out = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def direct(world: World, calls: int) -> None:
    config = load_tools_config(world.tools_file)
    env = os.environ | world_env(world)
    mcp = McpTools(config, env)
    args = {"method": "POST", "url": f"{world.hooks}bench", "body": "x"}
    http = await timed(calls, lambda i: http_request(config, args, f"bench:http:{i}", env))
    remote = await timed(
        calls, lambda i: mcp.call("mcp.remote.add_note", {"title": f"n{i}", "text": "x"}, f"bench:r:{i}")
    )
    stdio = await timed(
        calls, lambda i: mcp.call("mcp.notes.add_note", {"title": f"n{i}", "text": "x"}, f"bench:s:{i}")
    )
    print("1. one tool call, the worker's code, no Temporal")
    print(summary("http_request (direct HTTP)", http))
    print(summary("MCP over Streamable HTTP (session per call)", remote))
    print(summary("MCP over stdio (process per call)", stdio))
    base = statistics.median(http)
    added_http, added_stdio = statistics.median(remote) - base, statistics.median(stdio) - base
    print(f"   MCP adds: {added_http:+.1f} ms (Streamable HTTP), {added_stdio:+.1f} ms (stdio)")


async def through_system(world: World, steps: int, models: ModelServer) -> None:
    extra: list[str] = []
    for value in DEV_SERVER_DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", value]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), dev_server_extra_args=extra
    )
    for name, value in world_env(world).items():
        os.environ[name] = value
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/exosuit.db"
        migrate(url)
        db = Database.from_url(url)
        settings = Settings(
            data_dir=Path(tmp), task_queue=f"bench-{uuid.uuid4().hex}", tools_file=world.tools_file
        )
        plan = [
            {"title": f"Post {i}", "instructions": "Post it.", "kind": "tool", "tool": "http_request",
             "risk": "medium", "args": {"method": "POST", "url": f"{world.hooks}step/{i}", "body": str(i)}}
            for i in range(steps)
        ]  # fmt: skip
        model = ModelClient([Provider("bench", models.register(ScriptedModel(plan=plan)), "m", api_key="x")])
        directory = Directory(db)
        await directory.add_user("submitter@bench", teams=["bench"], role=Role.MEMBER)
        await directory.add_user("approver@bench", teams=["bench"], role=Role.APPROVER)
        sub_token = await directory.create_token("submitter@bench")
        app_token = await directory.create_token("approver@bench")
        server, task, port = await serve(create_app(Services.build(settings, db, env.client)))
        base = f"http://127.0.0.1:{port}"
        latencies: list[float] = []
        async with (
            build_worker(env.client, settings, db, model=model),
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {sub_token}"}) as sub,
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {app_token}"}) as app,
        ):
            body = {"title": "Bench", "instructions": "Go.", "team": "bench", "autonomy": "supervised"}
            task_id = (await sub.post("/api/v1/tasks", json=body)).json()["id"]
            seen: set[str] = set()
            while True:
                current = (await app.get(f"/api/v1/tasks/{task_id}")).json()
                gate = current["open_gate"]
                if current["status"] != "awaiting_approval" or gate is None or gate["id"] in seen:
                    if current["status"] in ("completed", "failed", "rejected"):
                        break
                    await asyncio.sleep(0.005)
                    continue
                seen.add(gate["id"])
                world.sink.arrived.clear()
                started = time.perf_counter()
                decided = await app.post(
                    f"/api/v1/tasks/{task_id}/decisions", json={"gate_id": gate["id"], "action": "approve"}
                )
                assert decided.status_code == 200, decided.text
                if gate["kind"] != "step":
                    continue
                await asyncio.wait_for(world.sink.arrived.wait(), 30)
                latencies.append((time.perf_counter() - started) * 1000)
        await shutdown(server, task)
        await db.dispose()
    await env.shutdown()
    print("2. approved tool gate -> the sink has the request (embedded Temporal, SQLite)")
    print(summary("http_request step", latencies))


async def main(calls: int, steps: int) -> None:
    logging.basicConfig(level=logging.WARNING, force=True)
    for noisy in ("httpx", "mcp", "temporalio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    models = ModelServer()
    await models.start()
    with tempfile.TemporaryDirectory() as folder:
        async with tool_world(Path(folder)) as world:
            await direct(world, calls)
            await through_system(world, steps, models)
    await models.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10)
    options = parser.parse_args()
    asyncio.run(main(options.calls, options.steps))
