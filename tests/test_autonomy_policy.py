"""The contract's autonomy table, row by row, as pure policy."""

from __future__ import annotations

import pytest

from exosuit.autonomy import (
    AutonomyLevel,
    GateKind,
    Risk,
    Role,
    apply_floor,
    four_eyes_required,
    gate_required,
    may_decide,
    may_set_autonomy,
    risk_floor,
)

LEVELS = ["manual", "supervised", "guarded", "delegated", "autonomous"]

# Straight from CONTRACT.md: which gates each level demands.
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
    refusal = may_decide(actor="a@x", role=Role.APPROVER, submitter="a@x", four_eyes=True)
    assert refusal is not None and "four-eyes" in refusal
    assert may_decide(actor="a@x", role=Role.APPROVER, submitter="a@x", four_eyes=False) is None
    assert may_decide(actor="b@x", role=Role.ADMIN, submitter="a@x", four_eyes=True) is None


def test_member_cannot_decide_any_gate() -> None:
    assert may_decide(actor="b@x", role=Role.MEMBER, submitter="a@x", four_eyes=False) is not None
    assert may_decide(actor="b@x", role=None, submitter="a@x", four_eyes=False) is not None


def test_submitter_or_approver_moves_the_slider() -> None:
    assert may_set_autonomy(actor="a@x", role=Role.MEMBER, submitter="a@x")
    assert may_set_autonomy(actor="b@x", role=Role.APPROVER, submitter="a@x")
    assert not may_set_autonomy(actor="b@x", role=Role.MEMBER, submitter="a@x")


def test_side_effecting_tools_are_at_least_medium_risk() -> None:
    assert risk_floor("tool", tool_has_side_effects=True) is Risk.MEDIUM
    assert risk_floor("tool", tool_has_side_effects=False) is Risk.LOW
    assert apply_floor(Risk.LOW, Risk.MEDIUM) is Risk.MEDIUM
    assert apply_floor(Risk.HIGH, Risk.MEDIUM) is Risk.HIGH
