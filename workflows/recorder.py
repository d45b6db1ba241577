"""The recorder: the one way the workflow changes the read model and the audit chain.

One record at a time (the lock), so each names the head it follows; events another
follows at once are deferred and written with it (one transaction, one local activity).
A model step's run, or a plan's first draft, may hold the head instead (`handing_over`): its
activity records its start (and the step's answer) itself, and records the workflow makes
meanwhile wait.
The head and the budget flag it learns go into the task's state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from exosuit.domain.audit import SYSTEM_ACTOR, Anchor
    from exosuit.domain.contracts import RECORD_EVENTS_ACTIVITY, Recorded, TaskEvent
    from exosuit.domain.task import EventAction
    from exosuit.domain.task_state import TaskState
    from workflows.open_gate import GatePhase, OpenGate
    from workflows.policies import STORE_WRITE


class Recorder:
    def __init__(self, task_id: str, state: TaskState) -> None:
        self._task_id = task_id
        self._state = state
        self._lock = asyncio.Lock()
        self._pending: list[TaskEvent] = []  # deferred events, recorded with the next one
        self._answering: OpenGate | None = None  # a claimed gate whose decision is in _pending

    def next_key(self) -> str:
        """A new idempotency key: the workflow's id and its next event number."""
        self._state.events += 1
        return f"{workflow.info().workflow_id}/{self._state.events}"

    def event(self, action: EventAction, *, actor: str = SYSTEM_ACTOR, **fields: Any) -> TaskEvent:
        """An event to record later, by an activity or by `write`, with its key taken now."""
        return TaskEvent(self._task_id, self.next_key(), actor, action, **fields)

    async def record(
        self,
        action: EventAction,
        *,
        actor: str = SYSTEM_ACTOR,
        defer: bool = False,
        answering: OpenGate | None = None,
        **fields: Any,
    ) -> None:
        """Record an event; `defer`: with the next one. `answering`: the gate whose claimed
        decision this is, whose update answers once it is written (or says it was not)."""
        async with self._lock:
            self._pending.append(TaskEvent(self._task_id, self.next_key(), actor, action, **fields))
            if answering is not None:
                self._answering = answering
            if not defer:
                await self._flush_locked()

    async def flush(self) -> None:
        """Record what was deferred: before anything that reads the database or waits."""
        async with self._lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        if not self._pending:
            return
        events, self._pending = self._pending, []
        events[0].after = self._state.head  # the chain must still end where this workflow left it
        answering, self._answering = self._answering, None
        try:
            recorded = await workflow.execute_local_activity(
                RECORD_EVENTS_ACTIVITY, events, result_type=Recorded, **STORE_WRITE
            )
        except (ActivityError, ApplicationError):
            if answering is not None:
                answering.phase = GatePhase.UNRECORDED
            raise
        self.adopt(recorded)
        if answering is not None:
            answering.phase = GatePhase.RECORDED

    @asynccontextmanager
    async def handing_over(self, event: TaskEvent) -> AsyncIterator[list[TaskEvent]]:
        """Hand the head to an activity: it records `event`, after what was deferred (the
        batch yielded, which names the head it must follow), before anything else it does.
        A claimed decision among them is the activity's to record: its update answers now.
        Until the block ends, other records wait; inside it, `adopt` or `write` what it did."""
        async with self._lock:
            first, self._pending = [*self._pending, event], []
            first[0].after = self._state.head
            answering, self._answering = self._answering, None
            if answering is not None:
                answering.phase = GatePhase.DELEGATED
            yield first

    async def took(self, first: list[TaskEvent], started: Recorded | None) -> None:
        """After the activity given `first` (inside `handing_over`): the head it left once it
        wrote them, or `first` written here (it could not)."""
        if started is None:
            await self.write(first)
        else:
            self.adopt(started)

    async def write(self, events: list[TaskEvent]) -> None:
        """Record events made with `event`, inside `handing_over` (again: each once, by its key)."""
        recorded = await workflow.execute_local_activity(
            RECORD_EVENTS_ACTIVITY, events, result_type=Recorded, **STORE_WRITE
        )
        self.adopt(recorded)

    def adopt(self, recorded: Recorded) -> None:
        """The chain's head after events something recorded (the next record must follow it)."""
        self._state.head = Anchor(recorded.seq, recorded.hash)
        self._state.budgeted = recorded.budgeted
