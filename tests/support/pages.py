"""Driving the pages over HTTP as a signed-in person would, with a cookie-carrying client."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.system import System

HTMX = {"HX-Request": "true"}


class Browser:
    """A cookie-carrying HTTP client signed in through the login form."""

    def __init__(self, system: System) -> None:
        self.http = httpx.AsyncClient(base_url=system.base_url, timeout=30)
        self.csrf = ""
        system.clients.append(self.http)

    async def sign_in(self, email: str, password: str, next_path: str = "/") -> httpx.Response:
        page = await self.http.get("/login", params={"next": next_path})
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        response = await self.http.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token.group(1), "next": next_path},
        )
        if response.status_code == 303:
            home = await self.http.get("/")
            found = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
            assert found
            self.csrf = found.group(1)
        return response

    async def post(self, path: str, data: dict[str, Any], *, htmx: bool = False) -> httpx.Response:
        headers = HTMX | {"X-CSRF-Token": self.csrf} if htmx else {}
        body = data if htmx else data | {"csrf_token": self.csrf}
        return await self.http.post(path, data=body, headers=headers)


async def signed_in(system: System, role: str) -> tuple[Browser, str]:
    email, password = await system.person(role)
    browser = Browser(system)
    assert (await browser.sign_in(email, password)).status_code == 303
    return browser, email
