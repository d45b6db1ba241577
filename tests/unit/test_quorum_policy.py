"""The quorum rule as pure policy: who counts, what decides a gate, what is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exosuit.domain.autonomy import DecisionAction, GateKind, Risk, Role
from exosuit.domain.contracts import Decision, Gate
from exosuit.domain.decisions import check_decision
from exosuit.domain.quorum import approvals_needed, check_vote, decides, progress
from exosuit.domain.refusals import AlreadyApproved, FourEyes, Invalid

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
SUBMITTER = "sub@example.com"


def gate(approvals: list[str], needed: int = 2, kind: GateKind = GateKind.STEP) -> Gate:
    return Gate(
        "g_1",
        kind,
        "s_1",
        NOW,
        NOW,
        four_eyes=True,
        risk=Risk.HIGH,
        approvals=approvals,
        approvals_needed=needed,
    )


def decision(actor: str, action: DecisionAction = DecisionAction.APPROVE, **extra: object) -> Decision:
    return Decision("g_1", action, actor, Role.APPROVER, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("risk", "quorum", "solo", "needed"),
    [
        (Risk.HIGH, 1, False, 1),  # the default: one approval decides
        (Risk.HIGH, 2, False, 2),
        (Risk.HIGH, 3, False, 3),
        (Risk.MEDIUM, 3, False, 1),  # only high-risk gates wait for a quorum
        (Risk.LOW, 3, False, 1),
        (Risk.HIGH, 3, True, 1),  # solo: nobody else could approve
        (Risk.HIGH, 0, False, 1),  # never fewer than one
    ],
)
def test_a_quorum_applies_to_high_risk_gates_only(risk: Risk, quorum: int, solo: bool, needed: int) -> None:
    assert approvals_needed(risk, quorum, solo=solo) == needed


@pytest.mark.parametrize(
    ("approvals", "needed", "action", "deciding"),
    [
        ([], 1, DecisionAction.APPROVE, True),  # no quorum: the first approval decides
        ([], 2, DecisionAction.APPROVE, False),  # a vote: the gate stays open
        (["a@x"], 2, DecisionAction.APPROVE, True),  # the Nth decides
        (["a@x"], 3, DecisionAction.APPROVE, False),
        (["a@x", "b@x"], 3, DecisionAction.APPROVE, True),
        ([], 2, DecisionAction.REJECT, True),  # one rejection decides at once
        (["a@x"], 3, DecisionAction.REJECT, True),
        (["a@x"], 2, DecisionAction.EDIT, True),  # an edit as the last approval decides
    ],
)
def test_the_last_approval_or_any_rejection_decides_the_gate(
    approvals: list[str], needed: int, action: DecisionAction, deciding: bool
) -> None:
    assert decides(decision("c@x", action), gate(approvals, needed)) is deciding


def test_the_same_approver_cannot_approve_twice() -> None:
    with pytest.raises(AlreadyApproved, match="already approved"):
        check_vote(decision("a@x"), gate(["a@x"], 3))


def test_an_approver_who_voted_may_still_reject() -> None:
    check_vote(decision("a@x", DecisionAction.REJECT, reason="no"), gate(["a@x"], 3))


def test_an_edit_before_the_last_approval_is_refused() -> None:
    edit = decision("a@x", DecisionAction.EDIT, changes={"instructions": "other"})
    with pytest.raises(Invalid, match="last approval"):
        check_vote(edit, gate([], 2))
    check_vote(edit, gate(["b@x"], 2))  # the last one may edit: what runs is what it says


def test_the_submitter_is_refused_as_under_four_eyes() -> None:
    with pytest.raises(FourEyes):
        check_decision(decision(SUBMITTER), gate([], 2), submitter=SUBMITTER)


def test_a_second_approval_by_the_same_approver_is_refused_by_the_decision_check() -> None:
    with pytest.raises(AlreadyApproved):
        check_decision(decision("a@x"), gate(["a@x"], 2), submitter=SUBMITTER)
    check_decision(decision("b@x"), gate(["a@x"], 2), submitter=SUBMITTER)


@pytest.mark.parametrize(
    ("approvals", "needed", "shown"),
    [
        (0, 1, None),
        (0, 2, "0 of 2 approvals; waiting for 2 more"),
        (1, 2, "1 of 2 approvals; waiting for one more"),
        (1, 3, "1 of 3 approvals; waiting for 2 more"),
    ],
)
def test_a_quorum_gate_says_how_many_approvals_it_still_needs(
    approvals: int, needed: int, shown: str | None
) -> None:
    assert progress(approvals, needed) == shown


def test_the_cli_shows_a_quorum_gates_approvals() -> None:
    from exosuit.cli.render import task

    gate = {"id": "g_1", "kind": "step", "opened_at": "now", "four_eyes": True}
    found = {"id": "t_1", "status": "awaiting_approval", "autonomy": "delegated", "team": "red"}
    found |= {"submitted_by": SUBMITTER, "title": "Send"}
    shown = task(found | {"open_gate": gate | {"approvals": ["a@x"], "approvals_needed": 2}})
    assert "1 of 2 approvals; waiting for one more (a@x)" in shown
    assert "approvals" not in task(found | {"open_gate": gate | {"approvals": [], "approvals_needed": 1}})
