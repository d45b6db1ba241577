"""A worker killed mid-step (`kill -9` of a real `exosuit worker` process): another worker
picks the step up within the heartbeat timeout, and the step is recorded once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.conftest import System, running_system
from tests.support.cli import EXOSUIT
from tests.support.model_server import ModelServer, ScriptedModel
from workflows.policies import HEARTBEAT_TIMEOUT

WORDS = " ".join(f"word{n}" for n in range(40))
ONE_STEP = [{"title": "Write", "instructions": "Write it.", "kind": "llm", "tool": None, "risk": "low"}]


async def start_worker(system: System, model_url: str) -> asyncio.subprocess.Process:
    settings = system.settings
    env = os.environ | {
        "TEMPORAL_ADDRESS": system.temporal.service_client.config.target_host,
        "EXOSUIT_DATABASE_URL": system.db.engine.url.render_as_string(hide_password=False),
        "EXOSUIT_TASK_QUEUE": settings.task_queue,
        "EXOSUIT_SECRET_KEY": settings.resolved_secret_key,
        "EXOSUIT_DATA_DIR": str(settings.data_dir),
        "EXOSUIT_LLM_BASE_URL": model_url,
        "EXOSUIT_LLM_API_KEY": "test",
        "EXOSUIT_LLM_MODEL": "scripted-model",
    }
    process = await asyncio.create_subprocess_exec(
        EXOSUIT, "worker", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    assert b"worker polling" in line, line
    return process


async def test_a_step_on_a_killed_worker_resumes_on_another_within_the_heartbeat_timeout(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    model = ScriptedModel(plan=ONE_STEP)
    model.step_answer = lambda prompt: WORDS
    model.chunk_delay = 0.12  # about 5 s of streaming (text flushed every 0.25 s): the kill lands mid-step
    url = model_server.register(model)
    async with running_system(
        temporal_env.client, model_server, sqlite_db, model, tmp_path, with_worker=False
    ) as system:
        await system.set_team(max_autonomy="autonomous")
        first = await start_worker(system, url)
        user = await system.user("approver")
        task = await user.submit(system.team, "autonomous")
        await user.wait(
            task["id"],
            lambda t: bool(t["steps"]) and bool(t["steps"][0]["partial_output"]),
            "the step streaming",
        )
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        killed = time.perf_counter()
        second = await start_worker(system, url)
        try:
            done = await user.wait_done(task["id"], within=HEARTBEAT_TIMEOUT.total_seconds() + 40)
            finished_within = time.perf_counter() - killed
            audit = (await user.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
        finally:
            second.kill()
            await second.wait()
    assert done["status"] == "completed" and done["steps"][0]["output"] == WORDS
    # Noticed within the heartbeat timeout, then the step streams again (about 5 s).
    print(f"step finished {finished_within:.1f} s after the kill")
    assert finished_within < HEARTBEAT_TIMEOUT.total_seconds() + 15 + 12, finished_within
    assert [e["action"] for e in audit].count("step.finished") == 1
    assert len(model.prompts("step")) == 2  # the answer was asked for again: not yet reused
