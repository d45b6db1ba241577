"""PostgreSQL refusing connections: a TCP relay between the app and the database is killed
(`kill -9` by PID) and started again. Meanwhile every request answers 503 with Retry-After,
never a 500; once it is back, the same app and worker carry the task on to its end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from exosuit.processes import free_port
from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import ENDED, running_system
from tests.support.tcp_relay import Relay


@pytest.fixture
async def relay(postgres_db: Database) -> AsyncIterator[Relay]:
    url = postgres_db.engine.url
    relay = Relay(url.host or "127.0.0.1", url.port or 5432, free_port())
    await relay.start()
    yield relay
    await relay.stop()


@pytest.mark.postgres
@pytest.mark.timeout(300)
async def test_postgresql_refusing_connections_is_a_503_and_the_task_goes_on_once_it_is_back(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, postgres_db: Database, relay: Relay,
    tmp_path: Path,
) -> None:  # fmt: skip
    through_relay = postgres_db.engine.url.set(host="127.0.0.1", port=relay.port)
    db = Database.from_url(through_relay.render_as_string(hide_password=False))
    try:
        async with running_system(temporal_env.client, model_server, db, ScriptedModel(), tmp_path) as system:
            submitter, approver = await system.user("member"), await system.user("approver")
            task = await approver.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
            base = f"/api/v1/tasks/{task['id']}"

            await approver.approve(task)  # the worker goes on to the first step: it meets the outage
            await relay.kill()
            answers = [
                await approver.http.get(base),
                await approver.http.get(f"{base}/wait", params={"for": "finished", "timeout": 1}),
                await approver.http.get("/api/v1/approvals"),
                await approver.decide(task, "approve"),
                await approver.http.get("/readyz"),
            ]
            for answer in answers:
                assert answer.status_code == 503, (answer.request.url, answer.status_code, answer.text)
                assert int(answer.headers["Retry-After"]) > 0

            await relay.start()
            task = await approver.task(task["id"])  # the pool reconnects: no restart needed
            while task["status"] not in ENDED:
                task = await approver.long_poll(task["id"], "gate", 120)
                if task["open_gate"] is not None:
                    await approver.approve(task)
            assert task["status"] == "completed", task
            events = (await approver.http.get(f"{base}/audit")).json()["items"]
            completed = [e["data"].get("step_id") for e in events if e["action"] == "step.completed"]
            assert sorted(completed) == sorted(s["id"] for s in task["steps"])  # each once
            audit = (await approver.http.get(f"{base}/audit/verify")).json()
            assert audit["ok"], audit
    finally:
        await db.dispose()
