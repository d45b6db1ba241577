"""The review queue: every open gate the visitor may decide, oldest first, triaged by keyboard."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web.deps import ServicesDep
from web.pages.common import CurrentVisitor, Visitor, render
from web.pages.views import decision_context

router = APIRouter()
FILTERS = ("team", "kind", "risk")


def _filters(params: Mapping[str, str]) -> dict[str, str]:
    return {name: params.get(name, "") for name in FILTERS if params.get(name)}


async def queue_response(
    request: Request,
    visitor: Visitor,
    services: ServicesDep,
    params: Mapping[str, str],
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The queue page (or its board for htmx), with the selected item's full context."""
    principal = visitor.principal
    filters = _filters(params)
    teams = [t for t in principal.approver_teams if filters.get("team") in (None, t)]
    tasks = await services.tasks.open_gate_rows(
        teams, decided_by=principal.email, kind=filters.get("kind"), risk=filters.get("risk")
    )
    version = hashlib.sha256("|".join(f"{t.id}:{t.gate_id}" for t in tasks).encode()).hexdigest()[:16]
    if params.get("v") == version and error is None:
        return Response(status_code=204)  # nothing changed: htmx keeps what is shown
    # The item asked for; after a decision, whatever now stands where it stood.
    ids = [t.id for t in tasks]
    wanted, position = params.get("item", ""), params.get("position", "")
    selected_id: str | None = None
    if wanted in ids:
        selected_id = wanted
    elif ids:
        numeric = position.isascii() and position.isdigit() and len(position) < 7  # not "²", not 10**9999
        selected_id = ids[min(int(position), len(ids) - 1)] if numeric else ids[0]
    detail: dict[str, Any] | None = None
    if selected_id is not None:
        view = await services.tasks.task(selected_id)
        if view is not None:
            detail = decision_context(visitor, view, services.settings)
    context = {
        "visitor": visitor,
        "tasks": tasks,
        "selected": selected_id,
        "position": ids.index(selected_id) if selected_id in ids else 0,
        "detail": detail,
        "filters": filters,
        "query": urlencode(filters),
        "teams": principal.approver_teams,
        "version": version,
        "error": error,
    }
    return render(request, "queue.html", context, block="board", status=status)


@router.get("/queue")
async def queue(request: Request, visitor: CurrentVisitor, services: ServicesDep) -> Response:
    return await queue_response(request, visitor, services, dict(request.query_params))
