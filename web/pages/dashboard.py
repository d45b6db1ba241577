"""The dashboard: how the teams one approves for are deciding, drawn as charts, and the
autonomy suggestions their decisions earned (accepted or dismissed here by a team admin)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from exosuit.domain.autonomy import Role
from exosuit.domain.refusals import Refused
from exosuit.storage.dashboard import AGES, VERDICTS, Figures
from exosuit.storage.db import utcnow
from web import charts, learning
from web.deps import ServicesDep
from web.pages.common import CheckedForm, CurrentVisitor, Visitor, redirect, render

router = APIRouter()
DIMENSIONS = {
    "team": "Team",
    "kind": "Gate kind",
    "step_kind": "Step kind",
    "tool": "Tool",
    "template": "Template",
}


def chart_set(figures: Figures) -> dict[str, Any]:
    """Every chart the page draws, laid out from the figures."""
    rates = {
        name: charts.shares(
            f"Verdicts by {label.lower()}",
            {k: r.counts for k, r in sorted(figures.rates.get(name, {}).items())},
            VERDICTS,
        )
        for name, label in DIMENSIONS.items()
    }
    times = [
        (f"{team} · {kind}", p.p50, p.p90) for (team, kind), p in sorted(figures.time_by_team_kind.items())
    ]
    spend: dict[str, dict[str, float]] = {}
    for point in figures.usage:
        spend.setdefault(point.team, {})[point.day] = point.cost_usd
    costs = [
        charts.stacked_columns(
            f"Cost per day, {team} (USD)",
            {day: {"cost": cost} for day, cost in sorted(days.items())},
            ["cost"],
            limit=(figures.monthly_budgets.get(team) or 0) / 30 or None,
            limit_label="a day's share of the monthly budget",
        )
        for team, days in sorted(spend.items())
    ]
    planners = {
        "plans": {"model": figures.planners.get("model", 0), "rules": figures.planners.get("rules", 0)}
    }
    return {
        "per_day": charts.stacked_columns("Decisions per day", figures.per_day, VERDICTS),
        "times": charts.ranges("Time from gate opened to decided", times),
        "rates": rates,
        "costs": costs,
        "planners": charts.shares(
            "Who planned", planners if sum(planners["plans"].values()) else {}, ["model", "rules"]
        ),
        "ages": charts.stacked_columns(
            "Open gates by age", {k: {"open": v} for k, v in figures.open_by_age().items()}, ["open"]
        ),
    }


async def _page(
    request: Request,
    visitor: Visitor,
    services: ServicesDep,
    team: str | None,
    days: int,
    error: str | None = None,
) -> Response:
    principal = visitor.principal
    if not principal.approver_teams or (team and team not in principal.approver_teams):
        return render(request, "not_found.html", {"visitor": visitor}, status=404)
    now = utcnow()
    span = learning.Window(now - timedelta(days=days), now)
    figures = await learning.figures(services, principal, team or None, span)
    suggestions = await learning.open_suggestions(services, principal)
    context = {
        "visitor": visitor,
        "figures": figures,
        "charts": chart_set(figures),
        "team": team,
        "teams": principal.approver_teams,
        "days": days,
        "ages": [label for _, label in AGES],
        "suggestions": [s for s in suggestions if not team or s.team == team],
        "admin_of": {t for t, r in principal.roles.items() if r is Role.ADMIN},
        "error": error,
    }
    return render(request, "dashboard.html", context, status=400 if error else 200)


@router.get("/dashboard")
async def dashboard_page(
    request: Request,
    visitor: CurrentVisitor,
    services: ServicesDep,
    team: Annotated[str | None, Query(max_length=100)] = None,
    days: Annotated[int, Query(ge=1, le=366)] = learning.DEFAULT_DAYS,
) -> Response:
    return await _page(request, visitor, services, team, days)


@router.post("/dashboard/suggestions/{suggestion_id}/{verdict}")
async def decide_from_page(
    suggestion_id: str,
    verdict: str,
    request: Request,
    visitor: CurrentVisitor,
    form: CheckedForm,
    services: ServicesDep,
) -> Response:
    if verdict not in ("accept", "dismiss"):
        return render(request, "not_found.html", {"visitor": visitor}, status=404)
    try:
        await learning.decide_suggestion(
            services, visitor.principal, suggestion_id, accept=verdict == "accept"
        )
    except (Refused, LookupError) as refused:
        return await _page(
            request, visitor, services, None, learning.DEFAULT_DAYS, error=str(refused) or "not found"
        )
    return redirect(request, "/dashboard")
