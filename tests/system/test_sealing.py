"""Sealed payloads: Temporal is no longer a way around the app.

Updates and signals sent straight to the Temporal server (the test client, which holds no
key) are refused and change nothing; histories hold no readable task text; running tasks
survive a key rotation; the Temporal UI's codec endpoint opens payloads only for the team.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from exosuit.domain.contracts import workflow_id_for
from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.pages import signed_in
from tests.support.system import System, running_system, until


async def at_plan_gate(system: System) -> tuple[dict, list]:  # type: ignore[type-arg]
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await approver.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    audit = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    return task, audit


async def handled_since_signal(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether a workflow task has ended (completed or failed) since the last signal."""
    kinds = [event.event_type async for event in handle.fetch_history_events()]
    signalled = max(
        i for i, kind in enumerate(kinds) if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )
    ended = {EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED}
    return any(kind in ended for kind in kinds[signalled + 1 :])


async def test_forged_updates_and_signals_are_refused_and_change_nothing(
    system: System, temporal_env: WorkflowEnvironment
) -> None:
    task, audit = await at_plan_gate(system)
    forger = temporal_env.client.get_workflow_handle(workflow_id_for(task["id"]))  # no key
    decision = {"gate_id": task["open_gate"]["id"], "action": "approve", "actor": "ghost@nowhere.invalid",
                "role": "approver"}  # fmt: skip
    with pytest.raises(WorkflowUpdateFailedError):
        await forger.execute_update("decide", decision)
    with pytest.raises(WorkflowUpdateFailedError):
        await forger.execute_update(
            "set_autonomy", {"autonomy": "autonomous", "actor": task["submitted_by"], "role": "approver"}
        )
    await forger.signal("cancel", {"actor": "ghost@nowhere.invalid"})
    await until(lambda: handled_since_signal(forger), "the workflow to take the forged signal")
    approver = await system.user("approver")
    after = await approver.task(task["id"])
    assert after["open_gate"]["id"] == task["open_gate"]["id"] and after["autonomy"] == "supervised"
    assert after["status"] == "awaiting_approval"
    assert (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"] == audit
    assert (await approver.decide(after, "approve")).status_code == 200  # the app's own decisions work


async def test_histories_hold_no_readable_task_text(
    system: System, temporal_env: WorkflowEnvironment
) -> None:
    secret_title = f"Quarterly numbers {uuid.uuid4().hex}"
    user = await system.user("approver")
    task = await user.wait_done((await user.submit(system.team, "delegated", title=secret_title))["id"])
    history = await temporal_env.client.get_workflow_handle(workflow_id_for(task["id"])).fetch_history()
    raw = history.to_json()
    assert task["id"] not in base64.b64decode(_first_input(raw)).decode(errors="replace")
    assert secret_title not in raw and "About autumn." not in raw
    assert base64.b64encode(b"binary/exosuit-sealed").decode() in raw


def _first_input(history_json: str) -> str:
    import json

    events = json.loads(history_json)["events"]
    return str(events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]["data"])


async def test_running_tasks_keep_working_across_a_key_rotation(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    queue = f"tq-{uuid.uuid4().hex}"
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path / "a",
        task_queue=queue, secret_key="the-old-secret",
    ) as before:  # fmt: skip
        task, _ = await at_plan_gate(before)
        team = before.team
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path / "b",
        task_queue=queue, secret_key="the-new-secret", previous_secret_keys="the-old-secret",
    ) as after:  # fmt: skip
        approver = await after.user("approver", team=team)
        await approver.approve(await approver.task(task["id"]))
        await approver.approve(await approver.wait_gate(task["id"], "step"))
        await approver.approve(await approver.wait_gate(task["id"], "step"))
        assert (await approver.wait_done(task["id"]))["status"] == "completed"
        verdict = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
        assert verdict["ok"] and verdict["anchored"], verdict


async def test_the_codec_endpoint_opens_payloads_for_the_tasks_team_only(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    ui = "http://127.0.0.1:8233"
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path, temporal_ui_url=ui
    ) as system:
        task, _ = await at_plan_gate(system)
        history = await temporal_env.client.get_workflow_handle(workflow_id_for(task["id"])).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        body = {"payloads": [MessageToDict(p) for p in started.input.payloads]}
        member, _ = await signed_in(system, "member")
        opened = await member.http.post("/codec/decode", json=body, headers={"Origin": ui})
        assert opened.status_code == 200
        assert opened.headers["access-control-allow-origin"] == ui
        assert opened.headers["access-control-allow-credentials"] == "true"
        assert task["id"] in base64.b64decode(opened.json()["payloads"][0]["data"]).decode()
        outsider = await system.user("admin", team=f"other-{uuid.uuid4().hex[:6]}")
        kept = (await outsider.http.post("/codec/decode", json=body)).json()
        assert kept == body  # still sealed
        anonymous = await outsider.http.post("/codec/decode", json=body, headers={"Authorization": ""})
        assert anonymous.status_code == 401
        assert (await outsider.http.post("/codec/encode", json=body)).status_code in (404, 405)
