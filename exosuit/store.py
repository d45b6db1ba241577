"""Reads and writes of the task read model and its audit chain.

Every change the workflow makes goes through `TaskStore.apply`: one transaction that
updates the read model and appends the audit event, guarded by an idempotency key so a
retried activity never writes twice.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from exosuit.audit import GENESIS_HASH, ChainEvent, Verdict, event_hash, format_at, verify_chain
from exosuit.contracts import TaskEvent
from exosuit.db import Database, utcnow
from exosuit.models import AuditEvent, ModelCall, Step, Task, Team

_APPEND_ATTEMPTS = 5


@dataclass(frozen=True)
class CallRecord:
    """One model call's usage, stored with the event it produced."""

    key: str
    purpose: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    step_id: str | None = None
    provider: str = "default"
    usage_estimated: bool = False


@dataclass(frozen=True)
class TaskView:
    task: Task
    steps: list[Step]


@dataclass(frozen=True)
class QueueRow:
    """One open gate as the review queue lists it."""

    id: str
    title: str
    team: str
    gate_id: str
    gate_kind: str
    gate_risk: str | None
    gate_opened_at: datetime
    gate_deadline: datetime | None
    gate_escalated: bool


_QUEUE_COLUMNS = [f.name for f in fields(QueueRow)]


@dataclass(frozen=True)
class UsageRow:
    team: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


def text_diff(before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), fromfile="before", tofile="after", lineterm=""
    )
    return "\n".join(lines)


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class TaskStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- writes -------------------------------------------------------------------------

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

    async def seen(self, task_id: str, key: str) -> bool:
        return await self.event(task_id, key) is not None

    async def event(self, task_id: str, key: str) -> AuditEvent | None:
        """The audit event written under an idempotency key, if any."""
        async with self.db.session() as session:
            found = await session.exec(
                select(AuditEvent).where(AuditEvent.task_id == task_id, AuditEvent.idem_key == key)
            )
            return found.first()

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
            if ev.status == "completed":
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
        before = [_plan_entry(s) for s in sorted(old, key=lambda s: s.index)]
        for step in old:
            await session.delete(step)
        await session.flush()
        after = []
        for index, new in enumerate(ev.new_plan):
            step = Step(task_id=task_id, index=index, **asdict(new))
            session.add(step)
            after.append(_plan_entry(step))
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
            .where(Step.task_id == task_id, Step.status == "completed")
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

    # --- reads --------------------------------------------------------------------------

    async def task(self, task_id: str) -> TaskView | None:
        async with self.db.session() as session:
            task = await session.get(Task, task_id)
            if task is None:
                return None
            steps = await session.exec(select(Step).where(Step.task_id == task_id).order_by(col(Step.index)))
            return TaskView(task, list(steps))

    async def step(self, task_id: str, step_id: str) -> tuple[TaskView, Step]:
        """A task and one of its steps; LookupError (not retried) if either is gone."""
        view = await self.task(task_id)
        step = next((s for s in view.steps if s.id == step_id), None) if view else None
        if view is None or step is None:
            raise LookupError(f"step {step_id} of task {task_id} does not exist")
        return view, step

    async def updated_at(self, task_id: str) -> datetime | None:
        """When the task's read model last changed (what live views watch)."""
        async with self.db.session() as session:
            found = await session.exec(select(Task.updated_at).where(Task.id == task_id))
            return found.first()

    async def tasks(
        self,
        teams: Sequence[str],
        *,
        status: str | None = None,
        team: str | None = None,
        submitted_by: str | None = None,
        limit: int = 100,
    ) -> list[TaskView]:
        query = select(Task).where(col(Task.team).in_(list(teams)))
        if status:
            query = query.where(Task.status == status)
        if team:
            query = query.where(Task.team == team)
        if submitted_by:
            query = query.where(Task.submitted_by == submitted_by)
        query = query.order_by(col(Task.created_at).desc()).limit(limit)
        async with self.db.session() as session:
            tasks = list(await session.exec(query))
            return await self._with_steps(session, tasks)

    async def open_gates(self, teams: Sequence[str], *, decided_by: str) -> list[TaskView]:
        """Tasks with an open gate the person may decide, oldest gate first (with steps)."""
        query = select(Task).where(*_decidable(teams, decided_by)).order_by(col(Task.gate_opened_at))
        async with self.db.session() as session:
            tasks = list(await session.exec(query))
            return await self._with_steps(session, tasks)

    async def open_gate_tasks(
        self,
        teams: Sequence[str],
        *,
        decided_by: str,
        kind: str | None = None,
        risk: str | None = None,
        limit: int = 1000,
    ) -> list[QueueRow]:
        """The review queue: open gates the person may decide, oldest first (list columns only)."""
        table = Task.__table__  # type: ignore[attr-defined]
        query = sa_select(*(table.c[name] for name in _QUEUE_COLUMNS)).where(*_decidable(teams, decided_by))
        if kind:
            query = query.where(col(Task.gate_kind) == kind)
        if risk:
            query = query.where(col(Task.gate_risk) == risk)
        query = query.order_by(col(Task.gate_opened_at)).limit(limit)
        async with self.db.session() as session:
            rows = await session.exec(query)  # type: ignore[call-overload]
            return [QueueRow(*row) for row in rows]

    async def _with_steps(self, session: AsyncSession, tasks: list[Task]) -> list[TaskView]:
        if not tasks:
            return []
        steps = await session.exec(
            select(Step)
            .where(col(Step.task_id).in_([t.id for t in tasks]))
            .order_by(col(Step.task_id), col(Step.index))
        )
        by_task: dict[str, list[Step]] = {t.id: [] for t in tasks}
        for step in steps:
            by_task[step.task_id].append(step)
        return [TaskView(t, by_task[t.id]) for t in tasks]

    async def team(self, name: str) -> Team | None:
        async with self.db.session() as session:
            return await session.get(Team, name)

    async def team_spend(self, team: str, since: datetime) -> float:
        """What a team's model calls cost since a moment (the start of the month)."""
        async with self.db.session() as session:
            total = await session.exec(
                select(func.coalesce(func.sum(ModelCall.cost_usd), 0.0))
                .join(Task, col(Task.id) == col(ModelCall.task_id))
                .where(Task.team == team, col(ModelCall.at) >= since)
            )
            return float(total.one())

    async def usage(self, since: datetime, until: datetime, team: str | None = None) -> list[UsageRow]:
        """Model usage per team between two moments, from the recorded calls."""
        query = (
            sa_select(
                col(Task.team),
                func.count(col(ModelCall.id)),
                func.sum(ModelCall.prompt_tokens),
                func.sum(ModelCall.completion_tokens),
                func.sum(ModelCall.cost_usd),
            )
            .join(Task, col(Task.id) == col(ModelCall.task_id))
            .where(col(ModelCall.at) >= since, col(ModelCall.at) < until)
            .group_by(col(Task.team))
            .order_by(col(Task.team))
        )
        if team:
            query = query.where(col(Task.team) == team)
        async with self.db.session() as session:
            rows = await session.exec(query)  # type: ignore[call-overload]
            return [UsageRow(*row) for row in rows]

    async def audit(self, task_id: str) -> list[AuditEvent]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(AuditEvent).where(AuditEvent.task_id == task_id).order_by(col(AuditEvent.seq))
            )
            return list(rows)

    async def verify(self, task_id: str) -> Verdict:
        events = await self.audit(task_id)
        return verify_chain(
            ChainEvent(e.seq, e.at, e.actor, e.action, e.data, e.prev_hash, e.hash) for e in events
        )


def _decidable(teams: Sequence[str], person: str) -> list[Any]:
    """Open gates of these teams, less the four-eyes gates of the person's own tasks."""
    return [
        col(Task.team).in_(list(teams)),
        col(Task.gate_id).is_not(None),
        ~(col(Task.gate_four_eyes) & (col(Task.submitted_by) == person)),
    ]


def _set_gate(task: Task, gate: Any) -> None:
    task.gate_id = gate.id if gate else None
    task.gate_kind = gate.kind if gate else None
    task.gate_step_id = gate.step_id if gate else None
    task.gate_opened_at = gate.opened_at if gate else None
    task.gate_deadline = gate.deadline if gate else None
    task.gate_four_eyes = gate.four_eyes if gate else False
    task.gate_risk = gate.risk if gate else None
    task.gate_reason = gate.reason if gate else None
    task.gate_escalated = gate.escalated if gate else False


def _plan_entry(step: Step) -> dict[str, Any]:
    return {
        "title": step.title,
        "instructions": step.instructions,
        "kind": step.kind,
        "tool": step.tool,
        "risk": step.risk,
    }
