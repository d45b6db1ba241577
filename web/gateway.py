"""The web side's one door to Temporal: typed handles; refusals come back as the domain's."""

from __future__ import annotations

import contextlib

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from exosuit.domain.audit import Anchor
from exosuit.domain.contracts import AutonomyChange, CancelRequest, Decision, TaskInput, workflow_id_for
from exosuit.domain.refusals import Finished, Refused, refusal
from workflows.task import TaskWorkflow

TemporalClient = Client  # what the entry points hand the web app


def _refused(err: WorkflowUpdateFailedError) -> Refused:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return refusal(cause.type, cause.message)
    return refusal(None, str(cause or err))


def _finished_or(err: RPCError) -> Exception:
    # NOT_FOUND here means the workflow has already closed.
    if err.status == RPCStatusCode.NOT_FOUND:
        return Finished("the task has finished")
    return err


class TaskGateway:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start(self, task: TaskInput) -> None:
        """Start the task's workflow; starting it again is harmless."""
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.client.start_workflow(
                TaskWorkflow.run,
                task,
                id=workflow_id_for(task.task_id),
                task_queue=self.task_queue,
            )

    def _handle(self, task_id: str) -> WorkflowHandle[TaskWorkflow, str]:
        return self.client.get_workflow_handle_for(TaskWorkflow.run, workflow_id_for(task_id))

    async def decide(self, task_id: str, decision: Decision) -> None:
        try:
            await self._handle(task_id).execute_update(TaskWorkflow.decide, decision)
        except WorkflowUpdateFailedError as err:
            raise _refused(err) from None
        except RPCError as err:
            raise _finished_or(err) from None

    async def set_autonomy(self, task_id: str, change: AutonomyChange) -> None:
        try:
            await self._handle(task_id).execute_update(TaskWorkflow.set_autonomy, change)
        except WorkflowUpdateFailedError as err:
            raise _refused(err) from None
        except RPCError as err:
            raise _finished_or(err) from None

    async def cancel(self, task_id: str, request: CancelRequest) -> None:
        try:
            await self._handle(task_id).signal(TaskWorkflow.cancel, request)
        except RPCError as err:
            raise _finished_or(err) from None

    async def audit_head(self, task_id: str) -> Anchor | None:
        """The audit head the task's workflow recorded; None when Temporal cannot say."""
        try:
            return await self._handle(task_id).query(TaskWorkflow.audit_head)
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return None

    async def ping(self) -> None:
        """Raise unless the Temporal server answers (what readiness checks)."""
        await self.client.service_client.check_health()
