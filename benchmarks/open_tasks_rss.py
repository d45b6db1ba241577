"""Memory with many open tasks: the RSS of `exosuit web` and `exosuit worker` once N tasks
wait at their first gate, opened at most F at a time (a 429 or 503 is retried after its
Retry-After, so a busy machine slows the run instead of ending it).

    EXOSUIT_WORKER_MAX_CACHED_WORKFLOWS=250 .venv/bin/python benchmarks/open_tasks_rss.py [--tasks 1000]

Prints the RSS of each process idle (after start) and with the tasks open, and the worker's
CPU seconds; run it with different cache sizes to size `EXOSUIT_WORKER_MAX_CACHED_WORKFLOWS`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from load import Exosuit, _next_gate, _usage, engine_and_model, tree_rss  # beside this script
from queue_render import scratch_database

from tests.support.model_server import ScriptedModel


async def _open_one(sub: httpx.AsyncClient, app: httpx.AsyncClient) -> None:
    body = {"title": "Bench", "instructions": "Go.", "team": "bench", "autonomy": "supervised"}
    while True:
        try:
            created = await sub.post("/api/v1/tasks", json=body)
        except httpx.TransportError:  # counted by load.py; here only the memory matters
            await asyncio.sleep(1)
            continue
        if created.status_code == 201:
            break
        assert created.status_code in (429, 503), created.text
        await asyncio.sleep(float(created.headers.get("Retry-After", "1")))
    await _next_gate(app, created.json()["id"], None)


def _rss(exosuit: Exosuit) -> dict[str, float]:
    return {name: tree_rss(p.pid) for name, p in exosuit.processes.items()}


def _split(pid: int) -> str:
    """RSS by kind (Linux smaps_rollup): anonymous (the heap) and file-backed (libraries)."""
    kb = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        kb[name.rstrip(":")] = int(value)
    return f"anon {kb['Anonymous'] / 1024:.0f}, file {(kb['Rss'] - kb['Anonymous']) / 1024:.0f} MB"


async def main(count: int, flight: int, dev: bool) -> None:
    env, address, models, plan = await engine_and_model()
    cache = os.environ.get("EXOSUIT_WORKER_MAX_CACHED_WORKFLOWS", "default")
    try:
        with tempfile.TemporaryDirectory(prefix="exosuit-rss-") as tmp:
            async with scratch_database("sqlite") as url:
                exosuit = Exosuit(address, models.register(ScriptedModel(plan)), Path(tmp), url, dev=dev)
                try:
                    await exosuit.start()
                    await asyncio.sleep(2)
                    idle = _rss(exosuit)
                    started = time.perf_counter()
                    slots = asyncio.Semaphore(flight)

                    async def one(sub: httpx.AsyncClient, app: httpx.AsyncClient) -> None:
                        async with slots:
                            await _open_one(sub, app)

                    async with exosuit._clients(connections=flight * 2 + 10, request_seconds=120) as (
                        sub,
                        app,
                    ):
                        await asyncio.gather(*(one(sub, app) for _ in range(count)))
                    seconds = time.perf_counter() - started
                    loaded = _rss(exosuit)
                    split = {name: _split(p.pid) for name, p in exosuit.processes.items()}
                    worker_cpu = _usage(exosuit.processes["dev" if dev else "worker"].pid)[0]
                finally:
                    await exosuit.stop()
    finally:
        await models.stop()
        await env.shutdown()
    print(
        f"\n{count} open tasks ({seconds:.0f} s to open), worker cache {cache}, "
        f"{'dev' if dev else 'worker'} CPU {worker_cpu:.0f} s"
    )
    for name in idle:
        print(f"{name:<8} RSS idle {idle[name]:6.0f} MB   "
              f"with the tasks open {loaded[name]:6.0f} MB ({split[name]})")  # fmt: skip
    print(f"web + worker {sum(loaded.values()):.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--flight", type=int, default=50, help="submissions at once")
    parser.add_argument("--dev", action="store_true", help="one `exosuit dev` (and any child of it)")
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.flight, args.dev))
