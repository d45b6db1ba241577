"""A review team in Chromium: a live queue, claims between two approvers, phone width, dark."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.support.browser import signed_in_page
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.paths import ROOT
from tests.support.system import System, running_system, until

pytestmark = pytest.mark.browser

DOCS = ROOT / "docs"
LIVE = 15_000  # ms: how long an expectation waits for the page to update itself


async def test_the_queue_shows_a_new_gate_without_a_reload(chromium: Browser, ui_system: System) -> None:
    page, _ = await signed_in_page(chromium, ui_system)
    await page.goto("/queue")
    await expect(page.locator("#board")).to_contain_text("Nothing is waiting for you")
    loads: list[str] = []
    page.on("framenavigated", lambda frame: loads.append(frame.url))
    submitter = await ui_system.user("member")
    await submitter.submit(ui_system.team, "guarded")
    await expect(page.locator("#board tr.item")).to_have_count(1, timeout=LIVE)
    await expect(page).to_have_title("(1) Review queue · Exosuit", timeout=LIVE)
    assert loads == []  # it came over the event stream, not a navigation


async def test_one_approver_claims_the_other_sees_it_claimed_and_takes_it_over(
    chromium: Browser, ui_system: System
) -> None:
    submitter = await ui_system.user("member")
    task = await submitter.wait_gate((await submitter.submit(ui_system.team, "guarded"))["id"], "plan")
    ada, ada_email = await signed_in_page(chromium, ui_system)
    bob, bob_email = await signed_in_page(chromium, ui_system)
    await ada.goto("/queue")
    await bob.goto("/queue")
    await expect(bob.locator("#board").get_by_role("button", name="Approve")).to_be_visible()

    await ada.locator("#board").get_by_role("button", name="Claim").click()
    await expect(ada.locator("#board form.claim")).to_contain_text("You are working on this gate")
    # Bob's queue updates itself: the gate is Ada's, and his controls say so instead of deciding.
    await expect(bob.locator("#board td.holder")).to_contain_text(ada_email, timeout=LIVE)
    await expect(bob.locator("#board .gate")).to_contain_text(f"{ada_email} has claimed this gate")
    await expect(bob.locator("#board").get_by_role("button", name="Approve")).to_have_count(0)
    await bob.goto("/queue?claim=unclaimed")
    await expect(bob.locator("#board")).to_contain_text("Nothing is waiting for you")
    await bob.goto("/queue")

    await bob.locator("#board").get_by_role("button", name="Take over").click()
    await expect(bob.locator("#board form.claim")).to_contain_text("You are working on this gate")
    await expect(ada.locator("#board td.holder")).to_contain_text(bob_email, timeout=LIVE)
    await bob.locator("#board").get_by_role("button", name="Approve").click()
    await submitter.wait_done(task["id"])
    audit = (await submitter.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    taken = [e for e in audit if e["action"] == "gate.claimed"][-1]
    assert (taken["actor"], taken["data"]["previous"]) == (f"user:{bob_email}", ada_email)


async def test_bulk_approve_selects_only_gates_opened_in_the_detail_pane(
    chromium: Browser, ui_system: System
) -> None:
    submitter = await ui_system.user("member")
    tasks = [await submitter.submit(ui_system.team, "guarded") for _ in range(3)]
    for task in tasks:
        await submitter.wait_gate(task["id"], "plan")
    page, _ = await signed_in_page(chromium, ui_system)
    await page.goto("/queue")
    rows = page.locator("#board tr.item")
    await expect(rows).to_have_count(3, timeout=LIVE)
    # The first is open in the pane; the second is opened by a click; the third never is.
    await rows.nth(1).get_by_role("link").click()
    await expect(rows.nth(1)).to_have_class(re.compile("selected"))
    boxes = page.locator("#board input.bulk")
    await expect(boxes.nth(0)).to_be_enabled()
    await expect(boxes.nth(1)).to_be_enabled()
    await expect(boxes.nth(2)).to_be_disabled()
    await boxes.nth(0).check()
    await boxes.nth(1).check()
    await page.get_by_role("button", name="Approve selected").click()
    await expect(page.locator("#queue-notice")).to_contain_text("Approved 2 of 2.")
    for task in tasks[:2]:
        await submitter.wait_done(task["id"])
    await expect(rows).to_have_count(1, timeout=LIVE)
    assert (await submitter.task(tasks[2]["id"]))["status"] == "awaiting_approval"


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_queue_and_a_decision_work_on_a_phone(
    chromium: Browser, ui_system: System, scheme: str
) -> None:
    submitter = await ui_system.user("member")
    task = await submitter.wait_gate((await submitter.submit(ui_system.team, "guarded"))["id"], "plan")
    phone = {"viewport": {"width": 390, "height": 844}, "color_scheme": scheme, "is_mobile": True}
    page, _ = await signed_in_page(chromium, ui_system, **phone)
    await page.goto("/queue")
    await expect(page.locator("#board tr.item")).to_have_count(1, timeout=LIVE)
    wide = await page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 390, f"the page is {wide} px wide on a 390 px screen"
    approve = page.locator("#board").get_by_role("button", name="Approve")
    await approve.scroll_into_view_if_needed()
    await page.screenshot(path=str(DOCS / f"review-team-phone-{scheme}.png"), full_page=True)
    await approve.click()
    await submitter.wait_done(task["id"])


@pytest.fixture
async def short_lease(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    scripted_model: ScriptedModel,
    tmp_path: Path,
) -> AsyncIterator[System]:
    """A system whose claims last 3 s, so an open page renews its claim every second."""
    async with running_system(
        temporal_env.client, model_server, sqlite_db, scripted_model, tmp_path, claim_lease_minutes=0.05
    ) as system:
        yield system


async def test_an_open_page_keeps_its_visitors_claim(chromium: Browser, short_lease: System) -> None:
    submitter = await short_lease.user("member")
    task = await submitter.wait_gate((await submitter.submit(short_lease.team, "guarded"))["id"], "plan")
    page, email = await signed_in_page(chromium, short_lease)
    await page.goto(f"/tasks/{task['id']}")
    await page.get_by_role("button", name="Claim").click()
    await expect(page.locator("form.claim")).to_contain_text("You are working on this gate")
    first = (await submitter.task(task["id"]))["open_gate"]["claim_expires_at"]

    async def renewed() -> bool:
        gate = (await submitter.task(task["id"]))["open_gate"]
        return gate["claimed_by"] == email and gate["claim_expires_at"] > first

    await until(renewed, "the open page to renew its claim")


async def test_a_high_risk_gate_waits_for_a_second_approver(chromium: Browser, ui_system: System) -> None:
    await ui_system.set_team(max_autonomy="autonomous", quorum_high=2)
    ui_system.model.plan = [
        {"title": "Send", "instructions": "Send it.", "kind": "llm", "tool": None, "risk": "high"}
    ]
    ada, _ = await signed_in_page(chromium, ui_system)
    bob, _ = await signed_in_page(chromium, ui_system)
    submitter = await ui_system.user("member")
    task = await submitter.wait_gate((await submitter.submit(ui_system.team, "delegated"))["id"], "step")
    await ada.goto(f"/tasks/{task['id']}")
    await bob.goto(f"/tasks/{task['id']}")
    await expect(ada.locator(".gate")).to_contain_text("0 of 2 approvals; waiting for 2 more")
    await expect(ada.get_by_role("button", name="Edit")).to_have_count(0)  # only the last may edit

    await ada.get_by_role("button", name="Approve").click()
    await expect(ada.locator(".gate")).to_contain_text("1 of 2 approvals; waiting for one more")
    await expect(ada.locator(".gate")).to_contain_text("You have approved this gate")
    await expect(ada.get_by_role("button", name="Approve")).to_have_count(0)
    # Bob's page updates itself with Ada's vote; the step has not run.
    await expect(bob.locator(".gate")).to_contain_text("1 of 2 approvals; waiting for one more", timeout=LIVE)
    await expect(bob.get_by_role("button", name="Edit")).to_be_visible()  # Bob's approval decides
    assert (await submitter.task(task["id"]))["steps"][0]["status"] == "awaiting_approval"
    assert ui_system.model.prompts("step") == []
    await bob.screenshot(path=str(DOCS / "review-team-quorum.png"), full_page=True)

    await bob.get_by_role("button", name="Approve").click()
    done = await submitter.wait_done(task["id"])
    assert done["status"] == "completed"
    assert len(ui_system.model.prompts("step")) == 1
