"""The dashboard's figures: a handful of grouped, indexed queries over the monthly and daily
roll-ups (whole UTC months and the other whole UTC days), the decision facts (the moments
before the first whole day and after the last), the teams' usage per day, and the read
model's open gates. Counts are exact.

Percentiles are nearest-rank (the value at rank ceil(p * n) of the sorted times). Up to
EXACT_TIMES timed decisions in the window (or in a window of no whole day) they are exact,
from one read of every time (on SQLite several times faster than ranking in SQL with window
functions). Above that they are read from the daily log-scale histograms
(exosuit/domain/time_histogram.py), within 9.1%.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from exosuit.domain import time_histogram
from exosuit.domain.time_histogram import BUCKETS
from exosuit.storage.db import Database
from exosuit.storage.decision_facts import VERDICTS as VERDICT_COLUMNS
from exosuit.storage.decision_facts import day, month
from exosuit.storage.decision_facts import verdict as counted
from exosuit.storage.tables import (
    DECISION_TIME,
    DECISION_TIME_MONTH,
    DecisionDay,
    DecisionFact,
    DecisionMonth,
    PlanDay,
    Task,
    Team,
    UsageDay,
    table_of,
)

ACTIONS = ("approve", "edit", "reject", "answer")
VERDICTS = ("approve", "edit", "revise", "reject")  # a reject sent back for revision is its own rate
AGES = ((3600.0, "< 1 h"), (4 * 3600.0, "1-4 h"), (24 * 3600.0, "4-24 h"), (float("inf"), "> 24 h"))

_F = table_of(DecisionFact).c
_T = table_of(Task).c
_U = table_of(UsageDay).c
_D = table_of(DecisionDay).c
_DM = table_of(DecisionMonth).c
_H = DECISION_TIME.c
_HM = DECISION_TIME_MONTH.c
_P = table_of(PlanDay).c
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
    exact_times: bool = True  # the percentiles are exact, or read from the histogram

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
            "time_to_decision_seconds": {
                "p50": self.time_to_decision.p50,
                "p90": self.time_to_decision.p90,
                "exact": self.exact_times,
            },
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
    return counted(action, on_reject) or action


EXACT_TIMES = 5000  # up to this many timed decisions in a window, percentiles are exact


@dataclass(frozen=True)
class _Span:
    """A window cut into the whole UTC days the roll-ups hold and the moments on either side;
    the whole days into whole UTC months and the days around them."""

    first_day: str | None  # whole days [first_day, end_day), or None: no whole day
    end_day: str | None
    edges: list[tuple[datetime, datetime]]  # the moments outside the whole days, [from, to)
    months: tuple[str, str] | None = None  # whole months [from, to) as "2026-09", or None: none
    days: list[tuple[str, str]] = field(default_factory=list)  # the whole days outside them


def _cut(since: datetime, until: datetime) -> _Span:
    start = datetime.combine(since.date(), time(), UTC)
    first = start if start == since else start + timedelta(days=1)
    end = datetime.combine(until.date(), time(), UTC)
    if first >= end:
        return _Span(None, None, [(since, until)])
    edges = [(since, first), (end, until)]
    first_month = first if first.day == 1 else (first.replace(day=1) + timedelta(days=32)).replace(day=1)
    end_month = end.replace(day=1)
    if first_month >= end_month:
        return _Span(day(first), day(end), edges, None, [(day(first), day(end))])
    days = [(day(a), day(b)) for a, b in ((first, first_month), (end_month, end)) if a < b]
    return _Span(day(first), day(end), edges, (month(day(first_month)), month(day(end_month))), days)


class Dashboard:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _batch(self, *queries: Select[Any] | None) -> list[list[Any]]:
        """These queries one after the other on one connection (None: no rows)."""
        async with self.db.engine.connect() as session:
            return [list((await session.execute(q)).all()) if q is not None else [] for q in queries]

    async def _times(self, every_time: Any, *histograms: Select[Any]) -> tuple[list[Any], list[Any] | None]:
        """On one connection: the whole days' time histograms (daily and monthly rows), and
        every time of the window if there are few enough for exact percentiles (counted in
        the index first); nothing without a whole day (the facts at the edges hold every time)."""
        if not histograms:
            return [], None
        async with self.db.engine.connect() as session:
            sums = [row for q in histograms for row in (await session.execute(q)).all()]
            capped = select(_F.seconds).where(every_time).limit(EXACT_TIMES + 1).subquery()
            if (await session.execute(select(func.count()).select_from(capped))).scalar_one() > EXACT_TIMES:
                return sums, None
            times = await session.execute(select(_F.team, _F.kind, _F.seconds).where(every_time))
            return sums, list(times.all())

    async def figures(
        self, teams: Sequence[str], since: datetime, until: datetime, now: datetime, *, rollups: bool = True
    ) -> Figures:
        """The figures of these teams' decisions in [since, until), and their gates open `now`.

        Whole UTC days are read from the daily roll-ups, the moments before the first and
        after the last from the facts; `rollups=False` reads every decision from the facts
        (what the benchmark compares against)."""
        figures = Figures(since, until)
        if not teams:
            return figures
        teams = list(teams)
        span = _cut(since, until) if rollups else _Span(None, None, [(since, until)])
        # Each edge a range of the (team, decided_at) index of its own, so an OR reads two ranges.
        edges = [and_(_F.team.in_(teams), _F.decided_at >= a, _F.decided_at < b) for a, b in span.edges]
        facts = and_(or_(*edges), _F.action.in_(ACTIONS))
        task_edges = [and_(_T.team.in_(teams), _T.created_at >= a, _T.created_at < b) for a, b in span.edges]
        first, end = span.first_day or "", span.end_day or ""  # unused without a whole day
        days = and_(_D.team.in_(teams), _D.day >= first, _D.day < end)
        sums = [func.sum(_D[v]) for v in VERDICT_COLUMNS]
        whole = span.first_day is not None
        # By value and the time histograms: a row per whole month, a row per day around them.
        by_value, histograms = _by_value_and_histograms(teams, span)
        every_time = and_(
            _F.team.in_(teams),
            _F.decided_at >= since,
            _F.decided_at < until,
            _F.action.in_(ACTIONS),
            _F.action != "answer",
        )
        # Four connections side by side, a few queries each: the facts around the whole days,
        # the day counts, the times, and the rest (a connection apiece would cost more in
        # connections than the small queries take).
        (
            (per_day, edge_times, groups),
            (day_counts, planned, *group_counts),
            (histogram_rows, times_read),
            rest,
        ) = await asyncio.gather(
            self._batch(
                select(_F.decided_day, _F.action, _F.on_reject, func.count())
                .where(facts)
                .group_by(_F.decided_day, _F.action, _F.on_reject),
                select(_F.team, _F.kind, _F.seconds).where(facts, _F.action != "answer"),
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
                .where(facts)
                .group_by(_F.team, _F.kind, _F.step_kind, _F.tool, _F.template, _F.action, _F.on_reject),
            ),
            self._batch(
                select(_D.day, *sums).where(days, _D.dimension == "team").group_by(_D.day) if whole else None,
                select(_P.planner, func.sum(_P.tasks))
                .where(_P.team.in_(teams), _P.day >= first, _P.day < end)
                .group_by(_P.planner)
                if whole
                else None,
                *by_value,
            ),
            self._times(every_time, *histograms),
            self._batch(
                select(_U.team, _U.day, _U.calls, _U.prompt_tokens + _U.completion_tokens, _U.cost_usd)
                .where(_U.team.in_(teams), _U.day >= day(since), _U.day <= day(until))
                .order_by(_U.day, _U.team),
                select(_TEAM.name, _TEAM.monthly_budget_usd).where(_TEAM.name.in_(teams)),
                select(_T.planned_by, func.count())  # the tasks created around the whole days
                .where(or_(*task_edges), _T.planned_by.is_not(None))
                .group_by(_T.planned_by),
                select(_T.team, _T.gate_kind, _T.gate_opened_at).where(
                    _T.team.in_(teams), _T.gate_id.is_not(None)
                ),
            ),
        )
        usage, budgets, planners, open_gates = rest
        _add_counts(figures, per_day, day_counts, groups, [row for rows in group_counts for row in rows])
        exact: list[Any] | None = times_read if whole else edge_times
        if exact is not None:  # no whole day (the facts hold every time), or few enough times
            by_team_kind: dict[tuple[str, str], list[float]] = defaultdict(list)
            for team, kind, seconds in exact:
                by_team_kind[team, kind].append(seconds)
            figures.time_to_decision = percentiles([s for _, _, s in exact])
            figures.time_by_team_kind = {key: percentiles(values) for key, values in by_team_kind.items()}
        else:
            figures.exact_times = False
            buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * BUCKETS)
            for team, kind, *counts in histogram_rows:
                added = buckets[team, kind]
                for index, count in enumerate(counts):
                    added[index] += int(count or 0)
            for team, kind, seconds in edge_times:
                buckets[team, kind][time_histogram.bucket(seconds)] += 1
            overall = [sum(column) for column in zip(*buckets.values(), strict=True)]
            figures.time_to_decision = read_histogram(overall)
            figures.time_by_team_kind = {key: read_histogram(counts) for key, counts in buckets.items()}
        figures.usage = [UsagePoint(*row) for row in usage]
        figures.monthly_budgets = dict(budgets)
        for planner, count in [*planners, *planned]:
            if count:
                figures.planners[planner] = figures.planners.get(planner, 0) + int(count)
        figures.open_gates = [(t, k, max(0.0, (now - at).total_seconds())) for t, k, at in open_gates]
        return figures


def _by_value_and_histograms(teams: list[str], span: _Span) -> tuple[list[Select[Any]], list[Select[Any]]]:
    """The statements that read the whole days' counts by each dimension's value and their
    time histograms: from the monthly roll-ups for the whole months, from the daily ones for
    each run of days around them (a statement per run: each reads one range of the index)."""
    ranges = [(_D, _H, "day", a, b) for a, b in span.days]
    if span.months:
        ranges.append((_DM, _HM, "month", *span.months))
    by_value, histograms = [], []
    for counts, times, period, first, end in ranges:
        by_value.append(
            select(counts.dimension, counts.value, *(func.sum(counts[v]) for v in VERDICT_COLUMNS))
            .where(counts.team.in_(teams), counts[period] >= first, counts[period] < end)
            .group_by(counts.dimension, counts.value)
        )
        histograms.append(
            select(times.team, times.kind, *(func.sum(times[f"b{i:02d}"]) for i in range(BUCKETS)))
            .where(times.team.in_(teams), times[period] >= first, times[period] < end)
            .group_by(times.team, times.kind)
        )
    return by_value, histograms


def _add_counts(
    figures: Figures, per_day: list[Any], day_counts: list[Any], groups: list[Any], group_counts: list[Any]
) -> None:
    """The decisions counted from the facts (the window's edges) and the roll-ups (its whole
    days), by day and verdict and by each dimension's value."""
    _add_day_counts(figures, per_day, day_counts)
    _add_group_counts(figures, groups, group_counts)


def _add_day_counts(figures: Figures, per_day: list[Any], day_counts: list[Any]) -> None:
    days_seen: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(VERDICT_COLUMNS, 0))
    for when, action, on_reject, count in per_day:
        days_seen[when][verdict(action, on_reject)] += count
    for when, *counts in day_counts:
        for column, count in zip(VERDICT_COLUMNS, counts, strict=True):
            days_seen[when][column] += int(count or 0)
    for when, counts in sorted(days_seen.items()):
        for column, count in counts.items():
            figures.decisions += count
            figures.by_action["reject" if column == "revise" else column] += count
        if any(counts[v] for v in VERDICTS):
            figures.per_day[when] = {v: counts[v] for v in VERDICTS}


def _add_group_counts(figures: Figures, groups: list[Any], group_counts: list[Any]) -> None:
    for team, kind, step_kind, tool, template, action, on_reject, count in groups:
        if action == "answer":
            continue
        named = {"team": team, "kind": kind, "step_kind": step_kind, "tool": tool, "template": template}
        for dimension, value in named.items():
            if value is not None:
                figures.rates.setdefault(dimension, {}).setdefault(value, Rates()).counts[
                    verdict(action, on_reject)
                ] += count
    for dimension, value, *counts in group_counts:
        rates = figures.rates.setdefault(dimension, {}).setdefault(value, Rates())
        for column, count in zip(VERDICT_COLUMNS, counts, strict=True):
            if column != "answer":
                rates.counts[column] += int(count or 0)


def read_histogram(counts: list[int]) -> Percentiles:
    """p50 and p90 read from bucket counts (within the histogram's resolution)."""
    return Percentiles(
        sum(counts), time_histogram.percentile(counts, 0.5), time_histogram.percentile(counts, 0.9)
    )


def percentiles(values: list[float]) -> Percentiles:
    """p50 and p90 by nearest rank: the values at ranks ceil(n / 2) and ceil(9n / 10)."""
    if not values:
        return Percentiles()
    ordered, n = sorted(values), len(values)
    return Percentiles(n, ordered[(n + 1) // 2 - 1], ordered[(9 * n + 9) // 10 - 1])
