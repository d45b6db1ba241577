"""A question in Chromium: the model asks with three choices, a member clicks one on the task
page, the step goes on with it, and the history says who answered what."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.support.browser import signed_in_page
from tests.support.system import System

pytestmark = pytest.mark.browser

LIVE = 15_000  # ms: how long an expectation waits for the page to update itself
CHOICES = ["Formal", "Friendly", "Terse"]
SCREENSHOT = Path("/tmp/exosuit-question-on-task-page.png")


async def test_a_member_answers_a_question_by_clicking_a_choice(chromium: Browser, ui_system: System) -> None:
    ui_system.model.plan = [
        {"title": "Greet", "instructions": "Write a greeting.", "kind": "llm", "tool": None, "risk": "low"}
    ]
    ui_system.model.step_calls.append(
        {
            "question": "Which tone should the greeting take?",
            "choices": CHOICES,
            "why": "The brief is silent.",
        }
    )
    ui_system.model.step_answer = lambda prompt: "Hi there, friend!"
    submitter = await ui_system.user("approver")
    task = await submitter.submit(ui_system.team, "delegated")
    page, email = await signed_in_page(chromium, ui_system, "member")
    await page.goto("/queue")  # a member's queue lists the team's questions (and nothing else)
    await expect(page.locator("#board tr.item")).to_have_count(1, timeout=LIVE)
    await expect(page.locator("#board tr.item")).to_contain_text("question")
    await expect(page.locator("#board input.bulk")).to_have_count(0)
    await page.goto(f"/tasks/{task['id']}")
    gate = page.get_by_role("region", name="Open gate")
    await expect(gate).to_contain_text("Which tone should the greeting take?", timeout=LIVE)
    await expect(gate).to_contain_text("Why it asks: The brief is silent.")
    for choice in CHOICES:
        await expect(gate.get_by_role("button", name=choice)).to_be_visible()
    await expect(gate.get_by_role("button", name="Reject")).to_have_count(0)  # members answer
    await page.screenshot(path=str(SCREENSHOT), full_page=True)

    await gate.get_by_role("button", name="Friendly").click()
    await expect(page.locator(".state .status")).to_contain_text("completed", timeout=LIVE)
    await expect(page.locator(".output").first).to_contain_text("Hi there, friend!")
    history = page.locator(".timeline")
    await expect(history).to_contain_text(
        "asks: Which tone should the greeting take? (choices: Formal, Friendly, Terse)"
    )
    answered = history.locator("li.gate-decided")
    await expect(answered).to_contain_text(f"user:{email}")
    await expect(answered).to_contain_text("answered 'Which tone should the greeting take?': Friendly")
    assert ui_system.model.tool_results() == ["Friendly"]
