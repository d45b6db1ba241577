"""Templates and schedules: a template run through the API (with idempotency) and a schedule's
firing (triggered now) each produce an ordinary task that meets its gates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, ScheduleHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import Api, System, running_system
from tests.support.webhook_receiver import FAST

TEMPLATE = {
    "title": "Weekly report for {{client}}",
    "instructions": "Draft the weekly report for {{client}} covering {{ topic }}.",
    "autonomy": "supervised",
    "params": ["client", "topic"],
}


@pytest.fixture
async def auto_system(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    scripted_model: ScriptedModel,
    tmp_path: Path,
) -> AsyncIterator[System]:
    async with running_system(
        temporal_env.client, model_server, sqlite_db, scripted_model, tmp_path, **FAST
    ) as system:
        yield system


async def make_template(approver: Api, team: str, name: str) -> dict[str, Any]:
    response = await approver.http.post("/api/v1/templates", json=TEMPLATE | {"name": name, "team": team})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def test_a_template_run_is_an_ordinary_gated_task_and_idempotent(auto_system: System) -> None:
    approver, member = await auto_system.user("approver"), await auto_system.user("member")
    name = f"weekly-{auto_system.team}"
    refused = await member.http.post(
        "/api/v1/templates", json=TEMPLATE | {"name": name, "team": auto_system.team}
    )
    assert refused.status_code == 403
    await make_template(approver, auto_system.team, name)
    body = {"params": {"client": "ACME", "topic": "sales"}}
    headers = {"Idempotency-Key": "run-1"}
    first = await member.http.post(f"/api/v1/templates/{name}/runs", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await member.http.post(f"/api/v1/templates/{name}/runs", json=body, headers=headers)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    task = first.json()
    assert task["title"] == "Weekly report for ACME"
    assert task["instructions"] == "Draft the weekly report for ACME covering sales."
    assert task["submitted_by"] == member.email and task["autonomy"] == "supervised"
    gated = await approver.wait_gate(task["id"], "plan")
    assert gated["status"] == "awaiting_approval"
    missing = await member.http.post(f"/api/v1/templates/{name}/runs", json={"params": {"client": "X"}})
    assert missing.status_code == 422
    outsider = await auto_system.user("approver", team="elsewhere")
    assert (await outsider.http.post(f"/api/v1/templates/{name}/runs", json=body)).status_code == 404


async def test_a_schedule_fired_now_makes_an_ordinary_gated_task(auto_system: System) -> None:
    approver = await auto_system.user("approver")
    await auto_system.user("approver")  # a team of two: its runs are four-eyes, not solo
    name = f"nightly-{auto_system.team}"
    await make_template(approver, auto_system.team, name)
    body = {"template": name, "params": {"client": "Initech", "topic": "TPS"}, "cron": "0 3 1 1 *"}
    response = await approver.http.post("/api/v1/schedules", json=body)
    assert response.status_code == 201, response.text
    schedule = response.json()
    assert schedule["temporal_schedule_id"] == f"schedule-{schedule['id']}" and schedule["next_runs"]
    fired = await approver.http.post(f"/api/v1/schedules/{schedule['id']}/trigger")
    assert fired.status_code == 202, fired.text

    task: dict[str, Any] | None = None
    for _ in range(300):
        items = (await approver.http.get("/api/v1/tasks", params={"team": auto_system.team})).json()["items"]
        task = next((t for t in items if t["title"] == "Weekly report for Initech"), None)
        if task is not None:
            break
        await asyncio.sleep(0.05)
    assert task is not None, "the schedule made no task"
    assert task["submitted_by"] == approver.email  # the schedule's creator submits each run
    gated = await approver.wait_gate(task["id"], "plan")  # an ordinary task: it meets its gates
    assert gated["open_gate"]["four_eyes"] is True  # supervised: the creator cannot approve it

    paused = await approver.http.post(f"/api/v1/schedules/{schedule['id']}/pause")
    assert paused.json()["paused"] is True
    listed = (await approver.http.get("/api/v1/schedules")).json()["items"]
    assert [s["id"] for s in listed] == [schedule["id"]]
    assert (await approver.http.delete(f"/api/v1/schedules/{schedule['id']}")).status_code == 204
    handle: ScheduleHandle = Client.get_schedule_handle(
        auto_system.temporal, schedule["temporal_schedule_id"]
    )
    with pytest.raises(RPCError):
        await handle.describe()


async def test_a_template_runs_from_its_page(auto_system: System) -> None:
    from tests.support.pages import Browser

    approver = await auto_system.user("approver")
    name = f"page-{auto_system.team}"
    await make_template(approver, auto_system.team, name)
    email, password = await auto_system.person("member")
    browser = Browser(auto_system)
    await browser.sign_in(email, password)
    page = await browser.http.get(f"/templates/{name}/run")
    assert page.status_code == 200 and 'name="param_client"' in page.text
    ran = await browser.post(f"/templates/{name}/run", {"param_client": "Globex", "param_topic": "Q3"})
    assert ran.status_code == 303, ran.text
    task_id = ran.headers["location"].removeprefix("/tasks/")
    task = await approver.wait_gate(task_id, "plan")
    assert task["title"] == "Weekly report for Globex" and task["submitted_by"] == email
