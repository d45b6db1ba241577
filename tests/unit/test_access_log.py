"""Access lines are JSON with method, route template, status, duration and request id, at INFO."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from exosuit.observability.logs import configure_logging
from web.access_log import UNMATCHED, AccessLog
from web.metrics import Metrics
from web.request_context import RequestContext


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("json", stream=stream, level="INFO")
    yield stream
    logging.getLogger().removeHandler(handler)


def app_with(metrics: Metrics) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/tasks/{task_id}")
    async def get_task(task_id: str) -> dict[str, str]:
        if task_id == "t_missing":
            raise HTTPException(404)
        return {"id": task_id}

    app.add_middleware(AccessLog, metrics=metrics)
    app.add_middleware(RequestContext)
    return app


def access_lines(log: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "exosuit.access"]


async def test_each_request_logs_one_json_line_with_its_route_template_status_and_duration(
    log: io.StringIO,
) -> None:
    metrics = Metrics(reports=None)  # type: ignore[arg-type]  # no scrape here
    transport = httpx.ASGITransport(app=app_with(metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        ok = await http.get("/api/v1/tasks/t_1", headers={"X-Request-ID": "req-42"})
        await http.get("/api/v1/tasks/t_missing")
        await http.get("/nowhere/at/all")
    first, missing, nowhere = access_lines(log)
    assert ok.status_code == 200
    assert first["level"] == "INFO" and first["method"] == "GET"
    assert first["route"] == "/api/v1/tasks/{task_id}" and first["status"] == 200
    assert first["request_id"] == "req-42"
    assert isinstance(first["duration_seconds"], float) and first["duration_seconds"] >= 0
    assert (missing["route"], missing["status"]) == ("/api/v1/tasks/{task_id}", 404)
    assert (nowhere["route"], nowhere["status"]) == (UNMATCHED, 404)


async def test_the_request_histogram_counts_by_route_template_and_status(log: io.StringIO) -> None:
    metrics = Metrics(reports=None)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app_with(metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        for task in ("t_1", "t_2", "t_missing"):
            await http.get(f"/api/v1/tasks/{task}")
    count = metrics.registry.get_sample_value
    labels = {"method": "GET", "route": "/api/v1/tasks/{task_id}"}
    assert count("exosuit_http_request_duration_seconds_count", labels | {"status": "200"}) == 2
    assert count("exosuit_http_request_duration_seconds_count", labels | {"status": "404"}) == 1
