"""A control message is applied once: its sender's id, and the bounded memory of ids applied."""

from __future__ import annotations

import pytest

from exosuit.domain.autonomy import AutonomyLevel
from exosuit.domain.decisions import check_fresh
from exosuit.domain.refusals import Invalid, Replayed
from exosuit.domain.task_state import APPLIED_KEPT, TaskState


def test_a_message_without_its_senders_id_is_invalid() -> None:
    with pytest.raises(Invalid):
        check_fresh("", [])


def test_a_message_applied_before_is_a_replay() -> None:
    state = TaskState(AutonomyLevel.MANUAL)
    check_fresh("m-1", state.applied)
    state.remember("m-1")
    with pytest.raises(Replayed):
        check_fresh("m-1", state.applied)


def test_the_ids_remembered_are_the_latest_few() -> None:
    state = TaskState(AutonomyLevel.MANUAL)
    for n in range(APPLIED_KEPT + 3):
        state.remember(f"m-{n}")
    assert len(state.applied) == APPLIED_KEPT
    assert not state.applied_before("m-2") and state.applied_before(f"m-{APPLIED_KEPT + 2}")
