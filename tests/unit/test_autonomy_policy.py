"""The autonomy table (docs/autonomy.md), row by row, as pure policy."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from exosuit.domain.autonomy import (
    AutonomyLevel,
    GateKind,
    Risk,
    Role,
    above_cap,
    apply_floor,
    excluded_decider,
    four_eyes_required,
    gate_required,
    may_cancel,
    may_decide,
    may_set_autonomy,
    risk_floor,
)

LEVELS = ["manual", "supervised", "guarded", "delegated", "autonomous"]

# Straight from docs/autonomy.md: which gates each level demands.
PLAN_GATE = {"manual": True, "supervised": True, "guarded": True, "delegated": False, "autonomous": False}
STEP_GATE_RISKS = {
    "manual": {"low", "medium", "high"},
    "supervised": {"low", "medium", "high"},
    "guarded": {"medium", "high"},
    "delegated": {"high"},
    "autonomous": set(),
}
OUTPUT_GATE = {"manual": True, "supervised": False, "guarded": False, "delegated": False, "autonomous": False}


@pytest.mark.parametrize("level", LEVELS)
def test_plan_approval_row(level: str) -> None:
    assert gate_required(GateKind.PLAN, AutonomyLevel(level)) is PLAN_GATE[level]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("risk", ["low", "medium", "high"])
def test_step_approval_row(level: str, risk: str) -> None:
    expected = risk in STEP_GATE_RISKS[level]
    assert gate_required(GateKind.STEP, AutonomyLevel(level), Risk(risk)) is expected


@pytest.mark.parametrize("level", LEVELS)
def test_output_review_row(level: str) -> None:
    assert gate_required(GateKind.OUTPUT, AutonomyLevel(level)) is OUTPUT_GATE[level]


@pytest.mark.parametrize(
    ("level", "risk", "expected"),
    [
        ("manual", "low", True),
        ("supervised", "low", True),
        ("guarded", "medium", False),
        ("delegated", "medium", False),
        ("guarded", "high", True),
        ("autonomous", "high", True),
    ],
)
def test_four_eyes_at_manual_supervised_and_for_high_risk(level: str, risk: str, expected: bool) -> None:
    assert four_eyes_required(AutonomyLevel(level), Risk(risk)) is expected


def test_submitter_cannot_decide_a_four_eyes_gate() -> None:
    excluded = excluded_decider(four_eyes=True, submitter="a@x")
    refusal = may_decide(actor="a@x", role=Role.APPROVER, excluded=excluded)
    assert refusal is not None and "four-eyes" in refusal
    assert excluded_decider(four_eyes=False, submitter="a@x") is None
    assert may_decide(actor="a@x", role=Role.APPROVER, excluded=None) is None
    assert may_decide(actor="b@x", role=Role.ADMIN, excluded=excluded) is None


def test_member_cannot_decide_any_gate() -> None:
    assert may_decide(actor="b@x", role=Role.MEMBER, excluded=None) is not None
    assert may_decide(actor="b@x", role=None, excluded=None) is not None


@pytest.mark.parametrize("rule", [may_set_autonomy, may_cancel])
def test_submitter_or_approver_moves_the_slider_and_cancels(rule: Callable[..., bool]) -> None:
    assert rule(actor="a@x", role=Role.MEMBER, submitter="a@x")
    assert rule(actor="b@x", role=Role.APPROVER, submitter="a@x")
    assert not rule(actor="b@x", role=Role.MEMBER, submitter="a@x")


def test_a_level_above_the_cap_is_refused_with_the_reason() -> None:
    assert above_cap(AutonomyLevel.DELEGATED, AutonomyLevel.DELEGATED) is None
    assert above_cap(AutonomyLevel.MANUAL, AutonomyLevel.GUARDED) is None
    assert above_cap(AutonomyLevel.AUTONOMOUS, AutonomyLevel.DELEGATED) == (
        "autonomous is above the team's cap (delegated)"
    )


def test_side_effecting_tools_are_at_least_medium_risk() -> None:
    assert risk_floor(tool_has_side_effects=True) is Risk.MEDIUM
    assert risk_floor(tool_has_side_effects=False) is Risk.LOW
    assert apply_floor(Risk.LOW, Risk.MEDIUM) is Risk.MEDIUM
    assert apply_floor(Risk.HIGH, Risk.MEDIUM) is Risk.HIGH
