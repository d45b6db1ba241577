"""`exosuit dev`'s worker in its own process: restarted when it fails, stopped when asked."""

from __future__ import annotations

import asyncio
import os

from exosuit.cli.worker_process import WorkerInProcess


async def test_a_failed_worker_is_started_again_and_a_stop_ends_it() -> None:
    runs: list[int] = []
    second = asyncio.Event()

    async def run(stop: asyncio.Event) -> None:
        runs.append(len(runs) + 1)
        if len(runs) == 1:
            raise RuntimeError("the worker's first run fails")
        second.set()
        await stop.wait()

    worker = WorkerInProcess(run, grace=1.0)
    assert worker.pid == os.getpid()
    await worker.start()
    await asyncio.wait_for(second.wait(), 5)  # after the first restart delay (0.5 s)
    await worker.stop()
    assert runs == [1, 2]
