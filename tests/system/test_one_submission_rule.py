"""A refused submission is refused alike by every path that submits: the API, a template run,
a schedule's firing, the MCP server and the pages answer the same status and problem type
(one rule)."""

from __future__ import annotations

import asyncio
import contextlib
import html
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from exosuit.domain.autonomy import AutonomyLevel
from tests.support.page_session import signed_in
from tests.support.system import WAIT_SECONDS, Api, System

# How a team's policy refuses a new supervised task, and the answer every path must give.
Refusal = tuple[dict[str, Any], int, str]
REFUSALS: dict[str, Refusal] = {
    "above-cap": ({"max_autonomy": AutonomyLevel.MANUAL}, 422, "/problems/above-cap"),
    "active-limit": ({"max_active_tasks": 0}, 429, "/problems/rate-limited"),
    "rate": ({"submissions_per_minute": 0}, 429, "/problems/rate-limited"),
}
TASK = {"title": "Haiku", "instructions": "About rain.", "autonomy": "supervised"}
TEMPLATE = {"title": "Report for {{client}}", "instructions": "Draft it.", "params": ["client"]}


@pytest.fixture(params=list(REFUSALS))
def refusal(request: pytest.FixtureRequest) -> Refusal:
    return REFUSALS[request.param]


async def template(system: System, approver: Api) -> str:
    """A supervised template of the team (made while the team's policy still allows it)."""
    name = f"report-{system.team}"
    body = TEMPLATE | {"name": name, "team": system.team, "autonomy": "supervised"}
    made = await approver.http.post("/api/v1/templates", json=body)
    assert made.status_code == 201, made.text
    return name


async def test_the_api_refuses_by_the_teams_rule(ui_system: System, refusal: Refusal) -> None:
    policy, status, problem = refusal
    submitter = await ui_system.user("approver")
    await ui_system.directory.set_team_policy(ui_system.team, **policy)
    answer = await submitter.http.post("/api/v1/tasks", json=TASK | {"team": ui_system.team})
    assert (answer.status_code, answer.json()["type"]) == (status, problem), answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    if status == 429:
        assert int(answer.headers["Retry-After"]) >= 1


async def test_a_template_run_is_refused_as_the_api_refuses(ui_system: System, refusal: Refusal) -> None:
    policy, status, problem = refusal
    approver = await ui_system.user("approver")
    name = await template(ui_system, approver)
    await ui_system.directory.set_team_policy(ui_system.team, **policy)
    answer = await approver.http.post(f"/api/v1/templates/{name}/runs", json={"params": {"client": "ACME"}})
    assert (answer.status_code, answer.json()["type"]) == (status, problem), answer.text
    if status == 429:
        assert int(answer.headers["Retry-After"]) >= 1


async def test_a_schedules_refused_run_shows_the_apis_problem(ui_system: System, refusal: Refusal) -> None:
    policy, status, problem = refusal
    approver = await ui_system.user("approver")
    name = await template(ui_system, approver)
    body = {"template": name, "params": {"client": "Initech"}, "cron": "0 3 1 1 *"}
    made = await approver.http.post("/api/v1/schedules", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["last_run"] is None  # it has not fired yet
    await ui_system.directory.set_team_policy(ui_system.team, **policy)
    assert (await approver.http.post(f"/api/v1/schedules/{made.json()['id']}/trigger")).status_code == 202

    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while True:  # a schedule has no /wait: its list says how its latest firing went
        [schedule] = (await approver.http.get("/api/v1/schedules")).json()["items"]
        last = schedule["last_run"]
        if last is not None and (last["problem"] or last["task_id"]):
            break
        assert loop.time() < deadline, f"the firing did not finish: {schedule}"
        await asyncio.sleep(0.05)
    assert last["task_id"] is None
    assert (last["problem"]["status"], last["problem"]["type"]) == (status, problem), last
    page = await signed_in(ui_system.base_url, ui_system.directory, ui_system.team)
    async with contextlib.aclosing(page):  # the team page says so too
        shown = await page.get(f"/teams/{ui_system.team}")
    assert f"refused: {last['problem']['detail']}" in html.unescape(shown.text)
    tasks = (await approver.http.get("/api/v1/tasks", params={"team": ui_system.team})).json()["items"]
    assert tasks == []


async def test_the_mcp_server_refuses_as_the_api_refuses(ui_system: System, refusal: Refusal) -> None:
    policy, status, problem = refusal
    member = await ui_system.user("member")
    await ui_system.directory.set_team_policy(ui_system.team, **policy)
    token = member.http.headers["authorization"].removeprefix("Bearer ")
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{ui_system.base_url}/mcp", http_client=http)) as agent:
        result = await agent.call_tool("submit_task", TASK | {"team": ui_system.team})
    assert result.is_error
    text = result.content[0]
    assert isinstance(text, TextContent)
    said = text.text.removeprefix("Error executing tool ").partition(": ")[2]  # the SDK's prefix
    assert said.startswith(f"{status} {problem}: "), said


async def test_the_pages_refuse_with_the_apis_status(ui_system: System, refusal: Refusal) -> None:
    policy, status, _ = refusal
    name = await template(ui_system, await ui_system.user("approver"))
    await ui_system.directory.set_team_policy(ui_system.team, **policy)
    page = await signed_in(ui_system.base_url, ui_system.directory, ui_system.team)
    async with contextlib.aclosing(page):
        new_task = await page.post("/tasks/new", data=TASK | {"team": ui_system.team})
        run = await page.post(f"/templates/{name}/run", data={"param_client": "ACME"})
    for answer in (new_task, run):
        assert answer.status_code == status, answer.text
        assert 'class="flash error"' in answer.text  # the refusal's message, in the page
