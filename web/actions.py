"""What a person can do to a task, shared by the JSON API and the pages.

Each action raises a `Refused` (Forbidden 403, NotOpen 409, Invalid 422) that the API turns
into problem+json and the pages into a readable message.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from exosuit.audit import canonical_json
from exosuit.autonomy import AutonomyLevel, may_set_autonomy
from exosuit.contracts import AutonomyChange, CancelRequest, Decision, TaskInput
from exosuit.identity import Principal
from exosuit.models import Task, Team
from exosuit.store import TaskView, fingerprint
from web.deps import Services
from web.gateway import Forbidden, Invalid, NotOpen

ACTIVE = {"planning", "awaiting_approval", "running"}


async def _team_within_cap(services: Services, team_name: str, level: AutonomyLevel) -> Team:
    team = await services.directory.team(team_name)
    if team is None:
        raise Invalid(f"no team {team_name!r}")
    if level.rank > AutonomyLevel(team.max_autonomy).rank:
        raise Invalid(f"{level.value} is above the team's cap ({team.max_autonomy})")
    return team


async def submit(
    services: Services,
    principal: Principal,
    *,
    title: str,
    instructions: str,
    team: str,
    autonomy: AutonomyLevel,
    budget_usd: float | None = None,
    idempotency_key: str | None = None,
) -> tuple[Task, bool]:
    """Store and start a task; with a key, the same key and body give the same task.

    Returns the task and whether it was an idempotent replay.
    """
    if principal.role_in(team) is None:
        raise Forbidden(f"you are not a member of team {team!r}")
    policy = await _team_within_cap(services, team, autonomy)
    body = {
        "title": title,
        "instructions": instructions,
        "team": team,
        "autonomy": autonomy.value,
        "budget_usd": budget_usd,
    }
    print_ = fingerprint(canonical_json(body))
    task = await _existing(services, principal.email, idempotency_key, print_)
    replayed = task is not None
    if task is None:
        task = Task(
            id=f"t_{uuid.uuid4().hex[:20]}",
            title=title,
            instructions=instructions,
            team=team,
            submitted_by=principal.email,
            autonomy=autonomy.value,
            budget_usd=budget_usd,
            idempotency_key=idempotency_key,
            request_fingerprint=print_ if idempotency_key else None,
        )
        try:
            async with services.db.session() as session:
                session.add(task)
                await session.commit()
        except IntegrityError:  # the same key raced in from a parallel request
            task = await _existing(services, principal.email, idempotency_key, print_)
            if task is None:
                raise
            replayed = True
    await services.gateway.start(
        TaskInput(
            task_id=task.id,
            team=task.team,
            submitted_by=task.submitted_by,
            autonomy=task.autonomy,
            max_autonomy=policy.max_autonomy,
            gate_deadline_seconds=policy.gate_deadline_seconds,
            submitted_via=principal.token_name,
        )
    )
    return task, replayed


async def _existing(services: Services, email: str, key: str | None, print_: str) -> Task | None:
    if key is None:
        return None
    async with services.db.session() as session:
        found = await session.exec(
            select(Task).where(Task.submitted_by == email, Task.idempotency_key == key)
        )
        task = found.first()
    if task is not None and task.request_fingerprint != print_:
        raise Invalid("this Idempotency-Key was used with a different body")
    return task


async def decide(
    services: Services,
    principal: Principal,
    view: TaskView,
    *,
    gate_id: str,
    action: str,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
    on_reject: str = "revise",
) -> None:
    """Answer the open gate; the workflow's validator has the last word."""
    role = principal.role_in(view.task.team)
    decision = Decision(
        gate_id=gate_id,
        action=action,
        actor=principal.email,
        role=role.value if role else None,
        changes=changes or {},
        reason=reason,
        on_reject=on_reject,
        via_token=principal.token_name,
    )
    await services.gateway.decide(view.task.id, decision)


async def set_autonomy(
    services: Services, principal: Principal, view: TaskView, level: AutonomyLevel
) -> None:
    team = await _team_within_cap(services, view.task.team, level)
    role = principal.role_in(view.task.team)
    change = AutonomyChange(
        autonomy=level.value,
        actor=principal.email,
        role=role.value if role else None,
        max_autonomy=team.max_autonomy,
        via_token=principal.token_name,
    )
    await services.gateway.set_autonomy(view.task.id, change)


async def cancel(services: Services, principal: Principal, view: TaskView) -> None:
    role = principal.role_in(view.task.team)
    if not may_set_autonomy(actor=principal.email, role=role, submitter=view.task.submitted_by):
        raise Forbidden("only the submitter or an approver can cancel a task")
    if view.task.status not in ACTIVE:
        raise NotOpen(f"the task has already ended ({view.task.status})")
    await services.gateway.cancel(view.task.id, CancelRequest(principal.email, principal.token_name))
