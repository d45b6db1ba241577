"""A gate sent back for revision many times continues as new inside its loop, not only
between steps, so the history stays under Temporal's limit and the task completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from exosuit.cli.temporal_server import temporal_cli
from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import ENDED, running_system

REVISIONS = 60
# Suggest continue-as-new early; without it this task would pass the hard limit and fail.
LIMITS = ("limit.historyCount.suggestContinueAsNew=120", "limit.historyCount.error=500")


def _other_gate(gate_id: str, kind: str) -> Any:
    def ready(task: dict[str, Any]) -> bool:
        gate = task["open_gate"]
        return task["status"] in ENDED or (
            gate is not None and gate["id"] != gate_id and gate["kind"] == kind
        )

    return ready


async def test_an_output_revised_sixty_times_continues_as_new_and_completes(
    model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    extra = [arg for value in LIMITS for arg in ("--dynamic-config-value", value)]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), dev_server_extra_args=extra
    )
    plan = [{"title": "Haiku", "instructions": "Write a haiku.", "kind": "llm", "tool": None, "risk": "low"}]
    try:
        async with running_system(
            env.client, model_server, sqlite_db, ScriptedModel(plan), tmp_path
        ) as system:
            await system.set_team(max_revisions=REVISIONS)
            api = await system.user("approver")
            task = await api.wait_gate((await api.submit(system.team, "manual"))["id"], "plan")
            await api.approve(task)
            task = await api.wait_gate(task["id"], "step")
            await api.approve(task)
            task = await api.wait_gate(task["id"], "output")
            for _ in range(REVISIONS):
                sent_back = await api.decide(task, "reject", reason="Again.", on_reject="revise")
                assert sent_back.status_code == 200, sent_back.text
                next_gate = _other_gate(task["open_gate"]["id"], "output")
                task = await api.wait(task["id"], next_gate, "the next output gate")
                assert task["status"] not in ENDED, task
            await api.approve(task)
            task = await api.wait_done(task["id"])
            assert task["status"] == "completed", task
            runs = [r async for r in env.client.list_workflows(f'WorkflowId = "task-{task["id"]}"')]
            assert len(runs) >= 2, runs  # it continued as new inside the output gate's loop
            audit = (await api.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
            actions = [e["action"] for e in audit]
            assert actions.count("step.finished") == REVISIONS + 1
            assert actions.count("task.submitted") == 1
            # A re-opened gate keeps its id and is not recorded again: every decision names a
            # gate opened once (plan, step, and the output gate 61 times).
            opened = [e["data"]["gate_id"] for e in audit if e["action"] == "gate.opened"]
            decided = [e["data"]["gate_id"] for e in audit if e["action"] == "gate.decided"]
            assert len(opened) == len(set(opened)) == REVISIONS + 3
            assert decided == opened
            verify = (await api.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
            assert verify["ok"] and verify["anchored"], verify
            print(f"\n{REVISIONS} revisions over {len(runs)} runs, {len(audit)} audit events")
    finally:
        await env.shutdown()
