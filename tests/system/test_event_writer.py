"""The event writer on its own, on SQLite and PostgreSQL: keys, the chain, usage, the inline gate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from exosuit.domain.audit import GENESIS_HASH, Anchor, event_hash
from exosuit.domain.autonomy import GateKind, Risk
from exosuit.domain.contracts import Gate, TaskEvent
from exosuit.domain.submissions import new_task_id
from exosuit.domain.task import EventAction, StepStatus, TaskStatus
from exosuit.domain.usage import CallRecord
from exosuit.storage.db import Database
from exosuit.storage.events import ChainChanged, EventWriter
from exosuit.storage.tables import AuditAnchor, AuditEvent, ModelCall, Step, Task, Team

SUBMITTER = "writer@test"


async def new_task(db: Database, steps: int = 2) -> str:
    """A planned task of `steps` steps (ids `<task>_s<i>`) in a team of its own."""
    task_id, team = new_task_id(), f"team-{uuid.uuid4().hex[:8]}"
    async with db.engine.begin() as connection:
        await connection.execute(insert(Team.__table__).values(name=team))  # type: ignore[attr-defined]
        await connection.execute(
            insert(Task.__table__).values(  # type: ignore[attr-defined]
                id=task_id,
                title="T",
                instructions="Do it.",
                team=team,
                submitted_by=SUBMITTER,
                autonomy="supervised",
            )
        )
        for i in range(steps):
            await connection.execute(
                insert(Step.__table__).values(  # type: ignore[attr-defined]
                    id=f"{task_id}_s{i}", task_id=task_id, index=i, title=f"S{i}", instructions=f"Step {i}."
                )
            )
    return task_id


def event(task_id: str, key: str, action: EventAction, **fields: Any) -> TaskEvent:
    return TaskEvent(task_id, f"{task_id}/{key}", fields.pop("actor", "system"), action, **fields)


async def rows(db: Database, model: Any, task_id: str, order: Any = None) -> list[Any]:
    async with db.engine.connect() as connection:
        query = select(model.__table__).where(model.__table__.c.task_id == task_id)
        found = await connection.execute(query.order_by(order) if order is not None else query)
        return list(found)


async def task_row(db: Database, task_id: str) -> Any:
    async with db.engine.connect() as connection:
        return (await connection.execute(select(Task.__table__).where(Task.__table__.c.id == task_id))).one()  # type: ignore[attr-defined]


async def test_a_key_repeated_in_a_batch_or_in_a_retried_batch_is_applied_once(database: Database) -> None:
    writer, task_id = EventWriter(database), await new_task(database)
    started = event(
        task_id, "1", EventAction.STEP_STARTED, step_id=f"{task_id}_s0", step_status=StepStatus.RUNNING
    )
    first = await writer.apply_all([started, started])
    again = await writer.apply_all([started])

    assert first.head == again.head == Anchor(1, first.head.hash)
    assert [e.seq for e in await rows(database, AuditEvent, task_id)] == [1]


async def test_the_chain_continues_across_batches_and_refuses_a_stale_head(database: Database) -> None:
    writer, task_id = EventWriter(database), await new_task(database)
    s0 = f"{task_id}_s0"
    one = await writer.apply_all([event(task_id, "1", EventAction.STEP_STARTED, step_id=s0)])
    two = await writer.apply_all(
        [
            event(task_id, "2", EventAction.STEP_FINISHED, step_id=s0, output="Done.", after=one.head),
            event(task_id, "3", EventAction.STEP_COMPLETED, step_id=s0, step_status=StepStatus.COMPLETED),
        ]
    )
    with pytest.raises(ChainChanged):
        await writer.apply_all([event(task_id, "4", EventAction.STEP_SKIPPED, after=one.head)])

    chain = await rows(database, AuditEvent, task_id, AuditEvent.__table__.c.seq)  # type: ignore[attr-defined]
    assert [e.seq for e in chain] == [1, 2, 3]
    prev = GENESIS_HASH
    for e in chain:
        assert e.prev_hash == prev
        assert e.hash == event_hash(prev, e.seq, e.at, e.actor, e.action, e.data)
        prev = e.hash
    assert two.head == Anchor(3, prev)
    assert chain[1].data["output_chars"] == len("Done.")


async def test_a_model_call_counts_once_on_the_task_and_its_step(database: Database) -> None:
    writer, task_id = EventWriter(database), await new_task(database)
    s0 = f"{task_id}_s0"
    call = CallRecord(f"{task_id}:call", "step", "m", 100, 20, 0.25, step_id=s0, provider="p")
    await writer.meter(task_id, call)  # metered when made, then recorded with its event
    await writer.apply(event(task_id, "1", EventAction.STEP_FINISHED, step_id=s0, output="x"), call)
    await writer.meter(task_id, call)

    task = await task_row(database, task_id)
    (step, _) = await rows(database, Step, task_id, Step.__table__.c.index)  # type: ignore[attr-defined]
    assert (task.prompt_tokens, task.completion_tokens, task.cost_usd) == (100, 20, 0.25)
    assert (step.prompt_tokens, step.completion_tokens, step.cost_usd) == (100, 20, 0.25)
    assert (step.model, step.provider, step.output, step.partial_output) == ("m", "p", "x", None)
    assert len(await rows(database, ModelCall, task_id)) == 1
    (recorded,) = await rows(database, AuditEvent, task_id)
    assert recorded.data["prompt_tokens"] == 100


async def test_a_gate_opens_and_closes_inline_and_the_ending_keeps_the_result_and_its_anchor(
    database: Database,
) -> None:
    writer, task_id = EventWriter(database, anchor_key=b"k" * 32), await new_task(database)
    s0, s1 = f"{task_id}_s0", f"{task_id}_s1"
    opened = datetime.now(UTC).replace(microsecond=0)
    gate = Gate("g_1", GateKind.STEP, s1, opened, opened + timedelta(hours=1), True, risk=Risk.HIGH)
    await writer.apply_all(
        [
            event(task_id, "1", EventAction.STEP_FINISHED, step_id=s0, output="The answer."),
            event(task_id, "2", EventAction.STEP_COMPLETED, step_id=s0, step_status=StepStatus.COMPLETED),
            event(task_id, "3", EventAction.GATE_OPENED, status=TaskStatus.AWAITING_APPROVAL, open_gate=gate),
        ]
    )
    waiting = await task_row(database, task_id)
    assert (waiting.status, waiting.gate_id, waiting.gate_kind, waiting.gate_risk) == (
        "awaiting_approval",
        "g_1",
        "step",
        "high",
    )
    assert waiting.gate_excluded == SUBMITTER  # four-eyes
    assert waiting.gate_opened_at == opened and waiting.gate_opened_at.tzinfo is not None

    decided = event(task_id, "4", EventAction.GATE_DECIDED, status=TaskStatus.RUNNING, close_gate=True)
    ended = await writer.apply_all(
        [decided, event(task_id, "5", EventAction.TASK_COMPLETED, status=TaskStatus.COMPLETED)]
    )

    done = await task_row(database, task_id)
    assert (done.status, done.gate_id, done.gate_four_eyes, done.gate_excluded) == (
        "completed",
        None,
        False,
        None,
    )
    assert done.result == "The answer."
    assert done.updated_at.utcoffset() == timedelta(0) and done.updated_at > waiting.updated_at - timedelta(
        seconds=1
    )
    (anchor,) = await rows(database, AuditAnchor, task_id)
    assert Anchor(anchor.seq, anchor.hash) == ended.head
