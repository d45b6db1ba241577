"""A team's automations page: webhooks with their delivery log and "Send again", templates
(each with a page to run it), schedules with how their latest firing went."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from exosuit.domain.autonomy import can_approve
from exosuit.domain.refusals import Refused, Throttled
from web import automation
from web.automation import AutomationsDep
from web.errors import status_of
from web.pages.common import CheckedForm, CurrentVisitor, Visitor, redirect, render

router = APIRouter()


async def _team_page(
    request: Request, visitor: Visitor, auto: automation.Automations, team: str, *, error: str | None = None
) -> Response:
    principal = visitor.principal
    if principal.role_in(team) is None:
        return render(request, "not_found.html", {"visitor": visitor}, status=404)
    approver = can_approve(principal.role_in(team))
    hooks = []
    if approver:
        for sub in await auto.webhooks.subscriptions([team]):
            hooks.append({"sub": sub, "deliveries": await auto.webhooks.deliveries(sub.id, 25)})
    schedules = []  # with each one's latest firing: the task it made, or why it made none
    for schedule in await auto.templates.schedules([team]):
        state = await auto.gateway.schedule_state(schedule.id)
        schedules.append((schedule, state.last_run if state else None))
    context = {
        "visitor": visitor,
        "team": team,
        "approver": approver,
        "hooks": hooks,
        "templates": await auto.templates.templates([team]),
        "schedules": schedules,
        "notify": len(await auto.notifications.targets(team)) if approver else 0,
        "error": error,
    }
    return render(request, "team.html", context, block="deliveries", status=400 if error else 200)


@router.get("/teams/{team}")
async def team_page(team: str, request: Request, visitor: CurrentVisitor, auto: AutomationsDep) -> Response:
    return await _team_page(request, visitor, auto, team)


@router.post("/teams/{team}/webhooks/{webhook_id}/deliveries/{delivery_id}/resend")
async def send_again(
    team: str,
    webhook_id: str,
    delivery_id: str,
    request: Request,
    visitor: CurrentVisitor,
    form: CheckedForm,
    auto: AutomationsDep,
) -> Response:
    """The "Send again" button: the same message, queued again; who pressed it is kept."""
    try:
        sub = await automation.subscription(auto, visitor.principal, webhook_id)
        await automation.send_again(auto, visitor.principal, sub, delivery_id)
    except (Refused, LookupError) as refused:
        return await _team_page(request, visitor, auto, team, error=str(refused) or "not found")
    return redirect(request, f"/teams/{team}")


@router.get("/templates/{name}/run")
async def run_page(name: str, request: Request, visitor: CurrentVisitor, auto: AutomationsDep) -> Response:
    try:
        template = await automation.visible_template(auto, visitor.principal, name)
    except LookupError:
        return render(request, "not_found.html", {"visitor": visitor}, status=404)
    return render(request, "template_run.html", {"visitor": visitor, "template": template, "error": None})


@router.post("/templates/{name}/run")
async def run_from_page(
    name: str, request: Request, visitor: CurrentVisitor, form: CheckedForm, auto: AutomationsDep
) -> Response:
    try:
        template = await automation.visible_template(auto, visitor.principal, name)
    except LookupError:
        return render(request, "not_found.html", {"visitor": visitor}, status=404)
    params = {p: form.get(f"param_{p}", "") for p in template.params}
    try:
        task, _ = await automation.run_template(auto, visitor.principal, template, params)
    except (Refused, Throttled) as refused:  # the status the API answers the same run with
        context = {"visitor": visitor, "template": template, "error": refused.message, "values": params}
        return render(request, "template_run.html", context, status=status_of(refused))
    return redirect(request, f"/tasks/{task.id}")
