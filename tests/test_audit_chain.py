"""The audit chain of a real task, recomputed here from the contract's formula, then tampered."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from exosuit.storage.tables import AuditEvent
from tests.conftest import Api, System
from tests.flows import approve_all
from tests.support.cli import run_cli


def recompute(events: list[dict[str, Any]]) -> None:
    prev = "0" * 64
    for seq, event in enumerate(events, start=1):
        body = json.dumps(
            {k: event[k] for k in ("seq", "at", "actor", "action", "data")},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        assert event["seq"] == seq
        assert event["prev_hash"] == prev
        assert event["hash"] == hashlib.sha256((prev + body).encode()).hexdigest()
        prev = event["hash"]


async def cli_verify(system: System, task_id: str) -> tuple[int, str]:
    url = system.db.engine.url.render_as_string(hide_password=False)
    return await run_cli("audit", "verify", task_id, env={"EXOSUIT_DATABASE_URL": url})


@dataclass
class Finished:
    """A supervised task run to completion: who submitted, who approved, its events."""

    submitter: Api
    approver: Api
    task_id: str
    events: list[dict[str, Any]]


@pytest.fixture
async def finished(system: System) -> Finished:
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await submitter.submit(system.team, "supervised", title="Caf\u00e9 menu \u2615")
    await approve_all(approver, task["id"])
    events = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    return Finished(submitter, approver, task["id"], events)


async def test_every_event_recomputes_from_the_contract_formula(system: System, finished: Finished) -> None:
    recompute(finished.events)
    verdict = (await finished.approver.http.get(f"/api/v1/tasks/{finished.task_id}/audit/verify")).json()
    assert verdict == {"ok": True, "events": len(finished.events), "first_bad_seq": None}
    assert await cli_verify(system, finished.task_id) == (0, f"chain holds: {len(finished.events)} events\n")


async def test_events_name_who_acted_and_what_the_model_used(finished: Finished) -> None:
    events = finished.events
    actions = [e["action"] for e in events]
    assert actions[:4] == ["task.submitted", "task.planning", "task.planned", "gate.opened"]
    assert actions[-1] == "task.completed"
    assert events[0]["actor"] == f"user:{finished.submitter.email}" and events[0]["data"]["token"] == "tests"
    assert events[2]["actor"] == "model:scripted-model"
    step_finished = next(e for e in events if e["action"] == "step.finished")
    assert step_finished["data"]["prompt_tokens"] == 11 and step_finished["data"]["completion_tokens"] == 7
    assert step_finished["data"]["model"] == "scripted-model" and step_finished["data"]["cost_usd"] > 0
    decided = next(e for e in events if e["action"] == "gate.decided")
    assert decided["actor"] == f"user:{finished.approver.email}" and decided["data"]["token"] == "tests"


async def test_a_rewritten_event_is_caught_by_the_api_and_the_cli(system: System, finished: Finished) -> None:
    async with system.db.session() as session:
        await session.exec(  # type: ignore[call-overload]
            update(AuditEvent)
            .where(AuditEvent.task_id == finished.task_id, AuditEvent.seq == 5)  # type: ignore[arg-type]
            .values(data={"action": "reject"})
        )
        await session.commit()
    verdict = (await finished.approver.http.get(f"/api/v1/tasks/{finished.task_id}/audit/verify")).json()
    assert verdict == {"ok": False, "events": len(finished.events), "first_bad_seq": 5}
    code, out = await cli_verify(system, finished.task_id)
    assert code == 1 and "seq 5" in out
