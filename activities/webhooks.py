"""Webhook deliveries: sign a message the Standard Webhooks way and send it; wake the outbox."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from exosuit.domain.automation import (
    DESTINATION_REFUSED,
    DRAIN_WEBHOOKS_ACTIVITY,
    GIVE_UP_WEBHOOK_ACTIVITY,
    NOT_ACCEPTED,
    DeliveryPolicy,
    Drained,
    OutboxInput,
    Outlet,
    OutletKind,
)
from exosuit.domain.webhooks import retry_delay, sign
from exosuit.outbound import DestinationRefused, pin
from exosuit.storage.db import utcnow
from exosuit.storage.notifications import Notifications
from exosuit.storage.webhooks import Message, Webhooks
from workflows.outbox import OutboxWorkflow

log = logging.getLogger(__name__)


class OutboxDispatcher:
    """Wakes the workflows that drain the outbox, after a task event added to it."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        webhooks: Webhooks,
        notifications: Notifications,
        policies: dict[OutletKind, DeliveryPolicy],
    ) -> None:
        self._client, self._queue = client, task_queue
        self._webhooks, self._notifications = webhooks, notifications
        self._policies = policies
        self._in_flight: set[asyncio.Task[None]] = set()

    async def after_event(self, task_id: str, since_seq: int) -> None:
        """Called once the event is committed: the wakes go out beside the task's workflow, which
        never waits for them (a wake lost to a crash is found by `sweep`, every reconcile pass)."""
        wakes = asyncio.create_task(self._wake_for(task_id, since_seq))
        self._in_flight.add(wakes)
        wakes.add_done_callback(self._in_flight.discard)

    async def _wake_for(self, task_id: str, since_seq: int) -> None:
        try:
            outlets = [
                Outlet(OutletKind.WEBHOOK, f"{sub_id}:{task_id}")
                for sub_id in await self._webhooks.waiting(task_id, since_seq)
            ]
            team = await self._notifications.waiting_team(task_id, since_seq)
            if team is not None:
                outlets.append(Outlet(OutletKind.NOTIFY, team))
            await asyncio.gather(*(self.wake(outlet) for outlet in outlets))
        except Exception:
            log.warning("waking the outbox for %s failed; the next sweep will", task_id, exc_info=True)

    async def sweep(self, older_than: timedelta) -> int:
        """Wake the queues that hold something no wake reached; how many were woken."""
        before = utcnow() - older_than
        pairs, teams = await self._webhooks.unattempted(before), await self._notifications.stale_teams(before)
        outlets = [Outlet(OutletKind.WEBHOOK, f"{sub}:{task}") for sub, task in pairs]
        outlets += [Outlet(OutletKind.NOTIFY, team) for team in teams]
        for outlet in outlets:
            await self.wake(outlet)
        return len(outlets)

    async def wake(self, outlet: Outlet) -> None:
        """Signal-with-start: the outlet's workflow runs, or starts, and looks at its queue."""
        await self._client.start_workflow(
            OutboxWorkflow.run,
            OutboxInput(outlet, self._policies[outlet.kind]),
            id=outlet.workflow_id,
            task_queue=self._queue,
            start_signal="wake",
        )


class WebhookActivities:
    def __init__(
        self, webhooks: Webhooks, http: httpx.AsyncClient, policy: DeliveryPolicy, *, allow_loopback: bool
    ) -> None:
        self._webhooks, self._http, self._policy = webhooks, http, policy
        self._allow_loopback = allow_loopback

    @activity.defn(name=DRAIN_WEBHOOKS_ACTIVITY)
    async def drain_webhooks(self, outlet: Outlet) -> Drained:
        """Send the subscription's pending messages about the task, oldest first; raise at the
        first one the receiver does not take (Temporal retries from that one, same id)."""
        sub_id, task_id = outlet.key.split(":", 1)
        sent = 0
        while (message := await self._webhooks.next_message(sub_id, task_id)) is not None:
            await self._send(message)
            sent += 1
        return Drained(sent)

    @activity.defn(name=GIVE_UP_WEBHOOK_ACTIVITY)
    async def give_up_webhook(self, outlet: Outlet) -> None:
        sub_id, task_id = outlet.key.split(":", 1)
        hours = self._policy.give_up_seconds / 3600
        await self._webhooks.give_up(sub_id, task_id, f"given up (retried for up to {hours:g} h)")

    async def _send(self, message: Message) -> None:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(message.secret, message.id, timestamp, message.body),
            "user-agent": "Exosuit-Webhooks/1",
        }
        status: int | None = None
        try:
            response = await post_pinned(
                self._http, message.url, message.body, headers, allow_loopback=self._allow_loopback
            )
            status = response.status_code
            error = None if response.is_success else f"the receiver answered {status}"
        except DestinationRefused as refused:
            await self._webhooks.attempted(message.id, status_code=None, error=str(refused), delivered=False)
            raise ApplicationError(str(refused), type=DESTINATION_REFUSED, non_retryable=True) from None
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if error is None:
            await self._webhooks.attempted(message.id, status_code=status, error=None, delivered=True)
            return
        delay = retry_delay(
            activity.info().attempt, self._policy.initial_seconds, self._policy.maximum_seconds
        )
        await self._webhooks.attempted(
            message.id,
            status_code=status,
            error=error,
            delivered=False,
            next_try=utcnow() + timedelta(seconds=delay),
        )
        log.info("webhook %s not delivered: %s", message.id, error)
        # Benign: an expected refusal, retried by Temporal; logged once above, not as a failure.
        raise ApplicationError(error, type=NOT_ACCEPTED, category=ApplicationErrorCategory.BENIGN)


async def post_pinned(
    http: httpx.AsyncClient, url: str, body: str, headers: dict[str, str], *, allow_loopback: bool
) -> httpx.Response:
    """POST to the address the destination check passed (one resolution, pinned), never to
    whatever the name resolves to a moment later. DestinationRefused if it may not be reached."""
    pinned = await pin(url, allow_loopback=allow_loopback)
    return await http.post(
        pinned.url, content=body.encode(), headers=headers | pinned.headers, extensions=pinned.extensions
    )
