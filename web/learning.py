"""What people learn from decisions, shared by the API and the dashboard page: whose figures
one may see, the figures, and autonomy suggestions."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exosuit.domain.automation import Outlet, OutletKind
from exosuit.domain.autonomy import Role, can_approve
from exosuit.domain.earned_autonomy import Thresholds
from exosuit.domain.refusals import Forbidden, Invalid
from exosuit.storage.dashboard import Dashboard, Figures
from exosuit.storage.db import utcnow
from exosuit.storage.identity import Principal
from exosuit.storage.suggestions import Suggestions
from exosuit.storage.tables import AutonomySuggestion
from exosuit.storage.webhooks import delivery_policies
from web.automation_gateway import AutomationGateway
from web.deps import Services

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


def window(since: datetime | None, until: datetime | None) -> Window:
    """[since, until): the last 30 days unless given; a moment without a zone is UTC."""
    end = _utc(until) if until else utcnow()
    start = _utc(since) if since else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise Invalid("since must be before until")
    return Window(start, end)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def watched_teams(principal: Principal, team: str | None) -> list[str]:
    """The teams whose figures the person sees: those they approve for (or the one asked)."""
    teams = principal.approver_teams
    if team is not None:
        if team not in teams:
            raise Forbidden(f"only approvers and admins of team {team!r} see its figures")
        return [team]
    if not teams:
        raise Forbidden("the figures are for approvers and admins")
    return teams


def admin_teams(principal: Principal, team: str | None) -> list[str]:
    teams = sorted(t for t, role in principal.roles.items() if role is Role.ADMIN)
    if team is not None:
        if team not in teams:
            raise Forbidden(f"only admins of team {team!r} may do this")
        return [team]
    if not teams:
        raise Forbidden("only a team's admins may do this")
    return teams


async def figures(services: Services, principal: Principal, team: str | None, span: Window) -> Figures:
    teams = watched_teams(principal, team)
    return await Dashboard(services.db).figures(teams, span.since, span.until, utcnow())


def suggestions_store(services: Services) -> Suggestions:
    s = services.settings
    limits = Thresholds(s.earned_autonomy_run, s.earned_autonomy_window, s.earned_autonomy_rejects)
    return Suggestions(services.db, limits)


async def open_suggestions(services: Services, principal: Principal) -> list[AutonomySuggestion]:
    """The open suggestions of the person's teams, as stored. The rule runs again for a team
    whose suggestions were last refreshed longer ago than the setting says (at most once per
    that many seconds per team and process); the admins of a team with a new one are notified
    (its notification queue is woken)."""
    teams = principal.approver_teams
    if not teams:
        return []
    store = suggestions_store(services)
    due = _due(services, teams)
    if due:
        await store.refresh(due)
        if store.notified:
            await _wake_notifications(services, store.notified)
    return await store.open(teams)


def _due(services: Services, teams: list[str]) -> list[str]:
    """The teams whose suggestions are due a refresh, marked as refreshed now."""
    now = time.monotonic()
    every = services.settings.earned_autonomy_refresh_seconds
    due = [t for t in teams if t not in services.refreshed or now - services.refreshed[t] >= every]
    for team in due:
        services.refreshed[team] = now
    return due


async def _wake_notifications(services: Services, teams: set[str]) -> None:
    gateway = AutomationGateway(services.gateway.client, services.settings.task_queue)
    policy = delivery_policies(services.settings)[OutletKind.NOTIFY]
    for team in sorted(teams):
        try:
            await gateway.wake(Outlet(OutletKind.NOTIFY, team), policy)
        except Exception:  # queued with the suggestion: the outbox's sweep sends it later
            log.warning("waking the notifications of %s failed; the next sweep will", team, exc_info=True)


async def decide_suggestion(
    services: Services, principal: Principal, suggestion_id: str, accept: bool
) -> AutonomySuggestion:
    store = suggestions_store(services)
    found = await store.suggestion(suggestion_id)
    if found is None or not can_approve(principal.role_in(found.team)):
        raise LookupError(suggestion_id)
    admin_teams(principal, found.team)
    if accept:
        return await store.accept(suggestion_id, principal.email)
    return await store.dismiss(suggestion_id, principal.email)
