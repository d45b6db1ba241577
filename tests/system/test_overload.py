"""Overload and dependencies in trouble answer 429 or 503 problem+json with Retry-After,
quickly, never a 500: on real SQLite locks, a real exhausted pool, a real PostgreSQL that is
not there, and a real server whose admission bound is full (a real Temporal killed:
tests/system/test_dependencies_down.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from exosuit.domain.autonomy import Role
from exosuit.domain.refusals import Finished, Throttled
from exosuit.settings import Settings
from exosuit.storage.db import Database, migrate
from exosuit.storage.identity import Directory
from tests.support.model_server import ModelServer, ScriptedModel, serve, shutdown
from tests.support.system import System, running_system, until
from web.app import create_app
from web.deps import Services
from web.errors import Unavailable
from web.gateway import answers_from_temporal


@asynccontextmanager
async def web_only(
    db: Database, temporal: Client, tmp_path: Path, *, with_user: bool = True
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The web app alone on a real port over `db`: a client carrying an approver's token
    (a made-up one without `with_user`), and the approver's team."""
    settings = Settings(data_dir=tmp_path, task_queue=f"tq-{uuid.uuid4().hex}")
    team, token = f"team-{uuid.uuid4().hex[:8]}", "exo_made-up"
    if with_user:
        directory = Directory(db)
        await directory.ensure_team(team)
        email = f"approver-{uuid.uuid4().hex[:8]}@example.com"
        await directory.add_user(email, teams=[team], role=Role.APPROVER)
        token = await directory.create_token(email, name="tests")
    server, task, port = await serve(create_app(Services.build(settings, db, temporal)))
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as http:
            yield http, team
    finally:
        await shutdown(server, task)


def fresh_sqlite(tmp_path: Path, **engine: Any) -> Database:
    url = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
    migrate(url)
    return Database.from_url(url, **engine)


async def holds(system: System, pool: str) -> bool:
    return await system.in_flight(pool) == 1


def assert_retry_later(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.json()["status"] == status
    assert answer.headers["x-request-id"]


async def test_a_write_while_another_process_holds_sqlites_write_lock_is_a_503(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    db = fresh_sqlite(tmp_path, busy_timeout=0.3)
    try:
        async with web_only(db, temporal_env.client, tmp_path) as (http, team):
            path = db.engine.url.database
            assert path
            locker = sqlite3.connect(path, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")  # as another process writing for a long time
            try:
                body = {"title": "t", "instructions": "i", "team": team, "autonomy": "manual"}
                # Answered while the lock is still held: the write gave up by its busy timeout.
                answer = await http.post("/api/v1/tasks", json=body)
                assert_retry_later(answer, 503)
                assert answer.json()["detail"] == "the database is unavailable; try again shortly"
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            assert (await http.get("/api/v1/tasks")).status_code == 200
    finally:
        await db.dispose()


async def test_a_request_that_finds_every_pooled_connection_busy_is_a_503(
    database: Database, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    url = database.engine.url.render_as_string(hide_password=False)
    db = Database.from_url(url, pool_size=1, max_overflow=0, pool_timeout=0.3)
    try:
        async with web_only(db, temporal_env.client, tmp_path) as (http, _):
            async with db.engine.connect():  # the pool's one connection, held
                answer = await http.get("/api/v1/tasks")  # while the connection is still held
                assert_retry_later(answer, 503)
            assert (await http.get("/api/v1/tasks")).status_code == 200
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_a_postgres_that_refuses_connections_is_a_503(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    db = Database.from_url("postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2")
    try:
        async with web_only(db, temporal_env.client, tmp_path, with_user=False) as (http, _):
            answer = await http.get("/api/v1/tasks")
            assert_retry_later(answer, 503)
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"
    finally:
        await db.dispose()


async def _trickle(seconds: float) -> AsyncIterator[bytes]:
    """A request body sent slowly, as a client on a poor link sends it."""
    for _ in range(int(seconds / 0.1)):
        yield b" "
        await asyncio.sleep(0.1)
    yield b"{}"


async def test_past_the_admission_bound_the_next_request_is_a_quick_429(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    tmp_path: Path,
) -> None:
    """A bound of one request at a time (and one wait): a slow upload holds it, the next API
    call is refused at once; probes, metrics and long-polls are counted apart."""
    async with running_system(
        temporal_env.client,
        model_server,
        sqlite_db,
        ScriptedModel(),
        tmp_path,
        max_concurrent_requests=1,
        max_waiting_requests=1,
    ) as system:
        api = await system.user("approver")
        task = await api.wait_gate((await api.submit(system.team, "manual"))["id"], "plan")
        slow = asyncio.create_task(api.http.post("/api/v1/tasks", content=_trickle(2.0)))
        await until(lambda: holds(system, "work"), "the slow upload to hold the one place")
        shed = await api.http.get("/api/v1/tasks")
        assert_retry_later(shed, 429)
        assert shed.json()["type"] == "/problems/overloaded"
        assert not slow.done()  # refused at once, while the place was still held
        async with httpx.AsyncClient(base_url=system.base_url) as anonymous:
            assert (await anonymous.get("/healthz")).status_code == 200
            assert (await anonymous.get("/readyz")).status_code == 200
            waiting = asyncio.create_task(
                api.http.get(f"/api/v1/tasks/{task['id']}/wait?for=finished&timeout=2")
            )
            await until(lambda: holds(system, "waiting"), "the long-poll to hold the one wait")
            assert_retry_later(await api.http.get(f"/api/v1/tasks/{task['id']}/wait?timeout=1"), 429)
            metrics = (await anonymous.get("/metrics")).text
            assert 'exosuit_requests_shed_total{pool="work"} 1.0' in metrics
            assert 'exosuit_requests_shed_total{pool="waiting"} 1.0' in metrics
            assert 'exosuit_requests_in_flight{pool="work"} 1.0' in metrics
            assert (await slow).status_code == 422  # served in full: its body was not JSON
            assert (await api.http.get("/api/v1/tasks")).status_code == 200  # the place is free again
            timed_out = await waiting
            assert timed_out.status_code == 200 and timed_out.headers["Exosuit-Wait"] == "timeout"


async def test_a_decision_retried_after_its_answer_was_lost_is_told_it_stands(ui_system: System) -> None:
    """The same person's same decision again (no Idempotency-Key): still 409, as the contract
    has it, but saying that their first decision landed and stands."""
    submitter = await ui_system.user("member")
    approver, colleague = await ui_system.user("approver"), await ui_system.user("approver")
    task = await approver.wait_gate((await submitter.submit(ui_system.team, "supervised"))["id"], "plan")
    await approver.approve(task)
    again = await approver.decide(task, "approve")
    assert (again.status_code, again.json()["type"]) == (409, "/problems/gate-not-open")
    stands = again.json()["your_decision"]
    assert stands["action"] == "approve" and stands["seq"] > 0
    assert "that decision stands" in again.json()["detail"]
    other_action = (await approver.decide(task, "reject", reason="no")).json()
    other_person = (await colleague.decide(task, "approve")).json()
    assert "your_decision" not in other_action and "your_decision" not in other_person


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (RPCStatusCode.RESOURCE_EXHAUSTED, Throttled),
        (RPCStatusCode.UNAVAILABLE, Unavailable),
        (RPCStatusCode.DEADLINE_EXCEEDED, Unavailable),
        (RPCStatusCode.CANCELLED, Unavailable),
        (RPCStatusCode.ABORTED, Unavailable),
        (RPCStatusCode.NOT_FOUND, Finished),
        (RPCStatusCode.INVALID_ARGUMENT, RPCError),  # a bug of ours: a 500, logged
    ],
)
def test_temporal_rpc_errors_map_to_what_a_client_should_do(status: RPCStatusCode, answer: type) -> None:
    with pytest.raises(answer), answers_from_temporal():
        raise RPCError("from the server", status, b"")
