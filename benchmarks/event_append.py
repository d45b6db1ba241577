"""The event writer's hot path: this tree's writer against the one before it, in one run.

For N tasks on a fresh database it records what a supervised task's steps record, through
`EventWriter.apply_all` with `--in-flight` tasks at once (the worker's writer thread takes
them one transaction at a time), and prints events/s and CPU ms per event (this process:
the writer thread and the event loop; PostgreSQL's own CPU is not in it). Per step:

- step.started;
- step.finished (with its model call) + step.completed + gate.opened, together;
- gate.decided;

then task.completed (which signs the head). The earlier writer is the newest committed
`exosuit/storage/events.py` that differs from this tree's (or `--against REV`'s), loaded
with its outbox into modules of their own; the two alternate, each on a database of its own.
Before timing, both record the same events at the same (frozen) clock, webhooks,
notifications, a plan edit and retried keys included, and must leave the same rows.

    .venv/bin/python benchmarks/event_append.py [--tasks 200] [--rounds 3] [--in-flight 50]
        [--postgres] [--against REV]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import JSON, Text, cast, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queue_render import scratch_database  # beside this script

from exosuit.domain.audit import Anchor
from exosuit.domain.autonomy import GateKind, Risk
from exosuit.domain.contracts import Gate, NewStep, TaskEvent
from exosuit.domain.task import EventAction, StepKind, StepStatus, TaskStatus
from exosuit.domain.usage import CallRecord
from exosuit.storage import events as current_events
from exosuit.storage import outbox as current_outbox
from exosuit.storage.db import Database, migrate
from exosuit.storage.tables import (
    AuditAnchor,
    AuditEvent,
    Membership,
    ModelCall,
    Notification,
    NotifyTarget,
    Step,
    Task,
    Team,
    User,
    WebhookDelivery,
    WebhookSubscription,
    table_of,
)

ROOT = Path(__file__).resolve().parent.parent
EVENTS, OUTBOX = "exosuit/storage/events.py", "exosuit/storage/outbox.py"
TEAM, SUBMITTER, APPROVER = "bench", "someone@bench", "approver@bench"
STEPS = 3
ANCHOR_KEY = b"k" * 32
FROZEN = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@dataclass(frozen=True)
class Writer:
    """One implementation of the event writer: its module, its outbox's, and a label."""

    label: str
    events: ModuleType
    outbox: ModuleType

    def build(self, db: Database) -> Any:
        return self.events.EventWriter(db, ANCHOR_KEY)


def _module(name: str, source: str) -> ModuleType:
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def earlier_writer(against: str | None) -> Writer:
    """The newest committed writer that differs from this tree's (or the given revision's)."""
    current = (ROOT / EVENTS).read_text()
    revisions = [against] if against else _git("log", "--format=%H", "-n", "20", "--", EVENTS).split()
    for rev in revisions:
        source = _git("show", f"{rev}:{EVENTS}")
        if source != current or against:
            outbox = _module("before_outbox", _git("show", f"{rev}:{OUTBOX}"))
            events = _module("before_events", source)
            setattr(events, "outbox", outbox)  # noqa: B010 (the earlier writer calls the earlier outbox)
            return Writer(f"before ({rev[:10]})", events, outbox)
    raise SystemExit("no committed events.py differs from this tree's: pass --against REV")


# --- the database and its tasks --------------------------------------------------------


@asynccontextmanager
async def fresh_database(kind: str) -> AsyncIterator[Database]:
    async with scratch_database(kind) as url:
        await asyncio.to_thread(migrate, url)
        db = Database.from_url(url)
        try:
            yield db
        finally:
            await db.dispose()


def task_id(n: int) -> str:
    return f"t_{n:06d}"


def step_id(n: int, i: int) -> str:
    return f"s_{n:06d}_{i}"


async def fill(db: Database, tasks: int, *, automations: bool = False) -> None:
    """A team and `tasks` planned tasks of three steps; with automations, a webhook
    subscription, a notification target and an approver to tell."""
    task_rows, step_rows = [], []
    for n in range(tasks):
        task_rows.append(
            {
                "id": task_id(n),
                "title": f"Task {n}",
                "instructions": "Write the report. " * 10,
                "team": TEAM,
                "submitted_by": SUBMITTER,
                "autonomy": "supervised",
                "status": TaskStatus.PLANNING.value,
                "created_at": FROZEN,
                "updated_at": FROZEN,
            }
        )
        for i in range(STEPS):
            step_rows.append(
                {
                    "id": step_id(n, i),
                    "task_id": task_id(n),
                    "index": i,
                    "title": f"Step {i + 1}",
                    "instructions": "Write the section. " * 20,
                    "kind": StepKind.LLM.value,
                    "risk": Risk.MEDIUM.value,
                    "status": StepStatus.PENDING.value,
                }
            )
    async with db.engine.begin() as connection:
        await connection.execute(insert(table_of(Team)).values(name=TEAM, created_at=FROZEN))
        await connection.execute(insert(table_of(Task)), task_rows)
        await connection.execute(insert(table_of(Step)), step_rows)
        if automations:
            await connection.execute(
                insert(table_of(WebhookSubscription)).values(
                    id="sub_1",
                    team=TEAM,
                    url="https://example.test/hook",
                    events=["gate.opened", "gate.decided", "task.completed"],
                    secret_sealed="sealed",
                    created_by=APPROVER,
                    created_at=FROZEN,
                )
            )
            await connection.execute(insert(table_of(NotifyTarget)).values(team=TEAM, url="json://x/{email}"))
            for user_id, email, role in ((1, APPROVER, "approver"), (2, SUBMITTER, "approver")):
                await connection.execute(
                    insert(table_of(User)).values(id=user_id, email=email, created_at=FROZEN)
                )
                await connection.execute(
                    insert(table_of(Membership)).values(user_id=user_id, team=TEAM, role=role)
                )


# --- what a task records ---------------------------------------------------------------


def task_batches(n: int) -> list[list[TaskEvent]]:
    """The batches a supervised task of three steps records, each step gated before it runs."""
    tid, keys = task_id(n), iter(range(1, 1000))
    batches: list[list[TaskEvent]] = []

    def event(action: EventAction, **fields: Any) -> TaskEvent:
        return TaskEvent(tid, f"{tid}/{next(keys)}", fields.pop("actor", "system"), action, **fields)

    for i in range(STEPS):
        sid = step_id(n, i)
        call = CallRecord(f"{tid}:{sid}:1", "step", "bench-model", 420, 180, 0.0021, step_id=sid)
        batches.append([event(EventAction.STEP_STARTED, status=TaskStatus.RUNNING, step_id=sid,
                              step_status=StepStatus.RUNNING)])  # fmt: skip
        finished = [
            event(
                EventAction.STEP_FINISHED,
                actor="model:bench-model",
                data={"purpose": "step"},
                step_id=sid,
                output=f"The section {i + 1}, written. " * 40,
                call=call,
            ),
            event(EventAction.STEP_COMPLETED, step_id=sid, step_status=StepStatus.COMPLETED),
        ]
        if i + 1 < STEPS:
            gate = _gate(f"g_{n:06d}_{i + 1}", step_id(n, i + 1))
            finished.append(
                event(
                    EventAction.GATE_OPENED,
                    status=TaskStatus.AWAITING_APPROVAL,
                    open_gate=gate,
                    step_id=gate.step_id,
                    step_status=StepStatus.AWAITING_APPROVAL,
                    data={"gate_id": gate.id, "kind": gate.kind, "four_eyes": gate.four_eyes},
                )
            )
        batches.append(finished)
        if i + 1 < STEPS:
            batches.append(
                [
                    event(
                        EventAction.GATE_DECIDED,
                        actor=f"user:{APPROVER}",
                        status=TaskStatus.RUNNING,
                        close_gate=True,
                        data={"gate_id": f"g_{n:06d}_{i + 1}", "kind": "step", "action": "approve"},
                    )
                ]
            )
    batches.append([event(EventAction.TASK_COMPLETED, status=TaskStatus.COMPLETED)])
    return batches


def _gate(gate_id: str, step: str) -> Gate:
    return Gate(gate_id, GateKind.STEP, step, FROZEN, FROZEN + timedelta(hours=24), True, risk=Risk.MEDIUM)


async def record_task(writer: Any, batches: list[list[TaskEvent]]) -> int:
    """Record a task's batches in order, each anchored where the previous left the chain."""
    head: Anchor | None = None
    for batch in batches:
        batch[0].after = head
        head = (await writer.apply_all(batch)).head
    return sum(len(b) for b in batches)


# --- the check: the same rows from both writers -----------------------------------------


async def checked_run(writer: Writer, kind: str) -> dict[str, list[tuple[Any, ...]]]:
    """Both writers' rows for the same events at a frozen clock (edits, retries, automations)."""
    saved = [(module, module.utcnow) for module in (writer.events, writer.outbox)]
    for module, _ in saved:
        setattr(module, "utcnow", lambda: FROZEN)  # noqa: B010
    try:
        async with fresh_database(kind) as db:
            await fill(db, 4, automations=True)
            w = writer.build(db)
            for n in range(3):
                batches = task_batches(n)
                if n == 1:  # a repeated key in one batch, and a batch retried
                    batches[2] = [batches[2][0], batches[2][0]]
                    batches.insert(2, list(batches[1]))
                if n == 2:  # a step's instructions edited, then the plan replaced
                    batches[0][0].instructions = "Write it shorter."
                    batches[-1][0:0] = [_plan_edit(n)]
                await w.meter(task_id(n), CallRecord(f"plan:{n}", "plan", "planner", 100, 50, 0.001))
                await w.stream_output(task_id(n), step_id(n, 0), "partial text")
                await record_task(w, batches)
            first = TaskEvent(task_id(3), "t3/1", "system", EventAction.TASK_FAILED,
                              status=TaskStatus.FAILED, error="it broke")  # fmt: skip
            await w.apply(first)
            await w.apply(TaskEvent(task_id(3), "t3/2", "user:x", EventAction.TASK_RESUMED,
                                    status=TaskStatus.RUNNING))  # fmt: skip
            return await dump(db)
    finally:
        for module, clock in saved:
            setattr(module, "utcnow", clock)  # noqa: B010


def _plan_edit(n: int) -> TaskEvent:
    plan = [NewStep(f"s_new_{n}_{i}", f"New step {i}", "Do it again.") for i in range(2)]
    return TaskEvent(task_id(n), f"{task_id(n)}/plan", "user:x", EventAction.GATE_DECIDED, new_plan=plan)


SKIPPED = {"id", "at", "created_at"}  # database defaults: the clock of the insert, and row ids


async def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with db.engine.connect() as connection:
        for model in (Task, Step, AuditEvent, AuditAnchor, ModelCall, WebhookDelivery, Notification):
            table = table_of(model)
            columns = [  # JSON as stored: a JSON null is not SQL's NULL
                cast(c, Text) if isinstance(c.type, JSON) else c
                for c in table.c
                if c.name not in SKIPPED or model in (Task, Step)
            ]
            found = await connection.execute(select(*columns))
            rows[table.name] = sorted((tuple(map(repr, row)) for row in found), key=str)
    return rows


# --- the timing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    events: int
    seconds: float
    cpu_seconds: float


async def timed_run(writer: Writer, kind: str, tasks: int, in_flight: int) -> Timing:
    async with fresh_database(kind) as db:
        await fill(db, tasks)
        w = writer.build(db)
        await record_task(w, task_batches(tasks - 1))  # warm: the writer thread, its engine, caches
        slots = asyncio.Semaphore(in_flight)

        async def one(n: int) -> int:
            async with slots:
                return await record_task(w, task_batches(n))

        started, cpu = time.perf_counter(), time.process_time()
        counts = await asyncio.gather(*(one(n) for n in range(tasks - 1)))
        return Timing(sum(counts), time.perf_counter() - started, time.process_time() - cpu)


def report(label: str, runs: list[Timing]) -> tuple[float, float]:
    rate = statistics.median(r.events / r.seconds for r in runs)
    cpu_ms = statistics.median(r.cpu_seconds * 1000 / r.events for r in runs)
    print(f"  {label:<28} {rate:9.0f} events/s   {cpu_ms:6.3f} CPU ms/event   ({len(runs)} runs)")
    return rate, cpu_ms


async def main(kinds: list[str], tasks: int, rounds: int, in_flight: int, against: str | None) -> None:
    writers = [earlier_writer(against), Writer("this tree", current_events, current_outbox)]
    for kind in kinds:
        before, after = [await checked_run(w, kind) for w in writers]
        for table in before:
            assert before[table] == after[table], f"{kind}: the writers left different {table} rows"
        print(f"{kind}: both writers leave the same rows; {tasks} tasks, {in_flight} in flight")
        runs: dict[str, list[Timing]] = {w.label: [] for w in writers}
        for _ in range(rounds):
            for w in writers:
                runs[w.label].append(await timed_run(w, kind, tasks, in_flight))
        (rate0, cpu0), (rate1, cpu1) = (report(w.label, runs[w.label]) for w in writers)
        print(f"  {'ratio (this tree / before)':<28} {rate1 / rate0:9.2f} x         {cpu1 / cpu0:6.2f} x")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too (a scratch schema)")
    parser.add_argument("--against", help="the earlier writer's revision (default: the newest that differs)")
    return parser.parse_args()


if __name__ == "__main__":
    args = _parse()
    kinds: list[str] = ["sqlite", "postgres"] if args.postgres else ["sqlite"]
    asyncio.run(main(kinds, args.tasks, args.rounds, args.in_flight, args.against))
