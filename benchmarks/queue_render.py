"""How fast the review lists answer with many open gates, on SQLite and on PostgreSQL.

For each database and each size it fills a fresh database with open gates (as the
workflow's activities leave them: tasks of three steps with an inline open gate), serves
the app over real HTTP on loopback, signs in, and times, side by side in the same run:

- `/healthz`: the floor, an HTTP round trip through the app and its middleware;
- `/api/v1/approvals`, its first page (the JSON list);
- `/queue`, the review page (a full page, as a browser asks for it);
- the queue's live poll when nothing changed (204).

    .venv/bin/python benchmarks/queue_render.py [--gates 100,1000,10000] [--runs 60]
        [--databases sqlite,postgres]

`list_figures(database_url, gates, runs)` is the same measurement for one database and
one size, for other benchmarks to call (it migrates and fills the database it is given:
hand it an empty one; `scratch_database` makes one).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from temporalio.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exosuit.domain.autonomy import Role
from exosuit.domain.submissions import new_task_id
from exosuit.settings import Settings
from exosuit.storage.db import Database, migrate, utcnow
from exosuit.storage.identity import Directory
from exosuit.storage.tables import Step, Task, table_of
from tests.support.model_server import serve, shutdown
from web.app import create_app
from web.deps import Services

POSTGRES_URL = os.environ.get(
    "EXOSUIT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEAM, APPROVER, SUBMITTER = "bench", "approver@bench", "someone@bench"
KINDS, RISKS = ("plan", "step", "output"), ("low", "medium", "high")


@dataclass(frozen=True)
class Figure:
    """One request's timing: p50 and p95 over the runs, and the response's size."""

    request: str
    p50_ms: float
    p95_ms: float
    size_bytes: int
    status: int


async def fill(db: Database, count: int) -> None:
    """`count` tasks of three steps, each with an open gate (kinds and risks mixed)."""
    now = utcnow()
    tasks: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for n in range(count):
        task_id = new_task_id()
        risk, kind = RISKS[n % 3], KINDS[(n // 3) % 3]
        step_ids = [f"s_{uuid.uuid4().hex[:16]}" for _ in range(3)]
        for i, step_id in enumerate(step_ids):
            steps.append(
                Step(
                    id=step_id,
                    task_id=task_id,
                    index=i,
                    title=f"Step {i + 1}",
                    instructions="Write the section. " * 20,
                    status="completed" if i == 0 else "pending",
                    output="A paragraph of earlier output. " * 30 if i == 0 else None,
                    risk=risk,
                ).model_dump()
            )
        tasks.append(
            Task(
                id=task_id,
                title=f"Task {n}",
                instructions="Do the thing. " * 10,
                team=TEAM,
                submitted_by=SUBMITTER,
                autonomy="supervised",
                status="awaiting_approval",
                gate_id=f"g_{uuid.uuid4().hex[:16]}",
                gate_kind=kind,
                gate_step_id=None if kind == "plan" else step_ids[1],
                gate_opened_at=now - timedelta(seconds=count - n),
                gate_deadline=now + timedelta(hours=24),
                gate_four_eyes=True,
                gate_excluded=SUBMITTER,  # four-eyes: everyone but the submitter may decide
                gate_risk=risk,
                updated_at=now,
            ).model_dump()
        )
    async with db.engine.begin() as connection:
        for table, rows in ((table_of(Task), tasks), (table_of(Step), steps)):
            for start in range(0, len(rows), 2000):
                await connection.execute(table.insert(), rows[start : start + 2000])
        if connection.dialect.name == "postgresql":
            await connection.exec_driver_sql("ANALYZE")  # what autovacuum does after a bulk load


async def timed(http: httpx.AsyncClient, request: str, path: str, runs: int, expect: int = 200) -> Figure:
    for _ in range(3):  # warm up: caches, statement compilation
        await http.get(path)
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        response = await http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == expect, (path, response.status_code, response.text[:300])
        size = len(response.content)
    p95 = statistics.quantiles(times, n=20)[-1]
    return Figure(request, statistics.median(times), p95, size, expect)


@asynccontextmanager
async def serving(
    database_url: str, temporal: Client | None
) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    """The app on a loopback port over this database, with a signed-in approver's client."""
    db = Database.from_url(database_url)
    client = temporal or await Client.connect("127.0.0.1:1", lazy=True)  # never called here
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir))
        server, task, port = await serve(create_app(Services.build(settings, db, client)))
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120)
        try:
            yield http, db
        finally:
            await http.aclose()
            await shutdown(server, task)
            await db.dispose()


async def list_figures(
    database_url: str, gates: int, runs: int, *, temporal: Client | None = None
) -> list[Figure]:
    """Migrate and fill an empty database with `gates` open gates, then time the review lists."""
    await asyncio.to_thread(migrate, database_url)
    async with serving(database_url, temporal) as (http, db):
        directory = Directory(db)
        await directory.add_user(APPROVER, teams=[TEAM], role=Role.APPROVER, password="pw")
        await fill(db, gates)
        token = await directory.create_token(APPROVER)
        login = await http.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf
        await http.post("/login", data={"email": APPROVER, "password": "pw", "csrf_token": csrf.group(1)})
        http.headers["Authorization"] = f"Bearer {token}"
        board = (await http.get("/queue", headers={"HX-Request": "true"})).text
        poll = re.search(r'id="board"[^>]*hx-get="([^"]+)"', board)
        assert poll, board[:500]
        return [
            await timed(http, "/healthz (floor)", "/healthz", runs),
            await timed(http, "/api/v1/approvals (first page)", "/api/v1/approvals", runs),
            await timed(http, "/queue", "/queue", runs),
            await timed(http, "/queue live poll, unchanged", html.unescape(poll.group(1)), runs, expect=204),
        ]


@asynccontextmanager
async def scratch_database(kind: str) -> AsyncIterator[str]:
    """An empty database's URL: a SQLite file in a temporary folder, or a PostgreSQL schema of
    its own (dropped afterwards)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/exosuit.db"
        return
    schema = f"exosuit_bench_{uuid.uuid4().hex[:10]}"
    plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(plain, autocommit=True) as conn:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        async with await psycopg.AsyncConnection.connect(plain, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def main(sizes: list[int], runs: int, databases: list[str]) -> None:
    print(f"review lists, {runs} requests each (after 3 to warm up), over HTTP on loopback")
    print(f"{'database':<9} {'gates':>6}  {'request':<32} {'p50 ms':>8} {'p95 ms':>8} {'size':>10}")
    for kind in databases:
        for gates in sizes:
            async with scratch_database(kind) as url:
                for figure in await list_figures(url, gates, runs):
                    size = f"{figure.size_bytes / 1024:.1f} KiB" if figure.size_bytes else "-"
                    print(
                        f"{kind:<9} {gates:>6}  {figure.request:<32} {figure.p50_ms:>8.1f} "
                        f"{figure.p95_ms:>8.1f} {size:>10}",
                        flush=True,
                    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gates", default="100,1000,10000", help="open gates, comma-separated sizes")
    parser.add_argument("--runs", type=int, default=60, help="timed requests per figure")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite, postgres or both")
    args = parser.parse_args()
    asyncio.run(
        main(
            [int(n) for n in args.gates.split(",")], args.runs, [d.strip() for d in args.databases.split(",")]
        )
    )
