"""My tasks, the submit form, and the task page with its decisions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ValidationError

from exosuit.domain.autonomy import AutonomyLevel, DecisionAction, GateKind, OnReject
from exosuit.domain.refusals import Refused, Throttled
from exosuit.domain.tools import ToolSpec
from exosuit.storage.tasks import TaskView
from web import actions
from web.deps import ServicesDep, task_visible_to
from web.errors import status_of
from web.pages.common import CheckedForm, CurrentVisitor, Visitor, redirect, render
from web.pages.queue import queue_response
from web.pages.views import LEVELS, live_version, task_context, version_of, waiting_for
from web.schemas import DecisionIn, TaskCreate, readable
from web.tool_edits import args_from_form, step_spec, tools_config

router = APIRouter()
EVENTS_STREAM_SECONDS = 60.0


def not_found(request: Request, visitor: Visitor) -> Response:
    return render(request, "not_found.html", {"visitor": visitor}, status=404)


@router.get("/")
async def my_tasks(request: Request, visitor: CurrentVisitor, services: ServicesDep) -> Response:
    principal = visitor.principal
    views = await services.tasks.tasks(principal.teams, submitted_by=principal.email, limit=200)
    rows = [(v, waiting_for(v)) for v in views]
    return render(request, "my_tasks.html", {"visitor": visitor, "rows": rows})


@router.get("/tasks/new")
async def new_task_form(request: Request, visitor: CurrentVisitor, services: ServicesDep) -> Response:
    context = {"visitor": visitor, "levels": LEVELS, "form": {}}
    return render(request, "new_task.html", context | await _solo_teams(services, visitor))


async def _solo_teams(services: ServicesDep, visitor: CurrentVisitor) -> dict[str, list[str]]:
    """The teams where the visitor is the only approver: their tasks there run solo."""
    principal = visitor.principal
    return {"solo_teams": [t for t in principal.teams if await actions.solo_in(services, principal, t)]}


@router.post("/tasks/new")
async def submit_task(
    request: Request, visitor: CurrentVisitor, services: ServicesDep, form: CheckedForm
) -> Response:
    # The slider posts a position (0-4); the API's schema reads everything else.
    level = form.get("autonomy", "")
    if len(level) == 1 and level.isascii() and level.isdigit() and int(level) < len(AutonomyLevel):
        level = list(AutonomyLevel)[int(level)].value
    fields = {name: form.get(name, "") for name in ("title", "instructions", "team")}
    budget = form.get("budget_usd", "").strip()
    try:
        body = TaskCreate.model_validate(fields | {"autonomy": level, "budget_usd": budget or None})
        task, _ = await actions.submit(services, visitor.principal, body)
        return redirect(request, f"/tasks/{task.id}")
    except ValidationError as exc:
        error, status = readable(exc), 422
    except Refused as refused:
        error, status = refused.message, status_of(refused)
    except Throttled as throttled:
        error, status = f"{throttled.message}. Try again in {throttled.retry_after} s.", 429
    context = {"visitor": visitor, "levels": LEVELS, "form": form, "error": error}
    context |= await _solo_teams(services, visitor)
    return render(request, "new_task.html", context, status=status)


@router.get("/tasks/{task_id}")
async def task_page(
    request: Request, task_id: str, visitor: CurrentVisitor, services: ServicesDep
) -> Response:
    view = await task_visible_to(services, visitor.principal, task_id)
    if view is None:
        return not_found(request, visitor)
    return render(request, "task.html", await task_context(services, visitor, view), block="live")


@router.get("/tasks/{task_id}/live")
async def task_live(
    request: Request, task_id: str, visitor: CurrentVisitor, services: ServicesDep, v: str = ""
) -> Response:
    """The live part of the task page; 204 (nothing to swap) while it has not changed."""
    view = await task_visible_to(services, visitor.principal, task_id)
    if view is None:
        return not_found(request, visitor)
    if v and v == live_version(view):
        return Response(status_code=204)
    return render(request, "task.html", await task_context(services, visitor, view), block="live")


async def watched_task(
    task_id: str, visitor: CurrentVisitor, services: ServicesDep
) -> AsyncIterator[TaskView]:
    """The task, with one of the person's event streams held until the stream ends (404 if
    the person's teams cannot see it, 429 past the limit)."""
    view = await task_visible_to(services, visitor.principal, task_id)
    if view is None:
        raise HTTPException(404, f"no task {task_id}")
    with services.limits.stream(visitor.principal.email):
        yield view


@router.get("/tasks/{task_id}/events", response_class=EventSourceResponse)
async def task_events(
    view: Annotated[TaskView, Depends(watched_task)], services: ServicesDep
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: `changed` (data: the version) now and whenever the task's read model
    changes; the page then fetches its live part. The browser reconnects by itself when a
    stream ends, and that first event tells it whether it missed a change meanwhile."""
    task_id = view.task.id

    async def read() -> datetime | None:
        return await services.tasks.updated_at(task_id)

    changes = services.watch.follow(
        task_id, view.task.updated_at, read, lambda v: v, seconds=EVENTS_STREAM_SECONDS
    )
    async for version in changes:
        yield ServerSentEvent(event="changed", raw_data=version_of(version))


def decision_of(form: dict[str, str], kind: str, tool: ToolSpec | None = None) -> DecisionIn:
    """The decision a posted form describes, read by the API's schema (edits carry the text,
    or a tool step's arguments field by field)."""
    action = form.get("action", "")
    fields: dict[str, Any] = {"gate_id": form.get("gate_id", ""), "action": action}
    if action == DecisionAction.ANSWER:
        fields["answer"] = form.get("answer", "")
    if action == DecisionAction.REJECT:
        fields["reason"] = form.get("reason", "").strip() or None
        fields["on_reject"] = form.get("on_reject", OnReject.REVISE)
    if action == DecisionAction.EDIT:
        if kind == GateKind.PLAN:
            try:
                fields["changes"] = {"steps": json.loads(form.get("plan", ""))}
            except json.JSONDecodeError as exc:
                raise ValueError(f"The plan is not valid JSON: {exc}") from None
            except RecursionError:
                raise ValueError("The plan is nested too deeply.") from None
        elif kind == GateKind.STEP and form.get("edit_args") and tool is not None:
            fields["changes"] = {"args": args_from_form(tool, form)}
        elif kind == GateKind.STEP:
            fields["changes"] = {"instructions": form.get("instructions", "")}
        else:
            fields["changes"] = {"output": form.get("output", "")}
    try:
        return DecisionIn.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(readable(exc)) from None


@router.post("/tasks/{task_id}/decide")
async def decide(
    request: Request, task_id: str, visitor: CurrentVisitor, services: ServicesDep, form: CheckedForm
) -> Response:
    async def act(view: TaskView) -> None:
        step = next((s for s in view.steps if s.id == view.task.gate_step_id), None)
        tool = step_spec(tools_config(services.settings), step) if step is not None else None
        decision = decision_of(form, view.task.gate_kind or "", tool)
        await actions.decide(services, visitor.principal, view, decision)

    return await _act(request, task_id, visitor, services, form, act)


@router.post("/tasks/{task_id}/autonomy")
async def move_slider(
    request: Request, task_id: str, visitor: CurrentVisitor, services: ServicesDep, form: CheckedForm
) -> Response:
    async def act(view: TaskView) -> None:
        level = AutonomyLevel(form.get("autonomy", ""))
        await actions.set_autonomy(services, visitor.principal, view, level)

    return await _act(request, task_id, visitor, services, form, act)


@router.post("/tasks/{task_id}/cancel")
async def cancel(
    request: Request, task_id: str, visitor: CurrentVisitor, services: ServicesDep, form: CheckedForm
) -> Response:
    async def act(view: TaskView) -> None:
        await actions.cancel(services, visitor.principal, view)

    return await _act(request, task_id, visitor, services, form, act)


@router.post("/tasks/{task_id}/resume")
async def resume(
    request: Request, task_id: str, visitor: CurrentVisitor, services: ServicesDep, form: CheckedForm
) -> Response:
    async def act(view: TaskView) -> None:
        await actions.resume(services, visitor.principal, view)

    return await _act(request, task_id, visitor, services, form, act)


async def _act(
    request: Request,
    task_id: str,
    visitor: Visitor,
    services: ServicesDep,
    form: dict[str, str],
    act: Callable[[TaskView], Awaitable[None]],
) -> Response:
    """Run a task action; then redirect (plain), or re-render in place with any refusal."""
    view = await task_visible_to(services, visitor.principal, task_id)
    if view is None:
        return not_found(request, visitor)
    status, error = 200, None
    try:
        await act(view)
    except Refused as refused:
        status, error = status_of(refused), refused.message
    except ValueError as exc:
        status, error = 422, str(exc)
    if form.get("return_to") == "queue":
        return await queue_response(request, visitor, services, form, error=error, status=status)
    if error is None and request.headers.get("hx-request") != "true":
        return redirect(request, f"/tasks/{task_id}")
    fresh = await services.tasks.task(task_id)
    assert fresh is not None
    context = await task_context(services, visitor, fresh) | {"error": error}
    return render(request, "task.html", context, block="live", status=status)
