"""The one activity through which the workflow changes the read model and the audit chain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from exosuit.domain.contracts import (
    CHAIN_CHANGED,
    RECORD_EVENTS_ACTIVITY,
    Recorded,
    TaskEvent,
)
from exosuit.storage.events import ChainChanged, EventWriter


class RecordActivities:
    def __init__(
        self, writer: EventWriter, after: Callable[[str, int], Awaitable[None]] | None = None
    ) -> None:
        self._writer = writer
        self._after = after  # (task, from seq): wakes the outbox's workflows once committed

    @activity.defn(name=RECORD_EVENTS_ACTIVITY)
    async def record_events(self, events: list[TaskEvent]) -> Recorded:
        """Apply the events a workflow task produced together, in one transaction."""
        try:
            written = await self._writer.apply_all(events)
        except ChainChanged as exc:
            raise ApplicationError(str(exc), type=CHAIN_CHANGED, non_retryable=True) from None
        head = written.head
        if written.enqueued and self._after is not None:  # the outbox rows of the batch's events
            await self._after(events[0].task_id, head.seq - len(events) + 1)
        return Recorded(head.seq, head.hash, written.budgeted)
