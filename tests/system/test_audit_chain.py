"""The audit chain of a real task, recomputed here from docs/audit.md's formula, then tampered."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, update
from sqlmodel import select

from exosuit.domain.audit import event_hash
from exosuit.storage.tables import (
    AuditAnchor,
    AuditCheckpoint,
    AuditEvent,
    DecisionAnswer,
    ModelCall,
    Step,
    Task,
)
from tests.support.cli import run_cli
from tests.support.flows import approve_all
from tests.support.paths import DOCS
from tests.support.system import Api, System


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


async def cli_verify(system: System, *args: str) -> tuple[int, str]:
    env = {
        "EXOSUIT_DATABASE_URL": system.db.engine.url.render_as_string(hide_password=False),
        "EXOSUIT_SECRET_KEY": system.settings.resolved_secret_key,
    }
    return await run_cli("audit", "verify", *args, env=env)


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
    assert verdict == {
        "ok": True,
        "events": len(finished.events),
        "first_bad_seq": None,
        "head": finished.events[-1]["hash"],
        "anchored": True,
        "reason": None,
    }
    code, out = await cli_verify(system, finished.task_id)
    assert (code, out) == (0, f"{finished.task_id}: chain holds: {len(finished.events)} events\n")
    outcome = await system.temporal.get_workflow_handle(f"task-{finished.task_id}").result()
    assert outcome == {
        "status": "completed",
        "audit_head": {"seq": len(finished.events), "hash": finished.events[-1]["hash"]},
        "resume": None,  # only a failed run says how to resume it
    }


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


async def tampered(system: System, finished: Finished, change: str) -> None:
    """Change the database the way someone with write access to it could."""
    task_id, events = finished.task_id, finished.events
    async with system.db.session() as session:
        if change == "rewrite one event":
            await session.exec(  # type: ignore[call-overload]
                update(AuditEvent)
                .where(AuditEvent.task_id == task_id, AuditEvent.seq == 5)  # type: ignore[arg-type]
                .values(data={"action": "reject"})
            )
        elif change == "delete the last events":
            await session.exec(delete(AuditEvent).where(AuditEvent.task_id == task_id, AuditEvent.seq > 6))  # type: ignore[call-overload,arg-type]
        elif change == "delete the whole chain":
            await session.exec(delete(AuditEvent).where(AuditEvent.task_id == task_id))  # type: ignore[call-overload,arg-type]
        elif change == "append a forged event":
            last = events[-1]
            at, data = last["at"], {"note": "approved by the CEO"}
            digest = event_hash(
                last["hash"], len(events) + 1, at, "user:ceo@example.com", "gate.decided", data
            )
            session.add(
                AuditEvent(
                    task_id=task_id, seq=len(events) + 1, at=at, actor="user:ceo@example.com",
                    action="gate.decided", data=data, prev_hash=last["hash"], hash=digest, idem_key="forged",
                )
            )  # fmt: skip
        elif change in ("rewrite and re-hash the rest", "edit the task row"):
            if change == "edit the task row":
                await session.exec(update(Task).where(Task.id == task_id).values(title="Something else"))  # type: ignore[call-overload,arg-type]
            else:
                rows = list(
                    await session.exec(
                        select(AuditEvent).where(AuditEvent.task_id == task_id).order_by(AuditEvent.seq)
                    )
                )  # type: ignore[arg-type]
                prev = rows[2].prev_hash
                for row in rows[2:]:
                    if row.seq == 3:
                        row.actor = "user:someone-else@example.com"
                    row.prev_hash = prev
                    row.hash = event_hash(prev, row.seq, row.at, row.actor, row.action, row.data)
                    prev = row.hash
                    session.add(row)
        elif change == "forge the stored anchor":
            await session.exec(update(AuditAnchor).where(AuditAnchor.task_id == task_id).values(seq=3))  # type: ignore[call-overload,arg-type]
        await session.commit()


TAMPERING = {
    "rewrite one event": (5, "does not hash to its link"),
    "delete the last events": (7, "missing at the end"),
    "delete the whole chain": (1, "no events"),
    "append a forged event": (None, "events after the anchored head"),
    "rewrite and re-hash the rest": (None, "rewritten"),
    "edit the task row": (1, "title no longer match"),
    "forge the stored anchor": (3, "signature does not verify"),
}


@pytest.mark.parametrize("change", list(TAMPERING))
async def test_tampering_is_caught_by_the_api_and_the_cli_with_a_reason(
    system: System, finished: Finished, change: str
) -> None:
    await tampered(system, finished, change)
    bad_seq, reason = TAMPERING[change]
    verdict = (await finished.approver.http.get(f"/api/v1/tasks/{finished.task_id}/audit/verify")).json()
    assert verdict["ok"] is False, verdict
    assert reason in verdict["reason"], verdict
    if bad_seq is not None:
        assert verdict["first_bad_seq"] == bad_seq, verdict
    code, out = await cli_verify(system, finished.task_id)  # no Temporal: the signed anchor
    assert code == 1 and reason in out, out
    code, out = await cli_verify(system, "--all")
    assert code == 1 and finished.task_id in out.splitlines()[-1], out


@pytest.mark.parametrize("gate", ["plan", "step"])
async def test_a_chain_changed_while_the_task_runs_stops_it_with_the_reason(
    system: System, gate: str
) -> None:
    """At the plan gate the decision is written on its own; a step's approval is written with
    the step's start (one transaction): either way the update says it was not recorded."""
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await approver.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    if gate == "step":
        assert (await approver.decide(task, "approve")).status_code == 200
        task = await approver.wait_gate(task["id"], "step")
    async with system.db.session() as session:
        last = (
            await session.exec(select(func.max(AuditEvent.seq)).where(AuditEvent.task_id == task["id"]))
        ).one()  # type: ignore[arg-type]
        await session.exec(delete(AuditEvent).where(AuditEvent.task_id == task["id"], AuditEvent.seq == last))  # type: ignore[call-overload,arg-type]
        await session.commit()
    refused = await approver.decide(task, "approve")
    assert refused.status_code == 409
    assert refused.json()["detail"] == "the decision could not be recorded; the task has stopped"
    ended = await approver.wait_done(task["id"])
    assert ended["status"] == "failed"
    assert "changed outside Exosuit" in ended["error"]


async def test_an_export_is_checked_by_the_twenty_line_script_in_docs(
    finished: Finished, tmp_path: Path
) -> None:
    export = (await finished.approver.http.get(f"/api/v1/tasks/{finished.task_id}/audit/export")).json()
    assert export["anchor"]["seq"] == len(finished.events) and export["anchor"]["source"] == "workflow"
    script = DOCS / "check_audit_export.py"

    async def check(document: dict[str, Any]) -> tuple[int, str]:
        path = tmp_path / "export.json"
        path.write_text(json.dumps(document))
        run = await asyncio.create_subprocess_exec(
            sys.executable, str(script), str(path), stdout=PIPE, stderr=STDOUT
        )
        out, _ = await run.communicate()
        return run.returncode or 0, out.decode()

    code, out = await check(export)
    assert code == 0 and "holds and ends at its anchor" in out, out
    rewritten = json.loads(json.dumps(export))
    rewritten["events"][3]["data"] = {"forged": True}
    assert (await check(rewritten))[0] == 1
    cut = export | {"events": export["events"][:-2]}
    code, out = await check(cut)
    assert code == 1 and "the anchor at seq" in out


async def test_a_signed_checkpoint_catches_a_task_deleted_with_its_chain_and_anchor(
    system: System, finished: Finished
) -> None:
    env = {
        "EXOSUIT_DATABASE_URL": system.db.engine.url.render_as_string(hide_password=False),
        "EXOSUIT_SECRET_KEY": system.settings.resolved_secret_key,
    }
    other = await finished.approver.wait_done(
        (await finished.submitter.submit(system.team, "delegated"))["id"]
    )
    code, out = await run_cli("audit", "checkpoint", env=env)
    assert code == 0 and "signed a checkpoint" in out, out
    task_id = finished.task_id
    async with system.db.session() as session:
        for table in (AuditEvent, AuditAnchor, ModelCall, Step, DecisionAnswer):
            await session.exec(delete(table).where(table.task_id == task_id))  # type: ignore[call-overload,attr-defined]
        await session.exec(delete(Task).where(Task.id == task_id))  # type: ignore[call-overload,arg-type]
        await session.commit()
    code, out = await cli_verify(system, "--all")
    assert code == 1 and f"{task_id}: chain broken at seq 1" in out and "no events" in out, out
    async with system.db.session() as session:  # nor does forging the checkpoint
        await session.exec(update(AuditCheckpoint).values(heads={}))  # type: ignore[call-overload]
        await session.commit()
    code, out = await cli_verify(system, other["id"])
    assert code == 1 and "the checkpoint's signature does not verify" in out, out


@pytest.fixture(autouse=True)
async def no_checkpoints_left(system: System) -> AsyncIterator[None]:
    """Checkpoints cover every task in the database, and the suite's systems share one with
    different secrets: each test leaves none behind."""
    yield
    async with system.db.session() as session:
        await session.exec(delete(AuditCheckpoint))  # type: ignore[call-overload]
        await session.commit()
