"""Debian's Chromium, as the browser tests start it (never a downloaded browser), and a
person signed in to a page of their own."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.support.system import System

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def signed_in_page(
    chromium: Browser, system: System, role: str = "approver", **context: Any
) -> tuple[Page, str]:
    """A new person of `role` in the system's team, signed in through the sign-in form, in a
    browser context of their own (`context`: Playwright's options, e.g. a phone's viewport)."""
    email, password = await system.person(role)
    options: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}} | context
    page = await (await chromium.new_context(base_url=system.base_url, **options)).new_page()
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    return page, email
