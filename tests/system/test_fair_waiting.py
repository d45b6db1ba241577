"""Fair shares of waiting: one person holding long-polls cannot starve everyone else's
/wait, event streams and /mcp; the 429 says whose limit it was."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import Api, System, running_system, until


async def waiting_in_flight(system: System) -> float:
    async with httpx.AsyncClient(base_url=system.base_url) as http:
        text = (await http.get("/metrics")).text
    found = re.search(r'exosuit_requests_in_flight\{pool="waiting"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


async def hold_waits(
    api: Api, task_id: str, count: int, system: System
) -> list[asyncio.Task[httpx.Response]]:
    """`count` long-polls held open by one person, once the server counts them in flight."""
    before = await waiting_in_flight(system)
    held = [
        asyncio.create_task(api.http.get(f"/api/v1/tasks/{task_id}/wait", params={"timeout": 60}))
        for _ in range(count)
    ]

    async def counted() -> bool:
        return await waiting_in_flight(system) >= before + count

    await until(counted, "the long-polls to be in flight")
    return held


async def test_one_person_cannot_take_everyones_waiting_slots(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path, with_worker=False,
        max_waiting_requests=4, max_waiting_requests_per_person=2,
    ) as system:  # fmt: skip
        elsewhere = f"{system.team}-other"
        await system.directory.ensure_team(elsewhere)
        hog, other = await system.user("member"), await system.user("member", team=elsewhere)
        task = await hog.submit(system.team, "manual")
        held = await hold_waits(hog, task["id"], 2, system)
        refused = await hog.http.get(f"/api/v1/tasks/{task['id']}/wait", params={"timeout": 0})
        assert refused.status_code == 429 and hog.email in refused.json()["detail"]
        assert "per person" in refused.json()["detail"] and refused.headers["retry-after"]
        theirs = await other.submit(elsewhere, "manual")
        served = await other.http.get(f"/api/v1/tasks/{theirs['id']}/wait", params={"timeout": 0})
        assert served.status_code == 200
        for waiting in held:
            waiting.cancel()
        await asyncio.gather(*held, return_exceptions=True)
