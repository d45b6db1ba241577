"""The read model and Temporal agree: a crash before the start, a run the server ended, an outage."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from exosuit.cli.reconciler import Reconciled, Reconciler
from exosuit.domain.audit import anchor_key
from exosuit.domain.submissions import new_task_id
from exosuit.storage.db import Database
from exosuit.storage.events import EventWriter
from exosuit.storage.tables import Task
from exosuit.storage.tasks import Tasks
from tests.support.model_server import ModelServer
from tests.support.system import System, kill_temporal, system_on_its_own_temporal
from web.errors import Unavailable
from web.gateway import TaskGateway


def reconciler(system: System, grace: timedelta = timedelta(0)) -> Reconciler:
    writer = EventWriter(system.db, anchor_key(system.settings.resolved_secret_key))
    gateway = TaskGateway(system.temporal, system.settings.task_queue)
    return Reconciler(Tasks(system.db), writer, gateway, grace=grace)


async def stored_but_never_started(system: System, submitter: str) -> str:
    """A task row as a submission that died before starting its workflow leaves it."""
    task_id = new_task_id()
    await Tasks(system.db).insert(
        Task(
            id=task_id,
            title="Write a haiku",
            instructions="About autumn.",
            team=system.team,
            submitted_by=submitter,
            autonomy="supervised",
        )
    )
    return task_id


@pytest.mark.parametrize(("ended_by", "at_gate"), [("terminate", "plan"), ("cancel", "step")])
async def test_a_run_the_server_ended_fails_its_task_with_the_reason(
    system: System, ended_by: str, at_gate: str
) -> None:
    submitter, approver = await system.user("member"), await system.user("approver")
    task = await approver.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    if at_gate == "step":
        await approver.approve(task)
        task = await approver.wait_gate(task["id"], "step")
    handle = system.temporal.get_workflow_handle(f"task-{task['id']}")
    if ended_by == "terminate":
        await handle.terminate(reason="runaway task, stopped by the operator")
    else:
        await handle.cancel()
    with contextlib.suppress(WorkflowFailureError):  # a cancel request is asynchronous:
        await handle.result()  # Temporal answers once the run has closed
    described = await handle.describe()
    assert described.status != WorkflowExecutionStatus.RUNNING
    run_id = described.run_id

    assert await reconciler(system).run_once(teams=[system.team]) == {Reconciled.ENDED: 1}

    ended = await approver.task(task["id"])
    assert ended["status"] == "failed" and ended["open_gate"] is None
    if ended_by == "terminate":
        assert ended["error"] == "its workflow was terminated: runaway task, stopped by the operator"
    else:
        assert ended["error"] == "its workflow was cancelled"
    gated = next((s for s in ended["steps"] if s["id"] == task["open_gate"]["step_id"]), None)
    assert gated is None or gated["status"] == "failed"  # the step that waited at its gate
    approvals = (await approver.http.get("/api/v1/approvals")).json()["items"]
    assert task["id"] not in [a["task"]["id"] for a in approvals]
    events = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    last = events[-1]
    assert (last["action"], last["actor"]) == ("task.failed", "system")
    status = "terminated" if ended_by == "terminate" else "canceled"
    assert last["data"]["workflow_status"] == status and last["data"]["run_id"] == run_id
    assert last["data"]["reason"] == ended["error"]
    verdict = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
    assert verdict["ok"] and verdict["anchored"] and verdict["events"] == len(events), verdict

    assert await reconciler(system).run_once(teams=[system.team]) == {}  # a second pass: nothing
    again = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    assert again == events


async def test_a_task_stored_but_never_started_is_started_after_the_grace_period(system: System) -> None:
    approver = await system.user("approver")
    task_id = await stored_but_never_started(system, approver.email)
    waiting = reconciler(system, grace=timedelta(seconds=30))
    assert await waiting.run_once(teams=[system.team]) == {}  # its request may still start it

    assert await reconciler(system).run_once(teams=[system.team]) == {Reconciled.STARTED: 1}
    task = await approver.wait_gate(task_id, "plan")
    events = (await approver.http.get(f"/api/v1/tasks/{task_id}/audit")).json()["items"]
    assert events[0]["action"] == "task.submitted" and events[0]["data"]["title"] == "Write a haiku"

    assert await reconciler(system).run_once(teams=[system.team]) == {}  # running: left alone
    assert (await approver.task(task_id))["open_gate"]["id"] == task["open_gate"]["id"]


async def test_a_replayed_submission_never_runs_an_ended_task_again(system: System) -> None:
    user = await system.user("approver")
    body = {"title": "Notes", "instructions": "Summarise.", "team": system.team, "autonomy": "delegated"}
    headers = {"Idempotency-Key": "notes-1"}
    first = await user.http.post("/api/v1/tasks", json=body, headers=headers)
    assert first.status_code == 201, first.text
    done = await user.wait_done(first.json()["id"])
    handle = system.temporal.get_workflow_handle(f"task-{done['id']}")
    run = await handle.describe()
    replay = await user.http.post("/api/v1/tasks", json=body, headers=headers)
    assert replay.status_code == 201 and replay.json()["id"] == done["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert (await handle.describe()).run_id == run.run_id  # no second run


async def test_while_temporal_is_down_a_submission_leaves_nothing_and_a_pass_waits(
    model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    async with system_on_its_own_temporal(model_server, sqlite_db, tmp_path) as (system, server):
        user = await system.user("approver")
        waiting = await stored_but_never_started(system, user.email)
        await kill_temporal(server)
        body = {"title": "x", "instructions": "y", "team": system.team, "autonomy": "manual"}
        answers = await asyncio.gather(
            *(
                user.http.post("/api/v1/tasks", json=body, headers=headers)
                for headers in ({}, {"Idempotency-Key": "during-the-outage"})
            )
        )
        assert [a.status_code for a in answers] == [503, 503], [a.text for a in answers]
        listed = await Tasks(system.db).tasks([system.team])
        assert [view.task.id for view in listed] == [waiting]  # nothing the outage refused

        started = time.perf_counter()
        with pytest.raises(Unavailable):
            await reconciler(system).run_once(teams=[system.team])
        assert time.perf_counter() - started < 12
        assert (await user.task(waiting))["status"] == "planning"  # untouched, for the next pass
