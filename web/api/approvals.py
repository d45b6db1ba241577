"""The approvals queue: open gates the caller may decide, oldest first, a page at a time."""

from __future__ import annotations

from fastapi import APIRouter, Response

from exosuit.storage.identity import Principal
from web.api import pagination
from web.api.openapi import problems
from web.bulk import approve_all
from web.deps import CurrentPrincipal, Services, ServicesDep
from web.schemas import ApprovalList, ApprovalOut, BulkIn, BulkOut, gate_out, step_out, task_out

router = APIRouter(tags=["approvals"], responses=problems(401, 422, 429, 503))
DEFAULT_LIMIT = 50  # a page's items each carry their task with every step: kept small to stay fast


@router.get("/approvals", response_model=ApprovalList)
async def list_approvals(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: pagination.Cursor = None,
    limit: pagination.Limit = DEFAULT_LIMIT,
) -> Response:
    """Open gates the caller may decide (four-eyes applied), oldest first; `next_cursor` is the
    next page's."""
    page = await approvals_page(services, principal, cursor, limit)
    # Serialized once, straight from the models built here (not dumped, validated again and
    # encoded again as a returned model would be): the list's biggest cost after the queries.
    return Response(page.model_dump_json(), media_type="application/json")


async def approvals_page(
    services: Services, principal: Principal, cursor: str | None, limit: int
) -> ApprovalList:
    """One page of the gates the person may decide (the API's and the MCP tool's): two queries,
    the page's tasks and all their steps."""
    after = pagination.decode("approvals", cursor)
    views = await services.tasks.open_gates(
        principal.approver_teams,
        decided_by=principal.email,
        after=after,
        limit=limit + 1,
        answer_only=principal.answer_only_teams,  # questions: any member answers
    )
    page, more = views[:limit], len(views) > limit
    items = []
    for view in page:
        gate = gate_out(view)
        if gate is None:
            continue
        step = next((s for s in view.steps if s.id == gate.step_id), None)
        items.append(ApprovalOut(task=task_out(view), gate=gate, step=step_out(step) if step else None))
    last = page[-1].task if more else None
    cursor_out = (
        pagination.encode("approvals", last.gate_opened_at, last.id) if last and last.gate_opened_at else None
    )
    return ApprovalList(items=items, next_cursor=cursor_out)


@router.post("/approvals/bulk")
async def bulk_approve(body: BulkIn, principal: CurrentPrincipal, services: ServicesDep) -> BulkOut:
    """Approve several gates, each only if it still shows what its `etag` says the caller saw;
    a per-item status: 200 approved, 403 not allowed, 409 not open or claimed by someone else,
    412 changed since shown, 422 high risk (never in bulk) or otherwise refused."""
    return BulkOut(items=await approve_all(services, principal, body.items))
