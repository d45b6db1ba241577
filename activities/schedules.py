"""A schedule's firing made into an ordinary task (its TaskWorkflow is started by the caller)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from exosuit.domain.automation import PREPARE_SCHEDULED_RUN_ACTIVITY, SCHEDULE_GONE, ScheduledRunRequest
from exosuit.domain.contracts import TaskInput
from exosuit.domain.refusals import Refused, Throttled
from exosuit.storage.templates import Templates


class ScheduleActivities:
    def __init__(self, templates: Templates) -> None:
        self._templates = templates

    @activity.defn(name=PREPARE_SCHEDULED_RUN_ACTIVITY)
    async def prepare_scheduled_run(self, request: ScheduledRunRequest) -> TaskInput:
        try:
            return await self._templates.scheduled_task(request.schedule_id, request.run_key)
        # Skipped, not retried: the refusal (its kind and, throttled, its wait) is the run's
        # result, which the schedule's `last_run` shows as the API would have answered it.
        except LookupError as gone:
            raise ApplicationError(str(gone), type=SCHEDULE_GONE, non_retryable=True) from None
        except Throttled as throttled:
            raise ApplicationError(
                throttled.message, throttled.retry_after, type=throttled.kind.value, non_retryable=True
            ) from None
        except Refused as refused:
            raise ApplicationError(refused.message, type=refused.kind.value, non_retryable=True) from None
