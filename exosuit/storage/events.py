"""The event writer: every change the workflow makes to a task, one transaction each.

`EventWriter.apply` updates the read model and appends the audit event together, guarded
by an idempotency key, so a retried activity never writes twice.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from exosuit.domain.audit import GENESIS_HASH, Anchor, event_hash, format_at, sign_anchor
from exosuit.domain.autonomy import excluded_decider
from exosuit.domain.contracts import Gate, TaskEvent
from exosuit.domain.task import EventAction, StepStatus, TaskStatus
from exosuit.domain.text import fingerprint, text_diff
from exosuit.domain.tools import args_hash, args_text
from exosuit.domain.usage import CallRecord
from exosuit.storage import outbox
from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import AuditAnchor, AuditEvent, ModelCall, Step, Task, Team

_APPEND_ATTEMPTS = 5
_ENDINGS = frozenset(EventAction.ended(s) for s in TaskStatus if not s.active)


@dataclass(frozen=True)
class Written:
    """What a write left: the chain's head, whether a budget applies to the task (or its team),
    and whether it queued webhook messages or notifications (which then need a wake)."""

    head: Anchor
    budgeted: bool
    enqueued: bool


class ChainChanged(Exception):
    """The chain no longer ends where the workflow last recorded: someone wrote around Exosuit."""


class EventWriter:
    """The workflow's one way to change the read model and the audit chain.

    Every write is one short synchronous transaction in the process's writer thread
    (`Database.write`): nothing else runs inside it, so SQLite's write lock is held only
    for the statements themselves, never across the event loop's other work."""

    def __init__(self, db: Database, anchor_key: bytes | None = None) -> None:
        self.db = db
        self._anchor_key = anchor_key  # signs a finished task's head

    async def apply(self, event: TaskEvent, call: CallRecord | None = None) -> Anchor:
        """Apply one event atomically; the chain's head after it (the same again for a known key)."""
        written = await self._write([replace(event, call=call)], check_budget=False)
        return written.head

    async def apply_all(self, events: list[TaskEvent]) -> Written:
        """Apply events of one task in order, in one transaction (each once, by its key)."""
        return await self._write(events, check_budget=True)

    async def _write(self, events: list[TaskEvent], *, check_budget: bool) -> Written:
        def work(session: Session) -> Written:
            head: Anchor | None = None
            enqueued = False
            for event in events:
                done = self._event(session, event.task_id, event.key)
                if done is not None:
                    head = Anchor(done.seq, done.hash)
                    continue
                head, added = self._apply(session, event, event.call)
                enqueued = enqueued or added
            budgeted = self._budgeted(session, events[0].task_id) if check_budget else True
            session.commit()
            assert head is not None
            return Written(head, budgeted, enqueued)

        for attempt in range(_APPEND_ATTEMPTS):
            try:
                return await self.db.write(work)
            except IntegrityError:
                # Another writer took the next seq first; read again and retry.
                if attempt == _APPEND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _budgeted(self, session: Session, task_id: str) -> bool:
        found = session.exec(
            select(Task.budget_usd, Team.monthly_budget_usd)
            .join(Team, col(Team.name) == col(Task.team))
            .where(Task.id == task_id)
        )
        row = found.first()
        return row is None or row[0] is not None or row[1] is not None

    async def stream_output(self, task_id: str, step_id: str, text: str) -> None:
        """A running step's text so far: read model only, no audit event (the final text gets one)."""

        def work(session: Session) -> None:
            step, task = session.get(Step, step_id), session.get(Task, task_id)
            if step is None or task is None or step.task_id != task_id:
                return
            step.partial_output = text
            task.updated_at = utcnow()  # live views poll on this
            session.add_all([step, task])
            session.commit()

        await self.db.write(work)

    async def event(self, task_id: str, key: str) -> AuditEvent | None:
        """The audit event written under an idempotency key, if any."""
        async with self.db.session() as session:
            found = await session.exec(
                select(AuditEvent).where(AuditEvent.task_id == task_id, AuditEvent.idem_key == key)
            )
            return found.first()

    def _event(self, session: Session, task_id: str, key: str) -> AuditEvent | None:
        found = session.exec(
            select(AuditEvent).where(AuditEvent.task_id == task_id, AuditEvent.idem_key == key)
        )
        return found.first()

    def _apply(self, session: Session, ev: TaskEvent, call: CallRecord | None) -> tuple[Anchor, bool]:
        """The event applied in the session; the head after it, and whether it left outbox rows."""
        task = session.get(Task, ev.task_id)
        if task is None:
            raise LookupError(f"task {ev.task_id} does not exist")
        data: dict[str, Any] = dict(ev.data)
        closing = outbox.gate_document(task) if ev.close_gate else None  # a webhook names it
        if ev.action is EventAction.TASK_SUBMITTED:  # the chain holds what was submitted
            data |= {"title": task.title, "instructions": task.instructions, "team": task.team}
        now = utcnow()
        task.waiting_reason, task.waiting_since = None, None  # it moved
        if ev.action is EventAction.TASK_RESUMED:  # live again: the workflow's head anchors it
            task.error = None
            anchor = session.get(AuditAnchor, task.id)
            if anchor is not None:
                session.delete(anchor)
        if ev.status is not None:
            task.status = ev.status
            if ev.status is TaskStatus.COMPLETED:
                task.result = self._last_output(session, task.id)
        if ev.error is not None:
            task.error = ev.error
        if ev.autonomy is not None:
            task.autonomy = ev.autonomy
        if ev.close_gate:
            _set_gate(task, None)
        if ev.open_gate is not None:
            _set_gate(task, ev.open_gate)
        if ev.new_plan is not None:
            data.update(self._replace_plan(session, task.id, ev))
        if ev.step_id is not None:
            data.update(self._update_step(session, ev))
        if call is not None:
            data.update(self._record_call(session, task, call))
        task.updated_at = now
        session.add(task)
        head = self._append(session, ev, data, now)
        # The outbox: webhook messages and notifications commit with the event or not at all.
        enqueued = outbox.enqueue(session, task, ev, head, closing)
        if ev.action in _ENDINGS and self._anchor_key is not None:
            signature = sign_anchor(self._anchor_key, ev.task_id, head)
            session.merge(AuditAnchor(task_id=ev.task_id, seq=head.seq, hash=head.hash, signature=signature))
        return head, enqueued

    def _replace_plan(self, session: Session, task_id: str, ev: TaskEvent) -> dict[str, Any]:
        assert ev.new_plan is not None
        old = list(session.exec(select(Step).where(Step.task_id == task_id)))
        before = [s.plan_entry() for s in sorted(old, key=lambda s: s.index)]
        # A person's edit names tools without their descriptions: the earlier plan knew them.
        known_tools = {s.tool: s.tool_info for s in old if s.tool and s.tool_info}
        for step in old:
            session.delete(step)
        session.flush()
        after = []
        for index, new in enumerate(ev.new_plan):
            step = Step(task_id=task_id, index=index, **asdict(new))
            if step.tool_info is None and step.tool in known_tools:
                step.tool_info = known_tools[step.tool]
            session.add(step)
            after.append(step.plan_entry())
        changes: dict[str, Any] = {"steps": after}
        if before:
            changes["before"] = {"steps": before}
        return changes

    def _update_step(self, session: Session, ev: TaskEvent) -> dict[str, Any]:
        step = session.get(Step, ev.step_id)
        if step is None or step.task_id != ev.task_id:
            raise LookupError(f"step {ev.step_id} is not part of task {ev.task_id}")
        data: dict[str, Any] = {"step_id": step.id, "step_index": step.index}
        if ev.step_status is not None:
            step.status = ev.step_status
        if ev.instructions is not None:
            data["diff"] = text_diff(step.instructions, ev.instructions)
            data["before"], data["after"] = step.instructions, ev.instructions
            step.instructions = ev.instructions
        if ev.args is not None:
            before, after = args_text(step.args), args_text(ev.args)
            data["diff"] = text_diff(before, after)
            data["args_before_sha256"] = args_hash(step.args)
            data["args_sha256"] = args_hash(ev.args)
            step.args = ev.args
        if ev.output is not None:
            if step.output is not None:
                data["diff"] = text_diff(step.output, ev.output)
            data["output_sha256"] = fingerprint(ev.output)
            data["output_chars"] = len(ev.output)
            step.output, step.partial_output = ev.output, None
        session.add(step)
        return data

    async def meter(self, task_id: str, call: CallRecord) -> None:
        """A model call's usage, stored as soon as it is known (once per key)."""

        def work(session: Session) -> None:
            task = session.get(Task, task_id)
            if task is None:
                return
            self._record_call(session, task, call)
            session.add(task)
            with suppress(IntegrityError):  # the same call, stored meanwhile by its event
                session.commit()

        await self.db.write(work)

    def _record_call(self, session: Session, task: Task, call: CallRecord) -> dict[str, Any]:
        usage = {
            "provider": call.provider,
            "model": call.model,
            "prompt_tokens": call.prompt_tokens,
            "completion_tokens": call.completion_tokens,
            "cost_usd": call.cost_usd,
        }
        usage |= {"usage_estimated": True} if call.usage_estimated else {}
        known = session.exec(select(ModelCall.id).where(ModelCall.key == call.key))
        if known.first() is not None:  # metered when it was made
            return usage
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
            step = session.get(Step, call.step_id)
            if step is not None:
                step.model = call.model
                step.provider = call.provider
                step.prompt_tokens += call.prompt_tokens
                step.completion_tokens += call.completion_tokens
                step.cost_usd += call.cost_usd
                session.add(step)
        return usage

    def _last_output(self, session: Session, task_id: str) -> str | None:
        found = session.exec(
            select(Step.output)
            .where(Step.task_id == task_id, Step.status == StepStatus.COMPLETED)
            .order_by(col(Step.index).desc())
            .limit(1)
        )
        return found.first()

    def _append(self, session: Session, ev: TaskEvent, data: dict[str, Any], now: datetime) -> Anchor:
        last = (
            session.exec(
                select(AuditEvent.seq, AuditEvent.hash)
                .where(AuditEvent.task_id == ev.task_id)
                .order_by(col(AuditEvent.seq).desc())
                .limit(1)
            )
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        if ev.after is not None and (seq - 1, prev) != (ev.after.seq, ev.after.hash):
            raise ChainChanged(
                f"the audit chain of task {ev.task_id} ends at seq {seq - 1}, not at the seq "
                f"{ev.after.seq} this task last recorded: it was changed outside Exosuit"
            )
        at = format_at(now)
        digest = event_hash(prev, seq, at, ev.actor, ev.action, data)
        session.add(
            AuditEvent(
                task_id=ev.task_id,
                seq=seq,
                at=at,
                actor=ev.actor,
                action=ev.action,
                data=data,
                prev_hash=prev,
                hash=digest,
                idem_key=ev.key,
            )
        )
        session.flush()
        return Anchor(seq, digest)


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
