"""Safe bulk approval: several gates at once, each only as the approver was shown it.

Each item is checked on its own and decided through the one decision path (`actions.decide`),
so four-eyes, claims and the workflow's own checks hold as for a single decision. An item is
approved only if its gate is still the open one and still shows what the approver saw (its
etag); high-risk gates are never approved in bulk.
"""

from __future__ import annotations

from exosuit.domain.autonomy import DecisionAction, Risk
from exosuit.domain.refusals import Refused
from exosuit.storage.identity import Principal
from web import actions
from web.deps import Services
from web.errors import status_of
from web.schemas import BulkItemIn, BulkItemOut, DecisionIn, gate_etag


async def approve_all(services: Services, principal: Principal, items: list[BulkItemIn]) -> list[BulkItemOut]:
    """Every item's outcome, in the order given (one failing never stops the others)."""
    return [await _approve(services, principal, item) for item in items]


async def _approve(services: Services, principal: Principal, item: BulkItemIn) -> BulkItemOut:
    def outcome(status: int, detail: str | None = None) -> BulkItemOut:
        return BulkItemOut(task_id=item.task_id, gate_id=item.gate_id, status=status, detail=detail)

    view = await services.tasks.task(item.task_id)
    if view is None or principal.role_in(view.task.team) is None:
        return outcome(403, "no such task among your teams' tasks")
    if view.task.gate_id is None:
        return outcome(409, f"gate {item.gate_id} is not open")
    if gate_etag(view) != item.etag:  # a redraft or a revised plan opens a new gate: changed too
        return outcome(412, "the gate changed since it was shown to you: open it again")
    if view.task.gate_id != item.gate_id:
        return outcome(409, f"gate {item.gate_id} is not open")
    if view.task.gate_risk == Risk.HIGH:
        return outcome(422, "a high-risk gate is approved on its own, never in bulk")
    try:
        await actions.decide(
            services, principal, view, DecisionIn(gate_id=item.gate_id, action=DecisionAction.APPROVE)
        )
    except Refused as refused:
        return outcome(status_of(refused), refused.message)
    return outcome(200)
