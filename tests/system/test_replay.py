"""Determinism: workflow histories recorded by each release replay against today's code.

`tests/histories/` holds each release's histories (`<version>-rich-manual-task.json`, and
`<version>-budgeted-task.json`: a budgeted task, whose model steps' costs are checked); a
change to TaskWorkflow that would break a workflow started by any of them fails here.
Record this version's with `EXOSUIT_RECORD_HISTORIES=1 .venv/bin/pytest -p no:xdist
tests/system/test_replay.py -k record` (docs/workflow-versioning.md says when).
"""

from __future__ import annotations

import json
import os
from importlib.metadata import version
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from exosuit.cli.worker import workflow_runner
from exosuit.domain.contracts import workflow_id_for
from exosuit.storage.db import Database
from tests.support.flows import ENDED, MAX_GATES, next_gate
from tests.support.model_server import DEFAULT_PLAN, ModelServer, ScriptedModel
from tests.support.paths import HISTORIES
from tests.support.system import System, running_system
from workflows.task import TaskWorkflow

RECORDINGS = {  # this release's histories, by scenario
    "rich": f"{version('exosuit')}-rich-manual-task.json",
    "budgeted": f"{version('exosuit')}-budgeted-task.json",
}
# The recorded plan ends with a tool step, so the history holds a tool call.
RECORDED_PLAN = [
    *DEFAULT_PLAN,
    {"title": "Save", "instructions": "{previous result}", "kind": "tool", "tool": "write_file"}
    | {"risk": "medium"},
]


async def run_rich_scenario(system: System) -> str:
    """A manual task through every kind of decision, a slider move and a redraft."""
    await system.set_team(max_autonomy="autonomous")
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await submitter.submit(system.team, "manual")
    task = await approver.wait_gate(task["id"], "plan")
    assert (await approver.decide(task, "reject", reason="Add a title step.")).status_code == 200
    task = await next_gate(approver, task["id"], {task["open_gate"]["id"]})
    edit = await approver.decide(task, "edit", changes={"steps": system.model.plan})
    assert edit.status_code == 200, edit.text
    seen: set[str] = {task["open_gate"]["id"]}
    script = ["reject-revise", "edit-instructions", "edit-output", "slider"]
    for _ in range(MAX_GATES):
        task = await next_gate(approver, task["id"], seen)
        if task["status"] in ENDED:
            return str(task["id"])
        seen.add(task["open_gate"]["id"])
        move = script.pop(0) if script else "approve"
        if move == "reject-revise":
            response = await approver.decide(task, "reject", reason="Be brief.")
        elif move == "edit-instructions":
            response = await approver.decide(task, "edit", changes={"instructions": "Write one line."})
        elif move == "edit-output":
            response = await approver.decide(task, "edit", changes={"output": "Edited by a human."})
        else:
            if move == "slider":
                await submitter.http.put(
                    f"/api/v1/tasks/{task['id']}/autonomy", json={"autonomy": "supervised"}
                )
            response = await approver.decide(task, "approve")
        assert response.status_code == 200, (move, response.text)
    raise AssertionError(f"the scenario opened more than {MAX_GATES} gates")


async def run_budgeted_scenario(system: System) -> str:
    """A supervised task with a budget, every gate approved: the flow checks the first model
    step's cost, each step's run the next one's."""
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await submitter.submit(system.team, "supervised", budget_usd=100.0)
    seen: set[str] = set()
    for _ in range(MAX_GATES):
        task = await next_gate(approver, task["id"], seen)
        if task["status"] in ENDED:
            return str(task["id"])
        seen.add(task["open_gate"]["id"])
        response = await approver.decide(task, "approve")
        assert response.status_code == 200, response.text
    raise AssertionError(f"the scenario opened more than {MAX_GATES} gates")


SCENARIOS = {"rich": run_rich_scenario, "budgeted": run_budgeted_scenario}


async def test_this_runs_history_replays(system: System) -> None:
    """Its payloads are sealed: the replayer opens them with the system's converter."""
    task_id = await run_rich_scenario(system)
    handle = system.temporal.get_workflow_handle(workflow_id_for(task_id))
    history = await handle.fetch_history()
    await Replayer(workflows=[TaskWorkflow], data_converter=system.temporal.data_converter).replay_workflow(
        history
    )


@pytest.mark.skipif(not os.environ.get("EXOSUIT_RECORD_HISTORIES"), reason="records only when asked to")
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_record_a_history_unsealed(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    tmp_path: Path,
    scenario: str,
) -> None:
    """`EXOSUIT_RECORD_HISTORIES=1`: record this version's histories, unsealed (no secret in
    the repo); `-k` with a scenario's name records that one alone."""
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(RECORDED_PLAN), tmp_path, sealed=False
    ) as system:
        task_id = await SCENARIOS[scenario](system)
        history = await system.temporal.get_workflow_handle(workflow_id_for(task_id)).fetch_history()
    await Replayer(workflows=[TaskWorkflow]).replay_workflow(history)
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / RECORDINGS[scenario]).write_text(history.to_json())


async def test_every_releases_history_still_replays() -> None:
    """With the worker's runner (unsandboxed), and in Temporal's sandbox, which also refuses a
    workflow that reads the clock or a random source behind Temporal's back."""
    files = sorted(HISTORIES.glob("*.json"))
    assert files, "no recorded histories in tests/histories"
    for runner in (workflow_runner(), SandboxedWorkflowRunner()):
        replayer = Replayer(workflows=[TaskWorkflow], workflow_runner=runner)
        for path in files:
            history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
            await replayer.replay_workflow(history)
