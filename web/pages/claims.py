"""Claiming a gate from the pages: claim, keep (renew), take over, release."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from exosuit.domain.refusals import Invalid
from exosuit.storage.tasks import TaskView
from web import actions
from web.deps import ServicesDep
from web.pages.common import CheckedForm, CurrentVisitor
from web.pages.tasks import _act

router = APIRouter()


@router.post("/tasks/{task_id}/claim")
async def claim(
    request: Request, task_id: str, visitor: CurrentVisitor, services: ServicesDep, form: CheckedForm
) -> Response:
    async def act(view: TaskView) -> None:
        gate_id, what = form.get("gate_id", ""), form.get("claim", "")
        if what == "release":
            await actions.release(services, visitor.principal, view, gate_id)
        elif what in ("claim", "renew", "take_over"):
            await actions.claim(services, visitor.principal, view, gate_id, take_over=what == "take_over")
        else:
            raise Invalid("claim, renew, take_over or release")

    return await _act(request, task_id, visitor, services, form, act)
