"""The approvals queue: open gates the caller may decide, oldest first."""

from __future__ import annotations

from fastapi import APIRouter

from web.deps import CurrentPrincipal, ServicesDep
from web.schemas import ApprovalOut, gate_out, step_out, task_out

router = APIRouter(tags=["approvals"])


@router.get("/approvals")
async def approvals(principal: CurrentPrincipal, services: ServicesDep) -> dict[str, list[ApprovalOut]]:
    views = await services.tasks.open_gates(principal.approver_teams, decided_by=principal.email)
    items = []
    for view in views:
        gate = gate_out(view.task)
        if gate is None:
            continue
        step = next((s for s in view.steps if s.id == gate.step_id), None)
        items.append(ApprovalOut(task=task_out(view), gate=gate, step=step_out(step) if step else None))
    return {"items": items}
