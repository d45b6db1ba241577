"""/mcp: an MCP server (Streamable HTTP) for agents, with the API's bearer tokens and rules.

Every tool acts as the token's user through the same code as the JSON API (`web/actions.py`,
the same visibility rule and queries), so a member cannot decide, four-eyes holds, and
another team's task does not exist. The transport is stateless (JSON answers, no session
kept in memory), so any web process can answer any call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from exosuit.domain.autonomy import AutonomyLevel, DecisionAction, OnReject
from exosuit.domain.refusals import Refused, Throttled
from exosuit.storage.identity import Principal
from exosuit.storage.tasks import TaskView
from web import actions
from web.api.approvals import DEFAULT_LIMIT, approvals_page
from web.api.waiting import WaitFor, wait_until
from web.deps import Services, bearer_principal, task_visible_to
from web.errors import Problem, Unavailable, problem_response
from web.mcp_tools import (
    READ_ONLY,
    ClaimGateArguments,
    DecideArguments,
    ExosuitMcp,
    ListApprovalsArguments,
    SubmitTaskArguments,
    TaskIdArguments,
    WaitForTaskArguments,
    WaitResult,
    strict_tool,
)
from web.schemas import ApprovalList, DecisionIn, TaskCreate, TaskOut, task_out

INSTRUCTIONS = (
    "Exosuit runs human-in-the-loop jobs: submit a task, wait for a person to approve its gates, "
    "read the result. Approvers can list the gates they may decide and decide them; any member "
    "of a task's team answers its questions (gates of kind question: decide with action answer)."
)


def build_mcp(services: Services) -> MCPServer:
    """The MCP server whose tools act for the caller of each request."""

    async def caller(ctx: Context) -> Principal:
        request = ctx.request_context.request
        principal = getattr(getattr(request, "state", None), "principal", None)
        if isinstance(principal, Principal):
            return principal
        if isinstance(request, Request):
            found = await bearer_principal(request, services)
            if found is not None:
                return found
        raise ToolError("401 /problems/unauthorized: a valid bearer token is required")

    async def visible(principal: Principal, task_id: str) -> TaskView:
        view = await task_visible_to(services, principal, task_id)
        if view is None:
            raise ToolError(f"404 /problems/not-found: no task {task_id}")
        return view

    async def fresh(task_id: str) -> TaskOut:
        view = await services.tasks.task(task_id)
        assert view is not None
        return task_out(view)

    async def submit_task(
        title: str,
        instructions: str,
        team: str,
        ctx: Context,
        autonomy: AutonomyLevel = AutonomyLevel.SUPERVISED,
        budget_usd: float | None = None,
        idempotency_key: str | None = None,
    ) -> TaskOut:
        """Submit a task to a team (as POST /api/v1/tasks); gates open as its autonomy level
        demands. The same idempotency_key and arguments again return the same task."""
        principal = await caller(ctx)
        with refusals_as_tool_errors():
            body = TaskCreate(
                title=title, instructions=instructions, team=team, autonomy=autonomy, budget_usd=budget_usd
            )
            task, _ = await actions.submit(services, principal, body, idempotency_key=idempotency_key)
        return await fresh(task.id)

    async def get_task(task_id: str, ctx: Context) -> TaskOut:
        """A task: status, steps, its open gate (what a decision must name) and result."""
        return task_out(await visible(await caller(ctx), task_id))

    async def wait_for_task(
        task_id: str, ctx: Context, for_: WaitFor = WaitFor.FINISHED, seconds: float = 30.0
    ) -> WaitResult:
        """Wait until the task has an open gate (`for`: `gate`) or has finished (`finished`),
        at most `timeout` seconds (60 at most); `timed_out` is true when it is neither yet
        (call again). As GET /api/v1/tasks/{task_id}/wait."""
        view = await visible(await caller(ctx), task_id)
        view, ready = await wait_until(services, view, for_, seconds)
        return WaitResult(task=task_out(view), timed_out=not ready)

    async def list_approvals(
        ctx: Context, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> ApprovalList:
        """Open gates the caller may decide, oldest first (pass next_cursor as cursor for more)."""
        principal = await caller(ctx)
        with refusals_as_tool_errors():
            return await approvals_page(services, principal, cursor, limit)

    async def decide(
        task_id: str,
        gate_id: str,
        action: DecisionAction,
        ctx: Context,
        reason: str | None = None,
        on_reject: OnReject = OnReject.REVISE,
        changes: dict[str, Any] | None = None,
        answer: str | None = None,
    ) -> TaskOut:
        """Approve, edit (with changes) or reject (with a reason) the task's open gate, as
        POST /api/v1/tasks/{task_id}/decisions. Only an approver of the task's team may; under
        four-eyes not the task's submitter. Approving lets the step run (tools act on the world).
        A question gate (kind question) is answered instead: action answer with the answer's
        text (one of its choices, if it offers some); any member of the team may answer."""
        principal = await caller(ctx)
        view = await visible(principal, task_id)
        with refusals_as_tool_errors():
            body = DecisionIn(
                gate_id=gate_id,
                action=action,
                reason=reason,
                on_reject=on_reject,
                changes=changes or {},
                answer=answer,
            )
            await actions.decide(services, principal, view, body)
        return await fresh(task_id)

    async def claim_gate(
        task_id: str,
        gate_id: str,
        ctx: Context,
        assignee: str | None = None,
        take_over: bool = False,
        release: bool = False,
    ) -> TaskOut:
        """Claim the task's open gate for a while (or assign it to an approver of the team), so
        other approvers leave it to you; claim again to keep it. Someone else's claim moves
        only with take_over. release lets your claim go."""
        principal = await caller(ctx)
        view = await visible(principal, task_id)
        with refusals_as_tool_errors():
            if release:
                await actions.release(services, principal, view, gate_id)
            else:
                await actions.claim(
                    services, principal, view, gate_id, assignee=assignee, take_over=take_over
                )
        return await fresh(task_id)

    writes = ToolAnnotations(
        readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False
    )
    decides = ToolAnnotations(
        readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=True
    )
    tools = [
        strict_tool(submit_task, SubmitTaskArguments, "Submit a task", writes),
        strict_tool(get_task, TaskIdArguments, "Read a task", READ_ONLY),
        strict_tool(wait_for_task, WaitForTaskArguments, "Wait for a gate or the end", READ_ONLY),
        strict_tool(list_approvals, ListApprovalsArguments, "Gates I may decide", READ_ONLY),
        strict_tool(decide, DecideArguments, "Decide a gate", decides),
        strict_tool(claim_gate, ClaimGateArguments, "Claim, assign or release a gate", writes),
    ]
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)  # MCPServer calls logging.basicConfig: leave the process's logging as it is
    try:
        return ExosuitMcp(
            "exosuit", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING", tools=tools
        )
    finally:
        root.removeHandler(guard)


@contextlib.contextmanager
def refusals_as_tool_errors() -> Any:
    """A refusal or an invalid argument as the tool error an agent reads: status, type, why."""
    try:
        yield
    except (Refused, Throttled) as refused:  # the API's status and problem type for the same refusal
        problem = Problem.of(refused)
        raise ToolError(f"{problem.status} {problem.type.value}: {problem.detail}") from None
    except Problem as problem:
        raise ToolError(f"{problem.status} {problem.type.value}: {problem.detail}") from None
    except ValidationError as invalid:
        raise ToolError(f"422 /problems/validation: {invalid}") from None
    except Unavailable as down:
        raise ToolError(f"503 /problems/unavailable: {down.message}") from None


class McpEndpoint:
    """The ASGI endpoint at /mcp: a live bearer token or 401, then the MCP transport."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.server = build_mcp(services)
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            # Bearer tokens, never cookies: a rebinding page cannot borrow a session here.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.transport = StreamableHTTPASGIApp(self.server.session_manager)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The transport's task group, for the app's lifespan."""
        async with self.server.session_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = await bearer_principal(Request(scope), self.services)
        if principal is None:
            response = problem_response(
                401, "Unauthorized", "a valid bearer token is required", {"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.transport(scope, receive, send)
