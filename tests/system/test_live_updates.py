"""The task page's live updates ride on the process's one TaskWatch: open pages cost one
read of the watched tasks' versions a tick, whatever their number, and no read of their own."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from temporalio.testing import WorkflowEnvironment

from exosuit.domain.submissions import new_task_id
from exosuit.settings import Settings
from exosuit.storage.db import Database, migrate
from exosuit.storage.tables import Task
from exosuit.storage.tasks import Tasks
from tests.support.model_server import serve, shutdown
from tests.support.page_session import signed_in
from web.app import create_app
from web.deps import Services
from web.task_watch import TaskWatch

WAIT_SECONDS = 10.0
TICKS = 20


class Meter:
    """The statements the web process sends its database, and when the watch reads versions."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks
        self.statements = 0
        self.reads: list[int] = []  # the statement count as each read of versions began
        self._read = asyncio.Condition()

    def count(self, *_: Any) -> None:
        self.statements += 1

    async def versions(self, task_ids: Sequence[str]) -> dict[str, datetime]:
        async with self._read:
            self.reads.append(self.statements)
            self._read.notify_all()
        return await self.tasks.versions(task_ids)

    async def reads_after(self, more: int) -> list[int]:
        """The next `more` + 1 reads of versions (a tick each): their statement counts."""
        start = len(self.reads)
        async with self._read:
            await self._read.wait_for(lambda: len(self.reads) > start + more)
        return self.reads[start : start + more + 1]


async def next_event(lines: AsyncIterator[str]) -> tuple[str, str]:
    event_name, data = "", ""
    async for line in lines:
        if not line:
            return event_name, data
        field, _, value = line.partition(": ")
        event_name, data = (value, data) if field == "event" else (event_name, value)
    raise AssertionError("the stream ended")


async def test_two_open_task_pages_read_nothing_but_the_shared_watch(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'exosuit.db'}"
    migrate(url)
    db = Database.from_url(url)
    settings = Settings(data_dir=tmp_path, task_queue=f"tq-{uuid.uuid4().hex}")
    services = Services.build(settings, db, temporal_env.client)
    meter = Meter(services.tasks)
    services.watch = TaskWatch(meter, settings.watch_interval_seconds)
    path = str(tmp_path / "exosuit.db")

    def count(conn: Any, *_: Any) -> None:  # every engine on this database: the app's, the readers'
        if conn.engine.url.database == path:
            meter.count()

    event.listen(Engine, "before_cursor_execute", count)
    server, server_task, port = await serve(create_app(services))
    try:
        team, task_id = f"team-{uuid.uuid4().hex[:8]}", new_task_id()
        await services.directory.ensure_team(team)
        task = Task(
            id=task_id, title="Digest", instructions="Sum up.", team=team, submitted_by="x", autonomy="manual"
        )
        await services.tasks.insert(task)  # no worker: nothing else touches the database
        http = await signed_in(f"http://127.0.0.1:{port}", services.directory, team)
        async with (
            contextlib.aclosing(http),
            http.stream("GET", f"/tasks/{task_id}/events") as one,
            http.stream("GET", f"/tasks/{task_id}/events") as two,
        ):
            pages = [one.aiter_lines(), two.aiter_lines()]
            first = [await asyncio.wait_for(next_event(page), WAIT_SECONDS) for page in pages]
            assert {name for name, _ in first} == {"changed"}

            reads = await asyncio.wait_for(meter.reads_after(TICKS), WAIT_SECONDS)
            assert services.watch.watched == 1  # both pages wait on the one watched task
            # Between these reads of versions the process sent its database nothing else.
            per_read = (reads[-1] - reads[0]) / TICKS
            assert per_read == 1, f"{reads[-1] - reads[0]} statements in {TICKS} ticks"

            await services.tasks.note_waiting(task_id, "a model provider")  # the task changes
            woken = [await asyncio.wait_for(next_event(page), WAIT_SECONDS) for page in pages]
            assert all(name == "changed" for name, _ in woken)
            assert woken[0][1] == woken[1][1] != first[0][1]  # the new version, on both pages
    finally:
        event.remove(Engine, "before_cursor_execute", count)
        await shutdown(server, server_task)
        await db.dispose()
