"""Usage reports: what model calls used and cost, per team and month."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from exosuit.storage.db import Database
from exosuit.storage.decision_facts import day
from exosuit.storage.tables import ModelCall, Task, UsageDay, WebhookDelivery, WebhookSubscription, table_of


@dataclass(frozen=True)
class Snapshot:
    """What the read model says now, for the metrics endpoint."""

    open_gates: list[tuple[str, str, int]]  # kind, team, count
    tasks: list[tuple[str, str, int]]  # status, team, count
    usage: list[UsageRow]  # every call ever made, by team
    webhook_deliveries: list[tuple[str, str, int]] = field(default_factory=list)  # status, team, count


@dataclass(frozen=True)
class UsageRow:
    team: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


_DELIVERIES = (  # webhook messages by status and team
    sa_select(col(WebhookDelivery.status), col(WebhookSubscription.team), func.count())
    .join(WebhookSubscription, col(WebhookSubscription.id) == col(WebhookDelivery.subscription_id))
    .group_by(col(WebhookDelivery.status), col(WebhookSubscription.team))
)


class Reports:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def team_spend(self, team: str, since: datetime) -> float:
        """What a team's model calls cost since the start of a UTC day (a month's first): from
        its usage per day, a row a day however many calls it made (every budgeted step asks)."""
        query = select(func.coalesce(func.sum(UsageDay.cost_usd), 0.0)).where(
            UsageDay.team == team, col(UsageDay.day) >= day(since)
        )
        return await self.db.read(lambda session: float(session.exec(query).one()))

    async def snapshot(self) -> Snapshot:
        """Open gates by kind and team, tasks by status and team, usage by team: three grouped counts."""
        gates = sa_select(col(Task.gate_kind), col(Task.team), func.count()).where(
            col(Task.gate_id).is_not(None)
        )
        tasks = sa_select(col(Task.status), col(Task.team), func.count())
        async with self.db.session() as session:
            open_gates = list(await session.exec(gates.group_by(col(Task.gate_kind), col(Task.team))))  # type: ignore[call-overload]
            by_status = list(await session.exec(tasks.group_by(col(Task.status), col(Task.team))))  # type: ignore[call-overload]
            deliveries = list(await session.exec(_DELIVERIES))  # type: ignore[call-overload]
        usage = await self._usage_ever()
        rows = [[tuple(r) for r in found] for found in (open_gates, by_status, deliveries)]
        return Snapshot(rows[0], rows[1], usage, rows[2])

    async def _usage_ever(self) -> list[UsageRow]:
        """Every call's usage, by team: summed from the usage per day (a row per team and day,
        however many calls), as every scrape of the metrics asks for it."""
        u = table_of(UsageDay).c
        sums = (
            func.sum(u.calls),
            func.sum(u.prompt_tokens),
            func.sum(u.completion_tokens),
            func.sum(u.cost_usd),
        )
        query = sa_select(u.team, *sums).group_by(u.team).order_by(u.team)
        rows = await self.db.read(lambda session: session.execute(query).all())
        return [UsageRow(team, int(n), int(p), int(c), float(cost)) for team, n, p, c, cost in rows]

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
