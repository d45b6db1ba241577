"""The first-run tour of docs/first-run.md, in Chromium, on a fresh data dir with `exosuit dev`.

Each step here is a step the tour shows; the only thing the tour does not say is which
model answers (a scripted one, as `EXOSUIT_LLM_BASE_URL` would point at any endpoint).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.dev import Dev, launch
from tests.support.model_server import ModelServer, ScriptedModel

pytestmark = pytest.mark.browser
TOUR = Path(__file__).parents[2] / "docs" / "first-run.md"


@pytest.fixture
async def dev(tmp_path: Path, model_server: ModelServer) -> AsyncIterator[Dev]:
    started = await launch(tmp_path / "var", model_server.register(ScriptedModel()))
    yield started
    await started.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


def credentials(dev: Dev) -> tuple[str, str]:
    """What the first start says: printed on a terminal, else in the file whose path it prints."""
    printed = re.search(r"How to sign in \(not printed: this is not a terminal\): (\S+)", dev.output)
    assert printed, dev.output
    found = re.search(r"Sign in as (\S+) with password (\S+)", Path(printed.group(1)).read_text())
    assert found
    return found.group(1), found.group(2)


async def approve_until_finished(page: Page) -> None:
    """Approve each gate as it opens (plan, then every step at supervised) until the task ends."""
    status = page.locator("#live .state .status")
    approve = page.get_by_role("button", name="Approve")
    while True:
        done = page.locator("#live .state .status.completed")
        await expect(approve.or_(done).first).to_be_visible(timeout=30_000)
        if await status.get_attribute("class") == "status completed":
            return
        answered = await page.locator("#live form.approve input[name=gate_id]").get_attribute("value")
        await approve.click()
        await page.wait_for_function(  # that gate is gone: the page shows the next one, or none
            "id => !document.querySelector(`#live input[name=gate_id][value='${id}']`)", arg=answered
        )


async def test_a_newcomer_follows_the_tour_from_first_start_to_a_completed_verified_task(
    dev: Dev, browser: Browser
) -> None:
    tour = TOUR.read_text()
    for shown in ("make run", "Sign in", "New task", "Submit task", "Approve", "Audit verified"):
        assert shown in tour, f"the tour does not show {shown!r}"
    email, password = credentials(dev)
    assert "your tasks there run solo" in dev.output

    page = await (await browser.new_context(base_url=dev.base_url)).new_page()
    await page.goto("/")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("navigation").get_by_role("link", name="New task").click()
    await expect(page.get_by_role("note")).to_contain_text("Solo")
    await page.get_by_label("Title").fill("Harvest note")
    await page.get_by_label("Instructions").fill("Three short lines about the harvest.")
    await page.get_by_role("button", name="Submit task").click()
    await page.wait_for_url(re.compile(r"/tasks/t_"))

    await approve_until_finished(page)
    await expect(page.locator("#live .state .status")).to_have_text("completed")
    await expect(page.get_by_role("status")).to_contain_text("Audit verified")
    await expect(page.locator(".timeline")).to_contain_text("solo")
    await logs_are_json(dev)


async def logs_are_json(dev: Dev) -> None:
    """`exosuit dev` writes JSON access lines, and its worker's (in its process) from the first."""
    async with httpx.AsyncClient(base_url=dev.base_url) as http:
        assert (await http.get("/login", headers={"X-Request-ID": "tour-1"})).status_code == 200
    await dev.stop()
    logged = [json.loads(line) for line in dev.log().splitlines()]
    login = next(entry for entry in logged if entry.get("request_id") == "tour-1")
    assert login["logger"] == "exosuit.access" and login["level"] == "INFO"
    assert (login["method"], login["route"], login["status"]) == ("GET", "/login", 200)
    assert login["duration_seconds"] >= 0
    assert any(entry["message"].startswith("worker started") for entry in logged)
    assert not (dev.data_dir / "worker.log").exists()
