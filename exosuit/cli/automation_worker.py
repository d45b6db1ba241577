"""The worker's automation parts: webhook deliveries, notifications and scheduled runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from temporalio.client import Client

from activities.notifications import NotifyActivities
from activities.schedules import ScheduleActivities
from activities.webhooks import OutboxDispatcher, WebhookActivities
from exosuit.domain.automation import OutletKind
from exosuit.settings import Settings
from exosuit.storage.db import Database
from exosuit.storage.decision_links import DecisionLinks
from exosuit.storage.notifications import Notifications
from exosuit.storage.sealed_secrets import SecretBox
from exosuit.storage.templates import Templates
from exosuit.storage.webhooks import Webhooks, delivery_policies
from workflows.outbox import OutboxWorkflow
from workflows.schedules import ScheduledRunWorkflow


@dataclass
class AutomationParts:
    workflows: Sequence[type]
    activities: Sequence[Callable[..., Any]]
    after_event: Callable[[str, int], Awaitable[None]]


def automation_parts(client: Client, settings: Settings, db: Database, task_queue: str) -> AutomationParts:
    policies = delivery_policies(settings)
    webhooks = Webhooks(db, SecretBox(settings.sealing_secrets))
    notifications = Notifications(db)
    http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    sender = WebhookActivities(
        webhooks, http, policies[OutletKind.WEBHOOK], allow_loopback=settings.webhook_allow_loopback
    )
    notify = NotifyActivities(
        notifications,
        settings.resolved_public_url,
        links=DecisionLinks(db),
        allow_loopback=settings.webhook_allow_loopback,
    )
    runs = ScheduleActivities(Templates(db))
    dispatcher = OutboxDispatcher(client, task_queue, webhooks, notifications, policies)
    return AutomationParts(
        workflows=[OutboxWorkflow, ScheduledRunWorkflow],
        activities=[
            sender.drain_webhooks,
            sender.give_up_webhook,
            notify.drain_notifications,
            notify.give_up_notifications,
            runs.prepare_scheduled_run,
        ],
        after_event=dispatcher.after_event,
    )


async def sweep_outbox(client: Client, settings: Settings, db: Database, older_than: timedelta) -> int:
    """Wake the outbox's queues that an event left without a wake (the reconciler's events)."""
    dispatcher = OutboxDispatcher(
        client,
        settings.task_queue,
        Webhooks(db, SecretBox(settings.sealing_secrets)),
        Notifications(db),
        delivery_policies(settings),
    )
    return await dispatcher.sweep(older_than)
