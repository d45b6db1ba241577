"""Decision links: a token per person and open gate, stored hashed, spent by its first use."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select

from exosuit.storage.db import Database, utcnow
from exosuit.storage.identity import hash_token
from exosuit.storage.tables import DecisionLink, Task

LINK_LIFETIME = timedelta(hours=24)


class DecisionLinks:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def mint(self, task_id: str, email: str) -> str | None:
        """A new link's token for the task's open gate and this person (None: no gate is open).
        It expires with the gate's deadline, or after LINK_LIFETIME if that comes first."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with self.db.session() as session:
            task = await session.get(Task, task_id)
            if task is None or task.gate_id is None:
                return None
            expires = now + LINK_LIFETIME
            if task.gate_deadline is not None:
                expires = min(expires, task.gate_deadline)
            session.add(
                DecisionLink(
                    token_hash=hash_token(token),
                    task_id=task_id,
                    gate_id=task.gate_id,
                    email=email,
                    expires_at=expires,
                )
            )
            await session.commit()
        return token

    async def live(self, token: str) -> DecisionLink | None:
        """The link a token names, if it is unused, unexpired and its gate is still the open one."""
        async with self.db.session() as session:
            link = await session.get(DecisionLink, hash_token(token))
            if link is None or link.used_at is not None or link.expires_at <= utcnow():
                return None
            task = await session.get(Task, link.task_id)
            return link if task is not None and task.gate_id == link.gate_id else None

    async def spend(self, token: str) -> bool:
        """Use the link up; False if it was already used (of two racing uses, one wins)."""
        async with self.db.session() as session:
            spent = await session.exec(
                update(DecisionLink)
                .where(col(DecisionLink.token_hash) == hash_token(token), col(DecisionLink.used_at).is_(None))
                .values(used_at=utcnow())
            )
            await session.commit()
            return bool(spent.rowcount)

    async def for_task(self, task_id: str) -> list[DecisionLink]:
        async with self.db.session() as session:
            return list(await session.exec(select(DecisionLink).where(DecisionLink.task_id == task_id)))
