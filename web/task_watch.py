"""Waiting for a task to change without a database poll per waiter.

One poller per process reads the `updated_at` of every task someone waits on, in one
primary-key query every `interval` seconds while anyone waits (none while nobody does),
and wakes the waiters whose task changed since the version they saw. Every live view
waits here: the API's long-poll and event stream, the task page's event stream, the MCP
server's wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

logger = logging.getLogger(__name__)

_BATCH = 500  # ids in one IN (...) list


class Versions(Protocol):
    async def versions(self, task_ids: Sequence[str]) -> dict[str, datetime]: ...


Seen = TypeVar("Seen")  # what a follower reads of the task each time it changes


class TaskWatch:
    def __init__(self, tasks: Versions, interval: float) -> None:
        self._tasks = tasks
        self._interval = interval
        self._waiters: dict[str, list[tuple[datetime | None, asyncio.Future[None]]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """The process is stopping (`close` was called)."""
        return self._closed

    def close(self) -> None:
        """The process is stopping: every wait ends now, as if its time were up (a long-poll
        answers with the task as it is, a stream ends), so that none is cut off unanswered
        when the server's grace runs out; and no new one waits."""
        self._closed = True
        for waiting in self._waiters.values():
            for _, future in waiting:
                if not future.done():
                    future.set_result(None)

    async def changed(self, task_id: str, seen: datetime | None, within: float) -> bool:
        """Wait until the task's version differs from `seen`; False after `within` seconds, or
        at once when the watch is closed."""
        if self._closed:
            return False
        waiter = (seen, asyncio.get_running_loop().create_future())
        self._waiters.setdefault(task_id, []).append(waiter)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="task-watch")
        try:
            async with asyncio.timeout(within):
                await waiter[1]
            return not self._closed
        except TimeoutError:
            return False
        finally:
            waiting = self._waiters.get(task_id, [])
            if waiter in waiting:
                waiting.remove(waiter)
            if not waiting:
                self._waiters.pop(task_id, None)

    async def follow(
        self,
        task_id: str,
        first: Seen,
        read: Callable[[], Awaitable[Seen | None]],
        version: Callable[[Seen], datetime],
        *,
        seconds: float,
        last: Callable[[Seen], bool] = lambda _: False,
    ) -> AsyncIterator[Seen]:
        """`first`, then the task `read` again each time it changes: an event stream's
        content. Ends after the one that is `last`, when the task is gone, or after `seconds`
        (a stream's client reconnects for more)."""
        current = first
        yield current
        loop = asyncio.get_running_loop()
        ends = loop.time() + seconds
        while not last(current):
            left = ends - loop.time()
            if left <= 0 or not await self.changed(task_id, version(current), left):
                return
            found = await read()
            if found is None:
                return
            current = found
            yield current

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
