"""CPU per request in the web process: the decision POST and the `/wait` long-poll.

Wall-clock latency on a shared machine is mostly other processes' noise; the CPU time the
`exosuit web` process spends per request is not. This starts the deployed pair (`exosuit
web` + `exosuit worker`, SQLite by default) on a Temporal dev server with the scripted model,
opens T tasks at their plan gate, then, one request at a time and over several rounds:

- decides every task's open gate (`POST /api/v1/tasks/{id}/decisions`), and
- long-polls each one until its next gate shows (`GET /api/v1/tasks/{id}/wait?for=gate`),
- reads each task once (`GET /api/v1/tasks/{id}`: authentication plus one task read),

and divides the web process's CPU seconds (user + system, from /proc) spent in each phase
by the number of requests. An idle phase of the same length gives the floor (the watch's
ticks, the reconciler) that is subtracted.

    .venv/bin/python benchmarks/request_cpu.py [--tasks 40] [--rounds 3] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from load import Exosuit, _next_gate, _usage, engine_and_model  # beside this script
from queue_render import scratch_database

from tests.support.model_server import ScriptedModel

Task = dict[str, object]


async def _cpu_per_request(
    pid: int, tasks: list[Task], request: Callable[[Task], Awaitable[Task]]
) -> tuple[float, float]:
    """Web CPU ms per request over the tasks, one request at a time; and the wall seconds."""
    before, _ = _usage(pid)
    started = time.perf_counter()
    for i, task in enumerate(tasks):
        tasks[i] = await request(task)
    wall = time.perf_counter() - started
    after, _ = _usage(pid)
    return (after - before) * 1000 / len(tasks), wall


async def _idle_cpu_per_second(pid: int, seconds: float) -> float:
    before, _ = _usage(pid)
    await asyncio.sleep(seconds)
    after, _ = _usage(pid)
    return (after - before) * 1000 / seconds


async def measure(exosuit: Exosuit, count: int, rounds: int) -> dict[str, list[float]]:
    pid = exosuit.processes["web"].pid
    figures: dict[str, list[float]] = {"decision POST": [], "/wait for=gate": [], "GET task": []}
    async with exosuit._clients(connections=20, request_seconds=60) as (sub, app):
        tasks = [await exosuit._first_gate(sub, app) for _ in range(count)]
        decided: dict[str, str] = {}

        async def decide(task: Task) -> Task:
            gate = task["open_gate"]
            assert isinstance(gate, dict)
            answer = await app.post(
                f"/api/v1/tasks/{task['id']}/decisions", json={"gate_id": gate["id"], "action": "approve"}
            )
            assert answer.status_code == 200, answer.text
            decided[str(task["id"])] = str(gate["id"])
            return task

        async def wait(task: Task) -> Task:
            return await _next_gate(app, str(task["id"]), decided[str(task["id"])])

        async def read(task: Task) -> Task:
            answer = await app.get(f"/api/v1/tasks/{task['id']}")
            assert answer.status_code == 200, answer.text
            return task

        for _ in range(rounds):
            if any(t["status"] == "completed" for t in tasks):
                break
            idle = await _idle_cpu_per_second(pid, 2.0)
            cpu, wall = await _cpu_per_request(pid, tasks, decide)
            figures["decision POST"].append(cpu - idle * wall / count)
            # The worker catches up first, so the wait phase prices an answer, not the waiting.
            await asyncio.sleep(3.0)
            cpu, wall = await _cpu_per_request(pid, tasks, wait)
            figures["/wait for=gate"].append(cpu - idle * wall / count)
            cpu, wall = await _cpu_per_request(pid, tasks, read)
            figures["GET task"].append(cpu - idle * wall / count)
    return figures


async def main(count: int, rounds: int, postgres: bool) -> None:
    env, address, models, plan = await engine_and_model()
    try:
        with tempfile.TemporaryDirectory(prefix="exosuit-cpu-") as tmp:
            async with scratch_database("postgres" if postgres else "sqlite") as url:
                exosuit = Exosuit(address, models.register(ScriptedModel(plan)), Path(tmp), url)
                try:
                    await exosuit.start()
                    figures = await measure(exosuit, count, rounds)
                finally:
                    await exosuit.stop()
    finally:
        await models.stop()
        await env.shutdown()
    database = "PostgreSQL" if postgres else "SQLite"
    print(f"\nweb process CPU per request, {count} tasks x {rounds} rounds, {database}, idle floor removed")
    print(f"{'request':<16} {'median ms':>10} {'rounds':>30}")
    for name, values in figures.items():
        each = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:<16} {statistics.median(values):>10.2f} {each:>30}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL at 127.0.0.1:5432/test")
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.rounds, args.postgres))
