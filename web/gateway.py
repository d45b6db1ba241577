"""The web side's one door to Temporal: typed handles; refusals come back as the domain's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from exosuit.domain.audit import Anchor
from exosuit.domain.contracts import (
    AutonomyChange,
    CancelRequest,
    Decision,
    TaskInput,
    TaskOutcome,
    workflow_id_for,
)
from exosuit.domain.refusals import Finished, Refused, refusal
from web.errors import Unavailable
from workflows.task import TaskWorkflow

TemporalClient = Client  # what the entry points hand the web app


def _refused(err: WorkflowUpdateFailedError) -> Refused:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return refusal(cause.type, cause.message)
    return refusal(None, str(cause or err))


RPC_TIMEOUT = timedelta(seconds=10)  # a decision waits for its record; Temporal down answers sooner
_DOWN = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED}


@contextlib.contextmanager
def _answers_from_temporal() -> Iterator[None]:
    """Temporal's errors as the web's: a refusal, a finished task, or Temporal unavailable."""
    try:
        yield
    except WorkflowUpdateFailedError as err:
        raise _refused(err) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise Unavailable("Temporal") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # the workflow has already closed
            raise Finished("the task has finished") from None
        if err.status in _DOWN:
            raise Unavailable("Temporal") from None
        raise


class TaskGateway:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start(self, task: TaskInput) -> None:
        """Start the task's workflow; starting it again is harmless."""
        with contextlib.suppress(WorkflowAlreadyStartedError), _answers_from_temporal():
            await self.client.start_workflow(
                TaskWorkflow.run,
                task,
                id=workflow_id_for(task.task_id),
                task_queue=self.task_queue,
                rpc_timeout=RPC_TIMEOUT,
            )

    def _handle(self, task_id: str) -> WorkflowHandle[TaskWorkflow, TaskOutcome]:
        return self.client.get_workflow_handle_for(TaskWorkflow.run, workflow_id_for(task_id))

    async def decide(self, task_id: str, decision: Decision, update_id: str | None = None) -> None:
        """Decide; with an `update_id`, Temporal answers a retry with the first attempt's outcome."""
        with _answers_from_temporal():
            await self._handle(task_id).execute_update(
                TaskWorkflow.decide, decision, id=update_id, rpc_timeout=RPC_TIMEOUT
            )

    async def set_autonomy(self, task_id: str, change: AutonomyChange) -> None:
        with _answers_from_temporal():
            await self._handle(task_id).execute_update(
                TaskWorkflow.set_autonomy, change, rpc_timeout=RPC_TIMEOUT
            )

    async def cancel(self, task_id: str, request: CancelRequest) -> None:
        with _answers_from_temporal():
            await self._handle(task_id).signal(TaskWorkflow.cancel, request, rpc_timeout=RPC_TIMEOUT)

    async def audit_head(self, task_id: str) -> Anchor | None:
        """The audit head the task's workflow recorded; None when Temporal cannot say."""
        try:
            return await self._handle(task_id).query(
                TaskWorkflow.audit_head, rpc_timeout=timedelta(seconds=3)
            )
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return None

    async def ping(self) -> None:
        """Raise unless the Temporal server answers (what readiness checks)."""
        await self.client.service_client.check_health(timeout=timedelta(seconds=2))
