"""The rules planner: steps from the task's own words, deterministic, on a labelled set."""

from __future__ import annotations

import pytest

from exosuit.domain.plan import validate_steps
from exosuit.domain.rules_planner import rules_plan
from exosuit.domain.tools import PREVIOUS_RESULT, TOOLS
from tests.support.labelled_tasks import TASKS, covers


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


def test_asking_the_team_is_a_planned_question_the_plan_validation_accepts() -> None:
    steps = rules_plan("Greeting", "Ask me which tone to use, then write the greeting.", TOOLS)
    assert [(s.tool, s.risk) for s in steps] == [("ask_human", "low"), (None, "low")]
    assert steps[0].args == {"question": "Ask me which tone to use."}
    checked = validate_steps({"steps": [s.model_dump() for s in steps]})
    assert checked[0].tool == "ask_human" and checked[0].args == {"question": "Ask me which tone to use."}
