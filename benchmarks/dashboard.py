"""How fast the dashboard answers at 100,000 decisions, on SQLite and PostgreSQL.

It fills a fresh database with decided gates as the event writer leaves them (one fact row
per gate, a third of a task each, spread over 120 days and 10 teams, a few hundred still
open), each team's usage per day and the roll-ups the writer keeps, serves the app over
real HTTP on loopback (`benchmarks/serve_app.py`, a process of its own) and times, as an
approver of the 10 teams, `/dashboard` (the whole page: figures, autonomy suggestions,
charts) and `GET /api/v1/stats`, with the default window (the last 30 days), one team, and
a date range (all 120 days).

    .venv/bin/python benchmarks/dashboard.py [--decisions 100000] [--runs 40]
        [--databases sqlite,postgres] [--baseline REV] [--queries]

--baseline REV also serves an export of revision REV (`git archive`) over the same database,
and times its requests in turn with this tree's, so both see the same noise. --queries
prints, before the requests, what each statement of the figures and of the suggestions'
evidence takes in this tree (one at a time, in process).

Goal: p95 under 100 ms for each request.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import event, insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queue_render import scratch_database  # beside this script

from exosuit.domain.autonomy import Role
from exosuit.domain.time_histogram import BUCKETS, bucket
from exosuit.storage.dashboard import Dashboard
from exosuit.storage.db import Database, migrate, utcnow
from exosuit.storage.decision_facts import DIMENSIONS, VERDICTS, month, verdict
from exosuit.storage.identity import Directory
from exosuit.storage.suggestions import Suggestions
from exosuit.storage.tables import (
    DECISION_TIME,
    DECISION_TIME_MONTH,
    DecisionDay,
    DecisionFact,
    DecisionMonth,
    PlanDay,
    Task,
    TaskTemplate,
    Team,
    UsageDay,
    table_of,
)

HERE = Path(__file__).resolve().parent.parent
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
        team, name = rng.choice(TEAMS), rng.choice(TEMPLATES)
        template = f"{name}-{team}" if name else None  # the team's template of that name
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
    plans: dict[tuple[str, str, str], int] = {}
    for task in tasks:
        key = (task["team"], task["created_at"].date().isoformat(), task["planned_by"])
        plans[key] = plans.get(key, 0) + 1
    planned = [{"team": t, "day": d, "planner": p, "tasks": n} for (t, d, p), n in plans.items()]
    async with db.engine.begin() as session:
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
        for period, counted, timed in (
            ("day", DecisionDay, DECISION_TIME),
            ("month", DecisionMonth, DECISION_TIME_MONTH),
        ):
            counts, times = rollups(facts, period)
            for chunk in range(0, len(counts), 5000):
                await session.execute(insert(table_of(counted)), counts[chunk : chunk + 5000])
            for chunk in range(0, len(times), 500):
                await session.execute(insert(timed), times[chunk : chunk + 500])
        await session.execute(insert(table_of(PlanDay)), planned)
    async with db.engine.connect() as conn:  # what autovacuum (PostgreSQL) would have done by now
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            await conn.exec_driver_sql("ANALYZE")


def rollups(facts: list[dict[str, Any]], period: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The roll-up rows by `period` ("day" or "month") the event writer would have added to,
    one decision at a time."""
    counts: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    times: dict[tuple[str, str, str], dict[str, Any]] = {}
    for fact in facts:
        team, on = fact["team"], fact["decided_day"] if period == "day" else month(fact["decided_day"])
        counted = verdict(fact["action"], fact["on_reject"])
        if counted is None:
            continue
        for dimension in DIMENSIONS:
            if fact[dimension] is not None:
                key = (team, on, dimension, fact[dimension])
                row = counts.setdefault(
                    key,
                    dict(zip(("team", period, "dimension", "value"), key, strict=True))
                    | dict.fromkeys(VERDICTS, 0),
                )
                row[counted] += 1
        if counted != "answer":
            key3 = (team, on, fact["kind"])
            hist = times.setdefault(
                key3,
                {"team": team, period: on, "kind": fact["kind"]} | {f"b{i:02d}": 0 for i in range(BUCKETS)},
            )
            hist[f"b{bucket(fact['seconds']):02d}"] += 1
    return list(counts.values()), list(times.values())


PAGES = [
    ("/dashboard, 10 teams, 30 days", "/dashboard"),
    ("/dashboard?team=, one team", f"/dashboard?team={TEAMS[0]}"),
    ("/api/v1/stats, 10 teams, 30 days", "/api/v1/stats"),
    ("/api/v1/stats?team=, one team", f"/api/v1/stats?team={TEAMS[0]}"),
    ("/api/v1/stats?since=&until=, 120 days", "/api/v1/stats?since={since}&until={until}"),
]
APPROVER = "approver@bench"


def nearest_rank(took: list[float], share: float) -> float:
    ordered = sorted(took)
    return ordered[max(0, -(-len(ordered) * 19 // 20) - 1)] if share == 0.95 else statistics.median(ordered)


async def signed_in(port: int, token: str) -> httpx.AsyncClient:
    """An approver of the 10 teams, signed in to the app on this port (and with a token)."""
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120)
    login = await http.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf, login.text[:300]
    await http.post("/login", data={"email": APPROVER, "password": "pw", "csrf_token": csrf.group(1)})
    http.headers["Authorization"] = f"Bearer {token}"
    return http


@asynccontextmanager
async def served(tree: Path, url: str) -> AsyncIterator[int]:
    """`tree`'s app over this database in a process of its own: its port."""
    with tempfile.TemporaryDirectory() as data_dir:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "benchmarks" / "serve_app.py"),
            str(tree),
            url,
            data_dir,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=tree,
        )
        assert child.stdout and child.stdin
        try:
            yield int(await child.stdout.readline())
        finally:
            child.stdin.close()
            await child.wait()


@contextmanager
def exported(rev: str | None) -> Iterator[Path | None]:
    """Revision `rev` of this repository exported to a temporary folder (None: none)."""
    if rev is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="exosuit-rev-") as folder:
        archive = subprocess.run(["git", "archive", rev], cwd=HERE, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        yield Path(folder)


async def requests(
    url: str, token: str, runs: int, baseline: Path | None
) -> list[tuple[str, list[list[float]]]]:
    """Each page's times in this tree (and the baseline's), the two asked in turn."""
    trees = [HERE] if baseline is None else [baseline, HERE]
    now = utcnow()
    since, until = (now - timedelta(days=DAYS + 1)).date().isoformat(), now.isoformat()
    async with AsyncExitStack() as stack:
        clients = [await signed_in(await stack.enter_async_context(served(t, url)), token) for t in trees]
        for http in clients:
            stack.push_async_callback(http.aclose)
        found = []
        for label, path in PAGES:
            path = path.format(since=since, until=quote(until))
            took: list[list[float]] = [[] for _ in clients]
            for n in range(runs + 3):  # the first 3 warm up
                for http, times in zip(clients, took, strict=True):
                    start = time.perf_counter()
                    response = await http.get(path)
                    if n >= 3:
                        times.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, (path, response.status_code, response.text[:300])
            found.append((label, took))
        return found


async def queries(db: Database, runs: int) -> None:
    """What each statement of the figures and the evidence takes, one request at a time."""
    took: dict[str, list[float]] = defaultdict(list)
    engine = db.engine.sync_engine

    def before(conn: Any, *_: Any) -> None:
        conn.info["started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        took[statement].append((time.perf_counter() - conn.info["started"]) * 1000)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    dashboard, suggestions = Dashboard(db), Suggestions(db)
    now = utcnow()
    cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("figures, 10 teams, 30 days", lambda: dashboard.figures(TEAMS, now - timedelta(days=30), now, now)),
        (
            "figures, one team, 30 days",
            lambda: dashboard.figures(TEAMS[:1], now - timedelta(days=30), now, now),
        ),
        (
            "figures, 10 teams, 120 days",
            lambda: dashboard.figures(TEAMS, now - timedelta(days=DAYS + 1), now, now),
        ),
        ("suggestions evidence, 10 teams", lambda: suggestions.evidence(TEAMS)),
    ]
    try:
        for label, work in cases:
            await work()
            took.clear()
            wall = []
            for _ in range(runs):
                start = time.perf_counter()
                await work()
                wall.append((time.perf_counter() - start) * 1000)
            print(f"  {label}: p50 {statistics.median(wall):.1f} ms, fastest {min(wall):.1f} ms, statements:")
            for statement, times in sorted(took.items(), key=lambda kv: -statistics.median(kv[1])):
                text = " ".join(statement.split())
                each = len(times) // runs
                print(f"    {statistics.median(times):6.2f} ms x{each:<3} {text[:110]}")
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


async def measure(kind: str, decisions: int, runs: int, baseline: Path | None, per_query: bool) -> None:
    async with scratch_database(kind) as url:
        migrate(url)
        db = Database.from_url(url)
        try:
            await fill(db, decisions)
            directory = Directory(db)
            await directory.add_user(APPROVER, teams=TEAMS, role=Role.APPROVER, password="pw")
            token = await directory.create_token(APPROVER)
            if per_query:
                print(f"{kind}: per statement, {runs} runs", flush=True)
                await queries(db, runs)
        finally:
            await db.dispose()
        for label, took in await requests(url, token, runs, baseline):
            cells = "".join(f" {nearest_rank(t, 0.5):>8.1f} {nearest_rank(t, 0.95):>8.1f}" for t in took)
            print(f"{kind:<9} {label:<40}{cells}", flush=True)


async def main(decisions: int, runs: int, databases: list[str], rev: str | None, per_query: bool) -> None:
    print(f"the dashboard at {decisions:,} decisions, {runs} runs each (after 3 to warm up), in ms")
    with exported(rev) as baseline:
        sides = ([f"{rev} p50", f"{rev} p95"] if rev else []) + ["p50", "p95"]
        print(f"{'database':<9} {'request':<40}" + "".join(f" {s:>8}" for s in sides), flush=True)
        for kind in databases:
            await measure(kind, decisions, runs, baseline, per_query)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--baseline", metavar="REV", help="also serve this revision's app, timed in turns")
    parser.add_argument("--queries", action="store_true", help="print each statement's time first")
    args = parser.parse_args()
    asyncio.run(main(args.decisions, args.runs, args.databases.split(","), args.baseline, args.queries))
