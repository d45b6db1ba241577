"""Claims: who is working on an open gate, so two approvers do not review the same one."""

from __future__ import annotations

from fastapi import APIRouter, Body

from web import actions
from web.api.openapi import problems
from web.api.tasks import refusals_as_problems
from web.deps import CurrentPrincipal, ServicesDep, VisibleTask
from web.errors import Problem
from web.schemas import ClaimIn, GateOut, gate_out

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=problems(401, 403, 404, 409, 422, 429, 503))


@router.post("/{task_id}/gates/{gate_id}/claim")
async def claim_gate(
    gate_id: str,
    view: VisibleTask,
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: ClaimIn = Body(default_factory=ClaimIn),  # noqa: B008 (FastAPI's way to take an optional body)
) -> GateOut:
    """Claim the open gate (or assign it to an approver of the team) for the claim lease; claim
    again to renew. Held by someone else: 409 `/problems/claimed` unless `take_over`."""
    async with refusals_as_problems():
        await actions.claim(
            services, principal, view, gate_id, assignee=body.assignee, take_over=body.take_over
        )
    return await _gate(services, view.task.id)


@router.delete("/{task_id}/gates/{gate_id}/claim")
async def release_gate(
    gate_id: str, view: VisibleTask, principal: CurrentPrincipal, services: ServicesDep
) -> GateOut:
    """Release the caller's claim on the open gate."""
    async with refusals_as_problems():
        await actions.release(services, principal, view, gate_id)
    return await _gate(services, view.task.id)


async def _gate(services: ServicesDep, task_id: str) -> GateOut:
    view = await services.tasks.task(task_id)
    gate = gate_out(view) if view is not None else None
    if gate is None:  # decided in the meantime
        raise Problem(409, "Conflict", "the gate closed meanwhile")
    return gate
