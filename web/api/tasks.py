"""Tasks: submit, list, read, decide, move the slider, cancel, and the audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from exosuit.audit import canonical_json
from exosuit.autonomy import AutonomyLevel, may_set_autonomy
from exosuit.contracts import AutonomyChange, CancelRequest, Decision, TaskInput
from exosuit.models import Task
from exosuit.store import fingerprint
from web.deps import CurrentPrincipal, ServicesDep, VisibleTask
from web.errors import Problem
from web.gateway import Refused
from web.schemas import (
    AuditEventOut,
    AutonomyIn,
    DecisionIn,
    TaskCreate,
    TaskOut,
    VerifyOut,
    audit_out,
    task_out,
)

router = APIRouter(prefix="/tasks", tags=["tasks"])
ACTIVE = {"planning", "awaiting_approval", "running"}


@router.post("", status_code=201)
async def create_task(
    body: TaskCreate,
    principal: CurrentPrincipal,
    services: ServicesDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> TaskOut:
    """Submit a task; with an Idempotency-Key, the same key and body give the same task."""
    if principal.role_in(body.team) is None:
        raise Problem(403, "Forbidden", f"you are not a member of team {body.team!r}")
    team = await services.directory.team(body.team)
    assert team is not None
    cap = AutonomyLevel(team.max_autonomy)
    if body.autonomy.rank > cap.rank:
        raise Problem(
            422, "Unprocessable Content", f"{body.autonomy.value} is above the team's cap ({cap.value})"
        )
    print_ = fingerprint(canonical_json(body.model_dump(mode="json")))
    task = await _existing(services, principal.email, idempotency_key, print_)
    if task is None:
        task = Task(
            id=f"t_{uuid.uuid4().hex[:20]}",
            title=body.title,
            instructions=body.instructions,
            team=body.team,
            submitted_by=principal.email,
            autonomy=body.autonomy.value,
            idempotency_key=idempotency_key,
            request_fingerprint=print_ if idempotency_key else None,
        )
        try:
            async with services.db.session() as session:
                session.add(task)
                await session.commit()
        except IntegrityError:  # the same key raced in from a parallel request
            task = await _existing(services, principal.email, idempotency_key, print_)
            if task is None:
                raise
    else:
        response.headers["Idempotent-Replayed"] = "true"
    await services.gateway.start(
        TaskInput(
            task_id=task.id,
            team=task.team,
            submitted_by=task.submitted_by,
            autonomy=task.autonomy,
            max_autonomy=team.max_autonomy,
            gate_deadline_seconds=team.gate_deadline_seconds,
            submitted_via=principal.token_name,
        )
    )
    response.headers["Location"] = f"/api/v1/tasks/{task.id}"
    return await _public(services, task.id)


async def _existing(services: ServicesDep, email: str, key: str | None, print_: str) -> Task | None:
    if key is None:
        return None
    async with services.db.session() as session:
        found = await session.exec(
            select(Task).where(Task.submitted_by == email, Task.idempotency_key == key)
        )
        task = found.first()
    if task is not None and task.request_fingerprint != print_:
        raise Problem(422, "Unprocessable Content", "this Idempotency-Key was used with a different body")
    return task


@router.get("")
async def list_tasks(
    principal: CurrentPrincipal,
    services: ServicesDep,
    status: str | None = None,
    team: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, list[TaskOut]]:
    views = await services.store.tasks(principal.teams, status=status, team=team, limit=limit)
    return {"items": [task_out(v) for v in views]}


@router.get("/{task_id}")
async def get_task(view: VisibleTask) -> TaskOut:
    return task_out(view)


@router.post("/{task_id}/decisions")
async def decide(
    body: DecisionIn, view: VisibleTask, principal: CurrentPrincipal, services: ServicesDep
) -> TaskOut:
    """Approve, edit or reject the open gate: exactly one decision wins it."""
    decision = Decision(
        gate_id=body.gate_id,
        action=body.action,
        actor=principal.email,
        role=_role(principal, view.task.team),
        changes=body.changes,
        reason=body.reason,
        on_reject=body.on_reject,
        via_token=principal.token_name,
    )
    await _ask(services.gateway.decide(view.task.id, decision))
    return await _public(services, view.task.id)


@router.put("/{task_id}/autonomy")
async def set_autonomy(
    body: AutonomyIn, view: VisibleTask, principal: CurrentPrincipal, services: ServicesDep
) -> TaskOut:
    team = await services.directory.team(view.task.team)
    assert team is not None
    if body.autonomy.rank > AutonomyLevel(team.max_autonomy).rank:
        raise Problem(
            422,
            "Unprocessable Content",
            f"{body.autonomy.value} is above the team's cap ({team.max_autonomy})",
        )
    change = AutonomyChange(
        autonomy=body.autonomy.value,
        actor=principal.email,
        role=_role(principal, view.task.team),
        max_autonomy=team.max_autonomy,
        via_token=principal.token_name,
    )
    await _ask(services.gateway.set_autonomy(view.task.id, change))
    return await _public(services, view.task.id)


@router.post("/{task_id}/cancel", status_code=202)
async def cancel(view: VisibleTask, principal: CurrentPrincipal, services: ServicesDep) -> dict[str, str]:
    role = principal.role_in(view.task.team)
    if not may_set_autonomy(actor=principal.email, role=role, submitter=view.task.submitted_by):
        raise Problem(403, "Forbidden", "only the submitter or an approver can cancel a task")
    if view.task.status not in ACTIVE:
        raise Problem(409, "Conflict", f"the task has already ended ({view.task.status})")
    await _ask(services.gateway.cancel(view.task.id, CancelRequest(principal.email, principal.token_name)))
    return {"status": "cancelling"}


@router.get("/{task_id}/audit")
async def audit(view: VisibleTask, services: ServicesDep) -> dict[str, list[AuditEventOut]]:
    return {"items": [audit_out(e) for e in await services.store.audit(view.task.id)]}


@router.get("/{task_id}/audit/verify")
async def verify(view: VisibleTask, services: ServicesDep) -> VerifyOut:
    verdict = await services.store.verify(view.task.id)
    return VerifyOut(ok=verdict.ok, events=verdict.events, first_bad_seq=verdict.first_bad_seq)


def _role(principal: CurrentPrincipal, team: str) -> str | None:
    role = principal.role_in(team)
    return role.value if role else None


async def _ask(call: Awaitable[None]) -> None:
    """Await a gateway call, turning the workflow's refusal into a problem response."""
    try:
        await call
    except Refused as refused:
        titles = {403: "Forbidden", 409: "Conflict", 422: "Unprocessable Content"}
        raise Problem(refused.status, titles[refused.status], refused.message) from None


async def _public(services: ServicesDep, task_id: str) -> TaskOut:
    view = await services.store.task(task_id)
    assert view is not None
    return task_out(view)
