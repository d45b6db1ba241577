"""Identity has a lifecycle: disabled users, listed, revoked and expiring tokens, sessions
that end with a new password. Driven through the `exosuit` CLI, checked over HTTP."""

from __future__ import annotations

import httpx

from tests.support.cli import run_cli
from tests.support.pages import Browser
from tests.support.system import System


async def cli(system: System, *args: str) -> tuple[int, str]:
    url = system.db.engine.url.render_as_string(hide_password=False)
    return await run_cli(*args, env={"EXOSUIT_DATABASE_URL": url})


async def signed_in_with_token(system: System) -> tuple[str, Browser, httpx.AsyncClient]:
    email, password = await system.person("approver")
    browser = Browser(system)
    assert (await browser.sign_in(email, password)).status_code == 303
    code, out = await cli(system, "token", "create", email, "--name", "ci")
    assert code == 0, out
    api = httpx.AsyncClient(base_url=system.base_url, headers={"Authorization": f"Bearer {out.split()[-1]}"})
    system.clients.append(api)
    return email, browser, api


async def test_a_disabled_users_session_and_token_stop_working_at_once(ui_system: System) -> None:
    email, browser, api = await signed_in_with_token(ui_system)
    assert (await api.get("/api/v1/tasks")).status_code == 200
    assert (await browser.http.get("/")).status_code == 200
    code, out = await cli(ui_system, "user", "disable", email)
    assert code == 0, out
    assert (await api.get("/api/v1/tasks")).status_code == 401
    assert (await browser.http.get("/")).headers["location"].startswith("/login")
    again = Browser(ui_system)
    assert (await again.sign_in(email, "whatever")).status_code == 401


async def test_tokens_are_listed_revoked_and_expire(ui_system: System) -> None:
    email, _, api = await signed_in_with_token(ui_system)
    code, out = await cli(ui_system, "token", "create", email, "--name", "short", "--expires-days", "0")
    assert code == 0
    expired = {"Authorization": f"Bearer {out.split()[-1]}"}
    assert (await api.get("/api/v1/tasks", headers=expired)).status_code == 401
    code, out = await cli(ui_system, "token", "list", email)
    assert code == 0
    states = {line.split()[0]: line.split()[-1] for line in out.splitlines()[1:]}
    assert states == {"ci": "live", "short": "expired"}
    assert "exo_" not in out  # a token is shown once, at creation
    code, out = await cli(ui_system, "token", "revoke", email, "ci")
    assert code == 0, out
    assert (await api.get("/api/v1/tasks")).status_code == 401
    code, out = await cli(ui_system, "token", "list", email)
    assert "revoked" in out
    assert (await cli(ui_system, "token", "revoke", email, "ci"))[0] == 3  # nothing live by that name


async def test_a_new_password_ends_every_session(ui_system: System) -> None:
    email, browser, _ = await signed_in_with_token(ui_system)
    code, _ = await cli(ui_system, "user", "add", email, "--team", ui_system.team, "--role", "approver",
                        "--password", "a-new-password")  # fmt: skip
    assert code == 0
    assert (await browser.http.get("/")).headers["location"].startswith("/login")
    fresh = Browser(ui_system)
    assert (await fresh.sign_in(email, "a-new-password")).status_code == 303


async def test_a_new_membership_counts_from_the_very_next_request(ui_system: System) -> None:
    email, _, api = await signed_in_with_token(ui_system)
    other = f"{ui_system.team}-other"
    submitter = await ui_system.user("member", team=other)
    task = await submitter.submit(other, "supervised")
    assert (await api.get(f"/api/v1/tasks/{task['id']}")).status_code == 404
    code, out = await cli(ui_system, "user", "add", email, "--team", other, "--role", "approver")
    assert code == 0, out
    assert (await api.get(f"/api/v1/tasks/{task['id']}")).status_code == 200
