"""Activity timeouts and retry policies, declared once by name and passed with `**`."""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

from temporalio.common import RetryPolicy

from exosuit.domain.contracts import ARGS_CHANGED, TOOL_REFUSED


class ActivityOptions(TypedDict):
    """The options of `workflow.execute_activity` this workflow sets."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy


class LocalActivityOptions(TypedDict):
    """The options of `workflow.execute_local_activity` this workflow sets."""

    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy


# A model call or a tool. Outages (timeouts, refused connections, 429, 5xx, the database
# it reads) are waited out with capped backoff for as long as the team allows (`wait`,
# default 24 h); a request the provider refuses (other 4xx) is non-retryable and fails the
# step at once (activities/errors.py). It heartbeats (activities/heartbeats.py), so a
# worker that died mid-call is noticed within the heartbeat timeout and the call runs
# again elsewhere, instead of after start-to-close.
HEARTBEAT_TIMEOUT = timedelta(seconds=15)
MODEL_RETRY_CAP = timedelta(seconds=60)
# A task or step that no longer exists: retrying cannot bring it back.
MISSING = LookupError.__name__


def model_call(
    wait: timedelta, heartbeat: timedelta = HEARTBEAT_TIMEOUT, non_retryable: list[str] | None = None
) -> ActivityOptions:
    return ActivityOptions(
        start_to_close_timeout=timedelta(minutes=5),
        schedule_to_close_timeout=max(wait, timedelta(seconds=1)),
        heartbeat_timeout=heartbeat,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=MODEL_RETRY_CAP,
            non_retryable_error_types=non_retryable,
        ),
    )


# A tool step's execution. A server that is down is waited out like a model provider; a
# worker that died mid-call is noticed sooner (the tool heartbeats every few seconds), and
# the retry meets the ledger, which never sends a key twice. Refusals are not retried.
TOOL_HEARTBEAT_TIMEOUT = timedelta(seconds=8)


def tool_call(wait: timedelta) -> ActivityOptions:
    return model_call(wait, TOOL_HEARTBEAT_TIMEOUT, [TOOL_REFUSED, ARGS_CHANGED, MISSING])


# A database write: retried until the database is back; idempotency keys make it safe.
STORE_WRITE = LocalActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        non_retryable_error_types=[MISSING],
    ),
)

# The model's first plan and one retry with the validation error; then the rules planner.
MAX_PLAN_ATTEMPTS = 2
