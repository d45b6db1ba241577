"""The task read model: the row a submission creates, and every read of tasks and gates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Subquery, and_, bindparam, delete, exists, func, literal, or_, tuple_, union_all
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from exosuit.domain import claims
from exosuit.domain.autonomy import AutonomyLevel, GateKind
from exosuit.domain.contracts import TaskInput
from exosuit.domain.submissions import RATE_WINDOW, SubmissionLimits, SubmissionLoad, admit
from exosuit.domain.task import ACTIVE_STATUSES
from exosuit.storage.db import Database, UTCDateTime, utcnow
from exosuit.storage.identity import USER_VERSION
from exosuit.storage.tables import AuditEvent, Step, Task, Team, table_of


@dataclass(frozen=True)
class TaskView:
    task: Task
    steps: list[Step]


@dataclass(frozen=True)
class QueueRow:
    """One open gate as the review queue lists it."""

    id: str
    title: str
    team: str
    gate_id: str
    gate_kind: str
    gate_risk: str | None
    gate_opened_at: datetime
    gate_deadline: datetime | None
    gate_escalated: bool
    gate_approvals: list[str] | None
    gate_approvals_needed: int
    gate_claimed_by: str | None
    gate_claim_expires_at: datetime | None

    def held_by(self, now: datetime) -> str | None:
        """Who holds the gate now (a lapsed claim holds nothing)."""
        return claims.holder(self.gate_claimed_by, self.gate_claim_expires_at, now)


_QUEUE_COLUMNS = [f.name for f in fields(QueueRow)]
# Built once: a task's steps in order, and its row with the reader's auth version (binds task_id, user_id).
_STEPS = select(Step).where(col(Step.task_id) == bindparam("task_id")).order_by(col(Step.index))
_TASK_SEEN_BY = select(Task, USER_VERSION).where(col(Task.id) == bindparam("task_id"))


@dataclass(frozen=True)
class QueuePage:
    """A page of the review queue: its rows, whether more follow, how many gates wait in all."""

    rows: list[QueueRow]
    more: bool
    total: int


@dataclass(frozen=True)
class Unsettled:
    """A task whose read model has not ended, as the reconciler holds it against Temporal."""

    id: str
    recorded: bool  # its workflow has recorded an event (task.submitted comes first)


class DuplicateKey(Exception):
    """Another task already holds this submitter's idempotency key."""


class Tasks:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, task: Task) -> None:
        """Store a submitted task; DuplicateKey if its idempotency key raced in first."""

        def work(session: Session) -> None:
            session.add(task)
            session.commit()

        try:
            await self.db.write(work)  # in the writer thread: a burst of submissions is short writes
        except IntegrityError as exc:
            if task.idempotency_key is None:
                raise
            raise DuplicateKey(task.idempotency_key) from exc

    async def by_idempotency_key(self, submitted_by: str, key: str) -> Task | None:
        async with self.db.session() as session:
            found = await session.exec(
                select(Task).where(Task.submitted_by == submitted_by, Task.idempotency_key == key)
            )
            return found.first()

    async def discard_unstarted(self, task_id: str) -> bool:
        """Delete a task whose workflow has recorded nothing (starting it failed); False if it has."""
        recorded = exists().where(col(AuditEvent.task_id) == task_id)
        async with self.db.session() as session:
            deleted = await session.exec(delete(Task).where(col(Task.id) == task_id, ~recorded))
            await session.commit()
            return bool(deleted.rowcount == 1)

    async def unsettled(
        self,
        *,
        changed_before: datetime,
        after: str | None = None,
        limit: int = 200,
        teams: Sequence[str] | None = None,
    ) -> list[Unsettled]:
        """One batch, by id after `after`, of the tasks not ended and unchanged since `changed_before`."""
        recorded = exists().where(col(AuditEvent.task_id) == col(Task.id))
        query = sa_select(col(Task.id), recorded).where(
            col(Task.status).in_([s.value for s in ACTIVE_STATUSES]), col(Task.updated_at) < changed_before
        )
        if after is not None:
            query = query.where(col(Task.id) > after)
        if teams is not None:
            query = query.where(col(Task.team).in_(list(teams)))
        async with self.db.session() as session:
            rows = await session.exec(query.order_by(col(Task.id)).limit(limit))  # type: ignore[call-overload]
            return [Unsettled(task_id, bool(seen)) for task_id, seen in rows]

    async def active_in(self, team: str) -> list[str]:
        """The ids of the team's tasks not ended (what a lowered cap must reach)."""
        query = sa_select(col(Task.id)).where(
            col(Task.team) == team, col(Task.status).in_([s.value for s in ACTIVE_STATUSES])
        )
        async with self.db.session() as session:
            rows = await session.exec(query.order_by(col(Task.id)))  # type: ignore[call-overload]
            return [task_id for (task_id,) in rows]

    async def task(self, task_id: str) -> TaskView | None:
        def read(session: Session) -> TaskView | None:
            task = session.get(Task, task_id)
            return None if task is None else TaskView(task, _steps(session, task_id))

        return await self.db.read(read)

    async def task_seen_by(self, task_id: str, user_id: int) -> tuple[TaskView | None, int | None]:
        """The task, and the user's auth version read in the same statement (None if the task
        is absent or the user disabled): a cached principal confirmed at no extra query."""

        def read(session: Session) -> tuple[TaskView | None, int | None]:
            task, version = _row_seen_by(session, task_id, user_id)
            return (None if task is None else TaskView(task, _steps(session, task_id))), version

        return await self.db.read(read)

    async def row_seen_by(self, task_id: str, user_id: int) -> tuple[Task | None, int | None]:
        """The task's row alone, and the user's auth version (as `task_seen_by`)."""
        return await self.db.read(lambda session: _row_seen_by(session, task_id, user_id))

    async def row(self, task_id: str) -> Task | None:
        """The task's row alone (one primary-key read), without its steps."""
        return await self.db.read(lambda session: session.get(Task, task_id))

    async def step(self, task_id: str, step_id: str) -> tuple[TaskView, Step]:
        """A task and one of its steps; LookupError (not retried) if either is gone."""
        view = await self.task(task_id)
        step = next((s for s in view.steps if s.id == step_id), None) if view else None
        if view is None or step is None:
            raise LookupError(f"step {step_id} of task {task_id} does not exist")
        return view, step

    async def trail(self, task_id: str, actions: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
        """A task's audit events of these actions in seq order, as (actor, action, data)."""
        query = (
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.data)
            .where(AuditEvent.task_id == task_id, col(AuditEvent.action).in_(list(actions)))
            .order_by(col(AuditEvent.seq))
        )
        async with self.db.session() as session:
            return [(actor, action, dict(data)) for actor, action, data in await session.exec(query)]

    async def updated_at(self, task_id: str) -> datetime | None:
        """When the task's read model last changed (what live views watch)."""
        async with self.db.session() as session:
            found = await session.exec(select(Task.updated_at).where(Task.id == task_id))
            return found.first()

    async def versions(self, task_ids: Sequence[str]) -> dict[str, datetime]:
        """When each of these tasks last changed (absent: no such task); one primary-key read,
        on a reader thread (the task watch asks every 20 ms while anyone waits)."""
        query = select(Task.id, Task.updated_at).where(col(Task.id).in_(list(task_ids)))
        return await self.db.read(lambda session: dict(session.exec(query).all()))

    async def tasks(
        self,
        teams: Sequence[str],
        *,
        status: str | None = None,
        team: str | None = None,
        submitted_by: str | None = None,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
    ) -> list[TaskView]:
        """Newest first (ties by id); `before` = (created_at, id) of the last row already seen."""
        query = select(Task).where(col(Task.team).in_(list(teams)))
        if before is not None:  # keyset: the (team, created_at) index, never OFFSET
            at, task_id = before
            query = query.where(
                or_(col(Task.created_at) < at, and_(col(Task.created_at) == at, col(Task.id) < task_id))
            )
        if status:
            query = query.where(Task.status == status)
        if team:
            query = query.where(Task.team == team)
        if submitted_by:
            query = query.where(Task.submitted_by == submitted_by)
        query = query.order_by(col(Task.created_at).desc(), col(Task.id).desc()).limit(limit)
        async with self.db.session() as session:
            tasks = list(await session.exec(query))
            return await self._with_steps(session, tasks)

    async def open_gates(
        self,
        teams: Sequence[str],
        *,
        decided_by: str,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
        answer_only: Sequence[str] = (),
    ) -> list[TaskView]:
        """Tasks with an open gate the person may decide, oldest gate first (ties by id), with
        steps; `after` = (gate_opened_at, id) of the last row already seen. Two queries.
        In the `answer_only` teams (where the person is a member) only questions are theirs."""
        keys = _page_keys(teams, _decidable(decided_by), after, limit, answer_only)
        if keys is None:
            return []
        query = select(Task).join(keys, col(Task.id) == keys.c.id).order_by(keys.c.gate_opened_at, keys.c.id)
        async with self.db.session() as session:
            tasks = list(await session.exec(query))
            return await self._with_steps(session, tasks)

    async def queue_page(
        self,
        teams: Sequence[str],
        *,
        decided_by: str,
        kind: str | None = None,
        risk: str | None = None,
        claim: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
        answer_only: Sequence[str] = (),
    ) -> QueuePage:
        """One page of the review queue: open gates the person may decide, oldest first (list
        columns only), whether more follow, and how many wait in all (counted in the index);
        in the `answer_only` teams, only questions."""
        wanted = _queued(decided_by, kind, risk, claim)
        keys = _page_keys(teams, wanted, after, limit + 1, answer_only)
        if keys is None:
            return QueuePage([], more=False, total=0)
        table = table_of(Task)
        rows = (
            sa_select(*(table.c[name] for name in _QUEUE_COLUMNS))
            .join(keys, table.c.id == keys.c.id)
            .order_by(keys.c.gate_opened_at, keys.c.id)
        )
        async with self.db.session() as session:
            found = [QueueRow(*row) for row in await session.exec(rows)]  # type: ignore[call-overload]
            if after is None and len(found) <= limit:
                total = len(found)  # the whole queue is on this page: nothing to count
            else:
                count = (
                    sa_select(func.count()).select_from(table).where(_teams_of(teams, answer_only), *wanted)
                )
                total = int((await session.exec(count)).one()[0])  # type: ignore[call-overload]
        return QueuePage(found[:limit], more=len(found) > limit, total=total)

    async def in_queue(
        self,
        task_id: str,
        teams: Sequence[str],
        *,
        decided_by: str,
        kind: str | None,
        risk: str | None,
        claim: str | None = None,
        answer_only: Sequence[str] = (),
    ) -> bool:
        """Whether the review queue, with these filters, lists this task (on any of its pages)."""
        query = select(Task.id).where(
            Task.id == task_id, _teams_of(teams, answer_only), *_queued(decided_by, kind, risk, claim)
        )
        async with self.db.session() as session:
            return (await session.exec(query)).first() is not None

    async def admit(self, team: Team, submitter: str, autonomy: AutonomyLevel) -> None:
        """Raise unless a new task of `submitter` at `autonomy` may start in `team` now: the one
        rule (`domain.submissions.admit`) over what the database holds of the team's load."""
        now = utcnow()
        async with self.db.session() as session:
            active = await session.exec(
                select(func.count()).where(
                    Task.team == team.name, col(Task.status).in_(list(ACTIVE_STATUSES))
                )
            )
            active_tasks = int(active.one())
            recent = await session.exec(
                select(func.count(), func.min(Task.created_at)).where(
                    Task.team == team.name,
                    Task.submitted_by == submitter,
                    col(Task.created_at) >= now - RATE_WINDOW,
                )
            )
            count, oldest = recent.one()
        load = SubmissionLoad(active_tasks, int(count), oldest)  # min() keeps the column's type: UTC
        admit(team.name, autonomy, submission_limits(team), load, now)

    async def note_waiting(self, task_id: str, reason: str) -> None:
        """The task is waiting on something outside it (since the first time it was noted)."""
        table = table_of(Task)
        now = utcnow()
        async with self.db.session() as session:
            await session.exec(
                table.update()
                .where(table.c.id == task_id, table.c.status.in_([s.value for s in ACTIVE_STATUSES]))
                .values(
                    waiting_reason=reason,
                    waiting_since=func.coalesce(table.c.waiting_since, now),
                    updated_at=now,
                )
            )
            await session.commit()

    async def team(self, name: str) -> Team | None:
        async with self.db.session() as session:
            return await session.get(Team, name)

    async def _with_steps(self, session: AsyncSession, tasks: list[Task]) -> list[TaskView]:
        if not tasks:
            return []
        steps = await session.exec(
            select(Step)
            .where(col(Step.task_id).in_([t.id for t in tasks]))
            .order_by(col(Step.task_id), col(Step.index))
        )
        by_task: dict[str, list[Step]] = {t.id: [] for t in tasks}
        for step in steps:
            by_task[step.task_id].append(step)
        return [TaskView(t, by_task[t.id]) for t in tasks]


def _row_seen_by(session: Session, task_id: str, user_id: int) -> tuple[Task | None, int | None]:
    found = session.exec(_TASK_SEEN_BY, params={"task_id": task_id, "user_id": user_id}).first()
    return (None, None) if found is None else (found[0], found[1])


def _steps(session: Session, task_id: str) -> list[Step]:
    return list(session.exec(_STEPS, params={"task_id": task_id}))


def submission_limits(team: Team) -> SubmissionLimits:
    return SubmissionLimits(
        AutonomyLevel(team.max_autonomy), team.max_active_tasks, team.submissions_per_minute
    )


def workflow_input(
    task: Task, team: Team, *, submitted_via: str | None = None, solo: bool = False
) -> TaskInput:
    """What a task's workflow starts with: the task, and its team's policy as it is now."""
    return TaskInput(
        task_id=task.id,
        team=task.team,
        submitted_by=task.submitted_by,
        autonomy=AutonomyLevel(task.autonomy),
        max_autonomy=AutonomyLevel(team.max_autonomy),
        gate_deadline_seconds=team.gate_deadline_seconds,
        submitted_via=submitted_via,
        model_wait_seconds=team.model_wait_seconds,
        max_revisions=team.max_revisions,
        solo=solo,
        quorum_high=team.quorum_high,
    )


def _decidable(person: str) -> list[Any]:
    """Open gates that the person is not excluded from deciding (four-eyes)."""
    return [
        col(Task.gate_id).is_not(None),  # what the open-gate index (ix_task_team_open_gates) holds
        or_(col(Task.gate_excluded).is_(None), col(Task.gate_excluded) != person),
    ]


def _queued(person: str, kind: str | None, risk: str | None, claim: str | None = None) -> list[Any]:
    """The review queue's rows: gates the person may decide, of this kind and risk if given, and
    `claim`: "mine" (held by the person) or "unclaimed" (held by nobody, or the claim lapsed)."""
    wanted = _decidable(person)
    if kind:
        wanted.append(col(Task.gate_kind) == kind)
    if risk:
        wanted.append(col(Task.gate_risk) == risk)
    now = literal(utcnow(), UTCDateTime())
    if claim == "mine":
        wanted += [col(Task.gate_claimed_by) == person, col(Task.gate_claim_expires_at) > now]
    elif claim == "unclaimed":
        wanted.append(or_(col(Task.gate_claimed_by).is_(None), col(Task.gate_claim_expires_at) <= now))
    return wanted


def _after(after: tuple[datetime, str] | None) -> list[Any]:
    """Keyset: the open gates after (gate_opened_at, id), as a row comparison an index can seek."""
    if after is None:
        return []
    at, task_id = after
    return [
        tuple_(col(Task.gate_opened_at), col(Task.id)) > tuple_(literal(at, UTCDateTime()), literal(task_id))
    ]


def _questions_only(team: str, teams: Sequence[str]) -> list[Any]:
    """A team the person only answers in: its open questions, not its other gates."""
    return [] if team in teams else [col(Task.gate_kind) == GateKind.QUESTION]


def _teams_of(teams: Sequence[str], answer_only: Sequence[str]) -> Any:
    """Rows of the teams whose gates the person decides, and the questions of `answer_only`."""
    mine = col(Task.team).in_(list(teams))
    if not answer_only:
        return mine
    return or_(mine, and_(col(Task.team).in_(list(answer_only)), col(Task.gate_kind) == GateKind.QUESTION))


def _page_keys(
    teams: Sequence[str],
    wanted: list[Any],
    after: tuple[datetime, str] | None,
    limit: int,
    answer_only: Sequence[str] = (),
) -> Subquery | None:
    """(id, gate_opened_at) of a page of open gates, oldest first; None for no teams.

    One ordered scan of the (team, gate_opened_at, id) open-gate index per team, each stopping
    after `limit` rows, merged: `team IN (...)` with ORDER BY would read and sort every open gate
    of those teams (SQLite, which keeps no statistics here, also picks the wrong index for it).
    """
    branches = [
        sa_select(col(Task.id), col(Task.gate_opened_at))
        .where(col(Task.team) == team, *wanted, *_after(after), *_questions_only(team, teams))
        .order_by(col(Task.gate_opened_at), col(Task.id))
        .limit(limit)
        for team in dict.fromkeys([*teams, *answer_only])
    ]
    if not branches:
        return None
    if len(branches) == 1:
        return branches[0].subquery("page")
    merged = union_all(*(sa_select(branch.subquery()) for branch in branches)).subquery()
    return sa_select(merged).order_by(merged.c.gate_opened_at, merged.c.id).limit(limit).subquery("page")
