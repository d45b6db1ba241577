"""A person signed in to the pages through the login form, as a browser would be."""

from __future__ import annotations

import re
import uuid

import httpx

from exosuit.domain.autonomy import Role
from exosuit.storage.identity import Directory


async def signed_in(
    base_url: str, directory: Directory, team: str, role: Role = Role.MEMBER
) -> httpx.AsyncClient:
    """A cookie-carrying client of a new person of `team` that sends the session's CSRF token
    with every request, as the pages' htmx does (the caller closes it)."""
    email, password = f"{role.value}-{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
    await directory.add_user(email, teams=[team], role=role, password=password)
    http = httpx.AsyncClient(base_url=base_url, timeout=30)
    form = await http.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    data = {"email": email, "password": password, "csrf_token": token.group(1), "next": "/"}
    assert (await http.post("/login", data=data)).status_code == 303
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', (await http.get("/")).text)
    assert csrf
    http.headers["X-CSRF-Token"] = csrf.group(1)
    return http
