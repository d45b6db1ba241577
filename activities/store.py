"""The one activity through which the workflow changes the read model and the audit chain."""

from __future__ import annotations

from temporalio import activity

from exosuit.contracts import RECORD_ACTIVITY, TaskEvent
from exosuit.store import TaskStore


class StoreActivities:
    def __init__(self, store: TaskStore) -> None:
        self._store = store

    @activity.defn(name=RECORD_ACTIVITY)
    async def record_event(self, event: TaskEvent) -> None:
        await self._store.apply(event)
