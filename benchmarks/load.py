"""Exosuit under load, side by side with raw Temporal on the same dev server, in one run.

Both sides run as deployed: Exosuit as an `exosuit web` and an `exosuit worker` process
(payloads sealed, SQLite or PostgreSQL), raw Temporal as a worker process of
benchmarks/raw_temporal.py, against one Temporal dev server with `exosuit dev`'s dynamic
config. A closed loop of approvals with N tasks in flight: each driver approves its task's
open gate and waits for the next one (Exosuit: POST the decision, then long-poll
`/wait?for=gate` as an automation does; raw: an update that answers once the next gate is
open). The sides
take turns (raw, Exosuit, raw, Exosuit...) so a noisy neighbour hits both.

Then a burst: B submissions at once until every task shows its first gate (raw: B workflow
starts whose trivial "plan" activity opens their first gate), twice each, which leaves
2B tasks open on each side for the RSS figures; then the review lists (benchmarks/
queue_render.py) at 100 / 1,000 / 10,000 open gates on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/load.py [--flight 1,50,200] [--seconds 20] [--rounds 2]
        [--burst 500] [--lists 100,1000,10000] [--postgres] [--workers 1] [--budget USD]

Prints, per N: approve -> next gate p50/p95, decisions/s, the decision POST's p50 and every
error answer, with the Exosuit/raw ratios; the burst; the CPU seconds and RSS of each
process; and ends with the whole table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queue_render import list_figures, scratch_database  # beside this script
from raw_temporal import RawGates

from exosuit.cli.temporal_server import DEV_SERVER_DYNAMIC_CONFIG, temporal_cli
from exosuit.domain.autonomy import Role
from exosuit.processes import free_port, spawn, stop
from exosuit.storage.db import Database, migrate
from exosuit.storage.identity import Directory
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.ready import until_ready

STEPS = 20  # a plan's limit: 21 gates per supervised task
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)  # approve -> next gate, ms
    posts: list[float] = field(default_factory=list)  # the decision request alone, ms
    decisions: int = 0
    errors: dict[int | str, int] = field(default_factory=dict)  # HTTP status -> count (5xx must be 0)
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds in the closed loop

    def failures(self) -> dict[int | str, int]:
        """The answers the load test must never see: a 5xx, or no answer at all."""
        return {e: n for e, n in self.errors.items() if not isinstance(e, int) or e >= 500}

    def count(self, error: int | str) -> None:
        self.errors[error] = self.errors.get(error, 0) + 1

    def line(self, label: str, seconds: float) -> str:
        p50, p95 = _pct(self.latencies, 50), _pct(self.latencies, 95)
        post = f"   POST p50 {_pct(self.posts, 50):7.1f} ms" if self.posts else ""
        cpu = "".join(
            f"   {name} CPU {s * 1000 / max(self.decisions, 1):.1f} ms" for name, s in self.cpu.items()
        )
        return (
            f"{label:<10} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   "
            f"{self.decisions / seconds:6.1f} decisions/s{post}{cpu}   errors {self.errors or 0}"
        )


async def engine_and_model() -> tuple[WorkflowEnvironment, str, ModelServer, list[dict[str, object]]]:
    """What every closed-loop benchmark starts with: a Temporal dev server with the product's
    dynamic config (and its address), a scripted model server, and the plan each task runs
    (STEPS low-risk model steps)."""
    extra: list[str] = []
    for value in DEV_SERVER_DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", value]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), dev_server_extra_args=extra
    )
    models = ModelServer()
    await models.start()
    plan: list[dict[str, object]] = [
        {"title": f"Step {i}", "instructions": f"Do {i}.", "kind": "llm", "tool": None, "risk": "low"}
        for i in range(STEPS)
    ]
    return env, env.client.service_client.config.target_host, models, plan


def _pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100)[q - 1]


def _usage(pid: int) -> tuple[float, float]:
    """CPU seconds and RSS in MB of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = next(
        int(line.split()[1]) / 1024
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return cpu, rss


def tree_rss(pid: int) -> float:
    """RSS in MB of a process and its descendants (`exosuit dev`'s worker child, if it has one)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return _usage(pid)[1] + sum(tree_rss(c) for c in children)


class Exosuit:
    """`exosuit web` + `exosuit worker` processes (or one `exosuit dev`), a team, and two tokens."""

    def __init__(
        self,
        address: str,
        model_url: str,
        data_dir: Path,
        database_url: str,
        workers: int = 1,
        *,
        dev: bool = False,
        budget: float | None = None,
    ) -> None:
        self.workers, self.dev, self.budget = workers, dev, budget
        self.port = free_port()
        self.env = dict(os.environ) | {
            "TEMPORAL_ADDRESS": address,
            "EXOSUIT_DATA_DIR": str(data_dir),
            "EXOSUIT_DATABASE_URL": database_url,
            "EXOSUIT_LLM_BASE_URL": model_url,
            "EXOSUIT_LLM_API_KEY": "bench",
            "EXOSUIT_LLM_MODEL": "scripted-model",
            "EXOSUIT_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "EXOSUIT_SECRET_KEY": "a benchmark secret of enough length for sealing payloads",
            "EXOSUIT_LOG_FORMAT": "text",
        }
        self.data_dir, self.database_url = data_dir, database_url
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.refused: dict[int | str, int] = {}  # submissions answered 429 / 503 or not at all

    async def start(self) -> None:
        migrate(self.database_url)
        db = Database.from_url(self.database_url)
        directory = Directory(db)
        await directory.set_team_policy(
            "bench", max_active_tasks=100_000, submissions_per_minute=100_000, monthly_budget_usd=self.budget
        )
        await directory.add_user("submitter@bench", teams=["bench"], role=Role.MEMBER)
        await directory.add_user("approver@bench", teams=["bench"], role=Role.APPROVER)
        self.submit_token = await directory.create_token("submitter@bench")
        self.approve_token = await directory.create_token("approver@bench")
        await db.dispose()
        log = self.data_dir / "processes.log"
        # Children die with this script, even on kill -9 (the project's spawn).
        if self.dev:  # its web app and worker, against this Temporal (so no embedded one)
            command = [str(BIN / "exosuit"), "dev", "--port", str(self.port)]
            env = self.env | {"EXOSUIT_DATA_DIR": str(self.data_dir / "dev")}
            self.processes["dev"] = await spawn(command, log, env)
            return await self._ready(log)
        self.processes["web"] = await spawn(
            [str(BIN / "exosuit"), "web", "--port", str(self.port)], log, self.env
        )
        for n in range(self.workers):  # several share the task queue, as in compose and Kubernetes
            name = "worker" if n == 0 else f"worker {n + 1}"
            self.processes[name] = await spawn([str(BIN / "exosuit"), "worker"], log, self.env)
        await self._ready(log)

    async def _ready(self, log: Path) -> None:
        await until_ready(self.base, 60, f"exosuit web (see {log})")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        for process in self.processes.values():
            await stop(process)

    async def drive(self, flight: int, seconds: float) -> Figures:
        figures = Figures()
        async with self._clients(connections=flight * 2 + 10, request_seconds=60) as (sub, app):
            tasks = await asyncio.gather(*(self._first_gate(sub, app) for _ in range(flight)))
            before = {name: _usage(p.pid)[0] for name, p in self.processes.items()}
            stop_at = time.perf_counter() + seconds
            await asyncio.gather(*(self._loop(sub, app, t, stop_at, figures) for t in tasks))
            figures.cpu = {name: _usage(p.pid)[0] - before[name] for name, p in self.processes.items()}
        return figures

    @asynccontextmanager
    async def _clients(
        self, *, connections: int, request_seconds: float
    ) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
        """The submitter's and the approver's API clients."""
        limits = httpx.Limits(max_connections=connections)
        async with (
            httpx.AsyncClient(base_url=self.base, limits=limits, timeout=request_seconds,
                              headers={"Authorization": f"Bearer {self.submit_token}"}) as sub,
            httpx.AsyncClient(base_url=self.base, limits=limits, timeout=request_seconds,
                              headers={"Authorization": f"Bearer {self.approve_token}"}) as app,
        ):  # fmt: skip
            yield sub, app

    async def _first_gate(self, sub: httpx.AsyncClient, app: httpx.AsyncClient) -> dict[str, object]:
        """A new task at its first gate; a 429 or 503 is retried after its Retry-After (and
        counted in `refused`, as is a submission without an answer)."""
        body = {"title": "Bench", "instructions": "Go.", "team": "bench", "autonomy": "supervised"}
        while True:
            try:
                created = await sub.post("/api/v1/tasks", json=body)
            except httpx.TransportError:
                self.refused["no answer"] = self.refused.get("no answer", 0) + 1
                await asyncio.sleep(1)
                continue
            if created.status_code not in (429, 503):
                break
            self.refused[created.status_code] = self.refused.get(created.status_code, 0) + 1
            await asyncio.sleep(float(created.headers.get("Retry-After", "1")))
        assert created.status_code == 201, created.text
        return await _next_gate(app, created.json()["id"], None)

    async def _loop(
        self,
        sub: httpx.AsyncClient,
        app: httpx.AsyncClient,
        task: dict[str, object],
        stop_at: float,
        figures: Figures,
    ) -> None:
        while time.perf_counter() < stop_at:
            if task["status"] == "completed":
                task = await self._first_gate(sub, app)
                continue
            gate = task["open_gate"]
            assert isinstance(gate, dict)
            started = time.perf_counter()
            try:
                decided = await app.post(
                    f"/api/v1/tasks/{task['id']}/decisions", json={"gate_id": gate["id"], "action": "approve"}
                )
            except httpx.TransportError:
                figures.count("no answer")
                task = await _next_gate(app, str(task["id"]), None)
                continue
            posted = time.perf_counter()
            if decided.status_code != 200:
                figures.count(decided.status_code)
                task = await _next_gate(app, str(task["id"]), None)
                continue
            task = await _next_gate(app, str(task["id"]), str(gate["id"]))
            figures.decisions += 1
            figures.posts.append((posted - started) * 1000)
            if task["status"] != "completed":
                figures.latencies.append((time.perf_counter() - started) * 1000)

    async def burst(self, count: int) -> float:
        """Seconds from `count` submissions at once until every task shows its first gate."""
        async with self._clients(connections=200, request_seconds=120) as (sub, app):
            started = time.perf_counter()
            await asyncio.gather(*(self._first_gate(sub, app) for _ in range(count)))
            return time.perf_counter() - started


async def _next_gate(http: httpx.AsyncClient, task_id: str, after: str | None) -> dict[str, object]:
    """The task once a gate other than `after` is open (or it has completed), by long-poll:
    what an automation does (`GET /api/v1/tasks/{id}/wait?for=gate`)."""
    while True:
        try:
            answer = await http.get(f"/api/v1/tasks/{task_id}/wait", params={"for": "gate", "timeout": 30})
        except httpx.TransportError:
            await asyncio.sleep(0.5)
            continue
        if answer.status_code in (429, 503):
            await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
            continue
        task: dict[str, object] = answer.json()
        gate = task["open_gate"]
        if task["status"] in ("failed", "rejected", "cancelled"):
            raise RuntimeError(f"a benchmark task ended as {task['status']}: {task['error']}")
        if task["status"] == "completed" or (isinstance(gate, dict) and gate["id"] != after):
            return task
        await asyncio.sleep(0.005)  # the decided gate still shows: its record is on the way


async def _first_raw_gate(handle: WorkflowHandle[RawGates, int]) -> int:
    """The raw workflow's first gate, once open (asked again when the server is too busy to
    answer within the update's RPC timeout: on a loaded machine, 500 starts at once can be)."""
    while True:
        try:
            return await handle.execute_update(RawGates.first_gate)
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            continue


class Raw:
    """The baseline's worker process and its driver."""

    def __init__(self, client: Client, address: str, log: Path) -> None:
        self.client, self.address, self.log = client, address, log
        self.queue = f"raw-{uuid.uuid4().hex[:8]}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = dict(os.environ) | {"PYTHONPATH": str(ROOT)}
        script = str(ROOT / "benchmarks" / "raw_temporal.py")
        self.process = await spawn([sys.executable, script, self.address, self.queue], self.log, env)

    async def stop(self) -> None:
        if self.process is not None:
            await stop(self.process)

    async def drive(self, flight: int, seconds: float) -> Figures:
        figures = Figures()
        stop_at = time.perf_counter() + seconds

        async def loop() -> None:
            while time.perf_counter() < stop_at:
                handle: WorkflowHandle[RawGates, int] = await self.client.start_workflow(
                    RawGates.run, STEPS, id=f"raw-{uuid.uuid4().hex}", task_queue=self.queue
                )
                gate = await _first_raw_gate(handle)
                while gate < STEPS and time.perf_counter() < stop_at:
                    started = time.perf_counter()
                    gate = await handle.execute_update(RawGates.approve, gate)
                    figures.decisions += 1
                    if gate < STEPS:
                        figures.latencies.append((time.perf_counter() - started) * 1000)

        assert self.process is not None
        before = _usage(self.process.pid)[0]
        await asyncio.gather(*(loop() for _ in range(flight)))
        figures.cpu = {"worker": _usage(self.process.pid)[0] - before}
        return figures

    async def burst(self, count: int) -> float:
        """Seconds from `count` workflow starts at once until every one has its first gate open."""

        async def one() -> None:
            handle: WorkflowHandle[RawGates, int] = await self.client.start_workflow(
                RawGates.run, STEPS, id=f"raw-{uuid.uuid4().hex}", task_queue=self.queue
            )
            await _first_raw_gate(handle)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return time.perf_counter() - started


async def main(
    flights: list[int],
    seconds: float,
    rounds: int,
    burst: int,
    postgres: bool,
    lists: list[int],
    workers: int,
    budget: float | None = None,
) -> None:
    env, address, models, plan = await engine_and_model()
    print(f"approve -> next gate, closed loop, {seconds:.0f} s per run, {rounds} rounds, "
          f"{'PostgreSQL' if postgres else 'SQLite'}"
          f"{f', a team budget of ${budget:g} a month' if budget else ''}")  # fmt: skip
    try:
        tmp = Path(tempfile.mkdtemp(prefix="exosuit-load-"))  # kept if the run fails: the logs
        async with scratch_database("postgres" if postgres else "sqlite") as database_url:
            exosuit = Exosuit(
                address, models.register(ScriptedModel(plan)), tmp, database_url, workers, budget=budget
            )
            raw = Raw(env.client, address, tmp / "raw.log")
            try:
                await exosuit.start()
                await raw.start()
                table, failures = await _side_by_side(exosuit, raw, flights, seconds, rounds, burst)
            except BaseException:
                print(f"the processes' logs are in {tmp}", file=sys.stderr)
                raise
            finally:
                await exosuit.stop()
                await raw.stop()
        shutil.rmtree(tmp)
    finally:
        await models.stop()
        await env.shutdown()
    for kind in ("sqlite", "postgres") if lists else ():
        for gates in lists:
            async with scratch_database(kind) as url:
                figures = {f.request: f for f in await list_figures(url, gates, runs=60)}
            floor = figures["/healthz (floor)"]
            for request, f in figures.items():
                if f is not floor:
                    table.append((f"{request}, {gates} open gates, {kind}",
                                  f"{f.p50_ms:.1f} / {f.p95_ms:.1f} ms, {f.size_bytes / 1024:.0f} KiB",
                                  f"/healthz {floor.p50_ms:.1f} / {floor.p95_ms:.1f} ms", "-"))  # fmt: skip
    _print_table(table)
    if failures:  # the load test's assertion: at this load, no 5xx and no dropped request
        raise SystemExit(f"server errors under load: {failures}")


async def _side_by_side(
    exosuit: Exosuit, raw: Raw, flights: list[int], seconds: float, rounds: int, burst: int
) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """The closed loops, the bursts and RSS, raw and Exosuit taking turns: the table's rows,
    and any 5xx or unanswered request."""
    table: list[tuple[str, str, str, str]] = []
    failures: list[str] = []
    for flight in flights:
        results: dict[str, list[Figures]] = {"raw": [], "exosuit": []}
        for _ in range(rounds):
            results["raw"].append(await raw.drive(flight, seconds))
            results["exosuit"].append(await exosuit.drive(flight, seconds))
        ex, rw = _merge(results["exosuit"]), _merge(results["raw"])
        print(f"\n{flight} in flight")
        print("  " + rw.line("raw", seconds * rounds))
        print("  " + ex.line("exosuit", seconds * rounds))
        table += _loop_rows(flight, ex, rw, seconds * rounds)
        if ex.failures():
            failures.append(f"{flight} in flight: {ex.failures()}")
    if burst:
        times: dict[str, list[float]] = {"raw": [], "exosuit": []}
        for _ in range(rounds):  # each round leaves `burst` more tasks open on each side
            times["raw"].append(await raw.burst(burst))
            times["exosuit"].append(await exosuit.burst(burst))
        ex_s, raw_s = statistics.median(times["exosuit"]), statistics.median(times["raw"])
        label = f"{burst} submissions -> all at their first gate"
        print(f"\n{label}: exosuit {times['exosuit']}, raw {times['raw']}")
        table.append((label, f"{ex_s:.1f} s", f"{raw_s:.1f} s", f"{ex_s / raw_s:.2f}x"))
    print("\nprocess        CPU s    RSS MB")
    assert raw.process is not None
    pids = {f"exosuit {n}": p.pid for n, p in exosuit.processes.items()}
    pids["raw worker"] = raw.process.pid
    rss: dict[str, float] = {}
    for name, pid in pids.items():
        cpu, rss[name] = _usage(pid)
        print(f"{name:<14} {cpu:6.1f}  {rss[name]:7.1f}")
    open_tasks = burst * rounds
    table.append((f"RSS with {open_tasks} open tasks (after the bursts)",
                  f"web+worker {sum(v for k, v in rss.items() if k.startswith('exosuit')):.0f} MB",
                  f"worker {rss['raw worker']:.0f} MB", "-"))  # fmt: skip
    return table, failures


def _loop_rows(flight: int, ex: Figures, rw: Figures, seconds: float) -> list[tuple[str, str, str, str]]:
    p50, p95 = (_pct(ex.latencies, q) for q in (50, 95))
    r50, r95 = (_pct(rw.latencies, q) for q in (50, 95))
    return [
        (f"approve -> next gate p50 / p95, {flight} in flight", f"{p50:.0f} / {p95:.0f} ms",
         f"{r50:.0f} / {r95:.0f} ms", f"{p50 / r50:.2f}x / {p95 / r95:.2f}x"),
        (f"decisions/s, {flight} in flight", f"{ex.decisions / seconds:.1f}", f"{rw.decisions / seconds:.1f}",
         f"{ex.decisions / max(rw.decisions, 1):.2f}x"),
        (f"decision POST p50, {flight} in flight; errors",
         f"{_pct(ex.posts, 50):.0f} ms; {ex.errors or 'none'}", "-", "-"),
    ]  # fmt: skip


def _print_table(rows: list[tuple[str, str, str, str]]) -> None:
    print("\n| figure | Exosuit | raw Temporal | ratio |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def _merge(runs: list[Figures]) -> Figures:
    merged = Figures()
    for run in runs:
        merged.latencies += run.latencies
        merged.posts += run.posts
        merged.decisions += run.decisions
        for status, count in run.errors.items():
            merged.errors[status] = merged.errors.get(status, 0) + count
        for name, seconds in run.cpu.items():
            merged.cpu[name] = merged.cpu.get(name, 0) + seconds
    return merged


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flight", default="1,50,200", help="tasks in flight, comma-separated")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--burst", type=int, default=500, help="submissions at once (0: none)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL at 127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=1, help="exosuit worker processes on the task queue")
    parser.add_argument(
        "--lists",
        default="100,1000,10000",
        help="open gates for the review lists, on both databases ('': none)",
    )
    parser.add_argument(
        "--budget", type=float, help="the team's monthly budget in USD: each model step's cost is checked"
    )
    args = parser.parse_args()
    flights = [int(n) for n in args.flight.split(",") if n]
    lists = [int(n) for n in args.lists.split(",") if n]
    asyncio.run(
        main(flights, args.seconds, args.rounds, args.burst, args.postgres, lists, args.workers, args.budget)
    )
