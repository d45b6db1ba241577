"""The dashboard in Debian's Chromium: charts drawn from a seeded history, on a desktop in the
light theme and on a phone in the dark one; a suggestion accepted from the page."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.support.decision_history import LEARNING, TOOL_TOKEN, TOOL_TOKEN_ENV, History, seed, tools_file
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import System, running_system

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
DOCS = Path(__file__).parent.parent.parent / "docs"


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    assert shutil.which(CHROMIUM), "`make test` installs Debian's chromium"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def seeded(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[System, History]]:
    monkeypatch.setenv(TOOL_TOKEN_ENV, TOOL_TOKEN)
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path,
        tools_file=tools_file(tmp_path), **LEARNING,
    ) as system:  # fmt: skip
        yield system, await seed(system)


async def dashboard(chromium: Browser, system: System, width: int, scheme: str) -> Page:
    email, password = await system.person("admin")
    context = await chromium.new_context(
        base_url=system.base_url,
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    page = await context.new_page()
    await page.goto("/login?next=/dashboard")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"/dashboard?team={system.team}")
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


async def test_the_dashboard_draws_its_charts_and_accepts_a_suggestion(
    chromium: Browser, seeded: tuple[System, History]
) -> None:
    system, history = seeded
    stats = (await history.approver.http.get("/api/v1/stats", params={"team": system.team})).json()
    page = await dashboard(chromium, system, 1280, "light")
    await expect(page.locator("[data-figure=decisions]")).to_have_text(str(stats["decisions"]))
    await expect(page.locator("[data-figure=open]")).to_have_text("1")
    per_day = page.get_by_role("img", name="Decisions per day")
    await expect(per_day.locator("rect.approve")).to_have_count(1)  # one day: every decision today
    await expect(page.get_by_role("img", name="Verdicts by template").locator("rect")).not_to_have_count(0)
    await expect(
        page.get_by_role("img", name="Time from gate opened to decided").locator("rect.p50")
    ).to_have_count(len(stats["time_by_team_and_kind"]))
    await expect(
        page.get_by_role("img", name=f"Cost per day, {system.team} (USD)").locator("rect.cost")
    ).to_have_count(1)
    suggestion = page.locator(".suggestion", has_text=history.steady)
    await expect(suggestion).to_contain_text(
        "guarded → delegated: 3 of the last 3 plan gates approved unchanged"
    )
    await page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)

    phone = await dashboard(chromium, system, 390, "dark")
    await expect(phone.get_by_role("img", name="Decisions per day")).to_be_visible()
    await phone.screenshot(path=str(DOCS / "dashboard-phone-dark.png"), full_page=True)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
    background = await phone.evaluate("getComputedStyle(document.querySelector('.chart')).backgroundColor")
    assert background == "rgb(22, 28, 38)"  # the dark theme's chart background

    await suggestion.get_by_role("button", name="Accept").click()
    await expect(page.locator(".suggestion", has_text=history.steady)).to_have_count(0)
    template = (await history.admin.http.get(f"/api/v1/templates/{history.steady}")).json()
    assert template["autonomy"] == "delegated"
