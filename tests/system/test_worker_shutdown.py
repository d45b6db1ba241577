"""SIGTERM to a real `exosuit worker` mid-step: it stops taking work, lets the running step
finish (or, once its grace runs out, hands it back), and exits 0; the step is recorded once.
Its stderr is JSON log lines (stderr is not a terminal here), with the lifecycle in them."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import Api, System, running_system, start_worker
from workflows.policies import HEARTBEAT_TIMEOUT

WORDS = " ".join(f"word{n}" for n in range(40))
ONE_STEP = [{"title": "Write", "instructions": "Write it.", "kind": "llm", "tool": None, "risk": "low"}]


class WorkerProcess:
    """`exosuit worker` as a deployment runs it, its stderr collected line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr: list[str] = []
        assert process.stderr is not None
        self._reading = asyncio.create_task(self._read(process.stderr))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr.append(line.decode())

    @classmethod
    async def start(cls, system: System, model_url: str, **env: str) -> WorkerProcess:
        return cls(await start_worker(system, model_url, stderr=asyncio.subprocess.PIPE, **env))

    async def stop(self) -> float:
        """SIGTERM, then the seconds until it exited (it must exit 0)."""
        sent = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 40)
        await self._reading
        assert code == 0, (code, self.stderr)
        return time.perf_counter() - sent

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr]  # each line one JSON object

    def shutdown_seconds(self) -> float:
        """From "worker stopping" to "worker stopped", by the worker's own log."""
        at = {
            line["message"].split(":")[0]: datetime.fromisoformat(line["time"])
            for line in self.logs()
            if line["message"].startswith(("worker stopping", "worker stopped"))
        }
        return (at["worker stopped"] - at["worker stopping"]).total_seconds()


def slow_model() -> ScriptedModel:
    model = ScriptedModel(plan=ONE_STEP)
    model.step_answer = lambda prompt: WORDS
    model.chunk_delay = 0.12  # about 5 s of streaming: the SIGTERM lands mid-step
    return model


async def streaming(user: Api, team: str) -> dict[str, Any]:
    task = await user.submit(team, "autonomous")
    await user.wait(
        task["id"], lambda t: bool(t["steps"]) and bool(t["steps"][0]["partial_output"]), "the step streaming"
    )
    return task


async def finished_steps(user: Api, task_id: str) -> int:
    audit = (await user.http.get(f"/api/v1/tasks/{task_id}/audit")).json()["items"]
    return [e["action"] for e in audit].count("step.finished")


async def test_a_stopped_worker_finishes_its_running_step_then_exits_cleanly(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    model = slow_model()
    url = model_server.register(model)
    async with running_system(
        temporal_env.client, model_server, sqlite_db, model, tmp_path, with_worker=False
    ) as system:
        await system.set_team(max_autonomy="autonomous")
        first = await WorkerProcess.start(system, url)
        user = await system.user("approver")
        task = await streaming(user, system.team)
        stopping = asyncio.create_task(first.stop())
        second = await WorkerProcess.start(system, url)  # takes what comes after the step
        try:
            stopped_in = await stopping
            done = await user.wait_done(task["id"])
            finished = await finished_steps(user, task["id"])
        finally:
            await first.kill()
            await second.kill()
    assert done["status"] == "completed" and done["steps"][0]["output"] == WORDS
    assert finished == 1
    assert len(model.prompts("step")) == 1  # the first worker's answer, not asked again
    print(f"the stopped worker exited {stopped_in:.1f} s after SIGTERM, its step done")
    assert first.shutdown_seconds() > 1  # it waited for the step
    messages = [line["message"] for line in first.logs()]
    # (its "worker started" line is the one start_worker waited for)
    assert any(m.startswith("worker stopping") for m in messages), messages
    assert messages[-1] == "worker stopped", messages


async def test_a_stopped_worker_whose_grace_runs_out_hands_its_step_to_another(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    model = slow_model()
    url = model_server.register(model)
    async with running_system(
        temporal_env.client, model_server, sqlite_db, model, tmp_path, with_worker=False
    ) as system:
        await system.set_team(max_autonomy="autonomous")
        first = await WorkerProcess.start(system, url, EXOSUIT_WORKER_GRACEFUL_SHUTDOWN_SECONDS="1")
        user = await system.user("approver")
        task = await streaming(user, system.team)
        stopping = asyncio.create_task(first.stop())
        second = await WorkerProcess.start(system, url)
        try:
            stopped_in = await stopping
            handed_back = time.perf_counter()
            done = await user.wait_done(task["id"])
            resumed_in = time.perf_counter() - handed_back
            finished = await finished_steps(user, task["id"])
        finally:
            await first.kill()
            await second.kill()
    assert done["status"] == "completed" and done["steps"][0]["output"] == WORDS
    assert finished == 1
    assert len(model.prompts("step")) == 2  # cancelled on the first, asked again on the second
    print(f"exited {stopped_in:.1f} s after SIGTERM; the step finished {resumed_in:.1f} s later")
    assert first.shutdown_seconds() < 2  # its 1 s of grace, not the rest of the step
    # Handed back at once, not noticed after the heartbeat timeout: about 6 s of streaming again.
    assert resumed_in < HEARTBEAT_TIMEOUT.total_seconds(), resumed_in
