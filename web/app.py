"""The FastAPI application: the JSON API under /api/v1, health checks."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from exosuit.observability.tracing import fastapi_telemetry
from web import codec
from web.api import approvals, tasks
from web.deps import Services, ServicesDep
from web.errors import BodySizeLimit, install_problem_handlers, problem_response
from web.pages import auth, queue
from web.pages import tasks as task_pages
from web.pages.common import install_page_handlers
from web.request_context import RequestContext
from web.security import SecurityHeaders

STATIC = Path(__file__).resolve().parent / "static"

health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health.get("/readyz", response_model=None)
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
    app = FastAPI(title="Exosuit", version="0.1.0", telemetry=fastapi_telemetry())  # spans if tracing
    app.state.services = services
    install_problem_handlers(app)
    install_page_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext)  # the last added runs first: every response and log line has an id
    api = APIRouter(prefix="/api/v1")
    api.include_router(tasks.router)
    api.include_router(approvals.router)
    app.include_router(api)
    app.include_router(health)
    app.include_router(codec.router)
    app.include_router(auth.router)
    app.include_router(task_pages.router)
    app.include_router(queue.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
