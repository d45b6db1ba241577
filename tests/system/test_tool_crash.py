"""`kill -9` of a real worker while a tool step sends, and between the send and its record:
no second send; the history says "sent, result unknown" and the step's gate asks a person."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from exosuit.cli.worker import build_worker
from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import System, running_system, start_worker
from tests.support.tool_world import World, tool_world, world_env

ORDER = {"method": "POST", "url": "HOOKS/orders", "body": "one order"}
POST = [{"title": "Post", "instructions": "Post it.", "kind": "tool", "tool": "http_request", "risk": "low"}]
POST[0]["args"] = ORDER


async def start_worker_in(
    system: System, world: World, model_url: str, **extra: str
) -> asyncio.subprocess.Process:
    """A real worker that reaches this tool world."""
    env = world_env(world) | {"EXOSUIT_TOOLS_FILE": str(world.tools_file)} | extra
    return await start_worker(system, model_url, **env)


@pytest.fixture
async def spawned() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """The worker processes a test starts, killed at its end if a failure left them running."""
    processes: list[asyncio.subprocess.Process] = []
    yield processes
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("gap", ["during the call", "between call and record"])
async def test_a_worker_killed_mid_send_never_sends_twice_and_the_gate_says_result_unknown(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    tmp_path: Path,
    gap: str,
    monkeypatch: pytest.MonkeyPatch,
    spawned: list[asyncio.subprocess.Process],
) -> None:
    async with tool_world(tmp_path) as world:
        for name, value in world_env(world).items():
            monkeypatch.setenv(name, value)
        plan = json.loads(json.dumps(POST).replace("HOOKS/", world.hooks))
        model = ScriptedModel(plan=plan)
        url = model_server.register(model)
        async with running_system(
            temporal_env.client,
            model_server,
            sqlite_db,
            model,
            tmp_path,
            with_worker=False,
            tools_file=world.tools_file,
        ) as system:
            await system.set_team(max_autonomy="autonomous")
            if gap == "during the call":
                world.sink.delay = 30.0  # the request arrives; its answer never does
                first = await start_worker_in(system, world, url)
            else:  # the answer arrives; the worker dies before it records it
                first = await start_worker_in(system, world, url, EXOSUIT_TOOL_RECORD_DELAY_SECONDS="30")
            spawned.append(first)
            t0 = asyncio.get_running_loop().time()

            def lap(what: str) -> None:
                print(f"{asyncio.get_running_loop().time() - t0:6.1f} s {what}")

            lap("first worker up")
            approver, submitter = await system.user("approver"), await system.user("member")
            task = await submitter.submit(system.team, "autonomous")
            await asyncio.wait_for(world.sink.arrived.wait(), 30)
            await asyncio.sleep(0.3)
            os.kill(first.pid, signal.SIGKILL)
            await first.wait()
            lap("killed")
            world.sink.delay = 0.0
            # Another worker (in this process, so it is up at once) takes the retry.
            client = await Client.connect(
                system.temporal.service_client.config.target_host,
                namespace=system.temporal.namespace,
                data_converter=system.temporal.data_converter,
            )
            async with build_worker(client, system.settings, system.db):
                lap("second worker up")
                task = await approver.wait_gate(task["id"], "step", within=40)
                lap("unknown gate open")
                assert "sent, result unknown" in (task["open_gate"]["reason"] or "")
                assert len(world.sink.requests) == 1  # not sent again by the retry
                audit = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
                actions = [e["action"] for e in audit]
                assert actions.count("tool.called") == 1 and "tool.unknown" in actions
                assert "step.finished" not in actions
                # The person checks the other side and decides: skip (it did arrive).
                response = await approver.decide(task, "reject", reason="It arrived.", on_reject="skip")
                assert response.status_code == 200, response.text
                done = await approver.wait_done(task["id"])
                lap("done")
    assert done["status"] == "completed" and done["steps"][0]["status"] == "skipped"
    assert len(world.sink.requests) == 1
