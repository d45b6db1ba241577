"""OutboxWorkflow: drains one queue of the outbox (one subscription's messages about one
task, or one team's notifications), woken by a signal each time a task event adds to it.

Attempts are activities: Temporal retries a refused delivery with backoff for the policy's
window (at least 24 h), then the workflow gives that message up and goes on with the next.
The workflow ends when its queue has stayed empty for a while; the next event starts it again
(signal-with-start). It carries ids only: the bodies live in the outbox table.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from exosuit.domain.automation import (
        DESTINATION_REFUSED,
        DRAIN_NOTIFICATIONS_ACTIVITY,
        DRAIN_WEBHOOKS_ACTIVITY,
        GIVE_UP_NOTIFICATIONS_ACTIVITY,
        GIVE_UP_WEBHOOK_ACTIVITY,
        Drained,
        OutboxInput,
        OutletKind,
    )

_DRAIN = {OutletKind.WEBHOOK: DRAIN_WEBHOOKS_ACTIVITY, OutletKind.NOTIFY: DRAIN_NOTIFICATIONS_ACTIVITY}
_GIVE_UP = {OutletKind.WEBHOOK: GIVE_UP_WEBHOOK_ACTIVITY, OutletKind.NOTIFY: GIVE_UP_NOTIFICATIONS_ACTIVITY}


@workflow.defn
class OutboxWorkflow:
    def __init__(self) -> None:
        self._wakes = 0
        self._seen = 0  # the wakes already looked at

    @workflow.signal
    def wake(self) -> None:
        """Something was added to this queue."""
        self._wakes += 1

    @workflow.run
    async def run(self, job: OutboxInput) -> int:
        policy, outlet = job.policy, job.outlet
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=policy.initial_seconds),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=max(policy.maximum_seconds, policy.initial_seconds)),
            non_retryable_error_types=[DESTINATION_REFUSED],
        )
        sent = 0
        while True:
            seen = self._seen = self._wakes
            if policy.gather_seconds > 0:  # let a burst arrive, then send it as one digest
                await workflow.sleep(timedelta(seconds=policy.gather_seconds))
            try:
                drained: Drained = await workflow.execute_activity(
                    _DRAIN[outlet.kind],
                    outlet,
                    result_type=Drained,
                    start_to_close_timeout=timedelta(seconds=60),
                    schedule_to_close_timeout=timedelta(seconds=max(policy.give_up_seconds, 1.0)),
                    retry_policy=retry,
                )
                sent += drained.sent
            except ActivityError as err:  # retried for the whole window (or refused): next message
                await workflow.execute_activity(
                    _GIVE_UP[outlet.kind],
                    outlet,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
                    summary=str(err.cause or err)[:200],
                )
                continue
            if self._wakes != seen:
                continue
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(job)
            try:
                await workflow.wait_condition(
                    lambda: self._wakes != self._seen, timeout=timedelta(seconds=policy.idle_seconds)
                )
            except TimeoutError:
                if self._wakes == seen:
                    return sent
