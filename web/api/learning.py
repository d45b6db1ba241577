"""The dashboard's figures, earned-autonomy suggestions, and the decisions export."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from exosuit.domain.decision_records import VERDICTS, ExportFormat
from exosuit.storage.decision_export import Filters, audit_export, export_secrets, records
from exosuit.storage.tables import AutonomySuggestion
from web import learning
from web.api.openapi import problems
from web.api.webhooks import automation_problems
from web.deps import CurrentPrincipal, ServicesDep

router = APIRouter(tags=["learning"], responses=problems(401, 403, 422))

Team = Annotated[
    str | None, Query(max_length=100, description="one of your teams (default: all you approve for)")
]
Since = Annotated[datetime | None, Query(description="from this moment (default: 30 days before until)")]
Until = Annotated[datetime | None, Query(description="up to this moment (default: now)")]


def suggestion_out(s: AutonomySuggestion) -> dict[str, Any]:
    """A suggestion as the API shows it (`from` and `to`: levels)."""
    return {
        "id": s.id,
        "team": s.team,
        "template": s.template,
        "from": s.from_level,
        "to": s.to_level,
        "evidence": s.evidence,
        "status": s.status,
    }


@router.get("/stats")
async def get_stats(
    principal: CurrentPrincipal,
    services: ServicesDep,
    team: Team = None,
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    """Decisions, their verdicts and time to decision, cost and tokens, open gates, and the
    breakdowns the dashboard draws, for the teams you approve for."""
    async with automation_problems():
        span = learning.window(since, until)
        figures = await learning.figures(services, principal, team, span)
    return figures.summary()


@router.get("/autonomy/suggestions")
async def list_suggestions(principal: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    """Open proposals to move a template's default autonomy, with their evidence."""
    found = await learning.open_suggestions(services, principal)
    return {"items": [suggestion_out(s) for s in found]}


@router.post("/autonomy/suggestions/{suggestion_id}/accept", responses=problems(404, 409))
async def accept_suggestion(
    suggestion_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """The template's default autonomy becomes the suggested level (a team admin; within the
    team's cap, else 422); audited."""
    async with automation_problems():
        decided = await learning.decide_suggestion(services, principal, suggestion_id, accept=True)
    return suggestion_out(decided)


@router.post("/autonomy/suggestions/{suggestion_id}/dismiss", responses=problems(404, 409))
async def dismiss_suggestion(
    suggestion_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """Nothing moves; the rule proposes again only on new evidence. Audited."""
    async with automation_problems():
        decided = await learning.decide_suggestion(services, principal, suggestion_id, accept=False)
    return suggestion_out(decided)


@router.get(
    "/exports/decisions",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "JSON Lines, one decision a line"}
    },
)
async def export_decisions(
    principal: CurrentPrincipal,
    services: ServicesDep,
    team: Team = None,
    since: Since = None,
    until: Until = None,
    template: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[str | None, Query(pattern="^(plan|step|output|cost|question)$")] = None,
    verdict: Annotated[str | None, Query(pattern=f"^({'|'.join(VERDICTS)})$")] = None,
    format: ExportFormat = ExportFormat.RAW,
) -> StreamingResponse:
    """Every decision the filters select, as JSON Lines (`raw`, or `chat` examples), secrets
    masked; for a team's admins, and audited."""
    async with automation_problems():
        teams = learning.admin_teams(principal, team)
        filters = Filters(teams, since, until, template, kind, verdict)
        await audit_export(services.db, f"user:{principal.email}", format, filters)  # before a line leaves
    secrets = export_secrets(services.settings)

    async def lines() -> AsyncIterator[bytes]:
        async for record in records(services.db, filters, format, secrets):
            yield (json.dumps(record, ensure_ascii=False) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
