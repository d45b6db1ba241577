"""Honest answers: decisions that can be retried safely, and 503s (fast) when a dependency is down."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from exosuit.storage.answers import ORPHANED_AFTER, DecisionAnswers
from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import DecisionAnswer, Task
from tests.support.model_server import ModelServer
from tests.support.system import System, kill_temporal, system_on_its_own_temporal
from web.gateway import RPC_TIMEOUT


async def test_a_decision_with_an_idempotency_key_gets_its_first_answer_again(system: System) -> None:
    submitter, approver = await system.user("member"), await system.user("approver")
    task = await approver.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    url = f"/api/v1/tasks/{task['id']}/decisions"
    body = {"gate_id": task["open_gate"]["id"], "action": "approve"}
    first = await approver.http.post(url, json=body, headers={"Idempotency-Key": "approve-plan"})
    assert first.status_code == 200, first.text
    again = await approver.http.post(url, json=body, headers={"Idempotency-Key": "approve-plan"})
    assert (again.status_code, again.json()) == (200, first.json())  # the gate has closed meanwhile
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await approver.http.post(url, json=body | {"action": "reject", "reason": "x"},
                                     headers={"Idempotency-Key": "approve-plan"})  # fmt: skip
    assert other.status_code == 422
    refused = await submitter.http.post(url, json=body, headers={"Idempotency-Key": "mine"})
    replayed = await submitter.http.post(url, json=body, headers={"Idempotency-Key": "mine"})
    assert refused.status_code == replayed.status_code == 409  # the gate has closed: the refusal is kept
    assert replayed.json() == refused.json() and replayed.headers["Idempotent-Replayed"] == "true"
    audit = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    assert sum(e["action"] == "gate.decided" for e in audit) == 1


async def test_a_key_whose_first_request_died_unanswered_is_taken_over_by_a_retry(
    sqlite_db: Database,
) -> None:
    """A first request that neither kept its answer nor let go of its key (its process died, or
    the database, write-locked past its busy timeout, refused both) made every retry with the
    key a 503, for good. Once it is older than any request lasts, a retry takes the key over."""
    answers, key = DecisionAnswers(sqlite_db), uuid.uuid4().hex
    assert await answers.claim("a@example.com", "t_died", key, "print") is None
    async with sqlite_db.session() as session:
        older = utcnow() - ORPHANED_AFTER - timedelta(seconds=1)
        await session.exec(
            update(DecisionAnswer).where(col(DecisionAnswer.key) == key).values(created_at=older)
        )  # type: ignore[call-overload]
        await session.commit()
    assert await answers.claim("a@example.com", "t_died", key, "print") is None  # taken over
    await answers.keep("a@example.com", "t_died", key, 200, {"id": "t_died"})
    again = await answers.claim("a@example.com", "t_died", key, "print")
    assert again is not None and (again.status, again.body) == (200, {"id": "t_died"})


async def test_a_gate_the_workflow_has_yet_to_replay_is_a_503_not_a_409(system: System) -> None:
    """The read model shows a gate open that the workflow does not have open yet: its opening
    was recorded, then the worker (or Temporal) stopped before Temporal had the workflow task,
    and a new worker has yet to replay it. A decision on it is "try again" (503), never "the
    gate is gone" (409), which would leave a client waiting for a next gate that never comes."""
    approver = await system.user("approver")
    task = await approver.wait_gate((await approver.submit(system.team, "supervised"))["id"], "plan")
    ahead = "g_recorded_not_replayed"
    async with system.db.session() as session:
        await session.exec(update(Task).where(Task.id == task["id"]).values(gate_id=ahead))  # type: ignore[call-overload,arg-type]
        await session.commit()
    url = f"/api/v1/tasks/{task['id']}/decisions"
    answer = await approver.http.post(url, json={"gate_id": ahead, "action": "approve"},
                                      headers={"Idempotency-Key": "ahead"})  # fmt: skip
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["Retry-After"]) >= 1
    other = await approver.http.post(url, json={"gate_id": "g_never_opened", "action": "approve"})
    assert other.status_code == 409, other.text  # a gate the read model does not show either
    audit = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    assert not any(e["action"] == "gate.decided" for e in audit)


# The gateway's RPC timeout, with room for a busy machine: the point is that no call hangs.
BOUND = RPC_TIMEOUT.total_seconds() + 8


# About 45 s alone (each call toward the killed server waits out the gateway's 10 s RPC
# timeout); twice that beside another pytest process on two busy cores.
@pytest.mark.timeout(240)
async def test_temporal_down_is_a_fast_503_and_reads_still_work(
    model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    """Each call that needs Temporal, alone and then in a burst, is a 503 with Retry-After
    (never a 500), every wait toward Temporal bounded; reads keep working."""
    async with system_on_its_own_temporal(model_server, sqlite_db, tmp_path) as (system, server):
        approver = await system.user("approver")
        task = await approver.wait_gate((await approver.submit(system.team, "supervised"))["id"], "plan")
        await kill_temporal(server)
        base = f"/api/v1/tasks/{task['id']}"
        decision = {"gate_id": task["open_gate"]["id"], "action": "approve"}
        body = {"title": "x", "instructions": "y", "team": system.team, "autonomy": "manual"}
        for method, path, payload in [
            ("POST", f"{base}/decisions", decision),
            ("PUT", f"{base}/autonomy", {"autonomy": "manual"}),
            ("POST", f"{base}/cancel", None),
            ("POST", "/api/v1/tasks", body),
        ]:
            started = time.perf_counter()
            answer = await approver.http.request(method, path, json=payload)
            took = time.perf_counter() - started
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert int(answer.headers["Retry-After"]) > 0
            assert took < BOUND, (path, took)
        calls = [approver.http.post(f"{base}/decisions", json=decision) for _ in range(8)]
        calls += [approver.http.post("/api/v1/tasks", json=body) for _ in range(4)]
        calls += [approver.http.put(f"{base}/autonomy", json={"autonomy": "manual"}) for _ in range(4)]
        started = time.perf_counter()
        answers = await asyncio.gather(*calls)
        took = time.perf_counter() - started
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert int(answer.headers["Retry-After"]) >= 1
            assert answer.json()["status"] == 503
            assert answer.headers["x-request-id"]
        assert took < BOUND, took  # every wait toward Temporal is bounded
        ready = await approver.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["temporal"] != "ok"
        assert (await approver.http.get(base)).status_code == 200  # the read model still answers
        assert (await approver.http.get(f"{base}/wait?for=gate&timeout=0.2")).status_code == 200


async def test_readyz_says_503_while_sqlite_is_write_locked(ui_system: System) -> None:
    path = ui_system.db.engine.url.database
    assert path
    async with httpx.AsyncClient(base_url=ui_system.base_url) as anonymous:
        assert (await anonymous.get("/readyz")).status_code == 200
        locker = sqlite3.connect(path, timeout=5, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            started = time.perf_counter()
            ready = await asyncio.wait_for(anonymous.get("/readyz"), 10)
            assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok", ready.text
            assert time.perf_counter() - started < 3
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert (await anonymous.get("/readyz")).status_code == 200
