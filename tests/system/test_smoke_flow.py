"""A supervised task walks plan gate -> step gates -> completion over the real stack."""

from __future__ import annotations

from tests.support.system import System


async def test_supervised_task_completes_after_every_gate_is_approved(system: System) -> None:
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await submitter.submit(system.team, "supervised")
    assert task["status"] == "planning"
    task = await approver.wait_gate(task["id"], "plan")
    assert [s["title"] for s in task["steps"]] == ["Draft", "Polish"]
    await approver.approve(task)
    for index in range(2):
        task = await approver.wait_gate(task["id"], "step")
        assert task["open_gate"]["step_id"] == task["steps"][index]["id"]
        await approver.approve(task)
    task = await approver.wait_done(task["id"])
    assert task["status"] == "completed"
    assert task["result"] == "done: Polish the draft."
