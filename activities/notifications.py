"""Notifications to a team's approvers through Apprise URLs, gathered into digests."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

import apprise
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from exosuit import outbound
from exosuit.domain.automation import (
    DRAIN_NOTIFICATIONS_ACTIVITY,
    GIVE_UP_NOTIFICATIONS_ACTIVITY,
    NOT_ACCEPTED,
    Drained,
    Outlet,
)
from exosuit.domain.webhooks import Notice
from exosuit.storage.decision_links import DecisionLinks
from exosuit.storage.notifications import Notifications
from exosuit.storage.tables import Notification

log = logging.getLogger(__name__)

_GATE_NOTICES = frozenset({Notice.GATE_OPENED.value, Notice.GATE_ESCALATED.value})
RECIPIENT = "{email}"  # in a target URL: one message per approver, to their own address

Send = Callable[[str, str, str], Awaitable[bool]]  # (url, title, body) -> sent
# Apprise's own HTTP posts: the URL names any host, so it must resolve and pass the policy.
CUSTOM_HTTP = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})


async def destination_refusal(url: str, *, allow_loopback: bool) -> str | None:
    """Why a notification URL may not be used: the webhooks' address policy on the host it
    names (a service URL whose "host" is a token, such as slack://A/B/C, names none)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname
    if not host or (scheme not in CUSTOM_HTTP and "." not in host and host != "localhost"):
        return None
    try:
        port = parts.port
    except ValueError:
        return "the URL's port is not a number"
    netloc = f"[{host}]" if ":" in host else host
    try:
        await outbound.pin(f"http://{netloc}:{port or 80}/", allow_loopback=allow_loopback)
    except outbound.Unresolved as exc:
        return str(exc) if scheme in CUSTOM_HTTP else None
    except outbound.DestinationRefused as exc:
        return str(exc)
    return None


async def send_with_apprise(url: str, title: str, body: str) -> bool:
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise ApplicationError(f"not an Apprise URL: {url.split(':', 1)[0]}://…", non_retryable=True)
    return bool(await notifier.async_notify(body=body, title=title))


class NotifyActivities:
    def __init__(
        self,
        notifications: Notifications,
        public_url: str,
        send: Send = send_with_apprise,
        links: DecisionLinks | None = None,
        *,
        allow_loopback: bool = False,
    ) -> None:
        self._notifications, self._public_url, self._send = notifications, public_url, send
        self._links = links  # a decision link per person and open gate, in their own messages
        self._allow_loopback = allow_loopback

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
            refusal = await destination_refusal(url, allow_loopback=self._allow_loopback)
            if refusal:  # never retried: the address will not become allowed by waiting
                log.warning(
                    "team %s: notification target %s://… refused: %s", team, url.split(":")[0], refusal
                )
                continue
            if RECIPIENT in url:
                for recipient, rows in mine.items():
                    title, body = self._digest(rows, await self._decision_links(recipient, rows))
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

    async def _decision_links(self, recipient: str, rows: list[Notification]) -> dict[int, str]:
        """A link per row about a gate still open, for this recipient alone (shared targets get
        none: a link decides as the person it was sent to)."""
        links: dict[int, str] = {}
        if self._links is None:
            return links
        for row in rows:
            if row.id is not None and row.task_id is not None and row.kind in _GATE_NOTICES:
                token = await self._links.mint(row.task_id, recipient)
                if token is not None:
                    links[row.id] = f"{self._public_url}/decide/{token}"
        return links

    def _line(self, row: Notification, links: dict[int, str] | None = None) -> str:
        line = f"{row.text}: {self._public_url}{row.link}"
        link = (links or {}).get(row.id or 0)
        return f"{line} (decide: {link})" if link else line

    def _digest(self, rows: list[Notification], links: dict[int, str]) -> tuple[str, str]:
        if len(rows) == 1:
            return f"Exosuit: {rows[0].text}", self._line(rows[0], links)
        return f"Exosuit: {len(rows)} things for you", "\n".join(f"- {self._line(r, links)}" for r in rows)

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
