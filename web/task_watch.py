"""Waiting for a task to change without a database poll per waiter.

One poller per process reads the `updated_at` of every task someone waits on, in one
primary-key query every `interval` seconds while anyone waits (none while nobody does),
and wakes the waiters whose task changed since the version they saw.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.1
_BATCH = 500  # ids in one IN (...) list


class Versions(Protocol):
    async def versions(self, task_ids: Sequence[str]) -> dict[str, datetime]: ...


class TaskWatch:
    def __init__(self, tasks: Versions, interval: float = POLL_SECONDS) -> None:
        self._tasks = tasks
        self._interval = interval
        self._waiters: dict[str, list[tuple[datetime | None, asyncio.Future[None]]]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def changed(self, task_id: str, seen: datetime | None, within: float) -> bool:
        """Wait until the task's version differs from `seen`; False after `within` seconds."""
        waiter = (seen, asyncio.get_running_loop().create_future())
        self._waiters.setdefault(task_id, []).append(waiter)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="task-watch")
        try:
            async with asyncio.timeout(within):
                await waiter[1]
            return True
        except TimeoutError:
            return False
        finally:
            waiting = self._waiters.get(task_id, [])
            if waiter in waiting:
                waiting.remove(waiter)
            if not waiting:
                self._waiters.pop(task_id, None)

    @property
    def watched(self) -> int:
        return len(self._waiters)

    async def _poll(self) -> None:
        while self._waiters:  # ends by itself when nobody waits (no await between check and exit)
            ids = list(self._waiters)
            try:
                current: dict[str, datetime] = {}
                for start in range(0, len(ids), _BATCH):
                    current |= await self._tasks.versions(ids[start : start + _BATCH])
            except Exception:  # the database is down: the waiters time out, or it comes back
                logger.warning("task watch could not read the tasks' versions", exc_info=True)
                await asyncio.sleep(self._interval * 10)
                continue
            for task_id in ids:
                for seen, future in self._waiters.get(task_id, ()):
                    if current.get(task_id) != seen and not future.done():
                        future.set_result(None)
            await asyncio.sleep(self._interval)
