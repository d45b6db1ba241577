"""The payloads of the automation workflows (webhook deliveries, notifications, scheduled
runs) that cross the Temporal boundary: ids and timings only, the bodies stay in the database."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from exosuit.domain.refusals import RefusalKind

DRAIN_WEBHOOKS_ACTIVITY = "drain_webhooks"
GIVE_UP_WEBHOOK_ACTIVITY = "give_up_webhook"
DRAIN_NOTIFICATIONS_ACTIVITY = "drain_notifications"
GIVE_UP_NOTIFICATIONS_ACTIVITY = "give_up_notifications"
PREPARE_SCHEDULED_RUN_ACTIVITY = "prepare_scheduled_run"

# The error type a delivery attempt raises when the receiver did not take it (retried).
NOT_ACCEPTED = "DeliveryNotAccepted"
# ... and when the destination is refused (a private address): retrying cannot help.
DESTINATION_REFUSED = "DestinationRefused"
# Why a scheduled run made no task (the error type its run fails with, never retried): the
# refusal's kind, as any submission would be refused, or this when its schedule, template or
# team is gone.
SCHEDULE_GONE = "ScheduleGone"
RUN_SKIPPED_ERRORS = [SCHEDULE_GONE, *(kind.value for kind in RefusalKind)]


class OutletKind(StrEnum):
    WEBHOOK = "webhook"  # one subscription's deliveries for one task, in the task's order
    NOTIFY = "notify"  # one team's notifications, gathered into digests


@dataclass
class Outlet:
    """One queue of the outbox that one workflow drains."""

    kind: OutletKind
    key: str  # "SUBSCRIPTION_ID:TASK_ID" for a webhook, the team's name for notifications

    @property
    def workflow_id(self) -> str:
        return f"{self.kind.value}-{self.key}"


@dataclass
class DeliveryPolicy:
    """How an outlet is drained: no defaults here, every number comes from `Settings`
    (`storage.webhooks.delivery_policies`), so tests can make it fast."""

    initial_seconds: float  # first retry
    maximum_seconds: float  # retries space out to this at most
    give_up_seconds: float  # retried this long, then given up
    gather_seconds: float  # wait this long after a wake, so that a burst goes out as one digest
    idle_seconds: float  # the workflow ends after this long with nothing to send


@dataclass
class OutboxInput:
    outlet: Outlet
    policy: DeliveryPolicy


@dataclass
class Drained:
    sent: int


@dataclass
class ScheduledRun:
    """What a Temporal Schedule starts: a run of a template under one schedule."""

    schedule_id: str


@dataclass
class ScheduledRunRequest:
    schedule_id: str
    run_key: str  # the scheduled workflow's id: a retried activity finds the task it made
