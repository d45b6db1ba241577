"""The event writer: every change the workflow makes to a task, one transaction each.

`EventWriter.apply` updates the read model and appends the audit event together, guarded
by an idempotency key, so a retried activity never writes twice.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from exosuit.domain.audit import GENESIS_HASH, event_hash, format_at
from exosuit.domain.autonomy import excluded_decider
from exosuit.domain.contracts import Gate, TaskEvent
from exosuit.domain.task import StepStatus, TaskStatus
from exosuit.domain.text import fingerprint, text_diff
from exosuit.domain.usage import CallRecord
from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import AuditEvent, ModelCall, Step, Task

_APPEND_ATTEMPTS = 5


class EventWriter:
    """The workflow's one way to change the read model and the audit chain."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def apply(self, event: TaskEvent, call: CallRecord | None = None) -> bool:
        """Apply one event atomically; False if its key was applied before."""
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                async with self.db.session() as session:
                    if await self._seen(session, event.task_id, event.key):
                        return False
                    await self._apply(session, event, call)
                    await session.commit()
                    return True
            except IntegrityError:
                # Another writer took the next seq first; read again and retry.
                if attempt == _APPEND_ATTEMPTS - 1:
                    raise
        return False  # pragma: no cover

    async def stream_output(self, task_id: str, step_id: str, text: str) -> None:
        """A running step's text so far: read model only, no audit event (the final text gets one)."""
        async with self.db.session() as session:
            step, task = await session.get(Step, step_id), await session.get(Task, task_id)
            if step is None or task is None or step.task_id != task_id:
                return
            step.partial_output = text
            task.updated_at = utcnow()  # live views poll on this
            session.add_all([step, task])
            await session.commit()

    async def event(self, task_id: str, key: str) -> AuditEvent | None:
        """The audit event written under an idempotency key, if any."""
        async with self.db.session() as session:
            found = await session.exec(
                select(AuditEvent).where(AuditEvent.task_id == task_id, AuditEvent.idem_key == key)
            )
            return found.first()

    async def seen(self, task_id: str, key: str) -> bool:
        async with self.db.session() as session:
            return await self._seen(session, task_id, key)

    async def _seen(self, session: AsyncSession, task_id: str, key: str) -> bool:
        found = await session.exec(
            select(AuditEvent.id).where(AuditEvent.task_id == task_id, AuditEvent.idem_key == key)
        )
        return found.first() is not None

    async def _apply(self, session: AsyncSession, ev: TaskEvent, call: CallRecord | None) -> None:
        task = await session.get(Task, ev.task_id)
        if task is None:
            raise LookupError(f"task {ev.task_id} does not exist")
        data: dict[str, Any] = dict(ev.data)
        now = utcnow()
        if ev.status is not None:
            task.status = ev.status
            if ev.status is TaskStatus.COMPLETED:
                task.result = await self._last_output(session, task.id)
        if ev.error is not None:
            task.error = ev.error
        if ev.autonomy is not None:
            task.autonomy = ev.autonomy
        if ev.close_gate:
            _set_gate(task, None)
        if ev.open_gate is not None:
            _set_gate(task, ev.open_gate)
        if ev.new_plan is not None:
            data.update(await self._replace_plan(session, task.id, ev))
        if ev.step_id is not None:
            data.update(await self._update_step(session, ev))
        if call is not None:
            data.update(await self._record_call(session, task, call))
        task.updated_at = now
        session.add(task)
        await self._append(session, ev.task_id, ev.key, ev.actor, ev.action, data, now)

    async def _replace_plan(self, session: AsyncSession, task_id: str, ev: TaskEvent) -> dict[str, Any]:
        assert ev.new_plan is not None
        old = list(await session.exec(select(Step).where(Step.task_id == task_id)))
        before = [s.plan_entry() for s in sorted(old, key=lambda s: s.index)]
        for step in old:
            await session.delete(step)
        await session.flush()
        after = []
        for index, new in enumerate(ev.new_plan):
            step = Step(task_id=task_id, index=index, **asdict(new))
            session.add(step)
            after.append(step.plan_entry())
        changes: dict[str, Any] = {"steps": after}
        if before:
            changes["before"] = {"steps": before}
        return changes

    async def _update_step(self, session: AsyncSession, ev: TaskEvent) -> dict[str, Any]:
        step = await session.get(Step, ev.step_id)
        if step is None or step.task_id != ev.task_id:
            raise LookupError(f"step {ev.step_id} is not part of task {ev.task_id}")
        data: dict[str, Any] = {"step_id": step.id, "step_index": step.index}
        if ev.step_status is not None:
            step.status = ev.step_status
        if ev.instructions is not None:
            data["diff"] = text_diff(step.instructions, ev.instructions)
            data["before"], data["after"] = step.instructions, ev.instructions
            step.instructions = ev.instructions
        if ev.output is not None:
            if step.output is not None:
                data["diff"] = text_diff(step.output, ev.output)
            data["output_sha256"] = fingerprint(ev.output)
            data["output_chars"] = len(ev.output)
            step.output, step.partial_output = ev.output, None
        session.add(step)
        return data

    async def _record_call(self, session: AsyncSession, task: Task, call: CallRecord) -> dict[str, Any]:
        session.add(
            ModelCall(
                key=call.key,
                task_id=task.id,
                step_id=call.step_id,
                purpose=call.purpose,
                provider=call.provider,
                model=call.model,
                prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens,
                cost_usd=call.cost_usd,
            )
        )
        task.prompt_tokens += call.prompt_tokens
        task.completion_tokens += call.completion_tokens
        task.cost_usd += call.cost_usd
        if call.step_id is not None:
            step = await session.get(Step, call.step_id)
            if step is not None:
                step.model = call.model
                step.provider = call.provider
                step.prompt_tokens += call.prompt_tokens
                step.completion_tokens += call.completion_tokens
                step.cost_usd += call.cost_usd
                session.add(step)
        usage = {
            "provider": call.provider,
            "model": call.model,
            "prompt_tokens": call.prompt_tokens,
            "completion_tokens": call.completion_tokens,
            "cost_usd": call.cost_usd,
        }
        return usage | ({"usage_estimated": True} if call.usage_estimated else {})

    async def _last_output(self, session: AsyncSession, task_id: str) -> str | None:
        found = await session.exec(
            select(Step.output)
            .where(Step.task_id == task_id, Step.status == StepStatus.COMPLETED)
            .order_by(col(Step.index).desc())
            .limit(1)
        )
        return found.first()

    async def _append(
        self,
        session: AsyncSession,
        task_id: str,
        key: str,
        actor: str,
        action: str,
        data: dict[str, Any],
        now: datetime,
    ) -> None:
        last = (
            await session.exec(
                select(AuditEvent.seq, AuditEvent.hash)
                .where(AuditEvent.task_id == task_id)
                .order_by(col(AuditEvent.seq).desc())
                .limit(1)
            )
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        at = format_at(now)
        session.add(
            AuditEvent(
                task_id=task_id,
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                data=data,
                prev_hash=prev,
                hash=event_hash(prev, seq, at, actor, action, data),
                idem_key=key,
            )
        )
        await session.flush()


def _set_gate(task: Task, gate: Gate | None) -> None:
    task.gate_id = gate.id if gate else None
    task.gate_kind = gate.kind if gate else None
    task.gate_step_id = gate.step_id if gate else None
    task.gate_opened_at = gate.opened_at if gate else None
    task.gate_deadline = gate.deadline if gate else None
    task.gate_four_eyes = gate.four_eyes if gate else False
    task.gate_excluded = (
        excluded_decider(four_eyes=gate.four_eyes, submitter=task.submitted_by) if gate else None
    )
    task.gate_risk = gate.risk if gate else None
    task.gate_reason = gate.reason if gate else None
    task.gate_escalated = gate.escalated if gate else False
