"""Deciding from a notification's link: once, as its person, under every rule, never on GET."""

from __future__ import annotations

import re
from typing import Any

import httpx

from exosuit.storage.decision_links import DecisionLinks
from exosuit.storage.tables import DecisionLink
from tests.support.system import Api, System
from tests.support.webhook_receiver import Receiver


async def plan_gate(system: System, submitter: Api) -> dict[str, Any]:
    return await submitter.wait_gate((await submitter.submit(system.team, "guarded"))["id"], "plan")


def form_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(task_id|etag)" value="([^"]+)"', page))


async def test_a_decision_link_shows_what_will_run_decides_once_and_is_then_spent(system: System) -> None:
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await plan_gate(system, submitter)
    token = await DecisionLinks(system.db).mint(task["id"], approver.email)
    assert token is not None
    async with httpx.AsyncClient(base_url=system.base_url) as browser:  # no sign-in: the link is the key
        shown = await browser.get(f"/decide/{token}")
        assert shown.status_code == 200
        assert "Write a first draft." in shown.text and f"deciding as <strong>{approver.email}" in shown.text
        await browser.get(f"/decide/{token}")  # looking twice decides nothing
        assert (await submitter.task(task["id"]))["open_gate"]["id"] == task["open_gate"]["id"]

        decided = await browser.post(f"/decide/{token}", data=form_fields(shown.text) | {"action": "approve"})
        assert decided.status_code == 200, decided.text
        assert "This link is now spent" in decided.text
        assert (await submitter.wait_done(task["id"]))["status"] == "completed"
        again = await browser.post(f"/decide/{token}", data=form_fields(shown.text) | {"action": "approve"})
        assert again.status_code == 410
        assert (await browser.get(f"/decide/{token}")).status_code == 410

    audit = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    decision = next(e for e in audit if e["action"] == "gate.decided")
    assert (decision["actor"], decision["data"]["token"]) == (f"user:{approver.email}", "decision link")


async def test_a_decision_link_expires_with_its_gate(system: System) -> None:
    submitter = await system.user("member")
    approver, colleague = await system.user("approver"), await system.user("approver")
    task = await plan_gate(system, submitter)
    token = await DecisionLinks(system.db).mint(task["id"], approver.email)
    assert (await colleague.decide(task, "approve")).status_code == 200
    async with httpx.AsyncClient(base_url=system.base_url) as browser:
        assert (await browser.get(f"/decide/{token}")).status_code == 410
        assert (await browser.get("/decide/not-a-token")).status_code == 410


async def test_a_decision_link_refuses_the_submitter_under_four_eyes(system: System) -> None:
    submitter = await system.user("approver")
    await system.user("approver")  # a second approver: the task is four-eyes, not solo
    task = await submitter.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    token = await DecisionLinks(system.db).mint(task["id"], submitter.email)
    async with httpx.AsyncClient(base_url=system.base_url) as browser:
        shown = await browser.get(f"/decide/{token}")
        assert "four-eyes" in shown.text and 'value="approve"' not in shown.text
        fields = {"task_id": task["id"], "etag": task["open_gate"]["etag"], "action": "approve"}
        refused = await browser.post(f"/decide/{token}", data=fields)
        assert refused.status_code == 403
        assert (await browser.get(f"/decide/{token}")).status_code == 200  # refused, so not spent
    assert (await submitter.task(task["id"]))["open_gate"]["id"] == task["open_gate"]["id"]


async def test_a_decision_link_refuses_a_gate_changed_since_the_page_showed_it(system: System) -> None:
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await plan_gate(system, submitter)
    token = await DecisionLinks(system.db).mint(task["id"], approver.email)
    async with httpx.AsyncClient(base_url=system.base_url) as browser:
        fields = {"task_id": task["id"], "etag": "what another page showed", "action": "approve"}
        assert (await browser.post(f"/decide/{token}", data=fields)).status_code == 412
    assert (await submitter.task(task["id"]))["open_gate"]["id"] == task["open_gate"]["id"]


async def test_a_gate_notification_carries_a_link_for_its_recipient_alone(
    notified: tuple[System, Receiver],
) -> None:
    system, receiver = notified
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await plan_gate(system, submitter)
    mine = f"/notify/{approver.email}"
    await receiver.wait_for(lambda: receiver.delivered(mine))
    message = receiver.delivered(mine)[0].json()["message"]
    found = re.search(r"/decide/([A-Za-z0-9_-]+)", message)
    assert found, message
    links: list[DecisionLink] = await DecisionLinks(system.db).for_task(task["id"])
    assert [link.email for link in links] == [approver.email]
    assert found.group(1) not in {link.token_hash for link in links}  # only its hash is stored
    async with httpx.AsyncClient(base_url=system.base_url) as browser:
        shown = await browser.get(f"/decide/{found.group(1)}")
        assert shown.status_code == 200 and approver.email in shown.text
