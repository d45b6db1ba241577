"""Database statements per second a web process sends while N task pages are open.

Each open task page holds an event stream; the streams wait on the process's one
TaskWatch, which reads the versions of every watched task once a tick
(`watch_interval_seconds`), whatever the number of pages. No worker runs and the task
does not change, so every statement counted is a live view's.

    .venv/bin/python benchmarks/page_streams.py [--pages 1 2 10 50] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exosuit.cli.temporal_server import temporal_cli
from exosuit.domain.submissions import new_task_id
from exosuit.settings import Settings
from exosuit.storage.db import Database, migrate
from exosuit.storage.tables import Task
from tests.support.model_server import serve, shutdown
from tests.support.page_session import signed_in
from web.app import create_app
from web.deps import Services


class Statements:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: Any) -> None:
        self.count += 1


async def hold_page(
    http: httpx.AsyncClient, task_id: str, open_: asyncio.Event, close: asyncio.Event
) -> None:
    """One open task page's event stream, read until `close`."""

    async def read(stream: httpx.Response) -> None:
        async for line in stream.aiter_lines():
            if line.startswith("data"):
                open_.set()

    async with http.stream("GET", f"/tasks/{task_id}/events") as stream:
        reader = asyncio.create_task(read(stream))
        await close.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def main(pages: list[int], seconds: float) -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli())
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'exosuit.db'}"
        migrate(url)
        db = Database.from_url(url)
        settings = Settings(data_dir=Path(tmp), task_queue="bench-pages", event_streams_per_user=max(pages))
        services = Services.build(settings, db, env.client)
        statements = Statements()
        event.listen(db.engine.sync_engine, "before_cursor_execute", statements)
        server, server_task, port = await serve(create_app(services))
        try:
            await services.directory.ensure_team("bench")
            task_id = new_task_id()
            task = Task(
                id=task_id, title="x", instructions="y", team="bench", submitted_by="x", autonomy="manual"
            )
            await services.tasks.insert(task)
            http = await signed_in(f"http://127.0.0.1:{port}", services.directory, "bench")
            async with contextlib.aclosing(http):
                print(f"watch interval {settings.watch_interval_seconds} s")
                for count in pages:
                    opened, close = [asyncio.Event() for _ in range(count)], asyncio.Event()
                    held = [asyncio.create_task(hold_page(http, task_id, o, close)) for o in opened]
                    for o in opened:
                        await o.wait()
                    before, started = statements.count, time.perf_counter()
                    await asyncio.sleep(seconds)
                    rate = (statements.count - before) / (time.perf_counter() - started)
                    close.set()
                    await asyncio.gather(*held)
                    print(f"{count:4d} open task pages: {rate:6.1f} statements/s")
        finally:
            await shutdown(server, server_task)
            await db.dispose()
            await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 2, 10, 50])
    parser.add_argument("--seconds", type=float, default=3.0)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.pages, arguments.seconds))
