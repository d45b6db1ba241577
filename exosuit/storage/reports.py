"""Usage reports: what model calls used and cost, per team and month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from exosuit.storage.db import Database
from exosuit.storage.tables import ModelCall, Task


@dataclass(frozen=True)
class UsageRow:
    team: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class Reports:
    def __init__(self, db: Database) -> None:
        self.db = db

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
