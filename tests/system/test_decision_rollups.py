"""The daily and monthly roll-ups the event writer keeps beside the decision facts give the
figures the facts give: the same counts exactly, the same percentiles exactly for a window of a few
thousand decisions, and within the histogram's resolution above that."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from exosuit.domain.autonomy import GateKind, Risk
from exosuit.domain.contracts import Gate
from exosuit.domain.time_histogram import RESOLUTION
from exosuit.storage import dashboard as dashboard_module
from exosuit.storage import decision_facts as facts
from exosuit.storage.dashboard import Dashboard, Figures
from exosuit.storage.db import Database

START = datetime(2026, 11, 2, tzinfo=UTC)  # three whole days of decisions from here
LONG_START = datetime(2026, 8, 20, tzinfo=UTC)  # or 75 days, across three month ends
DECISIONS: list[dict[str, Any]] = [
    {"action": "approve"},
    {"action": "approve"},
    {"action": "edit", "diff": "-a\n+b"},
    {"action": "reject", "on_reject": "revise"},
    {"action": "reject", "on_reject": "stop"},
    {"action": "answer"},
]


async def decide_history(db: Database, start: datetime = START, days: int = 3) -> list[str]:
    """Gates of two new teams over some days, opened and decided through the writer's
    functions, some from a template only marked after they were decided, some closed
    undecided; the teams."""
    rng, unique = random.Random(21), uuid.uuid4().hex[:8]
    teams = [f"ops-{unique}", f"finance-{unique}"]

    def work(session: Session) -> None:
        conn = session.connection()
        for n in range(240):
            team = teams[n % 2]
            kind = rng.choice([GateKind.PLAN, GateKind.STEP, GateKind.OUTPUT])
            decided_at = start + timedelta(seconds=rng.uniform(0, days * 86400))
            seconds = rng.lognormvariate(6, 1.5) + 1
            opened_at = decided_at - timedelta(seconds=seconds)
            task = {
                "id": f"t_{unique}_{n // 3}",
                "team": team,
                "template": "report" if n // 3 % 3 == 0 else None,
                "autonomy": "guarded",
            }
            gate = Gate(
                f"g_{unique}_{n}",
                kind,
                None,
                opened_at,
                opened_at + timedelta(days=9),
                False,
                risk=Risk.MEDIUM,
            )
            facts.opened(conn, task, gate, opened_at)
            if n % 40 == 7:
                facts.closed(conn, gate.id, decided_at)
                continue
            data = rng.choice(DECISIONS) if kind is not GateKind.PLAN or n % 6 else {"action": "approve"}
            facts.decided(conn, gate.id, actor="user:a@x", data=data, now=decided_at, proposed="p", final="f")
        session.commit()

    await db.write(work)
    for task in range(1, 80, 3):  # tasks run from a template the web marks a moment later
        await facts.mark_template(db, f"t_{unique}_{task}", "weekly")
    return teams


def comparable(figures: Figures) -> dict[str, Any]:
    summary = figures.summary()
    del summary["time_to_decision_seconds"], summary["time_by_team_and_kind"]
    return summary


WINDOWS = [
    (START, START + timedelta(days=3)),  # whole days only: the daily roll-ups alone
    (START + timedelta(hours=7), START + timedelta(days=2, hours=17)),  # with moments either side
    (START + timedelta(hours=3), START + timedelta(hours=20)),  # within one day: the facts alone
]
SEPTEMBER, NOVEMBER = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
MONTH_WINDOWS = [
    (SEPTEMBER, NOVEMBER),  # whole months only: the monthly roll-ups alone
    (LONG_START + timedelta(hours=5), NOVEMBER + timedelta(days=2, hours=9)),  # months, days, moments
    (datetime(2026, 8, 25, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)),  # days, then a month
    (SEPTEMBER + timedelta(hours=1), datetime(2026, 9, 30, tzinfo=UTC)),  # within a month: days
]


@pytest.mark.parametrize(
    ("start", "days", "since", "until"),
    [(START, 3, *window) for window in WINDOWS] + [(LONG_START, 75, *window) for window in MONTH_WINDOWS],
)
async def test_the_roll_ups_give_the_figures_the_facts_give(
    database: Database, start: datetime, days: int, since: datetime, until: datetime
) -> None:
    teams = await decide_history(database, start, days)
    board = Dashboard(database)
    from_rollups = await board.figures(teams, since, until, until)
    from_facts = await board.figures(teams, since, until, until, rollups=False)
    assert from_facts.decisions > 0
    assert comparable(from_rollups) == comparable(from_facts)
    assert from_rollups.rates["template"].keys() == {"report", "weekly"}  # "weekly": once marked
    assert from_rollups.exact_times  # a few hundred times: exact
    assert from_rollups.time_to_decision == from_facts.time_to_decision
    assert from_rollups.time_by_team_kind == from_facts.time_by_team_kind


async def test_above_the_exact_limit_percentiles_are_read_from_the_histograms_within_their_resolution(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    teams = await decide_history(database)
    monkeypatch.setattr(dashboard_module, "EXACT_TIMES", 10)
    board = Dashboard(database)
    since, until = WINDOWS[1]
    read = await board.figures(teams, since, until, until)
    exact = await board.figures(teams, since, until, until, rollups=False)
    assert not read.exact_times and read.summary()["time_to_decision_seconds"]["exact"] is False
    assert comparable(read) == comparable(exact)
    pairs = [(read.time_to_decision, exact.time_to_decision)]
    pairs += [(read.time_by_team_kind[key], p) for key, p in exact.time_by_team_kind.items()]
    for approximate, precise in pairs:
        assert approximate.count == precise.count
        for got, want in ((approximate.p50, precise.p50), (approximate.p90, precise.p90)):
            assert got is not None and want is not None
            assert abs(got - want) / want <= RESOLUTION + 1e-9


def test_a_window_is_cut_into_whole_months_and_the_days_around_them() -> None:
    cut = dashboard_module._cut
    assert cut(*MONTH_WINDOWS[0]).months == ("2026-09", "2026-11") and cut(*MONTH_WINDOWS[0]).days == []
    around = cut(*MONTH_WINDOWS[1])
    assert around.months == ("2026-09", "2026-11")
    assert around.days == [("2026-08-21", "2026-09-01"), ("2026-11-01", "2026-11-03")]
    assert cut(*MONTH_WINDOWS[2]).days == [("2026-08-25", "2026-09-01")]
    within = cut(*MONTH_WINDOWS[3])
    assert within.months is None and within.days == [("2026-09-02", "2026-09-30")]
