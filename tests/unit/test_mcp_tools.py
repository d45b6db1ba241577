"""/mcp's tools as the official SDK client sees them (in process): REST's argument names,
unknown arguments refused before anything runs, annotations and real output schemas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client
from mcp_types import TextContent, Tool

from web.mcp_server import build_mcp


@asynccontextmanager
async def connected() -> AsyncIterator[tuple[Client, dict[str, Tool]]]:
    """The SDK's client on the server in process (entered and left in the test's own task)."""
    # The refusals under test happen before a tool touches a service: none are needed.
    async with Client(build_mcp(None)) as client:  # type: ignore[arg-type]
        yield client, {tool.name: tool for tool in (await client.list_tools()).tools}


async def refusal(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    first = result.content[0]
    assert isinstance(first, TextContent)
    return first.text


async def test_wait_takes_the_rest_names_for_and_timeout() -> None:
    async with connected() as (_client, listed):
        schema = listed["wait_for_task"].input_schema
        assert set(schema["properties"]) == {"task_id", "for", "timeout"}
        assert schema["properties"]["timeout"]["maximum"] == 60
        assert schema["additionalProperties"] is False
        decide = listed["decide"].input_schema["properties"]
        assert set(decide) == {"task_id", "gate_id", "action", "changes", "reason", "on_reject", "answer"}
        submit = listed["submit_task"].input_schema["properties"]
        assert set(submit) == {"title", "instructions", "team", "autonomy", "budget_usd", "idempotency_key"}


async def test_an_unknown_argument_is_refused_naming_what_the_tool_takes() -> None:
    async with connected() as (client, _listed):
        text = await refusal(client, "wait_for_task", {"task_id": "t_1", "wait_for": "gate"})
        assert text == (
            "Error executing tool wait_for_task: 422 /problems/validation: unknown argument 'wait_for' "
            "(wait_for_task takes task_id, for, timeout)"
        )
        text = await refusal(
            client, "decide", {"task_id": "t_1", "gate_id": "g_1", "action": "approve", "x": 1}
        )
        assert "unknown argument 'x'" in text


async def test_a_value_out_of_bounds_is_refused_as_rest_refuses_it() -> None:
    async with connected() as (client, _listed):
        text = await refusal(client, "wait_for_task", {"task_id": "t_1", "timeout": 61})
        assert text.startswith("Error executing tool wait_for_task: 422 /problems/validation: timeout: ")
        text = await refusal(client, "wait_for_task", {"task_id": "t_1", "for": "lunch"})
        assert "422 /problems/validation: for: Input should be 'gate' or 'finished'" in text


async def test_tools_say_whether_they_read_write_or_destroy() -> None:
    async with connected() as (_client, listed):
        hints = {
            name: (tool.annotations.read_only_hint, tool.annotations.destructive_hint)
            for name, tool in listed.items()
            if tool.annotations
        }
        assert hints == {
            "submit_task": (False, False),
            "get_task": (True, False),
            "wait_for_task": (True, False),
            "list_approvals": (True, False),
            "decide": (False, True),
            "claim_gate": (False, False),
        }
        assert all(tool.title for tool in listed.values())


async def test_every_tool_declares_the_shape_it_answers() -> None:
    async with connected() as (_client, listed):
        for name in ("submit_task", "get_task", "decide", "claim_gate"):
            output = listed[name].output_schema
            assert output is not None
            assert {"id", "status", "open_gate", "steps"} <= set(output["properties"]), name
        waited = listed["wait_for_task"].output_schema
        assert waited is not None and set(waited["properties"]) == {"task", "timed_out"}
        assert waited["required"] == ["task", "timed_out"]
        queue = listed["list_approvals"].output_schema
        assert queue is not None and set(queue["properties"]) == {"items", "next_cursor"}
