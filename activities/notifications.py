"""Notifications to a team's approvers through Apprise URLs, gathered into digests."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import apprise
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from exosuit.domain.automation import (
    DRAIN_NOTIFICATIONS_ACTIVITY,
    GIVE_UP_NOTIFICATIONS_ACTIVITY,
    NOT_ACCEPTED,
    Drained,
    Outlet,
)
from exosuit.storage.notifications import Notifications
from exosuit.storage.tables import Notification

RECIPIENT = "{email}"  # in a target URL: one message per approver, to their own address

Send = Callable[[str, str, str], Awaitable[bool]]  # (url, title, body) -> sent


async def send_with_apprise(url: str, title: str, body: str) -> bool:
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise ApplicationError(f"not an Apprise URL: {url.split(':', 1)[0]}://…", non_retryable=True)
    return bool(await notifier.async_notify(body=body, title=title))


class NotifyActivities:
    def __init__(self, notifications: Notifications, public_url: str, send: Send = send_with_apprise) -> None:
        self._notifications, self._public_url, self._send = notifications, public_url, send

    @activity.defn(name=DRAIN_NOTIFICATIONS_ACTIVITY)
    async def drain_notifications(self, outlet: Outlet) -> Drained:
        """Everything pending for the team: one digest per approver (per target URL with
        `{email}`), or one digest naming who may decide (per shared target URL)."""
        team = outlet.key
        pending = await self._notifications.pending(team)
        if not pending:
            return Drained(0)
        targets = await self._notifications.targets(team)
        mine: dict[str, list[Notification]] = defaultdict(list)
        for row in pending:
            mine[row.recipient].append(row)
        failed = []
        for url in targets:
            if RECIPIENT in url:
                for recipient, rows in mine.items():
                    title, body = self._digest(rows)
                    if not await self._send(url.replace(RECIPIENT, quote(recipient, safe="")), title, body):
                        failed.append(url.split(":", 1)[0])
            else:
                title, body = self._shared_digest(pending)
                if not await self._send(url, title, body):
                    failed.append(url.split(":", 1)[0])
        if failed:  # Temporal retries; what went out already may go out again (at least once)
            raise ApplicationError(
                f"not sent through {', '.join(failed)}",
                type=NOT_ACCEPTED,
                category=ApplicationErrorCategory.BENIGN,
            )
        await self._notifications.mark_sent([row.id for row in pending if row.id is not None])
        return Drained(len(pending))

    @activity.defn(name=GIVE_UP_NOTIFICATIONS_ACTIVITY)
    async def give_up_notifications(self, outlet: Outlet) -> None:
        pending = await self._notifications.pending(outlet.key)
        await self._notifications.mark_sent([row.id for row in pending if row.id is not None])

    def _line(self, row: Notification) -> str:
        return f"{row.text}: {self._public_url}{row.link}"

    def _digest(self, rows: list[Notification]) -> tuple[str, str]:
        if len(rows) == 1:
            return f"Exosuit: {rows[0].text}", self._line(rows[0])
        return f"Exosuit: {len(rows)} things for you", "\n".join(f"- {self._line(r)}" for r in rows)

    def _shared_digest(self, rows: list[Notification]) -> tuple[str, str]:
        events: dict[tuple[str | None, int, str], list[Notification]] = defaultdict(list)
        for row in rows:  # one line per event (or per notice about no task), naming its recipients
            events[(row.task_id, row.seq, row.text)].append(row)
        lines = [
            f"- {self._line(group[0])} (for {', '.join(r.recipient for r in group)})"
            for group in events.values()
        ]
        first = next(iter(events.values()))[0]
        title = (
            f"Exosuit: {first.text}" if len(events) == 1 else f"Exosuit: {len(events)} things for approvers"
        )
        return title, "\n".join(lines)
