"""Webhook subscriptions and their delivery log (the outbox rows the event writer adds)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from exosuit.domain.automation import DeliveryPolicy, OutletKind
from exosuit.domain.webhooks import DeliveryStatus, WebhookEvent, new_secret
from exosuit.settings import Settings
from exosuit.storage.db import Database, utcnow
from exosuit.storage.sealed_secrets import SecretBox
from exosuit.storage.tables import WebhookDelivery, WebhookSubscription


def delivery_policies(settings: Settings) -> dict[OutletKind, DeliveryPolicy]:
    """How the outbox's queues are drained: every number from settings (tests make them fast)."""
    return {
        OutletKind.WEBHOOK: DeliveryPolicy(
            initial_seconds=settings.webhook_retry_initial_seconds,
            maximum_seconds=settings.webhook_retry_max_seconds,
            give_up_seconds=settings.webhook_give_up_seconds,
            gather_seconds=0.0,  # each task's events go out one by one, in order
            idle_seconds=settings.outbox_idle_seconds,
        ),
        OutletKind.NOTIFY: DeliveryPolicy(
            initial_seconds=settings.webhook_retry_initial_seconds,
            maximum_seconds=min(settings.webhook_retry_max_seconds, settings.notify_retry_max_seconds),
            give_up_seconds=settings.notify_give_up_seconds,
            gather_seconds=settings.notify_digest_seconds,
            idle_seconds=settings.outbox_idle_seconds,
        ),
    }


@dataclass(frozen=True)
class Message:
    """The next message of a subscription for a task, ready to sign and send."""

    id: str
    url: str
    secret: str
    body: str
    attempts: int


class Webhooks:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self._box = box

    async def subscribe(
        self, team: str, url: str, events: Sequence[WebhookEvent], by: str
    ) -> tuple[WebhookSubscription, str]:
        """A new subscription and its secret (returned this once, stored sealed)."""
        sub_id, secret = f"wh_{uuid.uuid4().hex[:20]}", new_secret()
        sub = WebhookSubscription(
            id=sub_id,
            team=team,
            url=url,
            events=[e.value for e in events],
            secret_sealed=self._box.seal(secret, bound_to=sub_id),
            created_by=by,
        )
        async with self.db.session() as session:
            session.add(sub)
            await session.commit()
        return sub, secret

    async def subscriptions(self, teams: Sequence[str]) -> list[WebhookSubscription]:
        async with self.db.session() as session:
            found = await session.exec(
                select(WebhookSubscription)
                .where(
                    col(WebhookSubscription.team).in_(list(teams)),
                    col(WebhookSubscription.deleted_at).is_(None),
                )
                .order_by(col(WebhookSubscription.created_at))
            )
            return list(found)

    async def subscription(self, sub_id: str) -> WebhookSubscription | None:
        async with self.db.session() as session:
            sub = await session.get(WebhookSubscription, sub_id)
            return sub if sub is not None and sub.deleted_at is None else None

    async def delete(self, sub_id: str) -> None:
        """No more messages; what was pending is cancelled (the log stays)."""
        async with self.db.session() as session:
            sub = await session.get(WebhookSubscription, sub_id)
            if sub is None:
                return
            sub.deleted_at = utcnow()
            session.add(sub)
            await session.exec(
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.subscription_id) == sub_id,
                    col(WebhookDelivery.status) == DeliveryStatus.PENDING.value,
                )
                .values(status=DeliveryStatus.CANCELLED.value, next_attempt_at=None)
            )
            await session.commit()

    async def deliveries(self, sub_id: str, limit: int = 100) -> list[WebhookDelivery]:
        """The subscription's delivery log, newest first."""
        async with self.db.session() as session:
            found = await session.exec(
                select(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == sub_id)
                .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.seq).desc())
                .limit(limit)
            )
            return list(found)

    async def delivery(self, delivery_id: str) -> WebhookDelivery | None:
        async with self.db.session() as session:
            return await session.get(WebhookDelivery, delivery_id)

    async def resend(self, delivery_id: str, by: str) -> WebhookDelivery | None:
        """Queue a message again (same id, same body); who asked is kept on the row."""
        async with self.db.session() as session:
            row = await session.get(WebhookDelivery, delivery_id)
            if row is None:
                return None
            row.status, row.resent_by, row.next_attempt_at = DeliveryStatus.PENDING.value, by, utcnow()
            session.add(row)
            await session.commit()
            return row

    # --- what the delivery activities use ----------------------------------------------

    async def waiting(self, task_id: str, since_seq: int = 0) -> list[str]:
        """Subscriptions with messages pending for the task (of events from `since_seq` on)."""
        query = select(WebhookDelivery.subscription_id).where(
            WebhookDelivery.task_id == task_id,
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
            col(WebhookDelivery.seq) >= since_seq,
        )
        async with self.db.session() as session:
            return sorted(set(await session.exec(query)))

    async def unattempted(self, before: datetime) -> list[tuple[str, str]]:
        """(subscription, task) pairs with a message pending since `before` and never tried:
        an event no wake reached (one the reconciler recorded, say)."""
        async with self.db.session() as session:
            found = await session.exec(
                select(WebhookDelivery.subscription_id, WebhookDelivery.task_id)
                .where(
                    WebhookDelivery.status == DeliveryStatus.PENDING.value,
                    col(WebhookDelivery.attempts) == 0,
                    col(WebhookDelivery.created_at) < before,
                )
                .distinct()
            )
            return [(sub, task) for sub, task in found]

    async def next_message(self, sub_id: str, task_id: str) -> Message | None:
        """The oldest pending message: a task's messages leave in the order they happened."""
        async with self.db.session() as session:
            row = await _oldest_pending(session, sub_id, task_id)
            if row is None:
                return None
            sub = await session.get(WebhookSubscription, sub_id)
            assert sub is not None
            secret = self._box.open(sub.secret_sealed, bound_to=sub.id)
            return Message(row.id, sub.url, secret, row.body, row.attempts)

    async def attempted(
        self,
        message_id: str,
        *,
        status_code: int | None,
        error: str | None,
        delivered: bool,
        next_try: datetime | None = None,
        give_up: bool = False,
    ) -> None:
        """One attempt's outcome, in the delivery log (one UPDATE: on SQLite a read first would
        have to upgrade to a write, which fails at once when another writer got in between)."""
        now = utcnow()
        values: dict[str, object] = {
            "attempts": col(WebhookDelivery.attempts) + 1,
            "last_status_code": status_code,
            "last_error": error,
            "last_attempt_at": now,
            "next_attempt_at": None if delivered or give_up else next_try,
        }
        if delivered:
            values |= {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now}
        elif give_up:
            values["status"] = DeliveryStatus.FAILED.value
        async with self.db.session() as session:
            row = col(WebhookDelivery.id) == message_id
            await session.exec(update(WebhookDelivery).where(row).values(values))
            await session.commit()

    async def give_up(self, sub_id: str, task_id: str, reason: str) -> None:
        """The oldest pending message was retried for the whole window: it is failed, the next goes."""
        async with self.db.session() as session:
            row = await _oldest_pending(session, sub_id, task_id)
            if row is None:
                return
            row.status, row.next_attempt_at = DeliveryStatus.FAILED.value, None
            row.last_error = f"{row.last_error}; {reason}" if row.last_error else reason
            session.add(row)
            await session.commit()


async def _oldest_pending(session: AsyncSession, sub_id: str, task_id: str) -> WebhookDelivery | None:
    found = await session.exec(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == sub_id,
            WebhookDelivery.task_id == task_id,
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
        )
        .order_by(col(WebhookDelivery.seq))
        .limit(1)
    )
    return found.first()
