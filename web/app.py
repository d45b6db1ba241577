"""The FastAPI application: the JSON API under /api/v1, health checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

from exosuit.observability.tracing import fastapi_telemetry
from web import codec, docs
from web.api import approvals, claims, tasks, waiting, webhooks
from web.api import templates as task_templates
from web.api.openapi import install_openapi, operation_id, problems
from web.deps import Services, ServicesDep
from web.errors import BodySizeLimit, install_problem_handlers, overloaded, problem_response
from web.limits import Admission, Pool
from web.mcp_server import McpEndpoint
from web.pages import auth, decision_links, queue
from web.pages import claims as claim_pages
from web.pages import tasks as task_pages
from web.pages import teams as team_pages
from web.pages.common import install_page_handlers
from web.request_context import RequestContext
from web.security import SecurityHeaders

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


@health.get("/metrics", include_in_schema=False)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus text format: open gates, tasks, model usage, decisions, gate waits."""
    body, media_type = await services.metrics.scrape()
    return Response(body, media_type=media_type)


def create_app(services: Services) -> FastAPI:
    """The app over services its entry point built (`exosuit web`, `exosuit dev`, the tests)."""
    settings = services.settings
    mcp = McpEndpoint(services)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with mcp.running():
            yield

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
    app.add_middleware(Admission, bounds=bounds, metrics=services.metrics, refuse=overloaded)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext)  # the last added runs first: every response and log line has an id
    api = APIRouter(prefix="/api/v1")
    api.include_router(tasks.router)
    api.include_router(approvals.router)
    api.include_router(claims.router)
    api.include_router(waiting.router)
    api.include_router(webhooks.router)
    api.include_router(task_templates.templates)
    api.include_router(task_templates.schedules)
    app.include_router(api)
    app.include_router(health)
    app.include_router(codec.router)
    app.include_router(docs.router)
    app.router.routes.append(Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]))
    app.include_router(auth.router, include_in_schema=False)  # pages: not part of the API
    app.include_router(task_pages.router, include_in_schema=False)
    app.include_router(queue.router, include_in_schema=False)
    app.include_router(claim_pages.router, include_in_schema=False)
    app.include_router(decision_links.router, include_in_schema=False)
    app.include_router(team_pages.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
