"""The dashboard's figures: a handful of grouped, indexed queries over the decision facts,
the teams' usage per day, and the read model's open gates.

Percentiles are nearest-rank (the value at rank ceil(p * n) of the sorted times). They are
computed here from one read of the window's times: on SQLite that is several times faster
than ranking them in SQL with window functions, and it is the same figure everywhere.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select

from exosuit.storage.db import Database
from exosuit.storage.decision_facts import day
from exosuit.storage.tables import DecisionFact, Task, Team, UsageDay, table_of

ACTIONS = ("approve", "edit", "reject", "answer")
VERDICTS = ("approve", "edit", "revise", "reject")  # a reject sent back for revision is its own rate
AGES = ((3600.0, "< 1 h"), (4 * 3600.0, "1-4 h"), (24 * 3600.0, "4-24 h"), (float("inf"), "> 24 h"))

_F = table_of(DecisionFact).c
_T = table_of(Task).c
_U = table_of(UsageDay).c
_TEAM = table_of(Team).c


@dataclass
class Percentiles:
    count: int = 0
    p50: float | None = None
    p90: float | None = None


@dataclass
class Rates:
    """How often gates in one group were approved, edited, sent back or rejected."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def share(self, verdict: str) -> float:
        return self.counts[verdict] / self.total if self.total else 0.0


@dataclass
class UsagePoint:
    team: str
    day: str
    calls: int
    tokens: int
    cost_usd: float


@dataclass
class Figures:
    """Everything the page and the API show for some teams between two moments."""

    since: datetime
    until: datetime
    decisions: int = 0
    by_action: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    per_day: dict[str, dict[str, int]] = field(default_factory=dict)  # day: verdict: count
    time_to_decision: Percentiles = field(default_factory=Percentiles)
    time_by_team_kind: dict[tuple[str, str], Percentiles] = field(default_factory=dict)
    rates: dict[str, dict[str, Rates]] = field(default_factory=dict)  # dimension: value: rates
    usage: list[UsagePoint] = field(default_factory=list)
    monthly_budgets: dict[str, float | None] = field(default_factory=dict)
    planners: dict[str, int] = field(default_factory=dict)  # model, rules: tasks planned
    open_gates: list[tuple[str, str, float]] = field(default_factory=list)  # team, kind, age in seconds

    @property
    def cost_usd(self) -> float:
        return round(sum(u.cost_usd for u in self.usage), 6)

    @property
    def tokens(self) -> int:
        return sum(u.tokens for u in self.usage)

    @property
    def plan_edit_rate(self) -> float:
        plans = self.rates.get("kind", {}).get("plan")
        return plans.share("edit") if plans else 0.0

    def open_by_age(self) -> dict[str, int]:
        ages = dict.fromkeys((label for _, label in AGES), 0)
        for _, _, seconds in self.open_gates:
            ages[next(label for limit, label in AGES if seconds < limit)] += 1
        return ages

    def summary(self) -> dict[str, Any]:
        """The API's figures (the first six keys are the stable ones)."""
        return {
            "decisions": self.decisions,
            "by_action": self.by_action,
            "time_to_decision_seconds": {"p50": self.time_to_decision.p50, "p90": self.time_to_decision.p90},
            "cost_usd": self.cost_usd,
            "tokens": self.tokens,
            "open_gates": len(self.open_gates),
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "per_day": self.per_day,
            "time_by_team_and_kind": [
                {"team": team, "kind": kind, "count": p.count, "p50": p.p50, "p90": p.p90}
                for (team, kind), p in sorted(self.time_by_team_kind.items())
            ],
            "rates": {
                dimension: {value: r.counts for value, r in sorted(groups.items())}
                for dimension, groups in self.rates.items()
            },
            "usage_per_day": [u.__dict__ for u in self.usage],
            "planners": self.planners,
            "plan_edit_rate": self.plan_edit_rate,
            "open_gates_by_age": self.open_by_age(),
        }


def verdict(action: str, on_reject: str | None) -> str:
    """A decision as the rates count it."""
    return "revise" if action == "reject" and on_reject == "revise" else action


class Dashboard:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def figures(self, teams: Sequence[str], since: datetime, until: datetime, now: datetime) -> Figures:
        """The figures of these teams' decisions in [since, until), and their gates open `now`."""
        figures = Figures(since, until)
        if not teams:
            return figures
        teams = list(teams)
        decided = and_(
            _F.team.in_(teams), _F.decided_at >= since, _F.decided_at < until, _F.action.in_(ACTIONS)
        )

        async def rows(query: Select[Any]) -> list[Any]:
            async with self.db.engine.connect() as session:  # one connection each: side by side
                return list((await session.execute(query)).all())

        per_day, times, groups, usage, budgets, planners, open_gates = await asyncio.gather(
            rows(
                select(_F.decided_day, _F.action, _F.on_reject, func.count())
                .where(decided)
                .group_by(_F.decided_day, _F.action, _F.on_reject)
            ),
            rows(select(_F.team, _F.kind, _F.seconds).where(decided, _F.action != "answer")),
            rows(
                select(
                    _F.team,
                    _F.kind,
                    _F.step_kind,
                    _F.tool,
                    _F.template,
                    _F.action,
                    _F.on_reject,
                    func.count(),
                )
                .where(decided)
                .group_by(_F.team, _F.kind, _F.step_kind, _F.tool, _F.template, _F.action, _F.on_reject)
            ),
            rows(
                select(_U.team, _U.day, _U.calls, _U.prompt_tokens + _U.completion_tokens, _U.cost_usd)
                .where(_U.team.in_(teams), _U.day >= day(since), _U.day <= day(until))
                .order_by(_U.day, _U.team)
            ),
            rows(select(_TEAM.name, _TEAM.monthly_budget_usd).where(_TEAM.name.in_(teams))),
            rows(
                select(_T.planned_by, func.count())
                .where(
                    _T.team.in_(teams),
                    _T.created_at >= since,
                    _T.created_at < until,
                    _T.planned_by.is_not(None),
                )
                .group_by(_T.planned_by)
            ),
            rows(
                select(_T.team, _T.gate_kind, _T.gate_opened_at).where(
                    _T.team.in_(teams), _T.gate_id.is_not(None)
                )
            ),
        )
        for when, action, on_reject, count in per_day:
            figures.decisions += count
            figures.by_action[action] += count
            if action != "answer":
                verdicts = figures.per_day.setdefault(when, dict.fromkeys(VERDICTS, 0))
                verdicts[verdict(action, on_reject)] += count
        figures.per_day = dict(sorted(figures.per_day.items()))
        by_team_kind: dict[tuple[str, str], list[float]] = defaultdict(list)
        for team, kind, seconds in times:
            by_team_kind[team, kind].append(seconds)
        figures.time_to_decision = percentiles([s for _, _, s in times])
        figures.time_by_team_kind = {key: percentiles(values) for key, values in by_team_kind.items()}
        for team, kind, step_kind, tool, template, action, on_reject, count in groups:
            if action == "answer":
                continue
            named = {"team": team, "kind": kind, "step_kind": step_kind, "tool": tool, "template": template}
            for dimension, value in named.items():
                if value is not None:
                    rates = figures.rates.setdefault(dimension, {}).setdefault(value, Rates())
                    rates.counts[verdict(action, on_reject)] += count
        figures.usage = [UsagePoint(*row) for row in usage]
        figures.monthly_budgets = dict(budgets)
        figures.planners = dict(planners)
        figures.open_gates = [(t, k, max(0.0, (now - at).total_seconds())) for t, k, at in open_gates]
        return figures


def percentiles(values: list[float]) -> Percentiles:
    """p50 and p90 by nearest rank: the values at ranks ceil(n / 2) and ceil(9n / 10)."""
    if not values:
        return Percentiles()
    ordered, n = sorted(values), len(values)
    return Percentiles(n, ordered[(n + 1) // 2 - 1], ordered[(9 * n + 9) // 10 - 1])
