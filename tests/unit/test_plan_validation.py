"""What a valid plan is."""

from __future__ import annotations

import json

import pytest

from exosuit.domain.plan import PlanInvalid, parse_plan, plan_json_schema


def step(**overrides: object) -> dict[str, object]:
    return {"title": "T", "instructions": "Do it.", "kind": "llm", "tool": None, "risk": "low"} | overrides


def test_valid_plan_parses() -> None:
    steps = parse_plan(json.dumps({"steps": [step(), step(title="U", risk="high")]}))
    assert [(s.title, s.risk) for s in steps] == [("T", "low"), ("U", "high")]


def test_tool_with_side_effects_is_raised_to_medium_risk() -> None:
    steps = parse_plan(json.dumps({"steps": [step(kind="tool", tool="write_file", risk="low")]}))
    assert steps[0].risk == "medium"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("not json", "not valid JSON"),
        (json.dumps({"steps": []}), "steps"),
        (json.dumps({"steps": [step(risk="extreme")]}), "risk"),
        (json.dumps({"steps": [step(kind="tool", tool="rm_rf")]}), "unknown tool"),
        (json.dumps({"plan": [step()]}), "schema"),
    ],
)
def test_invalid_plans_say_why(answer: str, problem: str) -> None:
    with pytest.raises(PlanInvalid, match=problem):
        parse_plan(answer)


def test_schema_asks_for_the_contract_fields() -> None:
    schema = plan_json_schema()
    assert set(schema["properties"]["steps"]["items"]["required"]) == {
        "title",
        "instructions",
        "kind",
        "tool",
        "risk",
        "args",
    }


def test_step_count_bounds_and_distinct_titles() -> None:
    two = json.dumps({"steps": [step(title="A"), step(title="B")]})
    with pytest.raises(PlanInvalid, match="3 to 7 steps, not 2"):
        parse_plan(two, min_steps=3, max_steps=7)
    assert len(parse_plan(two)) == 2
    with pytest.raises(PlanInvalid, match="title of its own"):
        parse_plan(json.dumps({"steps": [step(title="Same"), step(title="same ")]}))
