"""Request limits: sign-in floods, locked accounts, submissions, active tasks, event streams."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.pages import Browser, signed_in
from tests.support.system import System, running_system


async def healthz_answers(base_url: str, n: int = 20) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        return [(await http.get("/healthz")).status_code for _ in range(n)]


async def test_a_sign_in_flood_is_answered_429_and_the_app_stays_responsive(ui_system: System) -> None:
    email, _ = await ui_system.person("member")

    async def guesser() -> list[httpx.Response]:
        browser = Browser(ui_system)
        page = await browser.http.get("/login")
        token = page.cookies.get("exosuit_login_csrf") or browser.http.cookies.get("exosuit_login_csrf")
        answers = []
        for n in range(15):
            data = {"email": email, "password": f"guess-{n}", "csrf_token": token or "", "next": "/"}
            answers.append(await browser.http.post("/login", data=data))
        return answers

    flood = asyncio.gather(*(guesser() for _ in range(6)))
    during = await healthz_answers(ui_system.base_url)
    answers = [a for many in await flood for a in many]
    statuses = [a.status_code for a in answers]
    assert statuses.count(429) >= 60, statuses  # 90 attempts; at most 30 a minute from one address
    assert set(statuses) <= {401, 429}
    limited = [a for a in answers if a.status_code == 429]
    assert all(int(a.headers["Retry-After"]) >= 1 for a in limited)
    assert any("Too many sign-in attempts from here" in a.text for a in limited)
    assert any("Too many failed sign-ins for this account" in a.text for a in limited)
    # Hashing runs off the event loop and refused attempts do not hash: /healthz is answered
    # all through the flood. (How fast is a benchmark's figure, not a bound on this clock.)
    assert during == [200] * 20


async def test_an_account_waits_after_failed_sign_ins_even_with_the_right_password(ui_system: System) -> None:
    email, password = await ui_system.person("member")
    browser = Browser(ui_system)
    for n in range(10):
        assert (await browser.sign_in(email, f"wrong-{n}")).status_code == 401
    locked = await browser.sign_in(email, password)
    assert locked.status_code == 429
    assert "Too many failed sign-ins for this account" in locked.text
    assert int(locked.headers["Retry-After"]) > 0
    other, other_password = await ui_system.person("member")
    assert (await Browser(ui_system).sign_in(other, other_password)).status_code == 303  # others are fine


async def test_submissions_per_person_and_active_tasks_per_team_are_limited(system: System) -> None:
    await system.directory.set_team_policy(system.team, submissions_per_minute=3, max_active_tasks=100)
    user = await system.user("member")
    for _ in range(3):
        await user.submit(system.team, "supervised")
    fourth = await user.http.post(
        "/api/v1/tasks", json={"title": "x", "instructions": "y", "team": system.team, "autonomy": "manual"}
    )
    assert fourth.status_code == 429
    assert fourth.headers["content-type"] == "application/problem+json"
    assert 1 <= int(fourth.headers["Retry-After"]) <= 60
    await system.directory.set_team_policy(system.team, max_active_tasks=3)
    someone_else = await system.user("member")
    busy = await someone_else.http.post(
        "/api/v1/tasks", json={"title": "x", "instructions": "y", "team": system.team, "autonomy": "manual"}
    )
    assert busy.status_code == 429
    assert "3 tasks not yet ended" in busy.json()["detail"]


async def test_event_streams_are_capped_per_person(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path, event_streams_per_user=2
    ) as system:
        browser, _ = await signed_in(system, "member")
        api = await system.user("member")
        task = await api.submit(system.team, "supervised")
        url = f"/tasks/{task['id']}/events"
        async with browser.http.stream("GET", url) as first, browser.http.stream("GET", url) as second:
            assert first.status_code == second.status_code == 200
            third = await browser.http.get(url)
            assert third.status_code == 429
        for _ in range(50):  # the closed streams give their places back
            async with browser.http.stream("GET", url) as again:
                if again.status_code == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the closed streams were not given back")
