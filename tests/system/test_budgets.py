"""Metering and budgets: cost gates whatever the level, and usage by team and month."""

from __future__ import annotations

import pytest

from tests.support.cli import run_cli
from tests.support.system import System

# Scripted calls report 11 + 7 tokens at $2 / $8 per million: $0.000078 each. A step's
# projection assumes a full 1,024-token answer: about $0.0083.
ONE_CALL = 11 * 2e-6 + 7 * 8e-6


async def test_a_step_that_would_cross_the_task_budget_opens_a_cost_gate(system: System) -> None:
    await system.set_team(max_autonomy="autonomous")
    user = await system.user("approver")
    task = await user.submit(system.team, "autonomous", budget_usd=0.005)
    assert task["budget_usd"] == 0.005
    task = await user.wait_gate(task["id"], "cost")  # autonomous, yet it waits
    gate = task["open_gate"]
    assert gate["step_id"] == task["steps"][0]["id"]
    assert "of its $0.0050 budget" in gate["reason"]
    assert (await user.decide(task, "reject", reason="cheaper please")).status_code == 422  # revise
    assert (await user.decide(task, "edit", changes={"instructions": "x"})).status_code == 422
    await user.approve(task)
    task = await user.wait_gate(task["id"], "cost")
    assert task["open_gate"]["step_id"] == task["steps"][1]["id"]
    skipped = await user.decide(task, "reject", reason="over budget", on_reject="skip")
    assert skipped.status_code == 200
    task = await user.wait_done(task["id"])
    assert task["status"] == "completed"
    assert [s["status"] for s in task["steps"]] == ["completed", "skipped"]
    assert task["usage"]["cost_usd"] == pytest.approx(2 * ONE_CALL)
    audit = (await user.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    opened = [e for e in audit if e["action"] == "gate.opened" and e["data"]["kind"] == "cost"]
    assert len(opened) == 2
    assert "budget" in opened[0]["data"]["reason"]


async def test_the_teams_monthly_budget_gates_steps_too(system: System) -> None:
    await system.set_team(monthly_budget_usd=0.001)
    user = await system.user("approver")
    task = await user.submit(system.team, "delegated")
    task = await user.wait_gate(task["id"], "cost")
    assert f"team {system.team} has spent" in task["open_gate"]["reason"]
    assert "budget this month" in task["open_gate"]["reason"]
    await user.decide(task, "reject", reason="month is over", on_reject="stop")
    assert (await user.wait_done(task["id"]))["status"] == "rejected"


async def test_no_budget_no_cost_gate(system: System) -> None:
    user = await system.user("approver")
    task = await user.wait_done((await user.submit(system.team, "delegated"))["id"])
    assert task["status"] == "completed"
    assert [s["status"] for s in task["steps"]] == ["completed", "completed"]
    audit = (await user.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    assert [e for e in audit if e["action"] == "gate.opened"] == []  # no cost gate, nor any other


async def test_usage_by_team_and_month_is_the_sum_of_reported_usage(system: System) -> None:
    user = await system.user("approver")
    for _ in range(2):
        await user.wait_done((await user.submit(system.team, "delegated"))["id"])
    url = system.db.engine.url.render_as_string(hide_password=False)
    code, out = await run_cli("usage", "--team", system.team, env={"EXOSUIT_DATABASE_URL": url})
    assert code == 0, out
    row = next(line for line in out.splitlines() if system.team in line).split()
    # Two tasks of one plan and two steps: six calls of 11 + 7 tokens.
    assert row[2:5] == ["6", "66", "42"]
    assert float(row[5]) == pytest.approx(6 * ONE_CALL, abs=1e-6)
    code, out = await run_cli("usage", "--month", "1999-01", env={"EXOSUIT_DATABASE_URL": url})
    assert system.team not in out
