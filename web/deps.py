"""Dependencies shared by the routes: the services and the calling principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, TypeVar

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
    refreshed: dict[str, float] = field(default_factory=dict)  # team → when its suggestions were refreshed

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


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def bearer_principal(request: Request, services: Services) -> Principal | None:
    """Whoever the request's bearer token belongs to, if it carries a live one."""
    token = bearer_token(request)
    return await services.directory.principal_for_token(token) if token else None


class Caller:
    """A request's bearer token and, once confirmed, its principal (one per request).

    A token this process has seen is confirmed by the user's auth version: read beside the
    task where the route reads one anyway (`authenticated_read`), on its own otherwise."""

    def __init__(self, directory: Directory, token: str | None) -> None:
        self._directory, self._token = directory, token
        self._seen = directory.seen(token) if token else None
        self._principal: Principal | None = None
        self._known = False

    @property
    def unconfirmed(self) -> int | None:
        """The user id of a cached principal still to confirm (a read can carry its version)."""
        return None if self._known or self._seen is None else self._seen.principal.user_id

    async def confirm(self, version: int | None) -> None:
        """Take the cached principal if the user's auth version, as just read, is its own."""
        seen, self._seen = self._seen, None
        if seen is not None and not self._known and await self._directory.confirm(seen, version):
            self._principal, self._known = seen.principal, True

    async def principal(self) -> Principal | None:
        if not self._known:
            token = self._token
            self._principal = await self._directory.principal_for_token(token) if token else None
            self._known = True
        return self._principal


async def caller(request: Request, services: ServicesDep) -> Caller:
    return Caller(services.directory, bearer_token(request))


CallerDep = Annotated[Caller, Depends(caller)]

# Declares the scheme in /openapi.json; the token itself is read by `caller`.
bearer_scheme = HTTPBearer(
    scheme_name="bearerAuth", description="an API token (`exosuit token create EMAIL`)", auto_error=False
)


async def current_principal(
    caller: CallerDep, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    """The caller of an API request, from its bearer token."""
    principal = await caller.principal()
    if principal is None:
        raise Problem(401, "Unauthorized", "a valid bearer token is required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
Seen = TypeVar("Seen")


async def authenticated_read(
    caller: Caller,
    read_seen_by: Callable[[int], Awaitable[tuple[Seen | None, int | None]]],
    read: Callable[[], Awaitable[Seen | None]],
) -> tuple[Principal, Seen | None]:
    """The caller (401 if none) and what a route reads first: with a cached principal, in one
    query that also reads the user's auth version to confirm it (`read_seen_by(user_id)`)."""
    user_id = caller.unconfirmed
    if user_id is None:
        principal, found = await caller.principal(), None
    else:
        found, version = await read_seen_by(user_id)
        await caller.confirm(version)  # not confirmed: the token is read again (what was read stands)
        principal = await caller.principal()
    if principal is None:
        raise Problem(401, "Unauthorized", "a valid bearer token is required")
    return principal, found if user_id is not None else await read()


async def task_visible_to(services: Services, principal: Principal, task_id: str) -> TaskView | None:
    """The task if one of the person's teams owns it; absent and not visible look the same."""
    view = await services.tasks.task(task_id)
    return view if view is not None and view.task.team in principal.roles else None


async def visible_task(
    task_id: str,
    caller: CallerDep,
    services: ServicesDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> TaskView:
    """The task if the caller's teams can see it; a 404 otherwise, absent or not."""
    principal, view = await authenticated_read(
        caller,
        lambda user_id: services.tasks.task_seen_by(task_id, user_id),
        lambda: services.tasks.task(task_id),
    )
    if view is None or view.task.team not in principal.roles:
        raise Problem(404, "Not Found", f"no task {task_id}")
    return view


VisibleTask = Annotated[TaskView, Depends(visible_task)]
