"""What a model call used and cost."""

from __future__ import annotations

from dataclasses import dataclass


def cost_usd(prompt_tokens: int, completion_tokens: int, price_in: float, price_out: float) -> float:
    """The cost of a call at prices in USD per million tokens."""
    return (prompt_tokens * price_in + completion_tokens * price_out) / 1e6


@dataclass(frozen=True)
class CallRecord:
    """One model call's usage, stored with the event it produced."""

    key: str
    purpose: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    step_id: str | None = None
    provider: str = "default"
    usage_estimated: bool = False
