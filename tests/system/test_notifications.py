"""Notifications: a team's approvers hear, through an Apprise json:// URL, of gates they may
decide, in digests, with links to the gate; never of a gate they cannot decide."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

from exosuit.storage.notifications import Notifications
from tests.support.system import System, until
from tests.support.webhook_receiver import Receiver


def inbox(receiver: Receiver) -> dict[str, list[str]]:
    """Who got what: each recipient's messages (title and body)."""
    got: dict[str, list[str]] = {}
    for hit in receiver.delivered("/notify/"):
        who = unquote(hit.path.removeprefix("/notify/"))
        message = hit.json()
        got.setdefault(who, []).append(f"{message['title']}\n{message['message']}")
    return got


async def nothing_pending(system: System) -> bool:
    return not await Notifications(system.db).pending(system.team)


async def test_approvers_hear_of_gates_they_may_decide_and_the_submitter_does_not(
    notified: tuple[System, Receiver],
) -> None:
    system, receiver = notified
    submitter = await system.user("approver")  # an approver, but four-eyes keeps them off their gate
    other = await system.user("approver")
    member = await system.user("member")
    task = await submitter.submit(system.team, "supervised")
    await other.wait_gate(task["id"], "plan")
    await receiver.wait_for(lambda: other.email in inbox(receiver))
    # Everything the product queued for the team is sent: no other message is on its way.
    await until(lambda: nothing_pending(system), "every queued notification to be sent")
    got = inbox(receiver)
    assert set(got) == {other.email}, got  # not the submitter (four-eyes), not a member
    assert len(got[other.email]) == 1
    assert "plan gate" in got[other.email][0]
    assert f"/tasks/{task['id']}" in got[other.email][0]
    assert member.email not in got


async def test_a_burst_of_gates_arrives_as_one_digest(notified: tuple[System, Receiver]) -> None:
    system, receiver = notified
    submitter, approver = await system.user("member"), await system.user("approver")
    tasks = await asyncio.gather(
        *(submitter.submit(system.team, "supervised", f"Task {i}") for i in range(3))
    )
    for task in tasks:
        await approver.wait_gate(task["id"], "plan")
    await receiver.wait_for(
        lambda: sum(m.count("/tasks/") for m in inbox(receiver).get(approver.email, [])) >= 3
    )
    messages = inbox(receiver)[approver.email]
    assert len(messages) < 3  # gathered
    assert all(any(f"/tasks/{t['id']}" in m for m in messages) for t in tasks)
    assert submitter.email not in inbox(receiver)  # a member decides nothing
