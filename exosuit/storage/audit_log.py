"""Reading a task's audit chain, and verifying it against its anchor and the read model."""

from __future__ import annotations

from sqlmodel import col, select

from exosuit.domain.audit import Anchor, ChainCheck, ChainEvent, anchor_signed, verify_chain
from exosuit.domain.task import EventAction
from exosuit.storage.db import Database
from exosuit.storage.tables import AuditAnchor, AuditEvent, Task

_SUBMITTED_FIELDS = ("title", "instructions", "team")


class AuditLog:
    def __init__(self, db: Database, anchor_key: bytes | None = None) -> None:
        self.db = db
        self._anchor_key = anchor_key

    async def events(self, task_id: str) -> list[AuditEvent]:
        """A task's events in seq order."""
        async with self.db.session() as session:
            rows = await session.exec(
                select(AuditEvent).where(AuditEvent.task_id == task_id).order_by(col(AuditEvent.seq))
            )
            return list(rows)

    async def task_ids(self) -> list[str]:
        """Every task the database knows, by its row or by its events."""
        async with self.db.session() as session:
            rows = set(await session.exec(select(Task.id)))
            rows |= set(await session.exec(select(AuditEvent.task_id).distinct()))
            return sorted(rows)

    async def verify(self, task_id: str, live: Anchor | None = None) -> ChainCheck:
        """The chain, held against the workflow's head (`live`) and the signed anchor of a
        finished task; then the task row against what `task.submitted` recorded."""
        events = await self.events(task_id)
        async with self.db.session() as session:
            stored = await session.get(AuditAnchor, task_id)
            task = await session.get(Task, task_id)
        anchors = [live] if live is not None else []
        if stored is not None:
            signed = Anchor(stored.seq, stored.hash)
            if self._anchor_key is None or not anchor_signed(
                self._anchor_key, task_id, signed, stored.signature
            ):
                return ChainCheck(
                    False, len(events), stored.seq, None, True, "the anchor's signature does not verify"
                )
            anchors.append(signed)
        chain = [ChainEvent(e.seq, e.at, e.actor, e.action, e.data, e.prev_hash, e.hash) for e in events]
        checks = [verify_chain(chain, anchor) for anchor in anchors] or [verify_chain(chain)]
        check = next((c for c in checks if not c.ok), checks[0])
        if check.ok and task is not None and events[0].action == EventAction.TASK_SUBMITTED:
            submitted = events[0].data
            changed = [f for f in _SUBMITTED_FIELDS if f in submitted and submitted[f] != getattr(task, f)]
            if changed:
                reason = f"the task's {', '.join(changed)} no longer match what task.submitted recorded"
                return ChainCheck(False, check.events, 1, check.head, check.anchored, reason)
        return check
