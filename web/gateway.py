"""The web side's one door to Temporal: typed handles, refusals as typed exceptions."""

from __future__ import annotations

import contextlib

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from exosuit.contracts import (
    FORBIDDEN,
    INVALID,
    AutonomyChange,
    CancelRequest,
    Decision,
    TaskInput,
    workflow_id_for,
)
from workflows.task import TaskWorkflow


class Refused(Exception):
    """The workflow refused a request; `status` is the HTTP status it maps to."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotOpen(Refused):
    """The gate is no longer open (decided, superseded) or the task has finished."""


class Forbidden(Refused):
    status = 403


class Invalid(Refused):
    status = 422


_BY_TYPE: dict[str, type[Refused]] = {FORBIDDEN: Forbidden, INVALID: Invalid}


def _translate(err: WorkflowUpdateFailedError) -> Refused:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return _BY_TYPE.get(cause.type or "", NotOpen)(cause.message)
    return NotOpen(str(cause or err))


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
            raise _translate(err) from None
        except RPCError as err:
            raise _finished_or(err) from None

    async def set_autonomy(self, task_id: str, change: AutonomyChange) -> None:
        try:
            await self._handle(task_id).execute_update(TaskWorkflow.set_autonomy, change)
        except WorkflowUpdateFailedError as err:
            raise _translate(err) from None
        except RPCError as err:
            raise _finished_or(err) from None

    async def cancel(self, task_id: str, request: CancelRequest) -> None:
        try:
            await self._handle(task_id).signal(TaskWorkflow.cancel, request)
        except RPCError as err:
            raise _finished_or(err) from None


def _finished_or(err: RPCError) -> Exception:
    # NOT_FOUND here means the workflow has already closed.
    if err.status == RPCStatusCode.NOT_FOUND:
        return NotOpen("the task has finished")
    return err
