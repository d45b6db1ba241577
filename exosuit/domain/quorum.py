"""Quorum: a high-risk gate that several approvers decide together.

A team's `quorum_high` N says how many distinct approvers must approve (or edit) a gate
whose risk is high; the submitter never counts. Each approval before the Nth is a vote:
recorded, and the gate stays open. The Nth decides the gate; one rejection decides it at
once. An edit changes what runs, so it may only be the deciding (last) approval: earlier
approvers would otherwise have approved a text that no longer runs. Pure rules, no I/O.
"""

from __future__ import annotations

from exosuit.domain.autonomy import DecisionAction, Risk
from exosuit.domain.contracts import Decision, Gate
from exosuit.domain.refusals import AlreadyApproved, Invalid

DEFAULT_QUORUM_HIGH = 1  # one approval decides, as without a quorum
_VOTES = (DecisionAction.APPROVE, DecisionAction.EDIT)


def approvals_needed(risk: Risk, quorum_high: int, *, solo: bool = False) -> int:
    """How many approvals decide a gate of this risk; a solo task (its submitter is the team's
    only approver) has nobody else to ask, so one suffices there as under four-eyes."""
    if solo or risk is not Risk.HIGH:
        return 1
    return max(1, quorum_high)


def decides(decision: Decision, gate: Gate) -> bool:
    """Whether the decision decides the gate: any other action at once, an approval (or an
    edit) when it is the last one needed."""
    if decision.action not in _VOTES:
        return True
    return len(gate.approvals) + 1 >= gate.approvals_needed


def check_vote(decision: Decision, gate: Gate) -> None:
    """Refuse a second approval by the same approver, and an edit that is not the last one."""
    if decision.action not in _VOTES:
        return
    if decision.actor in gate.approvals:
        raise AlreadyApproved(f"{decision.actor} has already approved this gate; another approver must")
    if decision.action is DecisionAction.EDIT and not decides(decision, gate):
        raise Invalid(
            "an edit can only be the last approval a quorum gate needs "
            f"({len(gate.approvals)} of {gate.approvals_needed} so far): approve it as it is, "
            "or reject it for revision"
        )


def progress(approvals: int, needed: int) -> str | None:
    """What a gate waiting for a quorum shows, e.g. '1 of 2 approvals; waiting for one more';
    None for a gate one approval decides."""
    if needed <= 1:
        return None
    left = needed - approvals
    more = "one more" if left == 1 else f"{left} more"
    return f"{approvals} of {needed} approvals; waiting for {more}"
