"""A worker killed mid-step (`kill -9` of a real `exosuit worker` process): another worker
picks the step up within the heartbeat timeout, and the step is recorded once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import running_system, start_worker
from workflows.policies import HEARTBEAT_TIMEOUT

WORDS = " ".join(f"word{n}" for n in range(40))
ONE_STEP = [{"title": "Write", "instructions": "Write it.", "kind": "llm", "tool": None, "risk": "low"}]


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
