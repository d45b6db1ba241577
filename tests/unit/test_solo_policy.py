"""Solo tasks: four-eyes needs a second approver, and without one the submitter decides."""

from __future__ import annotations

import pytest

from exosuit.domain.autonomy import AutonomyLevel, Risk, Role, four_eyes_required, is_solo


def test_the_only_approver_of_a_team_runs_solo() -> None:
    assert is_solo(Role.ADMIN, other_approvers=0)
    assert is_solo(Role.APPROVER, other_approvers=0)


def test_a_second_approver_ends_solo() -> None:
    assert not is_solo(Role.APPROVER, other_approvers=1)


def test_a_member_never_runs_solo_because_a_member_cannot_decide() -> None:
    assert not is_solo(Role.MEMBER, other_approvers=0)
    assert not is_solo(None, other_approvers=0)


@pytest.mark.parametrize("level", list(AutonomyLevel))
@pytest.mark.parametrize("risk", list(Risk))
def test_a_solo_task_has_no_four_eyes_gate_and_any_other_keeps_the_rule(
    level: AutonomyLevel, risk: Risk
) -> None:
    assert not four_eyes_required(level, risk, solo=True)
    expected = level in (AutonomyLevel.MANUAL, AutonomyLevel.SUPERVISED) or risk is Risk.HIGH
    assert four_eyes_required(level, risk) is expected
