"""The fault suite: outages and crashes with tasks in flight, on real processes and servers.

Each case prints what the issue asks for per fault: tasks in flight, completed, failed,
duplicated, and the recovery time (fault cleared to every task moving again).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from exosuit.cli.temporal_server import temporal_cli
from exosuit.storage.db import Database, migrate
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import Api, System, running_system

FLIGHT = 4


async def _submit(api: Api, system: System, count: int) -> list[str]:
    return [(await api.submit(system.team, "delegated"))["id"] for _ in range(count)]


async def _audit(api: Api, task_id: str) -> list[dict[str, Any]]:
    answer = await api.http.get(f"/api/v1/tasks/{task_id}/audit")
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def _report(api: Api, ids: list[str], fault: str) -> dict[str, int]:
    """Wait for every task to end; count outcomes and work done twice; print the figures."""
    ended = [await api.wait_done(task_id, within=120) for task_id in ids]
    statuses = Counter(t["status"] for t in ended)
    duplicated = 0
    for task in ended:
        audit = await _audit(api, task["id"])
        finished = Counter(e["data"].get("step_id") for e in audit if e["action"] == "step.finished")
        duplicated += sum(n - 1 for n in finished.values())
        assert len(finished) == len(task["steps"]), task["id"]
        assert [e["seq"] for e in audit] == list(range(1, len(audit) + 1))
        verify = (await api.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
        assert verify["ok"], verify
    print(
        f"\n{fault}: in flight {len(ids)}, completed {statuses['completed']}, "
        f"failed {statuses['failed']}, duplicated {duplicated}"
    )
    return {"completed": statuses["completed"], "duplicated": duplicated}


async def test_a_model_outage_is_waited_out_and_the_task_says_what_it_waits_for(ui_system: System) -> None:
    """500s for several retries (the backoff doubles from 1 s): every task completes, each
    call that was answered is metered once, and the task says what it waits for meanwhile."""
    system = ui_system
    api = await system.user("approver")
    outage = 5.0
    system.model.down_until = time.monotonic() + outage
    ids = await _submit(api, system, FLIGHT)
    waiting = await api.wait(ids[0], lambda t: t["waiting_reason"] is not None, within=15)
    assert waiting["waiting_reason"].startswith("a model provider (no provider answered")
    assert waiting["waiting_since"] is not None
    first_moves = [await api.wait(i, lambda t: t["status"] != "planning", within=60) for i in ids]
    recovered = time.monotonic() - system.model.down_until
    result = await _report(api, ids, f"model 500s for {outage:.0f} s")
    print(f"  every task moving again {recovered:.1f} s after the outage ended")
    assert result == {"completed": FLIGHT, "duplicated": 0}
    assert all(t["waiting_reason"] is None for t in first_moves)
    tasks = [await api.task(i) for i in ids]
    prompt_tokens_per_call = system.model.usage[0]
    metered = sum(t["usage"]["prompt_tokens"] for t in tasks) // prompt_tokens_per_call
    assert metered == system.model.answered  # every answered call, once


BUSY_TIMEOUT = 0.5  # seconds a write waits for SQLite's lock before it gives up (10 s by default)


async def test_sqlite_write_locked_past_many_busy_timeouts_is_waited_out(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, tmp_path: Path
) -> None:
    """Another process holds SQLite's write lock for ten times the busy timeout with tasks in
    flight: writes give up and are retried, and every task completes after, with no event
    written twice. (A configured short busy timeout stands in for a lock held for minutes.)"""
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    migrate(url)
    db = Database.from_url(url, busy_timeout=BUSY_TIMEOUT)
    model = ScriptedModel()
    model.chunk_delay = 0.05  # steps stream for a while
    try:
        async with running_system(
            temporal_env.client, model_server, db, model, tmp_path, database_busy_timeout_seconds=BUSY_TIMEOUT
        ) as system:
            api = await system.user("approver")
            ids = await _submit(api, system, FLIGHT)
            await asyncio.gather(*(api.wait(i, lambda t: t["status"] == "running") for i in ids))
            # Another connection, as another process would hold it; it waits its turn off the loop.
            locker = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=60, isolation_level=None,
                                     check_same_thread=False)  # fmt: skip
            await asyncio.to_thread(locker.execute, "BEGIN EXCLUSIVE")
            try:
                await asyncio.sleep(10 * BUSY_TIMEOUT)  # the fault's length, not a wait for a result
                stuck = [await api.task(i) for i in ids]  # reads go on while writes wait (WAL)
                assert all(t["status"] == "running" for t in stuck)
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            cleared = time.monotonic()
            await asyncio.gather(*(api.wait_done(i, within=120) for i in ids))
            took = time.monotonic() - cleared
            result = await _report(api, ids, f"SQLite write-locked for {10 * BUSY_TIMEOUT:.0f} s")
            print(f"  every task ended {took:.1f} s after the lock was released")
            assert result == {"completed": FLIGHT, "duplicated": 0}
    finally:
        await db.dispose()


async def test_a_failed_task_is_resumed_by_an_approver_from_its_failed_step(ui_system: System) -> None:
    system = ui_system
    submitter, approver = await system.user("member"), await system.user("approver")
    task = await approver.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    system.model.failures.append(400)  # the provider refuses the first step's request
    task = await approver.wait_gate((await approver.approve(task))["id"], "step")
    task = await approver.wait_done((await approver.approve(task))["id"])
    assert task["status"] == "failed" and "HTTP 400" in task["error"]
    assert [s["status"] for s in task["steps"]] == ["failed", "pending"]
    resume = f"/api/v1/tasks/{task['id']}/resume"
    assert (await submitter.http.post(resume)).status_code == 403  # a member may not
    answer = await approver.http.post(resume)
    assert answer.status_code == 202, answer.text
    task = await approver.wait(task["id"], lambda t: t["status"] != "failed", "the resumed run")
    task = await approver.wait_gate(task["id"], "step")  # the failed step's gate, again
    assert task["error"] is None and task["open_gate"]["step_id"] == task["steps"][0]["id"]
    again = await approver.http.post(resume)
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    task = await approver.wait_gate((await approver.approve(task))["id"], "step")
    task = await approver.wait_done((await approver.approve(task))["id"])
    assert task["status"] == "completed"
    audit = await _audit(approver, task["id"])
    actions = [e["action"] for e in audit]
    assert actions.index("task.failed") < actions.index("task.resumed") < actions.index("task.completed")
    resumed = audit[actions.index("task.resumed")]
    assert resumed["actor"] == f"user:{approver.email}" and resumed["data"]["from_step"] == 1
    verify = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
    assert verify["ok"] and verify["anchored"], verify


async def test_a_long_history_continues_as_new_with_one_continuous_audit_chain(
    model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    """On a server of this test's own that suggests continue-as-new after 20 history events,
    a six-step task runs over several workflow runs and its audit chain stays one chain."""
    extra = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=20"]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), dev_server_extra_args=extra
    )
    plan = [{"title": f"Part {n}", "instructions": f"Write part {n}.", "kind": "llm", "tool": None,
             "risk": "low"} for n in range(1, 7)]  # fmt: skip
    try:
        async with running_system(
            env.client, model_server, sqlite_db, ScriptedModel(plan), tmp_path
        ) as system:
            api = await system.user("approver")
            task = await api.wait_done((await api.submit(system.team, "delegated"))["id"])
            assert task["status"] == "completed"
            assert [s["status"] for s in task["steps"]] == ["completed"] * 6
            runs = [r async for r in env.client.list_workflows(f'WorkflowId = "task-{task["id"]}"')]
            assert len(runs) >= 2, runs  # it continued as new at least once
            audit = await _audit(api, task["id"])
            assert [e["action"] for e in audit].count("step.finished") == 6
            assert [e["action"] for e in audit].count("task.submitted") == 1
            verify = (await api.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
            assert verify["ok"] and verify["anchored"], verify
            print(f"\ncontinue-as-new: 6 steps over {len(runs)} runs, {len(audit)} audit events")
    finally:
        await env.shutdown()
