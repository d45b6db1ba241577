"""The review UI in Debian's Chromium, driven by Playwright (no downloaded browser)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.browser import signed_in_page
from tests.support.paths import ROOT
from tests.support.system import System

pytestmark = pytest.mark.browser

DOCS = ROOT / "docs"


async def submit(page: Page, system: System, title: str, level: int = 1) -> str:
    await page.goto("/tasks/new")
    await page.get_by_label("Title").fill(title)
    await page.get_by_label("Instructions").fill("Three short paragraphs about the harvest.")
    await page.get_by_label("Team").select_option(system.team)
    await page.get_by_label("Autonomy").fill(str(level))
    await page.get_by_role("button", name="Submit task").click()
    await page.wait_for_url(re.compile(r"/tasks/t_"))
    return page.url.rsplit("/", 1)[1]


async def queue_shows(page: Page, title: str, kind: str) -> None:
    """Wait (live updates) until the selected queue item is `title`'s `kind` gate."""
    selected = page.locator("#board tr.item.selected")
    await expect(selected).to_contain_text(title, timeout=15_000)
    await expect(selected).to_contain_text(kind, timeout=15_000)


async def test_submit_approve_edit_reject_and_complete_across_two_people(
    chromium: Browser, ui_system: System
) -> None:
    await ui_system.set_team(max_autonomy="autonomous")
    ui_system.model.redraft_answers.append("Write about the harvest moon instead.")
    submitter, _ = await signed_in_page(chromium, ui_system, "member")
    approver, _ = await signed_in_page(chromium, ui_system, "approver")
    streams: list[str] = []
    submitter.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
    task_id = await submit(submitter, ui_system, "Harvest newsletter")
    await expect(submitter.locator(".gate h2")).to_contain_text("plan gate", timeout=15_000)

    # The approver approves the plan from the queue.
    await approver.goto("/queue")
    await queue_shows(approver, "Harvest newsletter", "plan")
    await approver.locator("#board").get_by_role("button", name="Approve").click()

    # The first step: edited in place; the model receives the edited text.
    await queue_shows(approver, "Harvest newsletter", "step")
    edit = approver.locator("#board textarea.edit-text")
    await edit.fill("Write exactly two sentences about apples.")
    await approver.locator("#board").get_by_role("button", name="Edit").click()

    # The second step: rejected with a reason, redrafted by the model, then approved.
    await queue_shows(approver, "Harvest newsletter", "step")
    await expect(approver.locator("#board .gate")).to_contain_text("step 2")
    await approver.locator("#board").get_by_label("Reason").fill("Too long; the moon, please.")
    await approver.locator("#board").get_by_role("button", name="Reject").click()
    await expect(approver.locator("#board textarea.edit-text")).to_have_value(
        "Write about the harvest moon instead.", timeout=15_000
    )
    await approver.screenshot(path=str(DOCS / "queue.png"), full_page=True)
    await approver.locator("#board").get_by_role("button", name="Approve").click()

    # The submitter's page updates live, without a reload, to the completed task.
    await expect(submitter.locator("#live .state .status")).to_have_text("completed", timeout=20_000)
    await expect(submitter.locator("#step-1 .output")).to_have_text(
        "done: Write exactly two sentences about apples."
    )
    await expect(submitter.locator(".timeline")).to_contain_text("Too long; the moon, please.")
    await expect(submitter.locator(".diff .add").first).to_contain_text(
        "+Write exactly two sentences about apples."
    )
    await submitter.screenshot(path=str(DOCS / "task.png"), full_page=True)
    assert streams == [f"{ui_system.base_url}/tasks/{task_id}/events"]  # live updates over SSE

    step_prompts = ui_system.model.prompts("step")
    assert "Instructions:\nWrite exactly two sentences about apples." in step_prompts[0]
    assert "Instructions:\nWrite about the harvest moon instead." in step_prompts[1]
    assert "Too long; the moon, please." in ui_system.model.prompts("redraft")[0]
    api = await ui_system.user("member")
    assert (await api.task(task_id))["status"] == "completed"


async def test_keyboard_triage(chromium: Browser, ui_system: System) -> None:
    submitter, _ = await signed_in_page(chromium, ui_system, "member")
    approver, _ = await signed_in_page(chromium, ui_system, "approver")
    first = await submit(submitter, ui_system, "First in line")
    second = await submit(submitter, ui_system, "Second in line")
    api = await ui_system.user("member")
    await api.wait_gate(first, "plan")
    await api.wait_gate(second, "plan")
    await approver.goto("/queue")
    await queue_shows(approver, "First in line", "plan")
    await approver.keyboard.press("j")
    await queue_shows(approver, "Second in line", "plan")
    await approver.keyboard.press("k")
    await queue_shows(approver, "First in line", "plan")
    await approver.keyboard.press("a")  # approve the selected item
    await queue_shows(approver, "Second in line", "plan")
    await approver.keyboard.press("r")
    await approver.keyboard.type("Not this week.")
    await approver.keyboard.press("Enter")  # submits the reject form (revise)
    await api.wait(
        second,
        lambda t: "Not this week." in ui_system.model.prompts("plan")[-1],
        "the re-plan with the reason",
    )
    first_task = await api.wait_gate(first, "step")  # its plan was approved by the key
    assert first_task["open_gate"]["step_id"] == first_task["steps"][0]["id"]


async def test_enter_on_a_focused_link_opens_it_even_on_the_queue(
    chromium: Browser, ui_system: System
) -> None:
    approver, _ = await signed_in_page(chromium, ui_system, "approver")
    await approver.goto("/queue")
    await approver.get_by_role("link", name="New task").focus()
    await approver.keyboard.press("Enter")
    await expect(approver.get_by_role("heading", name="New task")).to_be_visible()
    assert approver.url.endswith("/tasks/new")
    await approver.goto("/queue")
    await approver.get_by_role("button", name="Filter").focus()
    await approver.keyboard.press("Enter")  # the focused button submits its form
    await approver.wait_for_url(re.compile(r"/queue\?team="))


async def test_script_payloads_render_as_text_and_fire_nothing(chromium: Browser, ui_system: System) -> None:
    await ui_system.set_team(max_autonomy="autonomous")
    ui_system.model.step_answer = lambda prompt: (
        '<script>window.__xss = "output"</script><img src=x onerror="window.__xss = \'img\'">'
    )
    submitter, _ = await signed_in_page(chromium, ui_system, "member")
    title = '<img src=x onerror="window.__xss = \'title\'"><script>window.__xss = "title"</script>'
    task_id = await submit(submitter, ui_system, title, level=4)
    api = await ui_system.user("member")
    await api.wait_done(task_id)
    await submitter.reload()
    await expect(submitter.locator("h1")).to_have_text(title)
    await expect(submitter.locator("#step-1 .output")).to_contain_text("<script>window.__xss")
    await submitter.goto("/")
    assert await submitter.evaluate("window.__xss") is None
    assert await submitter.locator("img[src=x]").count() == 0


async def test_request_without_csrf_token_is_refused_in_the_browser(
    chromium: Browser, ui_system: System
) -> None:
    page, _ = await signed_in_page(chromium, ui_system, "member")
    result: dict[str, Any] = await page.evaluate(
        """async (team) => {
            const body = new URLSearchParams({title: "forged", instructions: "x", team, autonomy: "1"});
            const response = await fetch("/tasks/new", {method: "POST", body});
            return {status: response.status, text: await response.text()};
        }""",
        ui_system.team,
    )
    assert result["status"] == 403
    assert "CSRF" in result["text"]
    await page.goto("/")
    assert "forged" not in await page.content()
