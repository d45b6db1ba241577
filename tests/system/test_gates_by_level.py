"""Every row of the autonomy table, end to end: the gates a task meets at each level."""

from __future__ import annotations

import pytest

from tests.support.flows import THREE_RISKS, approve_all
from tests.support.system import System

# Steps are low (0), medium (1) and high (2) risk.
EXPECTED = {
    "manual": [
        ("plan", None),
        ("step", 0),
        ("output", 0),
        ("step", 1),
        ("output", 1),
        ("step", 2),
        ("output", 2),
    ],
    "supervised": [("plan", None), ("step", 0), ("step", 1), ("step", 2)],
    "guarded": [("plan", None), ("step", 1), ("step", 2)],
    "delegated": [("step", 2)],
    "autonomous": [],
}


@pytest.mark.parametrize("level", list(EXPECTED))
async def test_task_meets_exactly_the_gates_its_level_demands(system: System, level: str) -> None:
    await system.set_team(max_autonomy="autonomous")
    system.model.plan = THREE_RISKS
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await submitter.submit(system.team, level)
    met, task = await approve_all(approver, task["id"])
    assert met == EXPECTED[level]
    assert task["status"] == "completed"
    assert [s["status"] for s in task["steps"]] == ["completed"] * 3
    assert task["result"] == "done: Send it."
    # Three steps and one plan, each reported 11 + 7 tokens at $2 / $8 per million.
    assert task["usage"] == {
        "prompt_tokens": 44,
        "completion_tokens": 28,
        "cost_usd": pytest.approx(44 * 2e-6 + 28 * 8e-6),
    }
