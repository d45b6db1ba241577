"""The worker's own metrics, beside the Temporal SDK's (EXOSUIT_WORKER_METRICS_PORT)."""

from __future__ import annotations

from contextlib import suppress

from temporalio import activity

from exosuit.domain.contracts import PlanRequest, StepRequest
from exosuit.domain.usage import CallRecord
from exosuit.llm.client import Completion
from exosuit.storage.db import DatabaseDown
from exosuit.storage.events import EventWriter


def count_call(completion: Completion, purpose: str) -> None:
    """A model call, its tokens, and the providers that failed before it was answered."""
    meter = activity.metric_meter()
    labels = {"provider": completion.provider, "purpose": purpose}
    meter.create_counter("exosuit_worker_model_calls", "Model calls answered").add(1, labels)
    tokens = meter.create_counter("exosuit_worker_model_tokens", "Tokens used by model calls")
    tokens.add(completion.prompt_tokens, labels | {"kind": "prompt"})
    tokens.add(completion.completion_tokens, labels | {"kind": "completion"})
    if completion.failovers:
        failovers = meter.create_counter(
            "exosuit_worker_model_failovers", "Providers skipped after a failure"
        )
        failovers.add(completion.failovers, {"purpose": purpose})


async def meter(
    writer: EventWriter,
    request: StepRequest | PlanRequest,
    completion: Completion,
    purpose: str,
    step_id: str | None = None,
) -> CallRecord:
    """Store the call's usage now, keyed by this attempt, so a call whose answer is later
    thrown away (the worker died before reporting it) is still paid for in the books; the
    event that records the answer carries the same key and does not count it twice."""
    call = call_record(request, completion, purpose, step_id)
    with suppress(*DatabaseDown):  # the event's own write will store it
        await writer.meter(request.task_id, call)
    return call


def call_record(
    request: StepRequest | PlanRequest, completion: Completion, purpose: str, step_id: str | None = None
) -> CallRecord:
    """The call's usage under this attempt's key (what `meter` stores, or the event that
    records the answer in the same transaction)."""
    return completion.record(f"{request.key}@{activity.info().attempt}", purpose, step_id)
