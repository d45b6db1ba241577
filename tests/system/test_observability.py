"""Operations: JSON log lines with their request and task, no secret in them, and one trace
from the HTTP request through the workflow into its activities (a real OTLP/HTTP receiver)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from exosuit.cli.temporal_server import connect
from exosuit.cli.worker import build_worker
from exosuit.domain.contracts import workflow_id_for
from exosuit.observability import tracing
from exosuit.observability.logs import LogFormat, configure_logging, request_id
from exosuit.settings import Settings
from exosuit.storage.db import Database
from exosuit.storage.identity import Directory
from tests.support.model_server import ModelServer, ScriptedModel, serve, shutdown
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.system import System
from web.app import create_app
from web.deps import Services

log = logging.getLogger("exosuit.tests")


@contextmanager
def captured_logs(fmt: LogFormat = "json", secrets: list[str] | None = None) -> Iterator[io.StringIO]:
    """configure_logging() as `exosuit` calls it, onto a buffer; the test's logging restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook
    out = io.StringIO()
    configure_logging(fmt, secrets=secrets or [], stream=out)
    try:
        yield out
    finally:
        root.handlers[:], excepthook = saved[0], saved[2]
        root.setLevel(saved[1])
        sys.excepthook = excepthook
        logging.captureWarnings(False)


def json_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_log_lines_are_json_objects_with_their_request_and_task() -> None:
    async def step() -> None:
        activity.logger.info("from Temporal's activity logger")
        log.info("from any logger inside the activity")

    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id_for("t123"))
    with captured_logs() as out:
        log.info("at start")
        token = request_id.set("req-1")
        log.warning("serving %s", "a request")
        request_id.reset(token)
        await env.run(step)
        try:
            raise ValueError("bad input")
        except ValueError:
            log.exception("it failed")
    start, during, from_temporal, from_ours, failed = json_lines(out)
    assert set(start) == {"time", "level", "logger", "message"}
    assert start["level"] == "INFO" and start["logger"] == "exosuit.tests"
    assert datetime.fromisoformat(start["time"]).utcoffset() == UTC.utcoffset(None)
    assert during["message"] == "serving a request" and during["request_id"] == "req-1"
    assert from_temporal["task_id"] == from_ours["task_id"] == "t123"
    assert "request_id" not in from_ours
    assert "ValueError: bad input" in failed["exception"] and "task_id" not in failed


def test_with_tracing_on_log_lines_carry_their_trace() -> None:
    with OtlpReceiver() as receiver, captured_logs() as out:
        assert tracing.start_tracing(receiver.endpoint, "exosuit-test")
        try:
            [interceptor] = tracing.temporal_interceptors()
            with interceptor.tracer.start_as_current_span("work"):  # type: ignore[attr-defined]
                log.info("inside a span")
            log.info("outside")
        finally:
            tracing.stop_tracing()
    inside, outside = json_lines(out)
    [span] = [r.span for r in receiver.spans]
    assert (inside["trace_id"], inside["span_id"]) == (span.trace_id.hex(), span.span_id.hex())
    assert "trace_id" not in outside


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_never_reach_the_log(fmt: LogFormat) -> None:
    root_secret = f"root-{uuid.uuid4().hex}"
    secrets = {
        "api token": "exo_Qw3rTy7uI9oPaSdFgHjKl",
        "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "session": "s3ss10nT0k3nValue",
        "password": "hunter2-correct-horse",
        "webhook": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "database": "pgPassw0rd",
        "root": root_secret,
        "basic": "dXNlcjpwYXNzd29yZA==",
    }
    with captured_logs(fmt, secrets=[root_secret]) as out:
        token, session = secrets["api token"], secrets["session"]
        headers = {"authorization": f"Bearer {token}", "cookie": f"a=b; c={session}"}
        log.info("request headers %s", headers)
        log.info("Authorization: Bearer %s", secrets["jwt"])
        log.info("Authorization: Basic %s", secrets["basic"])
        log.info("Cookie: exosuit_session=%s", secrets["session"])
        log.info("sign-in form password=%s&email=a@example.com", secrets["password"])
        log.info("body %s", json.dumps({"password": secrets["password"], "title": "kept"}))
        log.info("webhook signed with %s", secrets["webhook"])
        log.info("database postgresql+psycopg://exo:%s@db:5432/exosuit", secrets["database"])
        log.info("the key is %s", root_secret)
        try:
            raise RuntimeError(f"sealing failed with {root_secret} for Bearer {secrets['api token']}")
        except RuntimeError:
            log.exception("boom")
    text = out.getvalue()
    leaked = [what for what, secret in secrets.items() if secret in text]
    assert not leaked, text
    assert text.count("[redacted]") >= len(secrets)
    assert "kept" in text and "a@example.com" in text and "db:5432/exosuit" in text  # the rest stays
    if fmt == "json":
        assert all(isinstance(json.loads(line), dict) for line in text.splitlines())


async def test_requests_carry_an_id_and_an_unhandled_error_is_logged_once_with_it(
    temporal_env: WorkflowEnvironment, sqlite_db: Database, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, task_queue=f"tq-{uuid.uuid4().hex}")
    app = create_app(Services.build(settings, sqlite_db, temporal_env.client))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("the handler broke holding Bearer exo_Qw3rTy7uI9oPaSdFgHjKl")

    # As `exosuit web` runs it: uvicorn's own loggers go through ours.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, log_level="info")
    server = uvicorn.Server(config)
    with captured_logs() as out:
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn has no event)
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            given = await http.get("/healthz", headers={"X-Request-ID": "client-id-1"})
            spaced = await http.get("/healthz", headers={"X-Request-ID": "not an id"})
            long = await http.get("/healthz", headers={"X-Request-ID": "x" * 65})
            made = await http.get("/healthz")
            failed = await http.get("/boom")
        server.should_exit = True
        await serving
    assert given.headers["x-request-id"] == "client-id-1"
    for replaced in (spaced, long, made):
        assert len(replaced.headers["x-request-id"]) == 32, replaced.headers  # a fresh uuid4
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    failed_id = failed.headers["x-request-id"]
    lines = json_lines(out)  # every line is one JSON object: uvicorn's too
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert [line.get("request_id") for line in access][:1] == ["client-id-1"]
    assert any(line["request_id"] == failed_id and "500" in line["message"] for line in access)
    errors = [line for line in lines if "exception" in line]
    assert len(errors) == 1, errors  # not again by Starlette or uvicorn
    assert errors[0]["request_id"] == failed_id and errors[0]["message"] == "unhandled error on GET /boom"
    assert "RuntimeError: the handler broke" in errors[0]["exception"]
    assert "exo_Qw3rTy7uI9oPaSdFgHjKl" not in out.getvalue()


def test_without_an_endpoint_no_tracing_code_is_loaded() -> None:
    # FastAPI itself imports OpenTelemetry's API (no-ops without a provider); nothing more is loaded.
    probe = (
        "import sys; import exosuit.cli.serve, exosuit.cli.main; "
        "from exosuit.observability import tracing; "
        "assert not tracing.start_tracing(None, 'x') and tracing.temporal_interceptors() == []; "
        "assert tracing.fastapi_telemetry() == {'tracing': False, 'metrics': False, 'logs': False}; "
        "heavy = ('opentelemetry.sdk', 'opentelemetry.exporter', 'opentelemetry.proto', "
        "'temporalio.contrib.opentelemetry'); "
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout


def ancestors(span: Span, by_id: dict[bytes, Span]) -> list[str]:
    names = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        names.append(span.name)
    return names


async def test_one_trace_runs_from_the_request_through_the_workflow_into_its_activities(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    model = ScriptedModel()
    with OtlpReceiver() as receiver:
        settings = Settings(
            data_dir=tmp_path,
            task_queue=f"tq-{uuid.uuid4().hex}",
            llm_base_url=model_server.register(model),
            llm_api_key="test",
            llm_model="scripted-model",
            otel_exporter_otlp_endpoint=receiver.endpoint,
            otel_service_name="exosuit-test",
        )
        endpoint, service = settings.otel_exporter_otlp_endpoint, settings.otel_service_name
        assert service and tracing.start_tracing(endpoint, service)
        try:
            # As `exosuit dev` wires it: the worker and the web app share connect()'s client.
            address = temporal_env.client.service_client.config.target_host
            client = await connect(settings, address)
            app = create_app(Services.build(settings, sqlite_db, client))
            server, serving, port = await serve(app)
            team = f"team-{uuid.uuid4().hex[:8]}"
            system = System(
                f"http://127.0.0.1:{port}", model, Directory(sqlite_db), sqlite_db, client, team, settings
            )
            await system.directory.ensure_team(team)
            await system.set_team(max_autonomy="autonomous")
            try:
                async with build_worker(client, settings, sqlite_db):
                    user = await system.user("approver")
                    task = await user.submit(team, "autonomous")
                    assert (await user.wait_done(task["id"]))["status"] == "completed"
            finally:
                for http in system.clients:
                    await http.aclose()
                await shutdown(server, serving)
        finally:
            await asyncio.to_thread(tracing.stop_tracing)  # exports what is buffered
    history = await client.get_workflow_handle(workflow_id_for(task["id"])).fetch_history()
    ran = {
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }

    assert receiver.refused == []
    assert {r.service for r in receiver.spans} == {"exosuit-test"}
    spans = [r.span for r in receiver.spans]
    [post] = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER and s.name == "POST /api/v1/tasks"]
    trace = [s for s in spans if s.trace_id == post.trace_id]
    by_id = {s.span_id: s for s in trace}
    names = {s.name for s in trace}
    assert "StartWorkflow:TaskWorkflow" in names
    assert "RunWorkflow:TaskWorkflow" in names
    assert {f"RunActivity:{name}" for name in ran} <= names, (ran, names)
    assert len(ran) >= 2  # the plan and a step at least
    # Each hangs under the HTTP request's span.
    for span in trace:
        if span.name.startswith(("StartWorkflow", "RunWorkflow", "RunActivity")):
            assert "POST /api/v1/tasks" in ancestors(span, by_id), span.name
