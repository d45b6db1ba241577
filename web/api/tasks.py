"""Tasks: submit, list, read, decide, move the slider, cancel, and the audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response
from fastapi.responses import JSONResponse

from exosuit.domain.audit import canonical_json
from exosuit.domain.refusals import Refused
from exosuit.domain.task import TaskStatus
from exosuit.domain.text import fingerprint
from exosuit.storage.tasks import TaskView
from web import actions
from web.api import pagination
from web.api.openapi import problems
from web.api.task_json import task_response
from web.deps import CallerDep, CurrentPrincipal, ServicesDep, VisibleTask, authenticated_read
from web.errors import PROBLEM, Problem, Unavailable
from web.schemas import (
    AuditEventList,
    AutonomyIn,
    DecisionIn,
    TaskCreate,
    TaskList,
    TaskOut,
    VerifyOut,
    audit_out,
    task_out,
)

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=problems(401, 429, 503))


@asynccontextmanager
async def refusals_as_problems() -> AsyncIterator[None]:
    """A refused action becomes its problem+json answer."""
    try:
        yield
    except Refused as refused:
        raise Problem.of(refused) from None


@router.post("", status_code=201, responses=problems(403, 422))
async def create_task(
    body: TaskCreate,
    principal: CurrentPrincipal,
    services: ServicesDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> TaskOut:
    """Submit a task; with an Idempotency-Key, the same key and body give the same task."""
    async with refusals_as_problems():
        task, replayed = await actions.submit(services, principal, body, idempotency_key=idempotency_key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/tasks/{task.id}"
    return await _public(services, task.id)


@router.get("", responses=problems(422))
async def list_tasks(
    principal: CurrentPrincipal,
    services: ServicesDep,
    status: TaskStatus | None = None,
    team: str | None = None,
    cursor: pagination.Cursor = None,
    limit: pagination.Limit = 100,
) -> TaskList:
    """The tasks the caller's teams own, newest first, a page at a time."""
    before = pagination.decode("tasks", cursor)
    views = await services.tasks.tasks(
        principal.teams, status=status, team=team, limit=limit + 1, before=before
    )
    page, more = views[:limit], len(views) > limit
    last = page[-1].task if more else None
    return TaskList(
        items=[task_out(v) for v in page],
        next_cursor=pagination.encode("tasks", last.created_at, last.id) if last else None,
    )


@router.get("/{task_id}", response_model=TaskOut, responses=problems(404))
async def get_task(view: VisibleTask) -> Response:
    """One task: its steps, its open gate, its result."""
    return task_response(view)


async def decidable_task(task_id: str, caller: CallerDep, services: ServicesDep) -> TaskView:
    """The task a decision is for: its row alone (visibility, team, gate), the steps left out
    (an edit reads them: it is checked against them), read with the caller's auth version.
    The answer reads the whole task once, after the decision, so that it shows the gate closed."""
    principal, task = await authenticated_read(
        caller,
        lambda user_id: services.tasks.row_seen_by(task_id, user_id),
        lambda: services.tasks.row(task_id),
    )
    if task is None or task.team not in principal.roles:
        raise Problem(404, "Not Found", f"no task {task_id}")
    return TaskView(task, [])


@router.post("/{task_id}/decisions", response_model=TaskOut, responses=problems(403, 404, 409, 422))
async def decide_gate(
    body: DecisionIn,
    view: Annotated[TaskView, Depends(decidable_task)],
    principal: CurrentPrincipal,
    services: ServicesDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Approve, edit or reject the open gate: exactly one decision wins it. With an
    Idempotency-Key, the same key and body again get the first answer, even once the gate
    has closed; another body with that key is 422."""
    if body.action == "edit":  # checked against the steps (web/tool_edits.py)
        view = await _current(services, view.task.id)
    if idempotency_key is None:
        async with refusals_as_problems():
            await actions.decide(services, principal, view, body)
        return task_response(await _current(services, view.task.id))
    who, task_id = principal.email, view.task.id
    print_ = fingerprint(canonical_json(body.model_dump(mode="json")))
    first = await services.answers.claim(who, task_id, idempotency_key, print_)
    if first is not None:
        if first.fingerprint != print_:
            raise Problem(422, "Unprocessable Content", "this Idempotency-Key was used with a different body")
        if first.status is None:
            raise Unavailable("the answer to the first request with this Idempotency-Key")
        replayed = {"Idempotent-Replayed": "true"}
        media = PROBLEM if first.status >= 400 else "application/json"
        return JSONResponse(first.body, status_code=first.status, headers=replayed, media_type=media)
    try:
        await actions.decide(services, principal, view, body, idempotency_key=idempotency_key)
    except Refused as refused:
        problem = Problem.of(refused)
        kept = problem.document()
        await services.answers.keep(who, task_id, idempotency_key, problem.status, kept)
        return JSONResponse(kept, status_code=problem.status, media_type=PROBLEM)
    except BaseException:  # no answer to keep (a dependency was down): a retry tries again
        await services.answers.release(who, task_id, idempotency_key)
        raise
    task = task_out(await _current(services, task_id)).model_dump(mode="json")
    await services.answers.keep(who, task_id, idempotency_key, 200, task)
    return JSONResponse(task)


@router.put("/{task_id}/autonomy", responses=problems(403, 404, 409, 422))
async def set_autonomy(
    body: AutonomyIn, view: VisibleTask, principal: CurrentPrincipal, services: ServicesDep
) -> TaskOut:
    """Move the slider while the task runs (its submitter or an approver; never above the cap)."""
    async with refusals_as_problems():
        await actions.set_autonomy(services, principal, view, body.autonomy)
    return await _public(services, view.task.id)


@router.post("/{task_id}/cancel", status_code=202, responses=problems(403, 404, 409))
async def cancel_task(
    view: VisibleTask, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, str]:
    """End the task (its submitter or an approver): at its next gate or between steps."""
    async with refusals_as_problems():
        await actions.cancel(services, principal, view)
    return {"status": "cancelling"}


@router.post("/{task_id}/resume", status_code=202, responses=problems(403, 404, 409))
async def resume_task(
    view: VisibleTask, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, str]:
    """Run a failed task again from its failed step (an approver of its team)."""
    async with refusals_as_problems():
        await actions.resume(services, principal, view)
    return {"status": "resuming"}


@router.get("/{task_id}/audit", responses=problems(404))
async def list_audit_events(view: VisibleTask, services: ServicesDep) -> AuditEventList:
    """The task's audit chain, in seq order."""
    return AuditEventList(items=[audit_out(e) for e in await services.audit.events(view.task.id)])


@router.get("/{task_id}/audit/verify", responses=problems(404))
async def verify_audit(view: VisibleTask, services: ServicesDep) -> VerifyOut:
    """Check the task's chain against its anchored head."""
    check = await actions.verify_audit(services, view)
    return VerifyOut(
        ok=check.ok,
        events=check.events,
        first_bad_seq=check.first_bad_seq,
        head=check.head,
        anchored=check.anchored,
        reason=check.reason,
    )


@router.get("/{task_id}/audit/export", responses=problems(404))
async def export_audit(view: VisibleTask, services: ServicesDep) -> dict[str, Any]:
    """The chain with its anchor, for a third party to check without access to Exosuit."""
    # docs/check_audit_export.py is such a check.
    events = await services.audit.events(view.task.id)
    head = await services.gateway.audit_head(view.task.id)
    return {
        "task_id": view.task.id,
        "events": [audit_out(e).model_dump() for e in events],
        "anchor": {"seq": head.seq, "hash": head.hash, "source": "workflow"} if head else None,
    }


async def _public(services: ServicesDep, task_id: str) -> TaskOut:
    return task_out(await _current(services, task_id))


async def _current(services: ServicesDep, task_id: str) -> TaskView:
    view = await services.tasks.task(task_id)
    assert view is not None
    return view
