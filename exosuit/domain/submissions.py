"""Whether a new task may start: one rule for every way a task is submitted (the API, the
pages, a template run, a schedule's firing, the MCP server), and the one way task ids are made.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from exosuit.domain.autonomy import AutonomyLevel, above_cap
from exosuit.domain.refusals import AboveCap, Throttled

RATE_WINDOW = timedelta(minutes=1)  # a team's `submissions_per_minute` counts this far back
ACTIVE_LIMIT_RETRY_SECONDS = 30  # a task ends when a person decides: no telling when, so a guess


def new_task_id() -> str:
    """A new task's id (the workflow's id is derived from it)."""
    return f"t_{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True)
class SubmissionLimits:
    """A team's rules for new tasks, from its policy."""

    cap: AutonomyLevel  # the highest autonomy level a task may start at
    max_active_tasks: int  # the team's tasks not yet ended
    submissions_per_minute: int  # per person


@dataclass(frozen=True)
class SubmissionLoad:
    """What the team already has under way, counted in the database (so it holds across the
    web processes and the workers that submit scheduled runs)."""

    active_tasks: int  # the team's tasks not yet ended
    recent: int  # the submitter's tasks in the team within RATE_WINDOW
    oldest_recent_at: datetime | None  # the first of those (when the window frees a place)


def admit(
    team: str, autonomy: AutonomyLevel, limits: SubmissionLimits, load: SubmissionLoad, now: datetime
) -> None:
    """Return if a new task at `autonomy` may start now; else raise why not: `AboveCap` (422,
    the request itself is refused) or `Throttled` (429, try again after `retry_after`)."""
    refusal = above_cap(autonomy, limits.cap)
    if refusal:
        raise AboveCap(refusal)
    if load.recent >= limits.submissions_per_minute:
        frees_at = (load.oldest_recent_at or now) + RATE_WINDOW
        wait = math.ceil((frees_at - now).total_seconds())
        raise Throttled(
            f"Too many new tasks: at most {limits.submissions_per_minute} a minute per person in team {team}",
            wait,
        )
    if load.active_tasks >= limits.max_active_tasks:
        raise Throttled(
            f"team {team} has {load.active_tasks} tasks not yet ended, its limit", ACTIVE_LIMIT_RETRY_SECONDS
        )
