"""Sign-in from the company's identity provider, end to end in Chromium against a real
OpenID Connect provider process on loopback (oidc-provider-mock): a person is matched or
made by email with the team and role its claims name; an API token still works; a local
disable cuts them off at once; sign-out continues to the provider's end_session."""

from __future__ import annotations

import asyncio
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.testing import WorkflowEnvironment

from exosuit.domain.autonomy import Role
from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import System, running_system, until

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[str]:
    """The provider process, its issuer URL; stopped by its PID."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    issuer = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        assert process.returncode is None, "the provider exited"
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{issuer}/.well-known/openid-configuration")).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await until(up, "the OIDC provider to answer")
        yield issuer
    finally:
        process.terminate()
        await process.wait()


@pytest.fixture
async def oidc_system(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    tmp_path: Path,
    provider: str,
) -> AsyncIterator[System]:
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path, with_worker=False,
        oidc_issuer=provider, oidc_client_id="exosuit", oidc_client_secret="exosuit-client-secret",
        local_passwords=False,
    ) as system:  # fmt: skip
        yield system


async def provider_knows(issuer: str, sub: str, claims: dict[str, object]) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.put(f"{issuer}/users/{sub}", json=claims)
        assert response.status_code == 204, response.text


async def sign_in_at_provider(browser: Browser, system: System, sub: str) -> Page:
    context = await browser.new_context(base_url=system.base_url)
    page = await context.new_page()
    await page.goto("/login")
    await expect(page.get_by_label("Password")).to_have_count(0)  # local passwords are off here
    await page.get_by_role("link", name="Sign in with your company account").click()
    await page.get_by_placeholder("sub").fill(sub)
    await page.get_by_role("button", name="Authorize").click()
    await expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    return page


async def test_a_person_signs_in_through_the_identity_provider_and_is_cut_off_by_a_local_disable(
    chromium: Browser,
    oidc_system: System,
    provider: str,
) -> None:
    sub, email = f"u-{uuid.uuid4().hex[:8]}", f"Ada-{uuid.uuid4().hex[:6]}@Example.com"
    claims = {
        "email": email,
        "email_verified": True,
        "exosuit_team": oidc_system.team,
        "exosuit_role": "approver",
    }
    await provider_knows(provider, sub, claims)
    page = await sign_in_at_provider(chromium, oidc_system, sub)

    me = await oidc_system.directory.session_for(
        next(c["value"] for c in await page.context.cookies() if c["name"] == "exosuit_session")
    )
    assert me is not None and me[0].email == email.lower()
    assert me[0].role_in(oidc_system.team) == Role.APPROVER  # made by email, role from the claim

    token = await oidc_system.directory.create_token(email, name="automation")
    async with httpx.AsyncClient(base_url=oidc_system.base_url) as api:
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await api.get("/api/v1/tasks", headers=bearer)).status_code == 200  # tokens still work

        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(f"{provider}/oauth2/end_session**")  # the provider's session ends too
        assert "id_token_hint=" in page.url

        page = await sign_in_at_provider(chromium, oidc_system, sub)  # the same person again
        await oidc_system.directory.disable_user(email)
        await page.goto("/")
        await page.wait_for_url("**/login**")  # the session ended at once
        assert (await api.get("/api/v1/tasks", headers=bearer)).status_code == 401

    await page.get_by_role("link", name="Sign in with your company account").click()
    await page.get_by_placeholder("sub").fill(sub)
    await page.get_by_role("button", name="Authorize").click()
    await expect(page.get_by_role("alert")).to_contain_text("disabled")  # and cannot come back


async def test_with_local_passwords_off_a_password_sign_in_is_refused(oidc_system: System) -> None:
    email, password = await oidc_system.person("member")
    async with httpx.AsyncClient(base_url=oidc_system.base_url) as http:
        page = await http.get("/login")
        assert "Sign in with your company account" in page.text and 'name="password"' not in page.text
        form = {
            "email": email,
            "password": password,
            "csrf_token": page.cookies.get("exosuit_login_csrf", ""),
        }
        refused = await http.post("/login", data=form)
    assert refused.status_code == 403
