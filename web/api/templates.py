"""Task templates, their runs, and schedules of runs (Temporal Schedules)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from exosuit.domain.autonomy import AutonomyLevel
from exosuit.domain.task import INSTRUCTIONS_MAX_CHARS, TITLE_MAX_CHARS
from exosuit.domain.templates import TEMPLATE_NAME
from exosuit.storage.tables import TaskSchedule, TaskTemplate
from web import automation
from web.api.openapi import problems
from web.api.webhooks import automation_problems
from web.automation import AutomationsDep
from web.automation_gateway import LastRun
from web.deps import CurrentPrincipal, ServicesDep
from web.errors import Problem
from web.schemas import TaskOut, task_out

templates = APIRouter(prefix="/templates", tags=["templates"])
schedules = APIRouter(prefix="/schedules", tags=["schedules"])

Params = dict[Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=20_000)]]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(pattern=TEMPLATE_NAME.pattern, description="lower case, digits, . _ -")
    team: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=TITLE_MAX_CHARS)
    instructions: str = Field(min_length=1, max_length=INSTRUCTIONS_MAX_CHARS)
    autonomy: AutonomyLevel = AutonomyLevel.SUPERVISED
    params: list[str] = Field(default_factory=list, max_length=50)


class TemplateOut(BaseModel):
    name: str
    team: str
    title: str
    instructions: str
    autonomy: AutonomyLevel
    params: list[str]
    created_by: str
    created_at: datetime


class TemplateList(BaseModel):
    items: list[TemplateOut]


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params: Params = Field(default_factory=dict)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = Field(min_length=1, max_length=100)
    team: str | None = Field(None, description="the template's team, when several of yours have the name")
    params: Params = Field(default_factory=dict)
    cron: str = Field(min_length=9, max_length=200, description="five fields, e.g. `0 9 * * 1-5`")


class RunOut(BaseModel):
    """A schedule's latest firing: the task it made, or the problem document POST /tasks would
    have answered the same submission with (one rule decides both)."""

    started_at: datetime
    task_id: str | None = None
    problem: dict[str, Any] | None = None


class ScheduleOut(BaseModel):
    id: str
    template: str
    team: str
    params: dict[str, str]
    cron: str
    created_by: str
    created_at: datetime
    paused: bool | None = None
    next_runs: list[str] = Field(default_factory=list)
    last_run: RunOut | None = None
    temporal_schedule_id: str


class ScheduleList(BaseModel):
    items: list[ScheduleOut]


def run_out(run: LastRun | None) -> RunOut | None:
    if run is None:
        return None
    problem = None
    if run.refused is not None:
        problem = Problem.of(run.refused).document()
    elif run.failed is not None:
        problem = Problem(404, "Not Found", run.failed).document()
    return RunOut(started_at=run.started_at, task_id=run.task_id, problem=problem)


def template_out(template: TaskTemplate) -> TemplateOut:
    return TemplateOut.model_validate(template, from_attributes=True)


async def schedule_out(auto: automation.Automations, schedule: TaskSchedule) -> ScheduleOut:
    state = await auto.gateway.schedule_state(schedule.id)
    return ScheduleOut(
        id=schedule.id,
        template=schedule.template,
        team=schedule.team,
        params=schedule.params,
        cron=schedule.cron,
        created_by=schedule.created_by,
        created_at=schedule.created_at,
        paused=state.paused if state else None,
        next_runs=state.next_runs if state else [],
        last_run=run_out(state.last_run if state else None),
        temporal_schedule_id=f"schedule-{schedule.id}",
    )


@templates.post("", status_code=201, responses=problems(403, 404, 422))
async def create_template(body: TemplateIn, principal: CurrentPrincipal, auto: AutomationsDep) -> TemplateOut:
    """A named task definition; `{{param}}` placeholders in its title and instructions."""
    async with automation_problems():
        made = await automation.create_template(
            auto, principal, TaskTemplate(**body.model_dump(), created_by=principal.email)
        )
    return template_out(made)


@templates.get("")
async def list_templates(principal: CurrentPrincipal, auto: AutomationsDep) -> TemplateList:
    return TemplateList(items=[template_out(t) for t in await auto.templates.templates(principal.teams)])


@templates.get("/{name}", responses=problems(404))
async def get_template(
    name: str, principal: CurrentPrincipal, auto: AutomationsDep, team: str | None = None
) -> TemplateOut:
    async with automation_problems():
        return template_out(await automation.visible_template(auto, principal, name, team))


@templates.post("/{name}/runs", status_code=201, responses=problems(403, 404, 409, 422))
async def run_template(
    name: str,
    body: RunIn,
    principal: CurrentPrincipal,
    auto: AutomationsDep,
    services: ServicesDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    team: str | None = None,
) -> TaskOut:
    """A task from the template, exactly as POST /tasks makes one (the same key, the same task)."""
    async with automation_problems():
        template = await automation.visible_template(auto, principal, name, team)
        task, replayed = await automation.run_template(
            auto, principal, template, body.params, idempotency_key=idempotency_key
        )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/tasks/{task.id}"
    view = await services.tasks.task(task.id)
    assert view is not None
    return task_out(view)


@schedules.post("", status_code=201, responses=problems(403, 404, 422))
async def create_schedule(body: ScheduleIn, principal: CurrentPrincipal, auto: AutomationsDep) -> ScheduleOut:
    """Recurring runs of a template, as a Temporal Schedule; each run an ordinary gated task."""
    async with automation_problems():
        template = await automation.visible_template(auto, principal, body.template, body.team)
        schedule = await automation.create_schedule(auto, principal, template, body.params, body.cron)
    return await schedule_out(auto, schedule)


@schedules.get("")
async def list_schedules(principal: CurrentPrincipal, auto: AutomationsDep) -> ScheduleList:
    return ScheduleList(
        items=[await schedule_out(auto, s) for s in await auto.templates.schedules(principal.teams)]
    )


@schedules.delete("/{schedule_id}", status_code=204, responses=problems(403, 404))
async def delete_schedule(schedule_id: str, principal: CurrentPrincipal, auto: AutomationsDep) -> Response:
    async with automation_problems():
        schedule = await automation.visible_schedule(auto, principal, schedule_id)
        await automation.delete_schedule(auto, principal, schedule)
    return Response(status_code=204)


@schedules.post("/{schedule_id}/pause", responses=problems(403, 404))
async def pause_schedule(schedule_id: str, principal: CurrentPrincipal, auto: AutomationsDep) -> ScheduleOut:
    async with automation_problems():
        schedule = await automation.visible_schedule(auto, principal, schedule_id)
        await automation.pause_schedule(auto, principal, schedule, paused=True)
    return await schedule_out(auto, schedule)


@schedules.post("/{schedule_id}/resume", responses=problems(403, 404))
async def resume_schedule(schedule_id: str, principal: CurrentPrincipal, auto: AutomationsDep) -> ScheduleOut:
    async with automation_problems():
        schedule = await automation.visible_schedule(auto, principal, schedule_id)
        await automation.pause_schedule(auto, principal, schedule, paused=False)
    return await schedule_out(auto, schedule)


@schedules.post("/{schedule_id}/trigger", status_code=202, responses=problems(403, 404))
async def trigger_schedule(
    schedule_id: str, principal: CurrentPrincipal, auto: AutomationsDep
) -> ScheduleOut:
    """Fire now, whatever the cron says."""
    async with automation_problems():
        schedule = await automation.visible_schedule(auto, principal, schedule_id)
        await automation.trigger_schedule(auto, principal, schedule)
    return await schedule_out(auto, schedule)
