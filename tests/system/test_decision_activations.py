"""An approval at a model step's gate costs the workflow two activations, as in raw Temporal:
the one that accepts the decision and starts the step, and the one that learns the answer
(the step's run records the decision, its start, its answer and the next gate itself; for a
budgeted task it checks the next step's cost first). A submission takes three to its plan gate
(the plan's activity records the submission and the planning's start). The
decision's answer still shows it recorded (the gate closed), and the chain verifies."""

from __future__ import annotations

import dataclasses
from copy import deepcopy

import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment

from activities.steps import StepActivities
from exosuit.domain.audit import Anchor
from exosuit.domain.contracts import StepRequest, TaskEvent, workflow_id_for
from exosuit.domain.task import EventAction
from exosuit.llm.client import ModelClient
from exosuit.storage.events import EventWriter
from exosuit.storage.reports import Reports
from exosuit.storage.tables import AuditEvent
from exosuit.storage.tasks import Tasks
from tests.support.system import System, until

ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
TASK_DONE = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
LOCAL_RESULT = EventType.EVENT_TYPE_MARKER_RECORDED  # a local activity's result: one more activation
ANSWERED = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED


async def since_last_decision(system: System, task_id: str) -> list[EventType.ValueType]:
    history = await system.temporal.get_workflow_handle(workflow_id_for(task_id)).fetch_history()
    events = list(history.events)
    accepted = max(i for i, e in enumerate(events) if e.event_type == ACCEPTED)
    return [e.event_type for e in events[accepted + 1 :]]


async def answer_learned(system: System, task_id: str) -> bool:
    """Whether a workflow task completed after the step's answer came back (the read model
    shows the next gate a moment before the workflow hears of it)."""
    after = await since_last_decision(system, task_id)
    return ANSWERED in after and TASK_DONE in after[after.index(ANSWERED) :]


async def activations_since_last_decision(system: System, task_id: str) -> int:
    """The activations from the last `decide` accepted to now: the one that accepted it, one
    per workflow task after it, and one per local activity result the flow waited on."""
    after = await since_last_decision(system, task_id)
    return 1 + after.count(TASK_DONE) + after.count(LOCAL_RESULT)


@pytest.mark.parametrize("budget", [None, 100.0], ids=["no budget", "a budget"])
async def test_an_approval_to_the_next_gate_takes_two_activations(
    system: System, budget: float | None
) -> None:
    """With a budget too: the next step's cost is checked by the step's run, after its answer."""
    submitter, approver = await system.user("member"), await system.user("approver")
    budgeted = {"budget_usd": budget} if budget else {}
    task = await submitter.submit(system.team, "supervised", **budgeted)  # a gate before each step
    task = await approver.approve(await approver.wait_gate(task["id"], "plan"))
    task = await approver.wait_gate(task["id"], "step")
    first_gate = task["open_gate"]["id"]
    answered = await approver.approve(task)
    assert (answered["open_gate"] or {}).get("id") != first_gate, answered  # read-your-writes
    task = await approver.wait(
        task["id"],
        lambda t: (t["open_gate"] or {}).get("id") not in (None, first_gate),
        "the second step's gate",
    )
    assert task["steps"][0]["status"] == "completed", task
    await until(lambda: answer_learned(system, task["id"]), "the workflow to learn the step's answer")
    assert await activations_since_last_decision(system, task["id"]) == 2
    audit = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    tail = [e["action"] for e in audit][-5:]
    assert tail == ["gate.decided", "step.started", "step.finished", "step.completed", "gate.opened"], tail
    verified = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
    assert verified["ok"], verified
    await approver.approve(task)
    done = await approver.wait_done(task["id"])
    assert done["status"] == "completed", done


async def test_a_submission_to_its_plan_gate_takes_three_activations(system: System) -> None:
    """The start, which hands the submission and the planning's start to the plan's activity;
    the plan's return, which records the plan and its gate; and that record's result."""
    submitter = await system.user("member")
    task = await submitter.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    handle = system.temporal.get_workflow_handle(workflow_id_for(task["id"]))

    async def settled() -> bool:  # the workflow task that recorded the gate has completed
        kinds = [e.event_type for e in (await handle.fetch_history()).events]
        return ANSWERED in kinds and TASK_DONE in kinds[kinds.index(ANSWERED) :]

    await until(settled, "the workflow to finish recording the plan gate")
    kinds = [e.event_type for e in (await handle.fetch_history()).events]
    assert kinds.count(TASK_DONE) + kinds.count(LOCAL_RESULT) == 3, kinds
    audit = (await submitter.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    assert [e["action"] for e in audit] == ["task.submitted", "task.planning", "task.planned", "gate.opened"]


async def test_a_retried_step_run_writes_nothing_twice_and_does_not_ask_the_model_again(
    system: System,
) -> None:
    """The step's run, as Temporal retries it after its worker died once it had written the
    answer: the same head comes back, no event is written twice, the model is not asked again."""
    submitter, approver = await system.user("member"), await system.user("approver")
    task = await submitter.submit(system.team, "supervised")
    task = await approver.approve(await approver.wait_gate(task["id"], "plan"))
    task = await approver.wait_gate(task["id"], "step")
    step_id = task["steps"][0]["id"]
    async with system.db.session() as session:
        last = (await session.exec(select(AuditEvent).where(AuditEvent.task_id == task["id"]))).all()
    head = max(last, key=lambda e: e.seq)
    key = f"retry-test-{task['id']}"
    first = [TaskEvent(task["id"], f"{key}/1", "system", EventAction.STEP_STARTED, step_id=step_id)]
    first[0].after = Anchor(head.seq, head.hash)
    then = [TaskEvent(task["id"], f"{key}/2", "system", EventAction.STEP_FINISHED, step_id=step_id)]
    request = StepRequest(task["id"], step_id, f"{key}/call", None, first, then)
    writer = EventWriter(system.db)
    steps = StepActivities(
        ModelClient.from_settings(system.settings), Tasks(system.db), writer, Reports(system.db)
    )
    env = ActivityEnvironment()
    answered = await env.run(steps.answer_step, deepcopy(request))
    assert answered.recorded is not None and answered.started is not None
    asked = len(system.model.prompts("step"))
    env.info = dataclasses.replace(env.info, attempt=2)
    again = await env.run(steps.answer_step, deepcopy(request))
    assert again.recorded == answered.recorded and again.started == answered.started
    assert len(system.model.prompts("step")) == asked
    async with system.db.session() as session:
        events = (await session.exec(select(AuditEvent).where(AuditEvent.task_id == task["id"]))).all()
    assert [e.action for e in events if e.seq > head.seq] == ["step.started", "step.finished"]
