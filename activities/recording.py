"""The activity through which the workflow changes the read model and the audit chain (a
model step's run writes its own start and answer the same way, and a plan's first attempt its
start: `write_events`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from exosuit.domain.contracts import (
    CHAIN_CHANGED,
    RECORD_EVENTS_ACTIVITY,
    Recorded,
    TaskEvent,
)
from exosuit.storage.db import DatabaseDown
from exosuit.storage.events import ChainChanged, EventWriter

logger = logging.getLogger(__name__)
Wake = Callable[[str, int], Awaitable[None]]  # (task, from seq): the outbox's workflows, once committed


class RecordActivities:
    def __init__(self, writer: EventWriter, after: Wake | None = None) -> None:
        self._writer = writer
        self._after = after  # wakes the outbox's workflows once committed

    @activity.defn(name=RECORD_EVENTS_ACTIVITY)
    async def record_events(self, events: list[TaskEvent]) -> Recorded:
        """Apply the events a workflow task produced together, in one transaction."""
        return await write_events(self._writer, events, self._after)


async def write_events(writer: EventWriter, events: list[TaskEvent], after: Wake | None) -> Recorded:
    """Events of one task in one transaction (each once, by its key); the chain's head after."""
    try:
        written = await writer.apply_all(events)
    except ChainChanged as exc:
        raise ApplicationError(str(exc), type=CHAIN_CHANGED, non_retryable=True) from None
    head = written.head
    if written.enqueued and after is not None:  # the outbox rows of the batch's events
        await after(events[0].task_id, head.seq - len(events) + 1)
    return Recorded(head.seq, head.hash, written.budgeted)


async def write_first(
    writer: EventWriter, events: list[TaskEvent], after: Wake | None, what: str
) -> Recorded | None:
    """What an activity records before it asks the model (a step's or a plan's start, and the
    decision that let it run); None with the database down: the workflow writes it then."""
    if not events:
        return None
    try:
        return await write_events(writer, events, after)
    except DatabaseDown:
        logger.warning("task %s: the workflow records %s", events[0].task_id, what)
        return None
