"""A quorum over the API: a high-risk gate waits for two distinct approvers (never the
submitter); one rejection decides it at once."""

from __future__ import annotations

from typing import Any

from tests.support.system import Api, System

SEND = {"title": "Send", "instructions": "Send it.", "kind": "llm", "tool": None, "risk": "high"}


async def high_risk_gate(system: System) -> tuple[Api, Api, Api, dict[str, Any]]:
    """A task of one high-risk step, delegated: its step gate is the only one, quorum 2; the
    submitter (an approver: only four-eyes keeps them out) and two other approvers."""
    await system.set_team(max_autonomy="autonomous", quorum_high=2)
    system.model.plan = [SEND]
    ada, bob = await system.user("approver"), await system.user("approver")
    submitter = await system.user("approver")
    task = await submitter.wait_gate((await submitter.submit(system.team, "delegated"))["id"], "step")
    return submitter, ada, bob, task


async def audit(api: Api, task_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.http.get(f"/api/v1/tasks/{task_id}/audit")).json()["items"]
    return items


async def test_a_high_risk_gate_runs_only_after_two_distinct_approvers(system: System) -> None:
    submitter, ada, bob, task = await high_risk_gate(system)
    gate = task["open_gate"]
    assert (gate["approvals"], gate["approvals_needed"]) == ([], 2)

    claimed = await ada.http.post(f"/api/v1/tasks/{task['id']}/gates/{gate['id']}/claim", json={})
    assert claimed.status_code == 200, claimed.text
    first = await ada.decide(task, "approve")
    assert first.status_code == 200, first.text
    task = await ada.task(task["id"])
    assert task["open_gate"]["id"] == gate["id"]
    assert task["open_gate"]["approvals"] == [ada.email]
    assert task["open_gate"]["claimed_by"] is None  # her vote is in: her claim ends with it
    assert task["steps"][0]["status"] == "awaiting_approval"
    assert system.model.prompts("step") == []  # not run yet
    listed = (await bob.http.get("/api/v1/approvals")).json()["items"]
    assert [(i["gate"]["approvals"], i["gate"]["approvals_needed"]) for i in listed] == [([ada.email], 2)]
    voted = [e for e in await audit(ada, task["id"]) if e["action"] == "gate.approved"]
    assert [(e["actor"], e["data"]["action"], e["data"]["approvals"]) for e in voted] == [
        (f"user:{ada.email}", "approve", [ada.email])
    ]

    again = await ada.decide(task, "approve")
    assert again.status_code == 409, again.text
    assert again.json()["type"] == "/problems/already-approved"
    own = await submitter.decide(task, "approve")
    assert own.status_code == 403, own.text
    assert own.json()["type"] == "/problems/four-eyes"
    early_edit = await bob.decide(task, "edit", changes={"instructions": "Send it twice."})
    assert early_edit.status_code == 200, early_edit.text  # the second approval may edit: it decides

    done = await submitter.wait_done(task["id"])
    assert done["status"] == "completed"
    assert done["result"] == "done: Send it twice."
    decided = [e for e in await audit(ada, task["id"]) if e["action"] == "gate.decided"]
    assert [(e["actor"], e["data"]["approvals"]) for e in decided] == [
        (f"user:{bob.email}", [ada.email, bob.email])
    ]


async def test_an_edit_before_the_last_approval_is_refused(system: System) -> None:
    _, ada, _, task = await high_risk_gate(system)
    edit = await ada.decide(task, "edit", changes={"instructions": "Send it twice."})
    assert edit.status_code == 422, edit.text
    assert "last approval" in edit.json()["detail"]
    assert (await ada.task(task["id"]))["open_gate"]["approvals"] == []


async def test_one_rejection_decides_a_quorum_gate(system: System) -> None:
    submitter, ada, bob, task = await high_risk_gate(system)
    assert (await ada.decide(task, "approve")).status_code == 200
    rejected = await bob.decide(task, "reject", reason="not this one", on_reject="stop")
    assert rejected.status_code == 200, rejected.text
    done = await submitter.wait_done(task["id"])
    assert done["status"] == "rejected"
    assert system.model.prompts("step") == []
