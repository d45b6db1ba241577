"""A team's notification targets and the notifications waiting to go out to its approvers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import col, select

from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import Notification, NotifyTarget


class Notifications:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def set_targets(self, team: str, urls: Sequence[str]) -> None:
        """The team's Apprise URLs, replacing the ones it had."""
        async with self.db.session() as session:
            await session.exec(delete(NotifyTarget).where(col(NotifyTarget.team) == team))
            session.add_all([NotifyTarget(team=team, url=url) for url in dict.fromkeys(urls)])
            await session.commit()

    async def targets(self, team: str) -> list[str]:
        async with self.db.session() as session:
            found = await session.exec(
                select(NotifyTarget.url).where(NotifyTarget.team == team).order_by(col(NotifyTarget.id))
            )
            return list(found)

    async def waiting_team(self, task_id: str, since_seq: int) -> str | None:
        """The team whose notifications these events (from `since_seq` on) added, if any are unsent."""
        async with self.db.session() as session:
            found = await session.exec(
                select(Notification.team)
                .where(
                    Notification.task_id == task_id,
                    col(Notification.seq) >= since_seq,
                    col(Notification.sent_at).is_(None),
                )
                .limit(1)
            )
            return found.first()

    async def stale_teams(self, before: datetime) -> list[str]:
        """Teams with notifications unsent since `before` (an event no wake reached)."""
        async with self.db.session() as session:
            found = await session.exec(
                select(Notification.team)
                .where(col(Notification.sent_at).is_(None), col(Notification.created_at) < before)
                .distinct()
            )
            return list(found)

    async def pending(self, team: str, limit: int = 1000) -> list[Notification]:
        async with self.db.session() as session:
            found = await session.exec(
                select(Notification)
                .where(Notification.team == team, col(Notification.sent_at).is_(None))
                .order_by(col(Notification.id))
                .limit(limit)
            )
            return list(found)

    async def mark_sent(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        async with self.db.session() as session:
            await session.exec(
                update(Notification).where(col(Notification.id).in_(list(ids))).values(sent_at=utcnow())
            )
            await session.commit()
