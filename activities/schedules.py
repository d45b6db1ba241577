"""A schedule's firing made into an ordinary task (its TaskWorkflow is started by the caller)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from exosuit.domain.automation import PREPARE_SCHEDULED_RUN_ACTIVITY, ScheduledRunRequest
from exosuit.domain.contracts import TaskInput
from exosuit.domain.refusals import Refused
from exosuit.storage.templates import Templates


class ScheduleActivities:
    def __init__(self, templates: Templates) -> None:
        self._templates = templates

    @activity.defn(name=PREPARE_SCHEDULED_RUN_ACTIVITY)
    async def prepare_scheduled_run(self, request: ScheduledRunRequest) -> TaskInput:
        try:
            return await self._templates.scheduled_task(request.schedule_id, request.run_key)
        except (LookupError, Refused) as refused:  # retrying cannot help: the run is skipped
            raise ApplicationError(str(refused), type=type(refused).__name__, non_retryable=True) from None
