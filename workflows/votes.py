"""A quorum gate's votes: each approval before the last is recorded and the gate stays open.

The `decide` update sends a decision here when it does not decide its gate
(`exosuit.domain.quorum.decides`); the last approval, or a rejection, claims the gate in
the gate loop as any decision does.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from exosuit.domain.autonomy import DecisionAction
    from exosuit.domain.contracts import Decision, Gate
    from exosuit.domain.decisions import decision_data
    from exosuit.domain.refusals import RefusalKind
    from exosuit.domain.task import EventAction
    from workflows.open_gate import OpenGate
    from workflows.recorder import Recorder


async def vote(slot: OpenGate, decision: Decision, recorder: Recorder) -> None:
    """Count the approval and record it (`gate.approved`); the gate stays open."""
    gate = slot.gate
    # Counted before anything waits, so a racing approval sees it (and is the deciding one).
    gate.approvals = [*gate.approvals, decision.actor]
    data = decision_data(gate, decision) | _voted(gate)
    if decision.via_token:
        data["token"] = decision.via_token
    try:
        await recorder.record(
            EventAction.GATE_APPROVED, actor=f"user:{decision.actor}", open_gate=gate, data=data
        )
    except (ActivityError, ApplicationError):
        gate.approvals = [a for a in gate.approvals if a != decision.actor]
        raise ApplicationError(
            "the approval could not be recorded; try again", type=RefusalKind.NOT_OPEN.value
        ) from None


def tally(gate: Gate, decision: Decision) -> dict[str, Any]:
    """What a quorum gate's deciding event adds: who approved it (nothing for other gates)."""
    if gate.approvals_needed <= 1:
        return {}
    approvals = gate.approvals
    if decision.action in (DecisionAction.APPROVE, DecisionAction.EDIT):
        approvals = [*approvals, decision.actor]
    return {"approvals": approvals, "approvals_needed": gate.approvals_needed}


def _voted(gate: Gate) -> dict[str, Any]:
    return {"approvals": list(gate.approvals), "approvals_needed": gate.approvals_needed}
