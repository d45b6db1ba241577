"""Reading a task's audit chain, and verifying it."""

from __future__ import annotations

from sqlmodel import col, select

from exosuit.domain.audit import ChainCheck, ChainEvent, verify_chain
from exosuit.storage.db import Database
from exosuit.storage.tables import AuditEvent


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def events(self, task_id: str) -> list[AuditEvent]:
        """A task's events in seq order."""
        async with self.db.session() as session:
            rows = await session.exec(
                select(AuditEvent).where(AuditEvent.task_id == task_id).order_by(col(AuditEvent.seq))
            )
            return list(rows)

    async def verify(self, task_id: str) -> ChainCheck:
        events = await self.events(task_id)
        return verify_chain(
            ChainEvent(e.seq, e.at, e.actor, e.action, e.data, e.prev_hash, e.hash) for e in events
        )
