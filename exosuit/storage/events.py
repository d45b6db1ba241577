"""The event writer: every change the workflow makes to a task, one transaction each.

`EventWriter.apply` updates the read model and appends the audit event together, guarded
by an idempotency key, so a retried activity never writes twice.

This is the hot path of every task step, so it speaks SQLAlchemy Core on the tables
(statements cached by their shape, no identity map, no unit of work): a batch reads its
known keys, the task row and the chain's head once each, carries them forward across its
events, and writes the task row once at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from exosuit.domain.audit import (
    GENESIS_HASH,
    Anchor,
    ChainEvent,
    event_hash,
    format_at,
    sealed_side_event,
    side_seal,
    sign_anchor,
)
from exosuit.domain.autonomy import excluded_decider
from exosuit.domain.contracts import Gate, TaskEvent
from exosuit.domain.task import EventAction, StepStatus, TaskStatus
from exosuit.domain.text import fingerprint, text_diff
from exosuit.domain.tools import args_hash, args_text
from exosuit.domain.usage import CallRecord
from exosuit.storage import decision_facts as facts
from exosuit.storage import outbox
from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import AuditAnchor, AuditEvent, ModelCall, Step, Task, Team, table_of

_APPEND_ATTEMPTS = 5
_ENDINGS = frozenset(EventAction.ended(s) for s in TaskStatus if not s.active)
_EMPTY_CHAIN = Anchor(0, GENESIS_HASH)

# The tables themselves: their columns' types (UTC datetimes, JSON) apply to every bind.
_TASK = table_of(Task)
_STEP = table_of(Step)
_TEAM = table_of(Team)
_AUDIT = table_of(AuditEvent)
_ANCHOR = table_of(AuditAnchor)
_CALL = table_of(ModelCall)
_t, _s, _a, _c = _TASK.c, _STEP.c, _AUDIT.c, _CALL.c

# The hot path's statements, built once and executed with parameters: each is compiled once
# (per set of columns an INSERT or UPDATE is given) and never rebuilt or re-keyed per call.
# The SET of `_UPDATE_TASK` and `_UPDATE_STEP` is the columns their parameters name.
_KNOWN_KEYS = select(_a.idem_key, _a.seq, _a.hash).where(
    _a.task_id == bindparam("task"), _a.idem_key.in_(bindparam("keys", expanding=True))
)
_CHAIN_HEAD = select(_a.seq, _a.hash).where(_a.task_id == bindparam("task")).order_by(_a.seq.desc()).limit(1)
_TASK_ROW = select(_TASK).where(_t.id == bindparam("task")).with_for_update()  # writers take turns
_UPDATE_TASK = update(_TASK).where(_t.id == bindparam("task"))
_BUDGETS = (
    select(_t.budget_usd, _TEAM.c.monthly_budget_usd)
    .join(_TEAM, _TEAM.c.name == _t.team)
    .where(_t.id == bindparam("task"))
)
_STEP_ROW = select(_s.index, _s.instructions, _s.args, _s.output).where(
    _s.id == bindparam("step"), _s.task_id == bindparam("task")
)
_UPDATE_STEP = update(_STEP).where(_s.id == bindparam("step"))
_LAST_OUTPUT = (
    select(_s.output)
    .where(_s.task_id == bindparam("task"), _s.status == StepStatus.COMPLETED)
    .order_by(_s.index.desc())
    .limit(1)
)
_CALL_KNOWN = select(_c.id).where(_c.key == bindparam("call"))
_INSERT_CALL = insert(_CALL)
_STEP_USAGE = (
    update(_STEP)
    .where(_s.id == bindparam("step"))
    .values(
        model=bindparam("call_model"),
        provider=bindparam("call_provider"),
        prompt_tokens=_s.prompt_tokens + bindparam("add_prompt_tokens"),
        completion_tokens=_s.completion_tokens + bindparam("add_completion_tokens"),
        cost_usd=_s.cost_usd + bindparam("add_cost_usd"),
    )
)
_TASK_USAGE = (
    update(_TASK)
    .where(_t.id == bindparam("task"))
    .values(
        prompt_tokens=_t.prompt_tokens + bindparam("add_prompt_tokens"),
        completion_tokens=_t.completion_tokens + bindparam("add_completion_tokens"),
        cost_usd=_t.cost_usd + bindparam("add_cost_usd"),
    )
)
_INSERT_EVENT = insert(_AUDIT)
_DELETE_ANCHOR = delete(_ANCHOR).where(_ANCHOR.c.task_id == bindparam("task"))
_INSERT_ANCHOR = insert(_ANCHOR)


@dataclass(frozen=True)
class Written:
    """What a write left: the chain's head, whether a budget applies to the task (or its team),
    and whether it queued webhook messages or notifications (which then need a wake)."""

    head: Anchor
    budgeted: bool
    enqueued: bool


class ChainChanged(Exception):
    """The chain no longer ends where the workflow last recorded: someone wrote around Exosuit."""


class _TaskRow:
    """A task's row as this transaction has left it so far: every column, and those changed."""

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self.columns = dict(columns)
        self.changed: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        return self.columns[name]

    def set(self, **values: Any) -> None:
        self.columns.update(values)
        self.changed.update(values)


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
        task_id = events[0].task_id
        if any(ev.task_id != task_id for ev in events):
            raise ValueError("a batch of events belongs to one task")

        def work(session: Session) -> Written:
            conn = session.connection()
            found = conn.execute(_KNOWN_KEYS, {"task": task_id, "keys": [ev.key for ev in events]})
            done = {key: Anchor(seq, digest) for key, seq, digest in found}
            task: _TaskRow | None = None  # read at the first event not yet written
            chain = _EMPTY_CHAIN
            head: Anchor | None = None
            enqueued = False
            for event in events:
                if event.key in done:  # written before, or earlier in this batch
                    head = done[event.key]
                    continue
                if task is None:
                    task, chain = _task_row(conn, task_id), _chain_head(conn, task_id)
                chain, added = self._apply(conn, task, chain, event, event.call)
                head = done[event.key] = chain
                enqueued = enqueued or added
            if task is not None:
                conn.execute(_UPDATE_TASK, {"task": task_id, **task.changed})
            budgeted = _budgeted(conn, task_id) if check_budget else True
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

    async def written(self, events: list[TaskEvent]) -> Written | None:
        """What these events left, if every one of them is written already (by an earlier
        attempt of the activity that writes them), else None. Reads only."""
        task_id = events[0].task_id

        def work(session: Session) -> Written | None:
            conn = session.connection()
            found = conn.execute(_KNOWN_KEYS, {"task": task_id, "keys": [ev.key for ev in events]})
            done = {key: Anchor(seq, digest) for key, seq, digest in found}
            if any(ev.key not in done for ev in events):
                return None
            return Written(done[events[-1].key], _budgeted(conn, task_id), enqueued=False)

        return await self.db.write(work)

    async def stream_output(self, task_id: str, step_id: str, text: str) -> None:
        """A running step's text so far: read model only, no audit event (the final text gets one)."""

        def work(session: Session) -> None:
            conn = session.connection()
            moved = conn.execute(
                update(_STEP).where(_s.id == step_id, _s.task_id == task_id).values(partial_output=text)
            )
            if moved.rowcount == 0:  # not a step of this task
                return
            conn.execute(_UPDATE_TASK, {"task": task_id, "updated_at": utcnow()})  # live views poll on it
            session.commit()

        await self.db.write(work)

    def _apply(
        self, conn: Connection, task: _TaskRow, chain: Anchor, ev: TaskEvent, call: CallRecord | None
    ) -> tuple[Anchor, bool]:
        """The event applied on `task` (written by the caller) and in the tables; the chain's
        head after it, and whether it left outbox rows."""
        data: dict[str, Any] = dict(ev.data)
        closing = outbox.gate_document(task.columns) if ev.close_gate else None  # a webhook names it
        closes = data.get("gate_id", task["gate_id"]) if ev.close_gate else None  # the gate it closes
        kind, gate_step = task["gate_kind"], task["gate_step_id"]
        deciding = isinstance(closes, str) and ev.action is EventAction.GATE_DECIDED
        proposed = facts.proposal(conn, ev.task_id, kind, gate_step) if deciding else None  # before the edit
        if ev.action is EventAction.TASK_SUBMITTED:  # the chain holds what was submitted
            data |= {"title": task["title"], "instructions": task["instructions"], "team": task["team"]}
        now = utcnow()
        _update_task(conn, task, ev, now)
        if ev.new_plan is not None:
            data.update(_replace_plan(conn, ev))
        if ev.step_id is not None:
            data.update(_update_step(conn, ev))
            facts.incident(conn, task.columns, ev, now)
        if isinstance(closes, str):  # its fact: decided (with what went on, after the edit), or closed
            if deciding:
                final = facts.proposal(conn, ev.task_id, kind, gate_step)
                facts.decided(
                    conn, closes, actor=ev.actor, data=data, now=now, proposed=proposed, final=final
                )
            else:
                facts.closed(conn, closes, now)
        if call is not None:
            data.update(_charge(conn, task, ev.task_id, call))
        task.set(updated_at=now)
        head = _append(conn, ev, chain, data, now, self._anchor_key)
        # The outbox: webhook messages and notifications commit with the event or not at all.
        enqueued = outbox.enqueue(conn, task.columns, ev, head, closing)
        if ev.action in _ENDINGS and self._anchor_key is not None:
            self._sign_ending(conn, ev.task_id, head)
        return head, enqueued

    def _sign_ending(self, conn: Connection, task_id: str, head: Anchor) -> None:
        """A finished task's head, signed: what verification holds its chain against."""
        assert self._anchor_key is not None
        signature = sign_anchor(self._anchor_key, task_id, head)
        conn.execute(_DELETE_ANCHOR, {"task": task_id})
        anchor = {"task_id": task_id, "seq": head.seq, "hash": head.hash, "signature": signature}
        conn.execute(_INSERT_ANCHOR, anchor)

    async def meter(self, task_id: str, call: CallRecord) -> None:
        """A model call's usage, stored as soon as it is known (once per key)."""

        def work(session: Session) -> None:
            conn = session.connection()
            team = conn.execute(select(_t.team).where(_t.id == task_id)).scalar()
            if team is None:
                return
            try:
                if not _record_call(conn, task_id, team, call):
                    return
            except IntegrityError:  # the same call, stored meanwhile by its event
                return
            conn.execute(_TASK_USAGE, {"task": task_id, **_added(call)})
            session.commit()

        await self.db.write(work)


def _task_row(conn: Connection, task_id: str) -> _TaskRow:
    row = conn.execute(_TASK_ROW, {"task": task_id}).first()
    if row is None:
        raise LookupError(f"task {task_id} does not exist")
    return _TaskRow(row._asdict())


def _chain_head(conn: Connection, task_id: str) -> Anchor:
    last = conn.execute(_CHAIN_HEAD, {"task": task_id}).first()
    return _EMPTY_CHAIN if last is None else Anchor(last.seq, last.hash)


def _budgeted(conn: Connection, task_id: str) -> bool:
    row = conn.execute(_BUDGETS, {"task": task_id}).first()
    return row is None or row[0] is not None or row[1] is not None


def _replace_plan(conn: Connection, ev: TaskEvent) -> dict[str, Any]:
    assert ev.new_plan is not None
    old = [Step(**row) for row in conn.execute(select(_STEP).where(_STEP.c.task_id == ev.task_id)).mappings()]
    before = [s.plan_entry() for s in sorted(old, key=lambda s: s.index)]
    # A person's edit names tools without their descriptions: the earlier plan knew them.
    known_tools = {s.tool: s.tool_info for s in old if s.tool and s.tool_info}
    conn.execute(delete(_STEP).where(_STEP.c.task_id == ev.task_id))
    new = [Step(task_id=ev.task_id, index=index, **asdict(step)) for index, step in enumerate(ev.new_plan)]
    for step in new:
        if step.tool_info is None and step.tool in known_tools:
            step.tool_info = known_tools[step.tool]
    if new:
        conn.execute(insert(_STEP), [step.model_dump() for step in new])
    changes: dict[str, Any] = {"steps": [step.plan_entry() for step in new]}
    if before:
        changes["before"] = {"steps": before}
    return changes


def _update_step(conn: Connection, ev: TaskEvent) -> dict[str, Any]:
    found = conn.execute(_STEP_ROW, {"step": ev.step_id, "task": ev.task_id}).first()
    if found is None:
        raise LookupError(f"step {ev.step_id} is not part of task {ev.task_id}")
    data: dict[str, Any] = {"step_id": ev.step_id, "step_index": found.index}
    values: dict[str, Any] = {}
    if ev.step_status is not None:
        values["status"] = ev.step_status
    if ev.instructions is not None:
        data["diff"] = text_diff(found.instructions, ev.instructions)
        data["before"], data["after"] = found.instructions, ev.instructions
        values["instructions"] = ev.instructions
    if ev.args is not None:
        before, after = args_text(found.args), args_text(ev.args)
        data["diff"] = text_diff(before, after)
        data["args_before_sha256"] = args_hash(found.args)
        data["args_sha256"] = args_hash(ev.args)
        values["args"] = ev.args
    if ev.output is not None:
        if found.output is not None:
            data["diff"] = text_diff(found.output, ev.output)
        data["output_sha256"] = fingerprint(ev.output)
        data["output_chars"] = len(ev.output)
        values |= {"output": ev.output, "partial_output": None}
    if values:
        conn.execute(_UPDATE_STEP, {"step": ev.step_id, **values})
    return data


def _update_task(conn: Connection, task: _TaskRow, ev: TaskEvent, now: datetime) -> None:
    """The task's own columns after the event (the caller writes them)."""
    task.set(waiting_reason=None, waiting_since=None)  # it moved
    if ev.action is EventAction.TASK_RESUMED:  # live again: the workflow's head anchors it
        task.set(error=None)
        conn.execute(_DELETE_ANCHOR, {"task": ev.task_id})
    if ev.status is not None:
        task.set(status=ev.status)
        if ev.status is TaskStatus.COMPLETED:
            task.set(result=conn.execute(_LAST_OUTPUT, {"task": ev.task_id}).scalar())
    if ev.error is not None:
        task.set(error=ev.error)
    if ev.autonomy is not None:
        task.set(autonomy=ev.autonomy)
    if ev.close_gate:
        task.set(**_gate_columns(None, task["submitted_by"]))
    if ev.open_gate is not None:
        _show_gate(task, ev)
        if ev.action is EventAction.GATE_OPENED:
            facts.opened(conn, task.columns, ev.open_gate, now)
    if ev.action is EventAction.TASK_PLANNED:
        facts.planned(conn, task.columns, facts.planner(ev.actor))
        task.set(planned_by=facts.planner(ev.actor))


def _show_gate(task: _TaskRow, ev: TaskEvent) -> None:
    """The open gate's columns as the event has it; a quorum vote ends its voter's claim (an
    approver whose vote is in has nothing left to hold), nobody else's."""
    assert ev.open_gate is not None
    claim = ("gate_claimed_by", "gate_claim_expires_at")
    held = {name: task[name] for name in claim}
    task.set(**_gate_columns(ev.open_gate, task["submitted_by"]))
    if ev.action is EventAction.GATE_APPROVED and ev.actor != f"user:{held['gate_claimed_by']}":
        task.set(**held)


def _charge(conn: Connection, task: _TaskRow, task_id: str, call: CallRecord) -> dict[str, Any]:
    """A model call's usage on the task (once per call), and the event's usage fields."""
    if _record_call(conn, task_id, task["team"], call):
        task.set(
            prompt_tokens=task["prompt_tokens"] + call.prompt_tokens,
            completion_tokens=task["completion_tokens"] + call.completion_tokens,
            cost_usd=task["cost_usd"] + call.cost_usd,
        )
    return _usage(call)


def _usage(call: CallRecord) -> dict[str, Any]:
    """What the audit event says of a model call."""
    usage = {
        "provider": call.provider,
        "model": call.model,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "cost_usd": call.cost_usd,
    }
    return usage | ({"usage_estimated": True} if call.usage_estimated else {})


def _record_call(conn: Connection, task_id: str, team: str, call: CallRecord) -> bool:
    """The call's row, its step's usage and its team's day, unless its key is known; whether
    it was new (the caller adds its usage to the task's)."""
    if conn.execute(_CALL_KNOWN, {"call": call.key}).first() is not None:
        return False  # metered when it was made
    row = {
        "key": call.key,
        "task_id": task_id,
        "step_id": call.step_id,
        "purpose": call.purpose,
        "provider": call.provider,
        "model": call.model,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "cost_usd": call.cost_usd,
    }
    conn.execute(_INSERT_CALL, row)
    facts.add_usage(conn, team, call, utcnow())
    if call.step_id is not None:
        model = {"step": call.step_id, "call_model": call.model, "call_provider": call.provider}
        conn.execute(_STEP_USAGE, model | _added(call))
    return True


def _added(call: CallRecord) -> dict[str, Any]:
    """A call's usage as the parameters `_STEP_USAGE` and `_TASK_USAGE` add."""
    return {
        "add_prompt_tokens": call.prompt_tokens,
        "add_completion_tokens": call.completion_tokens,
        "add_cost_usd": call.cost_usd,
    }


def _append(
    conn: Connection, ev: TaskEvent, chain: Anchor, data: dict[str, Any], now: datetime, key: bytes | None
) -> Anchor:
    """The audit event after `chain` (the head this batch has carried forward); the new head."""
    if ev.after is not None and not _follows(conn, ev.task_id, ev.after, chain, key):
        raise ChainChanged(
            f"the audit chain of task {ev.task_id} ends at seq {chain.seq}, not at the seq "
            f"{ev.after.seq} this task last recorded: it was changed outside Exosuit"
        )
    seq, prev, at = chain.seq + 1, chain.hash, format_at(now)
    digest = event_hash(prev, seq, at, ev.actor, ev.action, data)
    row = {
        "task_id": ev.task_id,
        "seq": seq,
        "at": at,
        "actor": ev.actor,
        "action": ev.action,
        "data": data,
        "prev_hash": prev,
        "hash": digest,
        "idem_key": ev.key,
    }
    conn.execute(_INSERT_EVENT, row)
    return Anchor(seq, digest)


def _follows(conn: Connection, task_id: str, after: Anchor, chain: Anchor, key: bytes | None) -> bool:
    """Whether the chain is where the workflow last recorded, or past it only by claims the web
    app sealed meanwhile (it appends them beside the workflow, which then follows them)."""
    if (chain.seq, chain.hash) == (after.seq, after.hash):
        return True
    if chain.seq <= after.seq:
        return False
    rows = conn.execute(
        select(_a.seq, _a.at, _a.actor, _a.action, _a.data, _a.prev_hash, _a.hash)
        .where(_a.task_id == task_id, _a.seq >= after.seq)
        .order_by(_a.seq)
    ).all()
    events = [ChainEvent(*row) for row in rows]
    if not events or (events[0].seq, events[0].hash) != (after.seq, after.hash):
        return False
    return all(sealed_side_event(key, task_id, e) for e in events[1:])


def append_side_event(
    conn: Connection, task_id: str, actor: str, action: EventAction, data: dict[str, Any], seal_key: bytes
) -> Anchor:
    """A sealed side event (`SIDE_ACTIONS`: a claim) at the end of a running task's chain, written
    beside its workflow in the caller's transaction (which holds the task's row); the new head."""
    chain = _chain_head(conn, task_id)
    seq, prev, at = chain.seq + 1, chain.hash, format_at(utcnow())
    unsealed = ChainEvent(seq, at, actor, action.value, data, prev, "")
    data = data | {"seal": side_seal(seal_key, task_id, unsealed)}
    digest = event_hash(prev, seq, at, actor, action, data)
    row = {
        "task_id": task_id,
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "data": data,
        "prev_hash": prev,
        "hash": digest,
        "idem_key": f"side-{task_id}/{seq}",
    }
    conn.execute(_INSERT_EVENT, row)
    return Anchor(seq, digest)


def _gate_columns(gate: Gate | None, submitter: str) -> dict[str, Any]:
    """The task's inline gate columns for an open gate, or cleared."""
    return {
        "gate_id": gate.id if gate else None,
        "gate_kind": gate.kind if gate else None,
        "gate_step_id": gate.step_id if gate else None,
        "gate_opened_at": gate.opened_at if gate else None,
        "gate_deadline": gate.deadline if gate else None,
        "gate_four_eyes": gate.four_eyes if gate else False,
        "gate_excluded": excluded_decider(four_eyes=gate.four_eyes, submitter=submitter) if gate else None,
        "gate_risk": gate.risk if gate else None,
        "gate_reason": gate.reason if gate else None,
        "gate_question": gate.question if gate else None,
        "gate_choices": gate.choices if gate else None,
        "gate_escalated": gate.escalated if gate else False,
        "gate_approvals": list(gate.approvals) if gate and gate.approvals_needed > 1 else None,
        "gate_approvals_needed": gate.approvals_needed if gate else 1,
        "gate_claimed_by": None,  # a claim is on one gate: a new gate starts unclaimed
        "gate_claim_expires_at": None,
    }
