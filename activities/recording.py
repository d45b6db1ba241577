"""The one activity through which the workflow changes the read model and the audit chain."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from exosuit.domain.audit import Anchor
from exosuit.domain.contracts import CHAIN_CHANGED, RECORD_ACTIVITY, TaskEvent
from exosuit.storage.events import ChainChanged, EventWriter


class RecordActivities:
    def __init__(self, writer: EventWriter) -> None:
        self._writer = writer

    @activity.defn(name=RECORD_ACTIVITY)
    async def record_event(self, event: TaskEvent) -> Anchor:
        """Apply the event; the chain's head after it, which the workflow keeps as the anchor."""
        try:
            return await self._writer.apply(event, event.call)
        except ChainChanged as exc:  # retrying cannot help: the task stops, saying why
            raise ApplicationError(str(exc), type=CHAIN_CHANGED, non_retryable=True) from None
