"""Decisions sent with an Idempotency-Key: the first answer, kept to answer every retry."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import DecisionAnswer

# A first request still unanswered after this never will be: the web's own waits (Temporal's
# RPC timeout, the database's busy and pool timeouts) end well within it.
ORPHANED_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class Answer:
    fingerprint: str
    status: int | None  # None: the first request is still being answered
    body: Any


class DecisionAnswers:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(self, person: str, task_id: str, key: str, fingerprint: str) -> Answer | None:
        """None if this request is the first with its key, or takes over from a first one that
        will never answer (it must then `keep` or `release`); else what the first one got,
        waiting briefly for it when it is still being answered."""
        answer: Answer | None = None
        for _ in range(100):  # 10 s: an update answers well within it, or fails with 503
            if answer is None and await self._insert(person, task_id, key, fingerprint):
                return None
            answer = await self._get(person, task_id, key)
            if answer is not None and answer.status is not None:
                return answer
            if answer is not None and await self._take_over(person, task_id, key):
                return None
            await asyncio.sleep(0.1)  # None: released meanwhile, claimed afresh on the next turn
        return answer

    async def _insert(self, person: str, task_id: str, key: str, fingerprint: str) -> bool:
        try:
            async with self.db.session() as session:
                session.add(
                    DecisionAnswer(submitted_by=person, task_id=task_id, key=key, fingerprint=fingerprint)
                )
                await session.commit()
                return True
        except IntegrityError:
            return False

    async def _take_over(self, person: str, task_id: str, key: str) -> bool:
        """Claim again a first request's key that it has held too long to be still answering:
        its process died, or the database refused both its answer and its release (a write
        lock held past the busy timeout). Without this, every retry with the key got 503."""
        now = utcnow()
        async with self.db.session() as session:
            taken = await session.exec(
                update(DecisionAnswer)
                .where(
                    col(DecisionAnswer.submitted_by) == person,
                    col(DecisionAnswer.task_id) == task_id,
                    col(DecisionAnswer.key) == key,
                    col(DecisionAnswer.status).is_(None),
                    col(DecisionAnswer.created_at) < now - ORPHANED_AFTER,
                )
                .values(created_at=now)
            )
            await session.commit()
            return taken.rowcount == 1

    async def keep(self, person: str, task_id: str, key: str, status: int, body: Any) -> None:
        async with self.db.session() as session:
            row = await self._row(session, person, task_id, key)
            if row is not None:
                row.status, row.body = status, body
                session.add(row)
                await session.commit()

    async def release(self, person: str, task_id: str, key: str) -> None:
        """Forget a claim whose request got no answer to keep (a dependency was down)."""
        async with self.db.session() as session:
            await session.exec(
                delete(DecisionAnswer).where(
                    col(DecisionAnswer.submitted_by) == person,
                    col(DecisionAnswer.task_id) == task_id,
                    col(DecisionAnswer.key) == key,
                )
            )
            await session.commit()

    async def _get(self, person: str, task_id: str, key: str) -> Answer | None:
        async with self.db.session() as session:
            row = await self._row(session, person, task_id, key)
            return Answer(row.fingerprint, row.status, row.body) if row else None

    @staticmethod
    async def _row(session: AsyncSession, person: str, task_id: str, key: str) -> DecisionAnswer | None:
        found = await session.exec(
            select(DecisionAnswer).where(
                DecisionAnswer.submitted_by == person,
                DecisionAnswer.task_id == task_id,
                DecisionAnswer.key == key,
            )
        )
        row: DecisionAnswer | None = found.first()
        return row
