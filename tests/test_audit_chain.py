"""The audit chain of a real task, recomputed here from the contract's formula, then tampered."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import update

from exosuit.storage.tables import AuditEvent
from tests.conftest import System
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


async def test_audit_chain_recomputes_and_tampering_is_caught(system: System) -> None:
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await submitter.submit(system.team, "supervised", title="Caf\u00e9 menu \u2615")
    await approve_all(approver, task["id"])
    events = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    recompute(events)
    actions = [e["action"] for e in events]
    assert actions[:4] == ["task.submitted", "task.planning", "task.planned", "gate.opened"]
    assert actions[-1] == "task.completed"
    assert events[0]["actor"] == f"user:{submitter.email}" and events[0]["data"]["token"] == "tests"
    planned = events[2]
    assert planned["actor"] == "model:scripted-model"
    finished = next(e for e in events if e["action"] == "step.finished")
    assert finished["data"]["prompt_tokens"] == 11 and finished["data"]["completion_tokens"] == 7
    assert finished["data"]["model"] == "scripted-model" and finished["data"]["cost_usd"] > 0
    decided = next(e for e in events if e["action"] == "gate.decided")
    assert decided["actor"] == f"user:{approver.email}" and decided["data"]["token"] == "tests"

    verdict = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
    assert verdict == {"ok": True, "events": len(events), "first_bad_seq": None}
    assert await cli_verify(system, task["id"]) == (0, f"chain holds: {len(events)} events\n")

    async with system.db.session() as session:
        await session.exec(  # type: ignore[call-overload]
            update(AuditEvent)
            .where(AuditEvent.task_id == task["id"], AuditEvent.seq == 5)  # type: ignore[arg-type]
            .values(data={"action": "reject"})
        )
        await session.commit()
    verdict = (await approver.http.get(f"/api/v1/tasks/{task['id']}/audit/verify")).json()
    assert verdict == {"ok": False, "events": len(events), "first_bad_seq": 5}
    code, out = await cli_verify(system, task["id"])
    assert code == 1 and "seq 5" in out
