"""The earned-autonomy rule, by tables: which evidence proposes which move."""

from __future__ import annotations

import pytest

from exosuit.domain.autonomy import AutonomyLevel as L
from exosuit.domain.earned_autonomy import (
    INCIDENT,
    TOOL_FAILED,
    TOOL_UNKNOWN,
    Outcome,
    Thresholds,
    propose,
    skipped_one_level_up,
)

LIMITS = Thresholds(run=5, window=10, rejects=3)


def plans(*actions: str) -> list[Outcome]:
    return [Outcome("plan", "low", action) for action in actions]


@pytest.mark.parametrize(
    ("kind", "risk", "level", "skipped"),
    [
        ("plan", "low", L.GUARDED, True),  # delegated opens no plan gate
        ("step", "medium", L.GUARDED, True),  # delegated stops only high-risk steps
        ("step", "high", L.GUARDED, False),
        ("step", "low", L.SUPERVISED, True),  # guarded lets low-risk steps run
        ("plan", "low", L.SUPERVISED, False),  # guarded still opens plan gates
        ("output", "low", L.MANUAL, True),
        ("cost", "low", L.GUARDED, False),  # budgets, not levels, open cost gates
        ("question", None, L.GUARDED, False),  # questions always wait
        ("step", "high", L.DELEGATED, True),
        ("step", "high", L.AUTONOMOUS, False),
    ],
)
def test_a_gate_counts_when_one_level_up_would_have_skipped_it(
    kind: str, risk: str, level: L, skipped: bool
) -> None:
    assert skipped_one_level_up(kind, risk, level) is skipped


@pytest.mark.parametrize(
    ("outcomes", "level", "cap", "move"),
    [
        (plans(*["approve"] * 5), L.GUARDED, L.AUTONOMOUS, L.DELEGATED),
        (plans(*["approve"] * 4), L.GUARDED, L.AUTONOMOUS, None),  # one short of the run
        (plans("edit", *["approve"] * 5), L.GUARDED, L.AUTONOMOUS, L.DELEGATED),  # the run is the latest
        (plans(*["approve"] * 5, "edit"), L.GUARDED, L.AUTONOMOUS, None),  # an edit breaks it
        (plans(*["approve"] * 9), L.GUARDED, L.GUARDED, None),  # at the cap: never above it
        (plans(*["approve"] * 9), L.DELEGATED, L.GUARDED, None),  # above a lowered cap: no move up
        (plans(*["approve"] * 5, "answer"), L.GUARDED, L.AUTONOMOUS, L.DELEGATED),  # answers are no verdict
        # High-risk steps are stopped one level up too: they prove nothing about skipping.
        ([Outcome("step", "high", "approve")] * 9, L.GUARDED, L.AUTONOMOUS, None),
        (plans("reject", "reject", "reject", *["approve"] * 5), L.GUARDED, L.AUTONOMOUS, L.SUPERVISED),
        (plans("reject", "reject", *["approve"] * 5), L.GUARDED, L.AUTONOMOUS, L.DELEGATED),
        (plans("reject", "reject", "reject", *["approve"] * 10), L.GUARDED, L.AUTONOMOUS, L.DELEGATED),
        (plans("reject", "reject", "reject"), L.MANUAL, L.AUTONOMOUS, None),  # nothing below manual
        ([], L.SUPERVISED, L.AUTONOMOUS, None),
    ],
)
def test_proposes_up_after_a_run_of_unchanged_approvals_and_down_when_rejects_rise(
    outcomes: list[Outcome], level: L, cap: L, move: L | None
) -> None:
    proposal = propose(outcomes, level, cap, LIMITS)
    assert (proposal.to_level if proposal else None) is move
    if proposal is not None:
        assert proposal.from_level is level


def test_the_evidence_says_what_was_seen_in_words_a_person_reads() -> None:
    up = propose(plans("edit", *["approve"] * 6), L.GUARDED, L.DELEGATED, LIMITS)
    assert up is not None
    assert up.evidence["summary"] == "6 of the last 6 plan gates approved unchanged"
    assert (up.evidence["gates"], up.evidence["edited"], up.evidence["run"]) == (7, 1, 6)
    down = propose(plans("approve", "reject", "reject", "reject"), L.DELEGATED, L.DELEGATED, LIMITS)
    assert down is not None and down.to_level is L.GUARDED
    assert down.evidence["summary"] == "3 of the last 4 gates rejected"


FAILED_CALL = Outcome(TOOL_FAILED, None, INCIDENT)
UNKNOWN_CALL = Outcome(TOOL_UNKNOWN, None, INCIDENT)
REVERTED_OUTPUT = Outcome("output", "low", "reject")  # an output gate rejected


@pytest.mark.parametrize(
    ("outcomes", "move"),
    [
        ([*plans(*["approve"] * 5), FAILED_CALL], None),  # a failed tool call after the run blocks it
        ([*plans(*["approve"] * 5), UNKNOWN_CALL], None),  # sent, result unknown: as bad
        ([*plans(*["approve"] * 3), FAILED_CALL, *plans("approve", "approve")], None),  # breaks the run
        # Outputs are stopped at guarded and one level up alike: only the incident rule blocks.
        ([*plans(*["approve"] * 5), REVERTED_OUTPUT], None),
        ([FAILED_CALL, *plans(*["approve"] * 5)], L.DELEGATED),  # a new run earned since
        ([UNKNOWN_CALL, REVERTED_OUTPUT, *plans(*["approve"] * 5)], L.DELEGATED),
        (
            [*plans(*["approve"] * 5), Outcome("output", "low", "approve")],
            L.DELEGATED,
        ),  # kept outputs are fine
    ],
)
def test_failed_tool_calls_and_reverted_outputs_block_a_level_up(
    outcomes: list[Outcome], move: L | None
) -> None:
    proposal = propose(outcomes, L.GUARDED, L.AUTONOMOUS, LIMITS)
    assert (proposal.to_level if proposal else None) is move


def test_incidents_are_counted_in_the_evidence() -> None:
    outcomes = [FAILED_CALL, UNKNOWN_CALL, REVERTED_OUTPUT, *plans(*["approve"] * 6)]
    up = propose(outcomes, L.GUARDED, L.AUTONOMOUS, LIMITS)
    assert up is not None
    assert up.evidence["incidents"] == 3
    assert (up.evidence["gates"], up.evidence["rejected"], up.evidence["run"]) == (7, 1, 6)
    down = propose(plans("reject", "reject", "reject"), L.GUARDED, L.AUTONOMOUS, LIMITS)
    assert down is not None and down.evidence["incidents"] == 0
