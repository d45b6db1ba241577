"""How /mcp's tools take their arguments and say what they do.

Arguments carry the REST API's names (`for` and `timeout` as `GET /tasks/{id}/wait` takes
them, a decision's fields as `POST /tasks/{id}/decisions` does) and the same bounds; an
argument a tool does not take is refused with the names it does take, never ignored. Each
tool is annotated (read-only, destructive, idempotent) and declares its output's schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from web.api.approvals import DEFAULT_LIMIT
from web.api.pagination import MAX_LIMIT
from web.api.waiting import MAX_WAIT_SECONDS, WaitFor
from web.schemas import DecisionIn, TaskCreate, TaskOut

VALIDATION = "422 /problems/validation"


class ToolArguments(ArgModelBase):
    """A tool's arguments: REST's names on the wire (aliases), none other accepted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        # The SDK passes the tool function its arguments by alias; a Python keyword such as
        # `for` cannot be a parameter, so they go by field name (`for_`) instead.
        return {name: getattr(self, name) for name in type(self).model_fields}


class SubmitTaskArguments(ToolArguments, TaskCreate):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, arbitrary_types_allowed=True)

    idempotency_key: str | None = Field(
        default=None, max_length=200, description="as the Idempotency-Key header: the same key, the same task"
    )


class TaskIdArguments(ToolArguments):
    task_id: str = Field(min_length=1, max_length=40)


class WaitForTaskArguments(TaskIdArguments):
    for_: WaitFor = Field(default=WaitFor.FINISHED, alias="for", description="what to wait for")
    seconds: float = Field(
        default=30.0, alias="timeout", ge=0, le=MAX_WAIT_SECONDS, description="seconds, at most 60"
    )


class ListApprovalsArguments(ToolArguments):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="at most this many items")
    cursor: str | None = Field(
        default=None, max_length=400, description="`next_cursor` of the previous page; omit for the first"
    )


class DecideArguments(ToolArguments, DecisionIn):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    task_id: str = Field(min_length=1, max_length=40)


class ClaimGateArguments(TaskIdArguments):
    gate_id: str = Field(min_length=1, max_length=40)
    assignee: str | None = Field(None, max_length=320, description="an approver of the team (default: you)")
    take_over: bool = Field(False, description="move someone else's claim to you (audited)")
    release: bool = Field(False, description="let your claim go")


class WaitResult(BaseModel):
    """The task once it is ready, or as it is when the time ran out (`timed_out`: call again)."""

    task: TaskOut
    timed_out: bool


READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True)


def strict_tool(
    fn: Callable[..., Any], arguments: type[ToolArguments], title: str, annotations: ToolAnnotations
) -> Tool:
    """`fn` as a tool whose arguments are `arguments` (REST's names, nothing else accepted)."""
    tool = Tool.from_function(fn, title=title, annotations=annotations, structured_output=True)
    taken = set(tool.fn_metadata.arg_model.model_fields)
    if taken != set(arguments.model_fields):  # the function and its model drifted apart
        raise TypeError(f"{tool.name} takes {sorted(taken)}; {arguments.__name__} has others")
    tool.fn_metadata.arg_model = arguments
    tool.parameters = arguments.model_json_schema(by_alias=True)
    return tool


class ExosuitMcp(MCPServer):
    """The MCP server whose argument errors read as the API's: 422, where, and why."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            invalid = error.__cause__
            if not isinstance(invalid, ValidationError):
                raise
            raise ToolError(f"Error executing tool {name}: {_readable(name, invalid)}") from invalid


def _readable(tool: str, invalid: ValidationError) -> str:
    model = _MODELS.get(invalid.title)  # the arguments model's class name
    taken = ", ".join(f.alias or n for n, f in model.model_fields.items()) if model else "?"
    parts = []
    for problem in invalid.errors():
        where = ".".join(str(p) for p in problem["loc"])
        if problem["type"] == "extra_forbidden":
            parts.append(f"unknown argument {where!r} ({tool} takes {taken})")
        else:
            parts.append(f"{where}: {problem['msg']}" if where else problem["msg"])
    return f"{VALIDATION}: " + "; ".join(parts)


_MODELS: dict[str, type[ToolArguments]] = {
    m.__name__: m
    for m in (
        SubmitTaskArguments,
        TaskIdArguments,
        WaitForTaskArguments,
        ListApprovalsArguments,
        DecideArguments,
    )
}
