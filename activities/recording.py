"""The one activity through which the workflow changes the read model and the audit chain."""

from __future__ import annotations

from temporalio import activity

from exosuit.domain.contracts import RECORD_ACTIVITY, TaskEvent
from exosuit.storage.events import EventWriter


class RecordActivities:
    def __init__(self, writer: EventWriter) -> None:
        self._writer = writer

    @activity.defn(name=RECORD_ACTIVITY)
    async def record_event(self, event: TaskEvent) -> None:
        await self._writer.apply(event)
