"""The web side's door to Temporal for tasks (automations have theirs, web/automation_gateway.py):
typed handles; refusals come back as the domain's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import QueryRejectCondition, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from exosuit.domain.audit import Anchor
from exosuit.domain.autonomy import AutonomyLevel
from exosuit.domain.contracts import (
    AutonomyChange,
    CancelRequest,
    CapChange,
    Decision,
    TaskInput,
    TaskOutcome,
    workflow_id_for,
)
from exosuit.domain.refusals import Finished, NotOpen, Refused, Throttled, refusal
from web.unavailable import Unavailable
from workflows.task import TaskWorkflow

TemporalClient = Client  # what the entry points hand the web app


def _refused(err: WorkflowUpdateFailedError) -> Refused:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return refusal(cause.type, cause.message)
    return refusal(None, str(cause or err))


RPC_TIMEOUT = timedelta(seconds=10)  # a decision waits for its record; Temporal down answers sooner
# Temporal down, slow, or its call cut short (ABORTED: an update lost to a reloaded workflow
# context): the same call may well succeed later, so 503 with Retry-After.
_DOWN = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.ABORTED,
}
BUSY_RETRY_SECONDS = 2


@contextlib.contextmanager
def answers_from_temporal() -> Iterator[None]:
    """Temporal's errors as the web's: a refusal, a finished task, Temporal busy (429) or
    unavailable (503). Other RPC errors are bugs of ours and stay 500s."""
    try:
        yield
    except WorkflowUpdateFailedError as err:
        raise _refused(err) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise Unavailable("Temporal") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # the workflow has already closed
            raise Finished("the task has finished") from None
        if err.status == RPCStatusCode.RESOURCE_EXHAUSTED:  # its rate limits, or too many updates
            raise Throttled("Temporal is busy; try again shortly", BUSY_RETRY_SECONDS) from None
        if err.status in _DOWN:
            raise Unavailable("Temporal") from None
        raise


# How the server closes a run that the workflow did not end itself (terminate, a timeout,
# the history limit, an unhandled failure, a cancel request): its task never recorded an end.
_SERVER_ENDS = {
    WorkflowExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT,
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.CANCELED,
}


@dataclass(frozen=True)
class Run:
    """A task's latest workflow run as Temporal describes it."""

    run_id: str
    status: str  # Temporal's execution status in lower case: running, completed, terminated...
    ended_by_server: bool  # closed without the workflow recording the task's end


@dataclass(frozen=True)
class ServerEnd:
    """Why the server closed a run: the termination's reason and who asked, or the failure."""

    detail: str | None
    identity: str | None = None


class TaskGateway:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start(self, task: TaskInput) -> None:
        """Start the task's workflow; starting it again is harmless, even after it has closed."""
        with contextlib.suppress(WorkflowAlreadyStartedError), answers_from_temporal():
            await self.client.start_workflow(
                TaskWorkflow.run,
                task,
                id=workflow_id_for(task.task_id),
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,  # a replay never runs it twice
                rpc_timeout=RPC_TIMEOUT,
            )

    async def latest_run(self, task_id: str) -> Run | None:
        """The task's latest workflow run; None when Temporal has no workflow for it."""
        with answers_from_temporal():
            try:
                found = await self._handle(task_id).describe(rpc_timeout=RPC_TIMEOUT)
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return None
                raise
        status = found.status or WorkflowExecutionStatus.RUNNING
        return Run(found.run_id, status.name.lower(), status in _SERVER_ENDS)

    async def server_end(self, task_id: str, run_id: str) -> ServerEnd:
        """Why the server closed this run, read from its close event (one event, not the history)."""
        handle = self.client.get_workflow_handle(workflow_id_for(task_id), run_id=run_id)
        with answers_from_temporal():
            async for event in handle.fetch_history_events(
                event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT, rpc_timeout=RPC_TIMEOUT
            ):
                return _server_end(event)
        return ServerEnd(None)

    def _handle(self, task_id: str) -> WorkflowHandle[TaskWorkflow, TaskOutcome]:
        return self.client.get_workflow_handle_for(TaskWorkflow.run, workflow_id_for(task_id))

    async def decide(self, task_id: str, decision: Decision, update_id: str | None = None) -> bool:
        """Decide; with an `update_id`, Temporal answers a retry with the first attempt's outcome.
        True: recorded; False: the model step it approves records it in a moment."""
        with answers_from_temporal():
            recorded = await self._handle(task_id).execute_update(
                TaskWorkflow.decide, decision, id=update_id, rpc_timeout=RPC_TIMEOUT
            )
        return recorded is not False  # an update that answered before this field existed: None

    async def lower_cap(self, task_id: str, change: CapChange) -> None:
        """Tell a running task its team's cap was lowered (its level follows it down)."""
        with answers_from_temporal():
            handle = self._handle(task_id)
            await handle.execute_update(TaskWorkflow.lower_cap, change, rpc_timeout=RPC_TIMEOUT)

    async def set_autonomy(self, task_id: str, change: AutonomyChange) -> None:
        with answers_from_temporal():
            await self._handle(task_id).execute_update(
                TaskWorkflow.set_autonomy, change, rpc_timeout=RPC_TIMEOUT
            )

    async def cancel(self, task_id: str, request: CancelRequest) -> None:
        with answers_from_temporal():
            await self._handle(task_id).signal(TaskWorkflow.cancel, request, rpc_timeout=RPC_TIMEOUT)

    async def audit_head(self, task_id: str) -> Anchor | None:
        """The audit head the task's workflow recorded; None when Temporal cannot say."""
        try:
            # A run the server closed (terminated, timed out) never recorded the task's end,
            # which the reconciler appends later: its head is stale, the signed anchor is not.
            return await self._handle(task_id).query(
                TaskWorkflow.audit_head,
                reject_condition=QueryRejectCondition.NOT_COMPLETED_CLEANLY,
                rpc_timeout=timedelta(seconds=3),
            )
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return None

    async def resume(self, task_id: str, by: str, via: str | None, cap: AutonomyLevel | None = None) -> None:
        """Start a failed task's next run from its failed step (what its last run returned),
        under the team's cap as it is now (`cap`) when given."""
        workflow_id = workflow_id_for(task_id)
        with answers_from_temporal():
            found = await self._handle(task_id).describe(rpc_timeout=RPC_TIMEOUT)
            if found.status is not WorkflowExecutionStatus.COMPLETED:
                raise Finished("the task cannot be resumed: its workflow is not a finished run")
            last = self.client.get_workflow_handle(workflow_id, run_id=found.run_id, result_type=TaskOutcome)
            outcome = await last.result(follow_runs=False, rpc_timeout=RPC_TIMEOUT)
            if outcome.resume is None:
                raise Finished(f"the task cannot be resumed (it ended {outcome.status})")
            try:
                await self.client.start_workflow(
                    TaskWorkflow.run,
                    under_cap(replace(outcome.resume, resumed_by=by, resumed_via=via), cap),
                    id=workflow_id,
                    task_queue=self.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,  # after a closed run only
                    rpc_timeout=RPC_TIMEOUT,
                )
            except WorkflowAlreadyStartedError:
                raise NotOpen("the task has already been resumed") from None

    async def ping(self) -> None:
        """Raise unless the Temporal server answers (what readiness checks)."""
        await self.client.service_client.check_health(timeout=timedelta(seconds=2))


def under_cap(task: TaskInput, cap: AutonomyLevel | None) -> TaskInput:
    """A resumed run's input under the team's cap now: its level no higher than the cap."""
    if cap is None or task.state is None:
        return task
    level = cap if task.state.level.rank > cap.rank else task.state.level
    return replace(task, max_autonomy=cap, state=replace(task.state, cap=cap, level=level))


def _server_end(event: HistoryEvent) -> ServerEnd:
    if event.HasField("workflow_execution_terminated_event_attributes"):
        terminated = event.workflow_execution_terminated_event_attributes
        return ServerEnd(terminated.reason or None, terminated.identity or None)
    if event.HasField("workflow_execution_failed_event_attributes"):
        return ServerEnd(event.workflow_execution_failed_event_attributes.failure.message or None)
    return ServerEnd(None)  # timed out or cancelled: the status says it all
