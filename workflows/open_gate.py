"""The open gate's state, and how a policy refusal leaves the workflow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum, auto

from temporalio.exceptions import ApplicationError

from exosuit.domain.contracts import Decision, Gate
from exosuit.domain.refusals import Refused


class GatePhase(Enum):
    """Where the open gate stands; only an OPEN gate can be claimed by a decision."""

    OPEN = auto()  # waiting for a decision
    CLAIMED = auto()  # a person's decision won it; the flow records it
    EXPIRED = auto()  # the second deadline passed; the flow records a rejection
    RECORDED = auto()  # the person's decision is recorded; its update may answer
    DELEGATED = auto()  # the step's run records the decision; its update answers at once
    ANSWERED = auto()  # the update has answered; the flow goes on
    UNRECORDED = auto()  # recording the decision failed; the update says so, the task stops


@dataclass
class OpenGate:
    """The one gate a task has open, and where it stands."""

    gate: Gate
    phase: GatePhase = GatePhase.OPEN
    decision: Decision | None = None


@contextmanager
def as_application_errors() -> Iterator[None]:
    """A policy refusal leaves the workflow as an ApplicationError typed by its kind."""
    try:
        yield
    except Refused as refused:
        raise ApplicationError(refused.message, type=refused.kind.value, non_retryable=True) from None
