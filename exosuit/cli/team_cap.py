"""A lowered team cap reaches the team's running tasks: each is told, and follows it down.

`exosuit team set TEAM --max-autonomy LEVEL` changes the policy in the database; a task
already running would otherwise keep the level (and cap) it had. Each active task gets a
`lower_cap` update (a fresh message id, so the workflow applies it once); a task above the
new cap records `autonomy.changed` by `system` with the reason, and its remaining gates
follow the lower level.
"""

from __future__ import annotations

from uuid import uuid4

from exosuit.cli.temporal_server import connect
from exosuit.domain.autonomy import AutonomyLevel
from exosuit.domain.contracts import CapChange
from exosuit.domain.refusals import Refused, Throttled
from exosuit.settings import Settings
from exosuit.storage.db import Database
from exosuit.storage.tasks import Tasks
from web.gateway import TaskGateway
from web.unavailable import Unavailable


async def lower_running_tasks(settings: Settings, db: Database, team: str, cap: AutonomyLevel) -> list[str]:
    """Tell every active task of `team` its cap is now `cap`; the lines to print."""
    task_ids = await Tasks(db).active_in(team)
    if not task_ids:
        return []
    try:
        gateway = TaskGateway(await connect(settings), settings.task_queue)
    except (RuntimeError, OSError) as exc:  # no Temporal reachable: say so; the policy holds for new tasks
        return [f"{team}: running tasks not told of the new cap ({exc}); they keep their level"]
    return await tell_tasks(gateway, task_ids, team, cap)


async def tell_tasks(gateway: TaskGateway, task_ids: list[str], team: str, cap: AutonomyLevel) -> list[str]:
    """Send each task its team's lowered cap (each with a fresh id); the lines to print."""
    reason = f"team {team}'s cap set to {cap.value}"
    lines: list[str] = []
    for task_id in task_ids:
        try:
            await gateway.lower_cap(task_id, CapChange(cap, reason, message_id=uuid4().hex))
        except (Refused, Throttled, Unavailable) as exc:  # ended meanwhile, or Temporal busy or down
            lines.append(f"{task_id}: not told of the new cap ({exc})")
    told = len(task_ids) - len(lines)
    return [f"{team}: {told} running task(s) now capped at {cap.value}", *lines]
