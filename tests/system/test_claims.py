"""Claims: an approver claims a gate, others see who holds it and must take it over to decide."""

from __future__ import annotations

from typing import Any

from tests.support.system import Api, System


def claim_url(task: dict[str, Any]) -> str:
    return f"/api/v1/tasks/{task['id']}/gates/{task['open_gate']['id']}/claim"


async def plan_gate(system: System) -> tuple[Api, Api, dict[str, Any]]:
    submitter = await system.user("member")
    first, second = await system.user("approver"), await system.user("approver")
    task = await first.wait_gate((await submitter.submit(system.team, "guarded"))["id"], "plan")
    return first, second, task


async def test_a_claimed_gate_refuses_another_approvers_claim_and_decision(system: System) -> None:
    first, second, task = await plan_gate(system)
    claimed = await first.http.post(claim_url(task), json={})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["claimed_by"] == first.email
    assert claimed.json()["claim_expires_at"] is not None
    shown = await second.task(task["id"])
    assert shown["open_gate"]["claimed_by"] == first.email

    refused = await second.http.post(claim_url(task), json={})
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/claimed"
    decided = await second.decide(task, "approve")
    assert decided.status_code == 409
    assert decided.json()["type"] == "/problems/claimed"
    assert first.email in decided.json()["detail"]


async def test_taking_over_a_claim_is_audited_with_the_previous_holder(system: System) -> None:
    first, second, task = await plan_gate(system)
    assert (await first.http.post(claim_url(task), json={})).status_code == 200
    taken = await second.http.post(claim_url(task), json={"take_over": True})
    assert taken.status_code == 200, taken.text
    assert taken.json()["claimed_by"] == second.email
    assert (await first.decide(task, "approve")).json()["type"] == "/problems/claimed"
    assert (await second.decide(task, "approve")).status_code == 200
    await second.wait_done(task["id"])

    audit = (await second.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    claims = [e for e in audit if e["action"] == "gate.claimed"]
    assert [(e["actor"], e["data"]["previous"]) for e in claims] == [
        (f"user:{first.email}", None),
        (f"user:{second.email}", first.email),
    ]
    assert claims[1]["data"]["take_over"] is True
    verified = (await second.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
    assert verified["ok"], verified


async def test_a_claim_beside_a_running_workflow_keeps_its_chain_whole(system: System) -> None:
    first, _, task = await plan_gate(system)
    assert (await first.http.post(claim_url(task), json={})).status_code == 200
    verified = (await first.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
    assert verified["ok"] and verified["anchored"], verified  # the workflow's head is one behind
    assert (await first.decide(task, "approve")).status_code == 200  # its next record follows the claim
    done = await first.wait_done(task["id"])
    assert done["status"] == "completed"
    verified = (await first.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
    assert verified["ok"], verified


async def test_released_gate_is_open_to_everyone_and_only_the_holder_releases(system: System) -> None:
    first, second, task = await plan_gate(system)
    assert (await first.http.post(claim_url(task), json={})).status_code == 200
    assert (await second.http.delete(claim_url(task))).json()["type"] == "/problems/claimed"
    released = await first.http.delete(claim_url(task))
    assert released.status_code == 200
    assert released.json()["claimed_by"] is None
    assert (await second.decide(task, "approve")).status_code == 200


async def test_a_gate_can_be_assigned_to_an_approver_of_the_team_only(system: System) -> None:
    first, second, task = await plan_gate(system)
    member = await system.user("member")
    refused = await first.http.post(claim_url(task), json={"assignee": member.email})
    assert refused.status_code == 422
    assigned = await first.http.post(claim_url(task), json={"assignee": second.email})
    assert assigned.json()["claimed_by"] == second.email
    assert (await first.decide(task, "approve")).status_code == 409
    assert (await second.decide(task, "approve")).status_code == 200


async def bulk(api: Api, *items: tuple[dict[str, Any], str]) -> list[dict[str, Any]]:
    body = {
        "action": "approve",
        "items": [{"task_id": t["id"], "gate_id": t["open_gate"]["id"], "etag": etag} for t, etag in items],
    }
    response = await api.http.post("/api/v1/approvals/bulk", json=body)
    assert response.status_code == 200, response.text
    items_out: list[dict[str, Any]] = response.json()["items"]
    return items_out


async def test_bulk_approves_only_gates_unchanged_since_they_were_shown(system: System) -> None:
    submitter = await system.user("member")
    approver, colleague = await system.user("approver"), await system.user("approver")
    shown, unseen, revised = [
        await approver.wait_gate((await submitter.submit(system.team, "guarded"))["id"], "plan")
        for _ in range(3)
    ]
    listed = (await approver.http.get("/api/v1/approvals")).json()["items"]
    etags = {i["task"]["id"]: i["gate"]["etag"] for i in listed}
    assert etags[shown["id"]] == shown["open_gate"]["etag"]  # the list and the task agree
    # After it was shown, another approver sends the plan back: the model plans again.
    revise = await colleague.decide(revised, "reject", reason="Shorter, please.", on_reject="revise")
    assert revise.status_code == 200, revise.text
    old_gate = revised["open_gate"]["id"]
    await approver.wait(revised["id"], lambda t: (t["open_gate"] or {}).get("id") not in (None, old_gate))

    results = await bulk(
        approver,
        (shown, etags[shown["id"]]),
        (unseen, "an etag never shown"),
        (revised, etags[revised["id"]]),
    )
    assert [r["status"] for r in results] == [200, 412, 412]
    assert (await approver.wait_done(shown["id"]))["status"] == "completed"
    assert (await approver.task(unseen["id"]))["open_gate"]["id"] == unseen["open_gate"]["id"]
    assert (await approver.task(revised["id"]))["open_gate"] is not None


async def test_bulk_refuses_a_changed_gate_a_claimed_gate_and_the_submitters_own(system: System) -> None:
    first, second, task = await plan_gate(system)
    etag = task["open_gate"]["etag"]
    assert (await first.http.post(claim_url(task), json={})).status_code == 200
    assert [r["status"] for r in await bulk(second, (task, etag))] == [409]
    mine = await second.wait_gate((await second.submit(system.team, "supervised"))["id"], "plan")
    assert [r["status"] for r in await bulk(second, (mine, mine["open_gate"]["etag"]))] == [403]
