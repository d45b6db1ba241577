"""Webhook subscriptions of a team and their delivery log (docs/webhooks.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from exosuit.domain.refusals import Refused
from exosuit.domain.webhooks import WebhookEvent
from exosuit.storage.tables import WebhookDelivery, WebhookSubscription
from web import automation
from web.api.openapi import problems
from web.automation import AutomationsDep
from web.deps import CurrentPrincipal
from web.errors import Problem

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@asynccontextmanager
async def automation_problems() -> AsyncIterator[None]:
    """A refusal becomes its problem; what the caller cannot see is 404."""
    try:
        yield
    except Refused as refused:
        raise Problem.of(refused) from None
    except LookupError as missing:
        raise Problem(404, "Not Found", f"no {str(missing).strip(chr(39))}") from None


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=8, max_length=2000)
    events: list[WebhookEvent] = Field(default_factory=list, description="Empty: every event.")


class WebhookOut(BaseModel):
    id: str
    team: str
    url: str
    events: list[WebhookEvent]
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="`whsec_` + base64; shown only in this answer.")


class DeliveryOut(BaseModel):
    id: str = Field(description="The `webhook-id` header of every attempt.")
    task_id: str
    event: WebhookEvent
    status: str = Field(description="pending | delivered | failed | cancelled")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    resent_by: str | None
    created_at: datetime


class WebhookList(BaseModel):
    items: list[WebhookOut]


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


def webhook_out(sub: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=sub.id,
        team=sub.team,
        url=sub.url,
        events=[WebhookEvent(e) for e in sub.events],
        created_by=sub.created_by,
        created_at=sub.created_at,
    )


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(row, from_attributes=True)


@router.post("", status_code=201, responses=problems(403, 404, 422))
async def create_webhook(
    body: WebhookIn, principal: CurrentPrincipal, auto: AutomationsDep, response: Response
) -> WebhookCreated:
    """Subscribe a URL to a team's task events (an approver or admin of the team)."""
    async with automation_problems():
        sub, secret = await automation.subscribe(auto, principal, body.team, body.url, body.events)
    response.headers["Location"] = f"/api/v1/webhooks/{sub.id}"
    return WebhookCreated(**webhook_out(sub).model_dump(), secret=secret)


@router.get("")
async def list_webhooks(principal: CurrentPrincipal, auto: AutomationsDep) -> WebhookList:
    """The subscriptions of the teams the caller approves for."""
    subs = await auto.webhooks.subscriptions(principal.approver_teams)
    return WebhookList(items=[webhook_out(s) for s in subs])


@router.delete("/{webhook_id}", status_code=204, responses=problems(403, 404))
async def delete_webhook(webhook_id: str, principal: CurrentPrincipal, auto: AutomationsDep) -> Response:
    """No more deliveries; pending ones are cancelled, the log stays."""
    async with automation_problems():
        sub = await automation.subscription(auto, principal, webhook_id)
    await auto.webhooks.delete(sub.id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", responses=problems(403, 404))
async def list_deliveries(
    webhook_id: str,
    principal: CurrentPrincipal,
    auto: AutomationsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryList:
    """The delivery log, newest first: attempts, status, the next try."""
    async with automation_problems():
        sub = await automation.subscription(auto, principal, webhook_id)
    return DeliveryList(items=[delivery_out(r) for r in await auto.webhooks.deliveries(sub.id, limit)])


@router.post("/{webhook_id}/deliveries/{delivery_id}/resend", status_code=202, responses=problems(403, 404))
async def resend_delivery(
    webhook_id: str, delivery_id: str, principal: CurrentPrincipal, auto: AutomationsDep
) -> DeliveryOut:
    """Send a message again: the same `webhook-id` and body."""
    async with automation_problems():
        sub = await automation.subscription(auto, principal, webhook_id)
        row = await automation.send_again(auto, principal, sub, delivery_id)
    return delivery_out(row)
