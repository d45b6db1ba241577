"""The automations' door to Temporal: wake an outbox queue, manage a template's schedule and
read how its latest firing went (refusals come back as the domain's, as for tasks)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from exosuit.domain.automation import DeliveryPolicy, OutboxInput, Outlet, ScheduledRun
from exosuit.domain.refusals import Finished, Invalid, RefusalKind, Refused, Throttled, refusal
from web.gateway import RPC_TIMEOUT, answers_from_temporal
from workflows.outbox import OutboxWorkflow
from workflows.schedules import ScheduledRunWorkflow


@dataclass(frozen=True)
class LastRun:
    """A schedule's latest firing: the task it made, or why it made none."""

    started_at: datetime
    task_id: str | None = None
    refused: Refused | Throttled | None = None  # refused as a submission through the API would be
    failed: str | None = None  # no task for another reason: the schedule's template or team is gone
    # (none of the three: still running)


@dataclass(frozen=True)
class ScheduleStatus:
    """A schedule as Temporal has it: paused or not, when it fires next, its latest firing."""

    paused: bool
    next_runs: list[str]
    runs: int
    last_run: LastRun | None = None


def schedule_id_for(schedule_id: str) -> str:
    return f"schedule-{schedule_id}"


class AutomationGateway:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def wake(self, outlet: Outlet, policy: DeliveryPolicy) -> None:
        """Signal-with-start the workflow that drains the queue (a message sent again)."""
        with answers_from_temporal():
            await self.client.start_workflow(
                OutboxWorkflow.run,
                OutboxInput(outlet, policy),
                id=outlet.workflow_id,
                task_queue=self.task_queue,
                start_signal="wake",
                rpc_timeout=RPC_TIMEOUT,
            )

    async def create_schedule(self, schedule_id: str, cron: str, note: str) -> None:
        """A Temporal Schedule (visible in its UI) that starts a run of the template at each firing."""
        with answers_from_temporal(), _invalid_as_refusal("the schedule"):
            await self.client.create_schedule(
                schedule_id_for(schedule_id),
                Schedule(
                    action=ScheduleActionStartWorkflow(
                        ScheduledRunWorkflow.run,
                        ScheduledRun(schedule_id),
                        id=f"run-{schedule_id}",
                        task_queue=self.task_queue,
                    ),
                    spec=ScheduleSpec(cron_expressions=[cron]),
                    state=ScheduleState(note=note),
                ),
                rpc_timeout=RPC_TIMEOUT,
            )

    def _schedule(self, schedule_id: str) -> ScheduleHandle:
        return self.client.get_schedule_handle(schedule_id_for(schedule_id))

    async def delete_schedule(self, schedule_id: str) -> None:
        with answers_from_temporal(), contextlib.suppress(Finished):
            await self._schedule(schedule_id).delete(rpc_timeout=RPC_TIMEOUT)

    async def pause_schedule(self, schedule_id: str, paused: bool, by: str) -> None:
        handle = self._schedule(schedule_id)
        with answers_from_temporal():
            if paused:
                await handle.pause(note=f"paused by {by}", rpc_timeout=RPC_TIMEOUT)
            else:
                await handle.unpause(note=f"resumed by {by}", rpc_timeout=RPC_TIMEOUT)

    async def trigger_schedule(self, schedule_id: str) -> None:
        """Fire now, whatever the cron says."""
        with answers_from_temporal():
            await self._schedule(schedule_id).trigger(rpc_timeout=RPC_TIMEOUT)

    async def schedule_state(self, schedule_id: str) -> ScheduleStatus | None:
        try:
            found = await self._schedule(schedule_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError:
            return None
        recent = found.info.recent_actions
        return ScheduleStatus(
            paused=found.schedule.state.paused,
            next_runs=[t.isoformat() for t in found.info.next_action_times[:3]],
            runs=found.info.num_actions,
            last_run=await self._run(recent[-1]) if recent else None,
        )

    async def _run(self, fired: ScheduleActionResult) -> LastRun | None:
        """What one firing's ScheduledRunWorkflow came to (its result is the task's id)."""
        started = fired.action
        if not isinstance(started, ScheduleActionExecutionStartWorkflow):
            return None
        handle = self.client.get_workflow_handle(
            started.workflow_id, run_id=started.first_execution_run_id, result_type=str
        )
        try:
            run = await handle.describe(rpc_timeout=RPC_TIMEOUT)
            if run.status == WorkflowExecutionStatus.RUNNING:
                return LastRun(fired.started_at)
            return LastRun(fired.started_at, task_id=await handle.result(rpc_timeout=RPC_TIMEOUT))
        except WorkflowFailureError as err:
            return _skipped(fired.started_at, err)
        except RPCError:
            return None


def _skipped(started_at: datetime, err: WorkflowFailureError) -> LastRun:
    """A failed run: the refusal its activity raised, rebuilt as the web's exception."""
    cause: BaseException | None = err.cause
    while isinstance(cause, FailureError) and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if not isinstance(cause, ApplicationError):
        return LastRun(started_at, failed=str(err.cause or err))
    if cause.type == RefusalKind.THROTTLED:
        wait = cause.details[0] if cause.details and isinstance(cause.details[0], int) else 1
        return LastRun(started_at, refused=Throttled(cause.message, wait))
    if cause.type in {kind.value for kind in RefusalKind}:
        return LastRun(started_at, refused=refusal(cause.type, cause.message))
    return LastRun(started_at, failed=cause.message)


@contextlib.contextmanager
def _invalid_as_refusal(what: str) -> Iterator[None]:
    """Temporal's INVALID_ARGUMENT (a cron it cannot parse) is the caller's 422, not our 500."""
    try:
        yield
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            raise Invalid(f"Temporal refused {what}: {err.message}") from None
        raise
