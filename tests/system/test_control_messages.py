"""Control messages from the history cannot be replayed, and a lowered team cap reaches
running tasks (docs/trust-edges.md: replay-proof control messages, the team's cap now)."""

from __future__ import annotations

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import Input, Meta, Request, WaitPolicy
from temporalio.api.workflowservice.v1 import UpdateWorkflowExecutionRequest

from exosuit.cli.team_cap import tell_tasks
from exosuit.domain.autonomy import AutonomyLevel
from exosuit.domain.contracts import workflow_id_for
from exosuit.storage.tasks import Tasks
from tests.support.system import System
from web.gateway import TaskGateway

COMPLETED = UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED
HIGH_FIRST = [
    {"title": "Check", "instructions": "Check the facts.", "kind": "llm", "tool": None, "risk": "high"},
    {"title": "Write", "instructions": "Write it.", "kind": "llm", "tool": None, "risk": "low"},
]


async def test_a_slider_move_copied_from_the_history_is_refused(system: System) -> None:
    await system.set_team(max_autonomy="autonomous")
    approver = await system.user("approver")
    task = await (await system.user("member")).submit(system.team, "manual")
    await approver.wait_gate(task["id"], "plan")
    for level in ("delegated", "manual"):
        moved = await approver.http.put(f"/api/v1/tasks/{task['id']}/autonomy", json={"autonomy": level})
        assert moved.status_code == 200, moved.text
    workflow_id = workflow_id_for(task["id"])
    history = await system.temporal.get_workflow_handle(workflow_id).fetch_history()
    accepted = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    replayed = next(r for r in accepted if r.input.name == "set_autonomy").input.args  # the move up
    # The attacker's raw request: the sealed payload exactly as the history holds it.
    answer = await system.temporal.workflow_service.update_workflow_execution(
        UpdateWorkflowExecutionRequest(
            namespace=system.temporal.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            request=Request(
                meta=Meta(update_id="replayed-1"),
                input=Input(name="set_autonomy", args=replayed),
            ),
            wait_policy=WaitPolicy(lifecycle_stage=COMPLETED),
        )
    )
    assert answer.outcome.failure.application_failure_info.type == "Replayed"
    assert (await approver.task(task["id"]))["autonomy"] == "manual"


async def test_a_lowered_team_cap_gates_a_running_task_and_holds_its_slider(system: System) -> None:
    await system.set_team(max_autonomy="autonomous")
    system.model.plan = HIGH_FIRST
    member, approver = await system.user("member"), await system.user("approver")
    task = await member.submit(system.team, "delegated")
    task = await approver.wait_gate(task["id"], "step")  # delegated: only the high step waits
    # `exosuit team set TEAM --max-autonomy manual`: the policy, then each running task told.
    await system.set_team(max_autonomy="manual")
    gateway = TaskGateway(system.temporal, system.settings.task_queue)
    task_ids = await Tasks(system.db).active_in(system.team)
    assert task_ids == [task["id"]]
    lines = await tell_tasks(gateway, task_ids, system.team, AutonomyLevel.MANUAL)
    assert lines == [f"{system.team}: 1 running task(s) now capped at manual"]
    await approver.approve(task)
    task = await approver.wait_gate(task["id"], "output")  # manual: the output waits (delegated: none)
    assert task["autonomy"] == "manual"
    moved = await member.http.put(f"/api/v1/tasks/{task['id']}/autonomy", json={"autonomy": "delegated"})
    assert moved.status_code == 422, moved.text
    assert moved.json()["type"].endswith("/problems/above-cap")
