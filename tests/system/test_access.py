"""Who may see and decide what: roles, four-eyes, team isolation, stale gates, races."""

from __future__ import annotations

import asyncio
import uuid

from tests.support.flows import THREE_RISKS
from tests.support.system import System


async def test_submitter_cannot_approve_own_supervised_gate(system: System) -> None:
    submitter = await system.user("approver")
    colleague = await system.user("approver")
    task = await submitter.submit(system.team, "supervised")
    task = await submitter.wait_gate(task["id"], "plan")
    response = await submitter.decide(task, "approve")
    assert response.status_code == 403
    assert "four-eyes" in response.json()["detail"]
    assert (await colleague.decide(task, "approve")).status_code == 200


async def test_the_only_approver_of_a_team_decides_their_own_supervised_task_as_solo(
    system: System,
) -> None:
    alone = await system.user("approver")
    task = await alone.submit(system.team, "supervised")
    task = await alone.wait_gate(task["id"], "plan")
    assert task["open_gate"]["four_eyes"] is False
    assert (await alone.decide(task, "approve")).status_code == 200
    audit = (await alone.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    assert audit[0]["data"]["solo"] is True
    opened = next(e for e in audit if e["action"] == "gate.opened")
    assert opened["data"]["four_eyes_waived"] == "solo"
    colleague = await system.user("approver")  # from now on the team has two
    again = await alone.wait_gate((await alone.submit(system.team, "supervised"))["id"], "plan")
    assert (await alone.decide(again, "approve")).status_code == 403
    assert (await colleague.decide(again, "approve")).status_code == 200


async def test_submitter_may_approve_own_guarded_gate_but_not_a_high_risk_step(system: System) -> None:
    system.model.plan = THREE_RISKS
    submitter = await system.user("approver")
    colleague = await system.user("approver")  # before the submission: a team of two, not solo
    task = await submitter.submit(system.team, "guarded")
    task = await submitter.wait_gate(task["id"], "plan")
    assert task["open_gate"]["four_eyes"] is True  # the plan holds a high-risk step
    await colleague.approve(task)
    task = await submitter.wait_gate(task["id"], "step")  # medium risk
    assert task["open_gate"]["four_eyes"] is False
    await submitter.approve(task)
    task = await submitter.wait(
        task["id"], lambda t: t["open_gate"] and t["open_gate"]["id"] != task["open_gate"]["id"]
    )
    assert (await submitter.decide(task, "approve")).status_code == 403  # high risk
    assert (await colleague.decide(task, "approve")).status_code == 200


async def test_member_cannot_decide(system: System) -> None:
    submitter = await system.user("member")
    other_member = await system.user("member")
    task = await submitter.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    response = await other_member.decide(task, "approve")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_another_teams_task_is_404_everywhere(system: System) -> None:
    submitter = await system.user("member")
    approver = await system.user("approver")
    outsider = await system.user("admin", team=f"other-{uuid.uuid4().hex[:6]}")
    task = await submitter.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    task_url = f"/api/v1/tasks/{task['id']}"
    for method, path, body in [
        ("GET", task_url, None),
        ("GET", f"{task_url}/audit", None),
        ("GET", f"{task_url}/audit/verify", None),
        ("POST", f"{task_url}/decisions", {"gate_id": task["open_gate"]["id"], "action": "approve"}),
        ("PUT", f"{task_url}/autonomy", {"autonomy": "manual"}),
        ("POST", f"{task_url}/cancel", None),
    ]:
        response = await outsider.http.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
    listing = (await outsider.http.get("/api/v1/tasks")).json()["items"]
    assert task["id"] not in [t["id"] for t in listing]
    assert (await outsider.http.get("/api/v1/approvals")).json()["items"] == []
    assert (
        await outsider.http.post(
            "/api/v1/tasks",
            json={"title": "x", "instructions": "y", "team": system.team, "autonomy": "manual"},
        )
    ).status_code == 403
    assert (await approver.task(task["id"]))["open_gate"] is not None  # untouched


async def test_decision_on_a_gate_no_longer_open_is_409(system: System) -> None:
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await submitter.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    await approver.approve(task)
    again = await approver.decide(task, "approve")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    made_up = await approver.http.post(
        f"/api/v1/tasks/{task['id']}/decisions", json={"gate_id": "g_nope", "action": "approve"}
    )
    assert made_up.status_code == 409


async def test_two_approvers_racing_on_one_gate_exactly_one_wins(system: System) -> None:
    submitter = await system.user("member")
    first, second = await system.user("approver"), await system.user("approver")
    task = await submitter.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    responses = await asyncio.gather(
        first.decide(task, "reject", reason="no", on_reject="stop"), second.decide(task, "approve")
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    audit = (await first.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    assert sum(1 for e in audit if e["action"] == "gate.decided") == 1


async def test_approvals_lists_what_the_caller_may_decide_oldest_first(system: System) -> None:
    submitter = await system.user("approver")
    colleague = await system.user("approver")
    member = await system.user("member")
    older = await submitter.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    newer = await submitter.wait_gate((await submitter.submit(system.team, "guarded"))["id"], "plan")
    items = (await colleague.http.get("/api/v1/approvals")).json()["items"]
    assert [i["task"]["id"] for i in items] == [older["id"], newer["id"]]
    assert items[0]["gate"]["kind"] == "plan" and items[0]["step"] is None
    # Four-eyes keeps the supervised gate out of the submitter's own queue.
    mine = (await submitter.http.get("/api/v1/approvals")).json()["items"]
    assert [i["task"]["id"] for i in mine] == [newer["id"]]
    assert (await member.http.get("/api/v1/approvals")).json()["items"] == []


async def test_no_token_is_401_problem(system: System) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=system.base_url) as anonymous:
        response = await anonymous.get("/api/v1/tasks")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        bad = await anonymous.get("/api/v1/tasks", headers={"Authorization": "Bearer exo_wrong"})
        assert bad.status_code == 401
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
        ready = (await anonymous.get("/readyz")).json()
        assert ready["database"] == "ok" and ready["temporal"] == "ok"


async def test_body_over_the_limit_is_413(system: System) -> None:
    user = await system.user("member")
    huge = {"title": "x", "instructions": "y" * 2_000_000, "team": system.team, "autonomy": "manual"}
    response = await user.http.post("/api/v1/tasks", json=huge)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
