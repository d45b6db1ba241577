"""The worker's own metrics, beside the Temporal SDK's (EXOSUIT_WORKER_METRICS_PORT)."""

from __future__ import annotations

from temporalio import activity

from exosuit.llm.client import Completion


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
