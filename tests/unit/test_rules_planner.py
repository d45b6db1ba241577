"""The rules planner: steps from the task's own words, deterministic, on a labelled set."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from exosuit.domain.plan import validate_steps
from exosuit.domain.rules_planner import rules_plan
from exosuit.domain.tools import PREVIOUS_RESULT, TOOLS
from exosuit.storage.db import Database
from tests.support.labelled_tasks import TASKS, covers
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.pages import signed_in
from tests.support.system import running_system


def plan(instructions: str, title: str = "Task") -> list[tuple[str, str, str | None, str]]:
    return [(s.title, s.instructions, s.tool, s.risk) for s in rules_plan(title, instructions, TOOLS)]


def test_actions_joined_by_and_then_and_commas_become_steps_of_their_own() -> None:
    steps = plan("Brainstorm 10 names for a budgeting app, pick the best three, and then explain why.")
    assert [title for title, *_ in steps] == ["Brainstorm 10 names", "Pick the best three", "Explain why"]


def test_and_between_things_is_not_a_new_action() -> None:
    assert plan("Write a haiku about salt and pepper.") == [
        ("Write a haiku", "Write a haiku about salt and pepper.", None, "low")
    ]
    assert [t for t, *_ in plan("Draft and send the invitation.")] == ["Draft and send the invitation"]


def test_listed_lines_are_steps_and_prose_that_asks_nothing_is_context() -> None:
    steps = plan("Our audience is new hires.\n- Outline the first week\n- Draft a welcome email")
    assert [title for title, *_ in steps] == ["Outline the first week", "Draft a welcome email"]
    assert all(text.endswith("Context: Our audience is new hires.") for _, text, *_ in steps)


def test_plain_words_ask_for_tools_with_the_risk_policy_sets() -> None:
    steps = plan("Summarise the notes, then count the words and save it as a file.")
    assert steps[1][2:] == ("word_count", "low")
    assert steps[2][1:] == (PREVIOUS_RESULT, "write_file", "medium")  # saves what came before


def test_a_tool_that_is_not_configured_is_an_llm_step() -> None:
    steps = plan("Draft the summary and email it to ana@example.com.")
    assert [tool for *_, tool, _ in steps] == [None, None]  # no send_email in the catalogue yet


def test_a_task_that_names_no_action_is_one_step() -> None:
    assert plan("About autumn.", title="Autumn haiku") == [("Autumn haiku", "About autumn.", None, "low")]


def test_titles_are_short_and_distinct_and_plans_are_valid() -> None:
    steps = rules_plan("x", "Write a poem. Write a poem. Review it.", TOOLS)
    assert [s.title for s in steps] == ["Write a poem", "Write a poem (2)", "Review it"]
    validate_steps({"steps": [s.model_dump(mode="json") for s in steps]})


def test_the_same_task_always_gets_the_same_plan() -> None:
    for task in TASKS:
        assert rules_plan(task.title, task.instructions, TOOLS) == rules_plan(
            task.title, task.instructions, TOOLS
        )


def test_the_labelled_tasks_have_every_asked_for_action_covered() -> None:
    missed = [
        task.title
        for task in TASKS
        if not covers(
            task.actions,
            [s.model_dump(mode="json") for s in rules_plan(task.title, task.instructions, TOOLS)],
        )
    ]
    assert len(TASKS) - len(missed) >= 14, missed


@pytest.mark.parametrize("instructions", ["", "   ", "\n-\n", "and then, and", "x" * 5000])
def test_odd_instructions_still_give_a_valid_plan(instructions: str) -> None:
    steps = rules_plan("Odd", instructions, TOOLS)
    validate_steps({"steps": [s.model_dump(mode="json") for s in steps]})


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
