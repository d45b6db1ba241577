"""Dependencies shared by the routes: the services and the calling principal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from exosuit.domain.audit import anchor_key
from exosuit.settings import Settings
from exosuit.storage.answers import DecisionAnswers
from exosuit.storage.audit_log import AuditLog
from exosuit.storage.claims import GateClaims
from exosuit.storage.db import Database
from exosuit.storage.decision_links import DecisionLinks
from exosuit.storage.identity import Directory, Principal
from exosuit.storage.leases import ReporterLease
from exosuit.storage.reports import Reports
from exosuit.storage.tasks import Tasks, TaskView
from web.errors import Problem
from web.gateway import TaskGateway, TemporalClient
from web.limits import Limits
from web.metrics import Metrics
from web.task_watch import TaskWatch


@dataclass
class Services:
    settings: Settings
    db: Database
    tasks: Tasks
    audit: AuditLog
    directory: Directory
    gateway: TaskGateway
    limits: Limits
    answers: DecisionAnswers
    metrics: Metrics
    watch: TaskWatch
    claims: GateClaims
    links: DecisionLinks

    @classmethod
    def build(cls, settings: Settings, db: Database, temporal: TemporalClient) -> Services:
        tasks = Tasks(db)
        return cls(
            settings=settings,
            db=db,
            tasks=tasks,
            audit=AuditLog(db, anchor_key(settings.resolved_secret_key)),
            directory=Directory(db),
            gateway=TaskGateway(temporal, settings.task_queue),
            limits=Limits(settings),
            answers=DecisionAnswers(db),
            metrics=Metrics(Reports(db), ReporterLease(db)),
            watch=TaskWatch(tasks, settings.watch_interval_seconds),
            claims=GateClaims(
                db, anchor_key(settings.resolved_secret_key), timedelta(minutes=settings.claim_lease_minutes)
            ),
            links=DecisionLinks(db),
        )


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def bearer_principal(request: Request, services: Services) -> Principal | None:
    """Whoever the request's bearer token belongs to, if it carries a live one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await services.directory.principal_for_token(token.strip())


# Declares the scheme in /openapi.json; the token itself is read by bearer_principal.
bearer_scheme = HTTPBearer(
    scheme_name="bearerAuth", description="an API token (`exosuit token create EMAIL`)", auto_error=False
)


async def current_principal(
    request: Request,
    services: ServicesDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller of an API request, from its bearer token."""
    principal = await bearer_principal(request, services)
    if principal is None:
        raise Problem(401, "Unauthorized", "a valid bearer token is required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def task_visible_to(services: Services, principal: Principal, task_id: str) -> TaskView | None:
    """The task if one of the person's teams owns it; absent and not visible look the same."""
    view = await services.tasks.task(task_id)
    return view if view is not None and view.task.team in principal.roles else None


async def visible_task(task_id: str, principal: CurrentPrincipal, services: ServicesDep) -> TaskView:
    """The task if the caller's teams can see it; a 404 otherwise, absent or not."""
    view = await task_visible_to(services, principal, task_id)
    if view is None:
        raise Problem(404, "Not Found", f"no task {task_id}")
    return view


VisibleTask = Annotated[TaskView, Depends(visible_task)]
