"""ScheduledRunWorkflow: what a Temporal Schedule starts for each firing of a template's
schedule. It makes an ordinary task (the same rules as a submission through the API: the
creator's membership, the team's cap and limits) and starts its TaskWorkflow, which then
meets every gate its autonomy level demands. The task outlives this short workflow. A run
that is refused fails with the refusal's kind as its error type: that is its result.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from exosuit.domain.automation import (
        PREPARE_SCHEDULED_RUN_ACTIVITY,
        RUN_SKIPPED_ERRORS,
        ScheduledRun,
        ScheduledRunRequest,
    )
    from exosuit.domain.contracts import TaskInput, workflow_id_for
    from workflows.task import TaskWorkflow


@workflow.defn
class ScheduledRunWorkflow:
    @workflow.run
    async def run(self, job: ScheduledRun) -> str:
        """The id of the task this firing made."""
        task: TaskInput = await workflow.execute_activity(
            PREPARE_SCHEDULED_RUN_ACTIVITY,
            ScheduledRunRequest(job.schedule_id, run_key=workflow.info().workflow_id),
            result_type=TaskInput,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                maximum_interval=timedelta(seconds=10),
                maximum_attempts=20,
                non_retryable_error_types=RUN_SKIPPED_ERRORS,
            ),
        )
        with contextlib.suppress(WorkflowAlreadyStartedError):  # a retry found its task going
            await workflow.start_child_workflow(
                TaskWorkflow.run,
                task,
                id=workflow_id_for(task.task_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        return task.task_id
