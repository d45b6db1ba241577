"""The messages Exosuit sends to a webhook subscription, described for /openapi.json's
`webhooks` section (one entry per event). Nothing here is served: these are the requests
Exosuit makes to the subscriber's URL, signed as Standard Webhooks sign them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from exosuit.domain.autonomy import AutonomyLevel
from exosuit.domain.task import TaskStatus
from exosuit.domain.webhooks import WebhookEvent
from web.schemas import GateOut, StepBase, UsageOut

deliveries = APIRouter()

WHEN = {
    WebhookEvent.TASK_CREATED: "a task was submitted",
    WebhookEvent.GATE_OPENED: "a gate opened: the task waits for a person",
    WebhookEvent.GATE_DECIDED: "a gate was decided (`data.decision` says how and by whom)",
    WebhookEvent.TASK_COMPLETED: "the task completed",
    WebhookEvent.TASK_FAILED: "the task failed",
    WebhookEvent.TASK_REJECTED: "a rejection with `stop` ended the task",
    WebhookEvent.TASK_CANCELLED: "the task was cancelled",
}


class DeliveredTask(BaseModel):
    """The task as the event left it (the API's task, less what only the API computes)."""

    id: str
    title: str
    instructions: str
    team: str
    submitted_by: str
    autonomy: AutonomyLevel
    status: TaskStatus
    steps: list[StepBase]
    open_gate: GateOut | None
    result: str | None
    error: str | None
    usage: UsageOut
    created_at: datetime
    updated_at: datetime


class DeliveredDecision(BaseModel):
    action: str = Field(description="approve | edit | reject | answer")
    actor: str = Field(description="`user:EMAIL` of who decided (or answered)")
    reason: str | None = None
    answer: str | None = Field(default=None, description="a question's answer (action answer)")


class DeliveredData(BaseModel):
    task: DeliveredTask
    gate: GateOut | None = Field(description="the gate opened or decided; null for the other events")
    decision: DeliveredDecision | None = Field(default=None, description="gate.decided only")


class WebhookMessage(BaseModel):
    """A delivery's body: the same bytes (and `webhook-id`) on every attempt."""

    type: WebhookEvent
    timestamp: datetime = Field(description="when the message was made (ISO 8601, UTC)")
    data: DeliveredData


WebhookId = Annotated[
    str, Header(alias="webhook-id", description="the message's id: the same on every attempt (dedupe on it)")
]
WebhookTimestamp = Annotated[
    int, Header(alias="webhook-timestamp", description="unix seconds when this attempt was signed")
]
WebhookSignature = Annotated[
    str,
    Header(
        alias="webhook-signature",
        description="`v1,` + base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, keyed "
        "with the base64-decoded part of the subscription's secret after `whsec_`",
    ),
]
ANSWERS: dict[int | str, dict[str, Any]] = {
    204: {"description": "delivered: any 2xx status will do"},
    "default": {
        "description": "anything else, or no answer within the timeout (10 s by default): the same "
        "message is sent again with backoff, for 24 hours by default"
    },
}


def _describe(event: WebhookEvent) -> None:
    async def deliver(
        body: WebhookMessage, webhook_id: WebhookId, timestamp: WebhookTimestamp, signature: WebhookSignature
    ) -> None:
        """Sent to each subscription of the task's team that asked for the event (or for all)."""

    deliveries.post(
        event.value,
        operation_id=f"deliver_{event.name.lower()}",
        summary=WHEN[event],
        status_code=204,
        responses=ANSWERS,
    )(deliver)


for _event in WebhookEvent:
    _describe(_event)
