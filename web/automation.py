"""What a person can do with automations (webhooks, templates, schedules), shared by the JSON
API and the team page; the services they need, built once per app beside `Services`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from exosuit.domain.automation import DeliveryPolicy, Outlet, OutletKind
from exosuit.domain.autonomy import AutonomyLevel, above_cap, can_approve
from exosuit.domain.refusals import Forbidden, Invalid
from exosuit.domain.templates import params_refusal, render, template_refusal
from exosuit.domain.webhooks import WebhookEvent
from exosuit.outbound import DestinationRefused, check_destination
from exosuit.storage import decision_facts
from exosuit.storage.identity import Principal
from exosuit.storage.notifications import Notifications
from exosuit.storage.sealed_secrets import SecretBox
from exosuit.storage.tables import Task, TaskSchedule, TaskTemplate, WebhookDelivery, WebhookSubscription
from exosuit.storage.templates import TemplateExists, Templates
from exosuit.storage.webhooks import Webhooks, delivery_policies
from web import actions
from web.automation_gateway import AutomationGateway
from web.deps import Services, ServicesDep
from web.schemas import TaskCreate

log = logging.getLogger(__name__)


@dataclass
class Automations:
    services: Services
    webhooks: Webhooks
    notifications: Notifications
    templates: Templates
    gateway: AutomationGateway
    policies: dict[OutletKind, DeliveryPolicy]

    @classmethod
    def build(cls, services: Services) -> Automations:
        settings = services.settings
        return cls(
            services=services,
            webhooks=Webhooks(services.db, SecretBox(settings.sealing_secrets)),
            notifications=Notifications(services.db),
            templates=Templates(services.db),
            gateway=AutomationGateway(services.gateway.client, settings.task_queue),
            policies=delivery_policies(settings),
        )


def get_automations(request: Request, services: ServicesDep) -> Automations:
    found: Automations | None = getattr(request.app.state, "automations", None)
    if found is None:
        found = request.app.state.automations = Automations.build(services)
    return found


AutomationsDep = Annotated[Automations, Depends(get_automations)]


def _approver(principal: Principal, team: str, what: str) -> None:
    if principal.role_in(team) is None:
        raise LookupError(team)  # another team's things do not exist for the caller
    if not can_approve(principal.role_in(team)):
        raise Forbidden(f"only an approver or admin of team {team!r} can {what}")


# --- webhooks -------------------------------------------------------------------------------


async def subscribe(
    auto: Automations, principal: Principal, team: str, url: str, events: list[WebhookEvent]
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its secret (shown once)."""
    _approver(principal, team, "manage its webhooks")
    try:
        await check_destination(url, allow_loopback=auto.services.settings.webhook_allow_loopback)
    except DestinationRefused as refused:
        raise Invalid(f"the URL cannot be used: {refused}") from None
    return await auto.webhooks.subscribe(team, url, events or list(WebhookEvent), principal.email)


async def subscription(auto: Automations, principal: Principal, sub_id: str) -> WebhookSubscription:
    """The subscription if the caller may manage it; LookupError if absent or another team's."""
    sub = await auto.webhooks.subscription(sub_id)
    if sub is None:
        raise LookupError(sub_id)
    _approver(principal, sub.team, "manage its webhooks")
    return sub


async def send_again(
    auto: Automations, principal: Principal, sub: WebhookSubscription, delivery_id: str
) -> WebhookDelivery:
    """The same message (same webhook-id and body) queued again; who asked is logged and kept."""
    row = await auto.webhooks.delivery(delivery_id)
    if row is None or row.subscription_id != sub.id:
        raise LookupError(delivery_id)
    row = await auto.webhooks.resend(delivery_id, principal.email)
    assert row is not None
    log.info("webhook %s sent again by %s", delivery_id, principal.email)
    outlet = Outlet(OutletKind.WEBHOOK, f"{sub.id}:{row.task_id}")
    await auto.gateway.wake(outlet, auto.policies[OutletKind.WEBHOOK])
    return row


# --- templates ------------------------------------------------------------------------------


async def create_template(auto: Automations, principal: Principal, template: TaskTemplate) -> TaskTemplate:
    _approver(principal, template.team, "define its templates")
    refusal = template_refusal(template.params, template.title, template.instructions)
    if refusal:
        raise Invalid(refusal)
    team = await auto.services.directory.team(template.team)
    if team is None:
        raise LookupError(template.team)
    cap = above_cap(AutonomyLevel(template.autonomy), AutonomyLevel(team.max_autonomy))
    if cap:
        raise Invalid(cap)
    template.created_by = principal.email
    try:
        await auto.templates.create(template)
    except TemplateExists:
        raise Invalid(f"a template named {template.name!r} exists") from None
    return template


async def visible_template(
    auto: Automations, principal: Principal, name: str, team: str | None = None
) -> TaskTemplate:
    """The caller's team's template of this name (`team` says which when several have one)."""
    teams = principal.teams if team is None else [t for t in principal.teams if t == team]
    found = await auto.templates.named(name, teams)
    if not found:
        raise LookupError(name)
    if len(found) > 1:
        named = ", ".join(t.team for t in found)
        raise Invalid(f"your teams {named} each have a template {name!r}: say which team")
    return found[0]


async def run_template(
    auto: Automations,
    principal: Principal,
    template: TaskTemplate,
    params: dict[str, str],
    *,
    idempotency_key: str | None = None,
) -> tuple[Task, bool]:
    """A task from the template, submitted exactly as POST /tasks submits one."""
    refusal = params_refusal(template.params, params)
    if refusal:
        raise Invalid(refusal)
    body = TaskCreate(
        title=render(template.title, params),
        instructions=render(template.instructions, params),
        team=template.team,
        autonomy=AutonomyLevel(template.autonomy),
    )
    task, replayed = await actions.submit(auto.services, principal, body, idempotency_key=idempotency_key)
    # The dashboard and earned autonomy group decisions by the template their task ran from.
    await decision_facts.mark_template(auto.services.db, task.id, template.name)
    return task, replayed


# --- schedules ------------------------------------------------------------------------------


async def create_schedule(
    auto: Automations, principal: Principal, template: TaskTemplate, params: dict[str, str], cron: str
) -> TaskSchedule:
    _approver(principal, template.team, "schedule its templates")
    refusal = params_refusal(template.params, params)
    if refusal:
        raise Invalid(refusal)
    if len(cron.split()) != 5:
        raise Invalid("cron must have five fields: minute hour day-of-month month day-of-week")
    schedule = await auto.templates.add_schedule(template, params, cron, principal.email)
    try:
        await auto.gateway.create_schedule(
            schedule.id, cron, note=f"template {template.name}, by {principal.email}"
        )
    except Exception:
        await auto.templates.remove_schedule(schedule.id)
        raise
    return schedule


async def visible_schedule(auto: Automations, principal: Principal, schedule_id: str) -> TaskSchedule:
    schedule = await auto.templates.schedule(schedule_id)
    if schedule is None or principal.role_in(schedule.team) is None:
        raise LookupError(schedule_id)
    return schedule


async def delete_schedule(auto: Automations, principal: Principal, schedule: TaskSchedule) -> None:
    _approver(principal, schedule.team, "remove its schedules")
    await auto.gateway.delete_schedule(schedule.id)
    await auto.templates.remove_schedule(schedule.id)


async def pause_schedule(
    auto: Automations, principal: Principal, schedule: TaskSchedule, paused: bool
) -> None:
    _approver(principal, schedule.team, "pause or resume its schedules")
    await auto.gateway.pause_schedule(schedule.id, paused, principal.email)


async def trigger_schedule(auto: Automations, principal: Principal, schedule: TaskSchedule) -> None:
    _approver(principal, schedule.team, "run its schedules")
    await auto.gateway.trigger_schedule(schedule.id)
