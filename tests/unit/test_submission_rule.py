"""The one rule that decides whether a new task may start, whatever path submits it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exosuit.domain.autonomy import AutonomyLevel
from exosuit.domain.refusals import AboveCap, Throttled
from exosuit.domain.submissions import (
    ACTIVE_LIMIT_RETRY_SECONDS,
    SubmissionLimits,
    SubmissionLoad,
    admit,
    new_task_id,
)

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
LIMITS = SubmissionLimits(AutonomyLevel.DELEGATED, max_active_tasks=10, submissions_per_minute=3)
IDLE = SubmissionLoad(active_tasks=0, recent=0, oldest_recent_at=None)


def test_a_task_within_the_cap_and_the_limits_may_start() -> None:
    admit("red", AutonomyLevel.DELEGATED, LIMITS, IDLE, NOW)
    admit("red", AutonomyLevel.MANUAL, LIMITS, SubmissionLoad(9, 2, NOW - timedelta(seconds=5)), NOW)


def test_a_level_above_the_teams_cap_is_refused_before_any_limit() -> None:
    busy = SubmissionLoad(active_tasks=10, recent=3, oldest_recent_at=NOW)
    with pytest.raises(AboveCap, match=r"autonomous is above the team's cap \(delegated\)"):
        admit("red", AutonomyLevel.AUTONOMOUS, LIMITS, busy, NOW)


def test_the_rate_waits_until_the_oldest_submission_leaves_the_minute() -> None:
    load = SubmissionLoad(active_tasks=0, recent=3, oldest_recent_at=NOW - timedelta(seconds=45))
    with pytest.raises(Throttled, match="at most 3 a minute") as refused:
        admit("red", AutonomyLevel.MANUAL, LIMITS, load, NOW)
    assert refused.value.retry_after == 15


def test_the_active_task_limit_counts_the_teams_unended_tasks() -> None:
    with pytest.raises(Throttled, match="team red has 10 tasks not yet ended") as refused:
        admit("red", AutonomyLevel.MANUAL, LIMITS, SubmissionLoad(10, 0, None), NOW)
    assert refused.value.retry_after == ACTIVE_LIMIT_RETRY_SECONDS


def test_task_ids_are_new_each_time_and_fit_the_column() -> None:
    ids = {new_task_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("t_") and len(i) <= 40 for i in ids)
