"""A provider that plans with the rules planner: a task reaches its plan gate (and is planned
again after a rejection) without a call to the model."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.pages import signed_in
from tests.support.system import running_system


async def test_a_provider_that_plans_with_rules_reaches_the_plan_gate_without_a_model_call(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    model = ScriptedModel()
    async with running_system(
        temporal_env.client, model_server, sqlite_db, model, tmp_path, llm_plan_with="rules"
    ) as system:
        user = await system.user("approver")
        task = await user.submit(system.team, "guarded", instructions="Draft the notes, then shorten them.")
        task = await user.wait_gate(task["id"], "plan")
        assert model.prompts("plan") == []
        assert [s["title"] for s in task["steps"]] == ["Draft the notes", "Shorten them"]
        audit = (await user.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
        planned = next(e for e in audit if e["action"] == "task.planned")
        assert planned["data"] == {
            "planner": "rules",
            "reason": "provider default plans with rules (plan_with)",
            "attempt": 1,
            "steps": planned["data"]["steps"],
        }
        browser, _ = await signed_in(system, "member")
        page = (await browser.http.get(f"/tasks/{task['id']}")).text
        assert "Planned by the rules planner: provider default plans with rules (plan_with)." in page
        # A rejected plan is planned again by the rules, with the reviewer's note on every step.
        await user.decide(task, "reject", reason="Mind the audience: children.")
        task = await user.wait(
            task["id"],
            lambda t: bool(t["open_gate"]) and "children" in t["steps"][0]["instructions"],
            "the re-plan with the note",
        )
        assert model.prompts("plan") == []
