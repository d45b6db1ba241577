"""The FastAPI application: the JSON API under /api/v1, health checks."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from exosuit.observability.tracing import fastapi_telemetry
from web import codec, docs
from web.access_log import AccessLog
from web.api import approvals, claims, learning, tasks, waiting, webhooks
from web.api import templates as task_templates
from web.api.openapi import install_openapi, operation_id, problems
from web.deps import Services, ServicesDep, bearer_principal, bearer_token
from web.errors import BodySizeLimit, install_problem_handlers, overloaded, problem_response
from web.limits import Admission, Pool
from web.mcp_on_demand import McpOnDemand
from web.pages import auth, dashboard, decision_links, oidc, queue
from web.pages import claims as claim_pages
from web.pages import tasks as task_pages
from web.pages import teams as team_pages
from web.pages.common import install_page_handlers
from web.request_context import RequestContext
from web.security import SecurityHeaders, session_cookie

STATIC = Path(__file__).resolve().parent / "static"

health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health.get("/readyz", response_model=None, responses=problems(503))
async def readyz(services: ServicesDep) -> dict[str, str] | JSONResponse:
    """The database and Temporal are reachable."""
    checks: dict[str, str] = {}
    for name, ping in (("database", services.db.ping), ("temporal", services.gateway.ping)):
        try:
            await ping()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = type(exc).__name__
    if all(v == "ok" for v in checks.values()):
        return {"status": "ready", **checks}
    headers = {"Retry-After": "5"}
    return problem_response(503, "Service Unavailable", "a dependency is unreachable", headers, checks=checks)


def _may_scrape(request: Request, token: str | None) -> bool:
    """With EXOSUIT_METRICS_TOKEN, only its bearer; without, only this machine (the metrics
    name every team): the client as the trusted proxies report it, not as a header claims."""
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


@health.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text format: open gates, tasks, model usage, decisions, gate waits."""
    if not _may_scrape(request, services.settings.metrics_token):
        detail = "send Authorization: Bearer EXOSUIT_METRICS_TOKEN (or scrape from this machine)"
        return problem_response(401, "Unauthorized", detail, {"WWW-Authenticate": 'Bearer realm="metrics"'})
    body, media_type = await services.metrics.scrape()
    return Response(body, media_type=media_type)


async def person_of(services: Services, scope: Scope) -> str | None:
    """Whom a waiting request is from (bearer token or session), for the per-person bound."""
    request = Request(scope)
    token = bearer_token(request)
    seen = services.directory.seen(token) if token else None
    if seen is not None:  # unconfirmed, but only counted: the route refuses a revoked token
        return seen.principal.email
    principal = await bearer_principal(request, services)
    if principal is None and (cookie := session_cookie(request)):
        found = await services.directory.session_for(cookie)
        principal = found[0] if found else None
    return principal.email if principal else None


def create_app(services: Services) -> FastAPI:
    """The app over services its entry point built (`exosuit web`, `exosuit dev`, the tests)."""
    settings = services.settings
    mcp = McpOnDemand(services)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with mcp.running():
            yield
        await services.metrics.close()

    app = FastAPI(
        title="Exosuit",
        version="0.1.0",
        description="Human-in-the-loop jobs. Bearer tokens: `exosuit token create EMAIL`. See /llms.txt.",
        telemetry=fastapi_telemetry(),  # spans if tracing
        docs_url=None,  # /docs is ours (web/docs.py): Swagger UI from /static, no CDN
        redoc_url=None,
        generate_unique_id_function=operation_id,  # a route's function name: create_task...
        lifespan=lifespan,
    )
    install_openapi(app)
    app.state.services = services
    install_problem_handlers(app)
    install_page_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    bounds = {Pool.WORK: settings.max_concurrent_requests, Pool.WAITING: settings.max_waiting_requests}
    # Outside the body limit: a shed request's body is never read.
    app.add_middleware(
        Admission,
        bounds=bounds,
        metrics=services.metrics,
        refuse=overloaded,
        per_person=settings.max_waiting_requests_per_person,
        identify=partial(person_of, services),
    )
    app.add_middleware(SecurityHeaders, form_targets=oidc.form_targets(settings))
    app.add_middleware(AccessLog, metrics=services.metrics)  # inside RequestContext: has its id
    # The last added runs first: every response and log line has an id.
    app.add_middleware(RequestContext, stopping=lambda: services.watch.closed)
    if settings.trusted_proxy_list:  # outermost: limits, logs and links see the client it reports
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    app.include_router(_api())
    app.include_router(health)
    app.include_router(codec.router)
    app.include_router(docs.router)
    app.router.routes.append(Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]))
    for pages in PAGES:  # not part of the API
        app.include_router(pages, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _api() -> APIRouter:
    """The JSON API under /api/v1."""
    api = APIRouter(prefix="/api/v1")
    api.include_router(tasks.router)
    api.include_router(approvals.router)
    api.include_router(claims.router)
    api.include_router(waiting.router)
    api.include_router(webhooks.router)
    api.include_router(task_templates.templates)
    api.include_router(task_templates.schedules)
    api.include_router(learning.router)
    return api


# The pages (not part of the API), in the order their routes are matched.
PAGES = (
    auth.router,
    oidc.router,
    task_pages.router,
    queue.router,
    claim_pages.router,
    decision_links.router,
    team_pages.router,
    dashboard.router,
)
