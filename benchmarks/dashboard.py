"""How fast the dashboard's queries answer at 100,000 decisions, on SQLite and PostgreSQL.

It fills a fresh database with decided gates as the event writer leaves them (one fact row
per gate, a third of a task each, spread over 120 days and 10 teams, a few hundred still
open), each team's usage per day and the daily roll-ups the writer keeps, then times
`Dashboard.figures` (every query the page and `GET /stats` run) and the earned-autonomy
evidence read, for one team and for all.

    .venv/bin/python benchmarks/dashboard.py [--decisions 100000] [--runs 40]
        [--databases sqlite,postgres] [--baseline]

With --baseline it also times the figures read from the decision facts alone, as they were
before the daily roll-ups, on the same data in the same run.

Goal: p95 under 100 ms for each line.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queue_render import scratch_database  # beside this script

from exosuit.domain.time_histogram import BUCKETS, bucket
from exosuit.storage.dashboard import Dashboard
from exosuit.storage.db import Database, migrate, utcnow
from exosuit.storage.decision_facts import DIMENSIONS, VERDICTS, verdict
from exosuit.storage.suggestions import Suggestions
from exosuit.storage.tables import (
    DECISION_TIME,
    DecisionDay,
    DecisionFact,
    Task,
    TaskTemplate,
    Team,
    UsageDay,
    table_of,
)

TEAMS = [f"team-{n}" for n in range(10)]
TEMPLATES = ["weekly-report", "invoice-check", "release-notes", None]
DAYS = 120
ACTIONS = ["approve"] * 14 + ["edit"] * 3 + ["reject"] * 2 + ["answer"]
KINDS = [
    ("plan", None, None),
    ("step", "llm", None),
    ("step", "tool", "http_request"),
    ("output", "llm", None),
]


async def fill(db: Database, decisions: int) -> None:
    rng = random.Random(21)
    now = utcnow()
    tasks: list[dict[str, Any]] = []
    facts: list[dict[str, Any]] = []
    for n in range(0, decisions, 3):
        team, template = rng.choice(TEAMS), rng.choice(TEMPLATES)
        created = now - timedelta(days=rng.uniform(0, DAYS))
        task_id = f"t_{uuid.uuid4().hex[:20]}"
        still_open = n % 300 == 0
        tasks.append(
            {
                "id": task_id,
                "title": "A task",
                "instructions": "Do it.",
                "team": team,
                "submitted_by": "someone@bench",
                "autonomy": "guarded",
                "status": "awaiting_approval" if still_open else "completed",
                "template": template,
                "planned_by": rng.choice(["model", "model", "model", "rules"]),
                "gate_id": f"g_{uuid.uuid4().hex[:16]}" if still_open else None,
                "gate_kind": "step" if still_open else None,
                "gate_opened_at": now - timedelta(hours=rng.uniform(0, 48)) if still_open else None,
                "created_at": created,
                "updated_at": created,
            }
        )
        for k in range(min(3, decisions - n)):
            kind, step_kind, tool = rng.choice(KINDS)
            action = rng.choice(ACTIONS)
            seconds = rng.lognormvariate(5, 1.2)
            opened = created + timedelta(minutes=10 * k)
            decided = opened + timedelta(seconds=seconds)
            facts.append(
                {
                    "gate_id": f"g_{uuid.uuid4().hex[:16]}",
                    "task_id": task_id,
                    "team": team,
                    "template": template,
                    "kind": kind,
                    "step_kind": step_kind,
                    "tool": tool,
                    "risk": "medium",
                    "autonomy": "guarded",
                    "opened_at": opened,
                    "decided_at": decided,
                    "decided_day": decided.date().isoformat(),
                    "action": action,
                    "on_reject": rng.choice(["revise", "stop"]) if action == "reject" else None,
                    "decided_by": "user:approver@bench",
                    "seconds": seconds,
                    "edit_chars": 120 if action == "edit" else None,
                    "proposed": "What the model proposed, a paragraph or so of text.",
                    "final": "What went on.",
                }
            )
    usage = [
        {
            "team": team,
            "day": (now - timedelta(days=d)).date().isoformat(),
            "calls": 300,
            "prompt_tokens": 90_000,
            "completion_tokens": 30_000,
            "cost_usd": 0.42,
        }
        for team in TEAMS
        for d in range(DAYS)
    ]
    counts, times = rollups(facts)
    async with db.session() as session:
        await session.execute(
            insert(table_of(Team)), [{"name": t, "monthly_budget_usd": 20.0} for t in TEAMS]
        )
        templates = [
            {
                "name": f"{name}-{team}",
                "team": team,
                "title": "t",
                "instructions": "i",
                "autonomy": "guarded",
                "params": [],
                "created_by": "x",
            }
            for team in TEAMS
            for name in TEMPLATES
            if name
        ]
        await session.execute(insert(table_of(TaskTemplate)), templates)
        for chunk in range(0, len(tasks), 5000):
            await session.execute(insert(table_of(Task)), tasks[chunk : chunk + 5000])
        for chunk in range(0, len(facts), 5000):
            await session.execute(insert(table_of(DecisionFact)), facts[chunk : chunk + 5000])
        await session.execute(insert(table_of(UsageDay)), usage)
        for chunk in range(0, len(counts), 5000):
            await session.execute(insert(table_of(DecisionDay)), counts[chunk : chunk + 5000])
        for chunk in range(0, len(times), 500):
            await session.execute(insert(DECISION_TIME), times[chunk : chunk + 500])
        await session.commit()
    async with db.engine.connect() as conn:  # what autovacuum (PostgreSQL) would have done by now
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            await conn.exec_driver_sql("ANALYZE")


def rollups(facts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The daily roll-up rows the event writer would have added to, one decision at a time."""
    counts: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    times: dict[tuple[str, str, str], dict[str, Any]] = {}
    for fact in facts:
        team, on = fact["team"], fact["decided_day"]
        counted = verdict(fact["action"], fact["on_reject"])
        if counted is None:
            continue
        for dimension in DIMENSIONS:
            if fact[dimension] is not None:
                key = (team, on, dimension, fact[dimension])
                row = counts.setdefault(
                    key,
                    dict(zip(("team", "day", "dimension", "value"), key, strict=True))
                    | dict.fromkeys(VERDICTS, 0),
                )
                row[counted] += 1
        if counted != "answer":
            key3 = (team, on, fact["kind"])
            hist = times.setdefault(
                key3,
                {"team": team, "day": on, "kind": fact["kind"]} | {f"b{i:02d}": 0 for i in range(BUCKETS)},
            )
            hist[f"b{bucket(fact['seconds']):02d}"] += 1
    return list(counts.values()), list(times.values())


async def timed(work: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float]:
    for _ in range(3):
        await work()
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        await work()
        took.append((time.perf_counter() - start) * 1000)
    took.sort()
    return statistics.median(took), took[max(0, int(len(took) * 0.95) - 1)]


async def measure(url: str, decisions: int, runs: int, baseline: bool) -> list[tuple[str, float, float]]:
    migrate(url)
    db = Database.from_url(url)
    try:
        await fill(db, decisions)
        dashboard, suggestions = Dashboard(db), Suggestions(db)
        now = utcnow()
        month, all_time = now - timedelta(days=30), now - timedelta(days=DAYS + 1)
        windows = [
            ("one team, 30 days", TEAMS[:1], month),
            ("10 teams, 30 days", TEAMS, month),
            ("10 teams, all 120 days", TEAMS, all_time),
        ]
        cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        for label, teams, since in windows:
            if baseline:  # every decision from the facts, as before the roll-ups
                cases.append(
                    (f"before: figures, {label}", _figures(dashboard, teams, since, now, rollups=False))
                )
            cases.append((f"figures, {label}", _figures(dashboard, teams, since, now, rollups=True)))
        cases += [
            ("suggestions evidence, one team", lambda: suggestions.evidence(TEAMS[:1])),
            ("suggestions evidence, 10 teams", lambda: suggestions.evidence(TEAMS)),
        ]
        return [(name, *await timed(work, runs)) for name, work in cases]
    finally:
        await db.dispose()


def _figures(
    dashboard: Dashboard, teams: list[str], since: datetime, now: datetime, *, rollups: bool
) -> Callable[[], Awaitable[Any]]:
    return lambda: dashboard.figures(teams, since, now, now, rollups=rollups)


async def main(decisions: int, runs: int, databases: list[str], baseline: bool) -> None:
    print(f"dashboard queries at {decisions:,} decisions, {runs} runs each (after 3 to warm up)")
    print(f"{'database':<9} {'what':<42} {'p50 ms':>8} {'p95 ms':>8}")
    for kind in databases:
        async with scratch_database(kind) as url:
            for name, p50, p95 in await measure(url, decisions, runs, baseline):
                print(f"{kind:<9} {name:<42} {p50:>8.1f} {p95:>8.1f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument(
        "--baseline", action="store_true", help="also time the figures read from the facts alone (before)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.decisions, args.runs, args.databases.split(","), args.baseline))
