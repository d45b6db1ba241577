"""Submitting tasks: idempotency, the team's cap, and the slider moving mid-run."""

from __future__ import annotations

import asyncio

from tests.support.flows import approve_all
from tests.support.system import System

BODY = {"title": "Report", "instructions": "Summarise Q3.", "autonomy": "supervised"}


async def test_same_idempotency_key_and_body_returns_the_same_task(system: System) -> None:
    user = await system.user("member")
    body, headers = BODY | {"team": system.team}, {"Idempotency-Key": "report-q3"}
    first, second = await asyncio.gather(
        user.http.post("/api/v1/tasks", json=body, headers=headers),
        user.http.post("/api/v1/tasks", json=body, headers=headers),
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    third = await user.http.post("/api/v1/tasks", json=body, headers=headers)
    assert third.json()["id"] == first.json()["id"]
    assert third.headers["Idempotent-Replayed"] == "true"
    listing = (await user.http.get("/api/v1/tasks", params={"team": system.team})).json()["items"]
    assert len(listing) == 1
    changed = await user.http.post("/api/v1/tasks", json=body | {"title": "Other"}, headers=headers)
    assert changed.status_code == 422


async def test_autonomy_above_the_teams_cap_is_422(system: System) -> None:
    user = await system.user("member")
    response = await user.http.post(
        "/api/v1/tasks", json=BODY | {"team": system.team, "autonomy": "autonomous"}
    )
    assert response.status_code == 422
    assert "cap" in response.json()["detail"]
    task = await user.submit(system.team, "supervised")
    moved = await user.http.put(f"/api/v1/tasks/{task['id']}/autonomy", json={"autonomy": "autonomous"})
    assert moved.status_code == 422


async def test_raising_the_slider_mid_run_drops_the_remaining_gates(system: System) -> None:
    await system.set_team(max_autonomy="autonomous")
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await submitter.submit(system.team, "supervised")
    await approver.approve(await approver.wait_gate(task["id"], "plan"))
    await approver.wait_gate(task["id"], "step")
    moved = await submitter.http.put(f"/api/v1/tasks/{task['id']}/autonomy", json={"autonomy": "autonomous"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["autonomy"] == "autonomous"
    met, task = await approve_all(approver, task["id"])
    assert met == [("step", 0)]  # the gate already open stays; the next step runs ungated
    assert task["status"] == "completed"
    audit = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    change = next(e for e in audit if e["action"] == "autonomy.changed")
    assert change["data"]["from"] == "supervised" and change["data"]["to"] == "autonomous"
    assert change["actor"] == f"user:{submitter.email}"


async def test_lowering_the_slider_mid_run_adds_output_review(system: System) -> None:
    system.model.plan = [
        {"title": "A", "instructions": "Do A.", "kind": "llm", "tool": None, "risk": "medium"},
        {"title": "B", "instructions": "Do B.", "kind": "llm", "tool": None, "risk": "low"},
    ]
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await submitter.submit(system.team, "guarded")
    await approver.approve(await approver.wait_gate(task["id"], "plan"))
    await approver.wait_gate(task["id"], "step")
    response = await approver.http.put(f"/api/v1/tasks/{task['id']}/autonomy", json={"autonomy": "manual"})
    assert response.status_code == 200
    met, task = await approve_all(approver, task["id"])
    assert met == [("step", 0), ("output", 0), ("step", 1), ("output", 1)]


async def test_member_who_did_not_submit_cannot_move_the_slider(system: System) -> None:
    submitter = await system.user("member")
    other = await system.user("member")
    task = await submitter.submit(system.team, "supervised")
    await submitter.wait_gate(task["id"], "plan")
    response = await other.http.put(f"/api/v1/tasks/{task['id']}/autonomy", json={"autonomy": "manual"})
    assert response.status_code == 403


async def test_cancel_ends_the_task_cleanly(system: System) -> None:
    submitter = await system.user("member")
    task = await submitter.submit(system.team, "supervised")
    await submitter.wait_gate(task["id"], "plan")
    response = await submitter.http.post(f"/api/v1/tasks/{task['id']}/cancel")
    assert response.status_code == 202
    task = await submitter.wait_done(task["id"])
    assert task["status"] == "cancelled" and task["open_gate"] is None
    audit = (await submitter.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    assert audit[-1]["action"] == "task.cancelled"
    assert audit[-1]["actor"] == f"user:{submitter.email}"
    again = await submitter.http.post(f"/api/v1/tasks/{task['id']}/cancel")
    assert again.status_code == 409


async def test_invalid_plan_is_retried_with_the_error_fed_back(system: System) -> None:
    system.model.plan_answers.extend(["this is not json"])
    user = await system.user("approver")
    task = await user.submit(system.team, "guarded")
    task = await user.wait_gate(task["id"], "plan")
    plans = system.model.prompts("plan")
    assert len(plans) == 2
    assert "not a valid plan" in plans[1] and "not valid JSON" in plans[1]


async def test_plan_invalid_twice_falls_back_to_the_rules_planner(system: System) -> None:
    system.model.plan_answers.extend(['{"steps": []}', "still not a plan"])
    user = await system.user("approver")
    task = await user.submit(system.team, "guarded", title="Autumn haiku")
    task = await user.wait_gate(task["id"], "plan")  # the task always reaches its plan gate
    assert len(system.model.prompts("plan")) == 2
    assert [(s["title"], s["instructions"]) for s in task["steps"]] == [("Autumn haiku", "About autumn.")]
    audit = (await user.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    planned = next(e for e in audit if e["action"] == "task.planned")
    assert planned["actor"] == "system"
    assert planned["data"]["planner"] == "rules"
    assert "no valid plan" in planned["data"]["reason"] and "not valid JSON" in planned["data"]["reason"]
    assert [e["action"] for e in audit].count("plan.invalid") == 2


async def test_model_server_errors_are_retried_by_temporal(system: System) -> None:
    system.model.failures.extend([500, 429])
    user = await system.user("approver")
    task = await user.submit(system.team, "guarded")
    task = await user.wait_gate(task["id"], "plan")
    assert len(system.model.requests) == 3


async def test_model_refusing_the_request_fails_the_task_without_retrying(system: System) -> None:
    system.model.failures.append(400)
    user = await system.user("approver")
    task = await user.wait_done((await user.submit(system.team, "guarded"))["id"])
    assert task["status"] == "failed"
    assert "HTTP 400" in task["error"]
    assert len(system.model.requests) == 1
