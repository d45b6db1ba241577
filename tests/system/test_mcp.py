"""/mcp with the official MCP client: the API's tools, bound by exactly the API's rules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

from tests.support.system import System

TOOLS = {"submit_task", "get_task", "wait_for_task", "list_approvals", "decide", "claim_gate"}


@asynccontextmanager
async def agent(system: System, role: str, team: str | None = None) -> AsyncIterator[Client]:
    """An MCP client acting for a new user of `role` with an API token."""
    api = await system.user(role, team=team)
    token = api.http.headers["authorization"].removeprefix("Bearer ")
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=90)
    )
    async with http, Client(streamable_http_client(f"{system.base_url}/mcp", http_client=http)) as client:
        yield client


def answer(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def refusal(result: CallToolResult) -> str:
    assert result.is_error
    first = result.content[0]
    assert isinstance(first, TextContent)
    return first.text.removeprefix("Error executing tool ").partition(": ")[2]  # the SDK's prefix


async def test_an_agent_submits_waits_and_an_approvers_agent_decides(ui_system: System) -> None:
    async with agent(ui_system, "member") as worker, agent(ui_system, "approver") as reviewer:
        assert {tool.name for tool in (await worker.list_tools()).tools} >= TOOLS
        task = answer(
            await worker.call_tool(
                "submit_task",
                {
                    "title": "Haiku",
                    "instructions": "About rain.",
                    "team": ui_system.team,
                    "autonomy": "guarded",
                },
            )
        )
        waited = answer(
            await worker.call_tool("wait_for_task", {"task_id": task["id"], "for": "gate", "timeout": 20})
        )
        assert waited["timed_out"] is False
        gate = waited["task"]["open_gate"]
        assert gate["kind"] == "plan"
        queue = answer(await reviewer.call_tool("list_approvals", {}))
        assert [item["task"]["id"] for item in queue["items"]] == [task["id"]]

        refused = refusal(
            await worker.call_tool(
                "decide", {"task_id": task["id"], "gate_id": gate["id"], "action": "approve"}
            )
        )
        assert refused.startswith("403 /problems/forbidden")  # a member cannot decide

        decided = answer(
            await reviewer.call_tool(
                "decide", {"task_id": task["id"], "gate_id": gate["id"], "action": "approve"}
            )
        )
        assert decided["open_gate"] is None or decided["open_gate"]["id"] != gate["id"]
        again = refusal(
            await reviewer.call_tool(
                "decide", {"task_id": task["id"], "gate_id": gate["id"], "action": "approve"}
            )
        )
        assert again.startswith("409 /problems/gate-not-open")
        done = answer(await worker.call_tool("wait_for_task", {"task_id": task["id"], "for": "finished"}))
        assert done["task"]["status"] == "completed"
        assert answer(await worker.call_tool("get_task", {"task_id": task["id"]}))["status"] == "completed"


async def test_four_eyes_holds_for_an_agent(ui_system: System) -> None:
    async with agent(ui_system, "approver") as submitter, agent(ui_system, "approver") as colleague:
        task = answer(
            await submitter.call_tool(
                "submit_task",
                {
                    "title": "Memo",
                    "instructions": "Two lines.",
                    "team": ui_system.team,
                    "autonomy": "supervised",
                },
            )
        )
        gate = answer(await submitter.call_tool("wait_for_task", {"task_id": task["id"], "for": "gate"}))
        gate_id = gate["task"]["open_gate"]["id"]
        decision = {"task_id": task["id"], "gate_id": gate_id, "action": "approve"}
        assert refusal(await submitter.call_tool("decide", decision)).startswith("403 /problems/four-eyes")
        assert answer(await submitter.call_tool("list_approvals", {}))["items"] == []  # not in its own queue
        assert answer(await colleague.call_tool("decide", decision))["id"] == task["id"]


async def test_an_agents_claim_holds_off_another_agent_until_it_takes_over(ui_system: System) -> None:
    submitter = await ui_system.user("member")
    task = await submitter.wait_gate((await submitter.submit(ui_system.team, "guarded"))["id"], "plan")
    gate = {"task_id": task["id"], "gate_id": task["open_gate"]["id"]}
    async with agent(ui_system, "approver") as first, agent(ui_system, "approver") as second:
        claimed = answer(await first.call_tool("claim_gate", gate))
        assert claimed["open_gate"]["claimed_by"] is not None
        decision = gate | {"action": "approve"}
        assert refusal(await second.call_tool("decide", decision)).startswith("409 /problems/claimed")
        assert refusal(await second.call_tool("claim_gate", gate)).startswith("409 /problems/claimed")
        taken = answer(await second.call_tool("claim_gate", gate | {"take_over": True}))
        assert taken["open_gate"]["claimed_by"] != claimed["open_gate"]["claimed_by"]
        assert answer(await second.call_tool("decide", decision))["id"] == task["id"]


async def test_another_teams_task_does_not_exist_for_an_agent(ui_system: System) -> None:
    submitter = await ui_system.user("member")
    task = await submitter.submit(ui_system.team, "supervised")
    async with agent(ui_system, "admin", team=f"other-{uuid.uuid4().hex[:6]}") as outsider:
        text = refusal(await outsider.call_tool("get_task", {"task_id": task["id"]}))
        assert text.startswith("404 /problems/not-found")
        decision = {"task_id": task["id"], "gate_id": "g_x", "action": "approve"}
        assert refusal(await outsider.call_tool("decide", decision)).startswith("404")
        submit = {"title": "x", "instructions": "y", "team": ui_system.team, "autonomy": "manual"}
        assert refusal(await outsider.call_tool("submit_task", submit)).startswith("403 /problems/forbidden")


async def test_mcp_needs_a_live_bearer_token(ui_system: System) -> None:
    async with httpx.AsyncClient(base_url=ui_system.base_url) as anonymous:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        for headers in ({}, {"Authorization": "Bearer exo_wrong"}):
            response = await anonymous.post("/mcp", json=body, headers=headers)
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"] == "Bearer"
