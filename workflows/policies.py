"""Activity timeouts and retry policies, declared once by name."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

# A model call or a tool: bounded attempts, so a broken endpoint fails the task with a reason.
# It heartbeats (activities/heartbeats.py), so a worker that died mid-call is noticed within
# the heartbeat timeout and the call runs again elsewhere, instead of after start-to-close.
HEARTBEAT_TIMEOUT = timedelta(seconds=15)
MODEL_CALL: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=5,
    ),
}

# A database write: retried until the database is back; idempotency keys make it safe.
STORE_WRITE: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        non_retryable_error_types=["LookupError"],
    ),
}

# The model's first plan and one retry with the validation error; then the rules planner.
MAX_PLAN_ATTEMPTS = 2
