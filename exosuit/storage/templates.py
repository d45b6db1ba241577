"""Task templates and the schedules that run them; a scheduled run made into an ordinary task."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from exosuit.domain.autonomy import AutonomyLevel, Role, is_solo
from exosuit.domain.contracts import TaskInput
from exosuit.domain.refusals import Forbidden
from exosuit.domain.submissions import new_task_id
from exosuit.domain.templates import render
from exosuit.storage.db import Database
from exosuit.storage.identity import Directory
from exosuit.storage.tables import Membership, Task, TaskSchedule, TaskTemplate, Team, User
from exosuit.storage.tasks import DuplicateKey, Tasks, workflow_input


class TemplateExists(Exception):
    pass


class Templates:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._tasks = Tasks(db)

    async def create(self, template: TaskTemplate) -> None:
        try:
            async with self.db.session() as session:
                session.add(template)
                await session.commit()
        except IntegrityError:
            raise TemplateExists(template.name) from None

    async def named(self, name: str, teams: Sequence[str]) -> list[TaskTemplate]:
        """The templates of these teams with this name (names are unique within a team)."""
        async with self.db.session() as session:
            found = await session.exec(
                select(TaskTemplate)
                .where(TaskTemplate.name == name, col(TaskTemplate.team).in_(list(teams)))
                .order_by(col(TaskTemplate.team))
            )
            return list(found)

    async def templates(self, teams: Sequence[str]) -> list[TaskTemplate]:
        async with self.db.session() as session:
            found = await session.exec(
                select(TaskTemplate)
                .where(col(TaskTemplate.team).in_(list(teams)))
                .order_by(col(TaskTemplate.name))
            )
            return list(found)

    async def add_schedule(
        self, template: TaskTemplate, params: dict[str, str], cron: str, by: str
    ) -> TaskSchedule:
        schedule = TaskSchedule(
            id=f"sch_{uuid.uuid4().hex[:16]}",
            template=template.name,
            team=template.team,
            params=params,
            cron=cron,
            created_by=by,
        )
        async with self.db.session() as session:
            session.add(schedule)
            await session.commit()
        return schedule

    async def schedules(self, teams: Sequence[str]) -> list[TaskSchedule]:
        async with self.db.session() as session:
            found = await session.exec(
                select(TaskSchedule)
                .where(col(TaskSchedule.team).in_(list(teams)))
                .order_by(col(TaskSchedule.created_at))
            )
            return list(found)

    async def schedule(self, schedule_id: str) -> TaskSchedule | None:
        async with self.db.session() as session:
            return await session.get(TaskSchedule, schedule_id)

    async def remove_schedule(self, schedule_id: str) -> None:
        async with self.db.session() as session:
            found = await session.get(TaskSchedule, schedule_id)
            if found is not None:
                await session.delete(found)
                await session.commit()

    async def scheduled_task(self, schedule_id: str, run_key: str) -> TaskInput:
        """The task one firing of a schedule submits, as its creator, under the rules every
        submission meets (membership, then `Tasks.admit`); the same run key, the same task."""
        async with self.db.session() as session:
            schedule = await session.get(TaskSchedule, schedule_id)
            if schedule is None:
                raise LookupError(f"no schedule {schedule_id}")
            template = await session.get(TaskTemplate, (schedule.template, schedule.team))
            team = await session.get(Team, schedule.team)
            member = (
                await session.exec(
                    select(Membership.role)
                    .join(User, col(User.id) == col(Membership.user_id))
                    .where(
                        User.email == schedule.created_by,
                        Membership.team == schedule.team,
                        col(User.disabled_at).is_(None),
                    )
                )
            ).first()
        if template is None or team is None:
            raise LookupError(f"schedule {schedule_id} names a template or team that is gone")
        if member is None:
            raise Forbidden(f"{schedule.created_by} is no longer a member of team {team.name}")
        task = await self._tasks.by_idempotency_key(schedule.created_by, run_key)
        if task is None:
            await self._tasks.admit(team, schedule.created_by, AutonomyLevel(template.autonomy))
            task = Task(
                id=new_task_id(),
                title=render(template.title, schedule.params),
                instructions=render(template.instructions, schedule.params),
                team=team.name,
                submitted_by=schedule.created_by,
                autonomy=template.autonomy,
                template=template.name,
                idempotency_key=run_key,
            )
            try:
                await self._tasks.insert(task)
            except DuplicateKey:
                task = await self._tasks.by_idempotency_key(schedule.created_by, run_key)
                assert task is not None
        # As a person's submission: solo when its creator is still the team's only approver.
        others = await Directory(self.db).approvers_besides(team.name, schedule.created_by)
        return workflow_input(task, team, solo=is_solo(Role(member), others))
