"""Who holds an open gate: claims, their leases, and who a claim lets decide.

A claim is advisory coordination between approvers, not a permission: it never lets anyone
decide a gate they could not decide without it, and it expires on its own (a lease), so an
approver who walked away blocks nobody for long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from exosuit.domain.refusals import Claimed

DEFAULT_CLAIM_LEASE = timedelta(minutes=15)


def holder(claimed_by: str | None, expires_at: datetime | None, now: datetime) -> str | None:
    """Who holds the gate now: nobody once the lease ran out."""
    if claimed_by is None or expires_at is None or expires_at <= now:
        return None
    return claimed_by


@dataclass(frozen=True)
class ClaimChange:
    """What a claim request does: the new holder and lease, and whom it takes the gate from."""

    holder: str
    expires_at: datetime
    previous: str | None  # the holder it replaces (a take-over or a reassignment), if any
    renewal: bool  # the same holder again: only the lease moves (not audited)


def claim(
    *,
    current: str | None,
    caller: str,
    assignee: str | None,
    take_over: bool,
    now: datetime,
    lease: timedelta = DEFAULT_CLAIM_LEASE,
) -> ClaimChange:
    """The claim `caller` asks for (for themselves, or assigning `assignee`), or `Claimed`.

    The holder renews by claiming again; a gate someone else holds moves only with `take_over`.
    """
    new = assignee or caller
    if current is not None and current not in (caller, new) and not take_over:
        raise Claimed(f"{current} is working on this gate (claimed); take it over explicitly to decide it")
    return ClaimChange(new, now + lease, previous=None if current == new else current, renewal=current == new)


def release_refusal(*, current: str | None, caller: str) -> Claimed | None:
    """Why `caller` may not release the claim: only its holder releases (others take over)."""
    if current is not None and current != caller:
        return Claimed(f"{current} holds this gate; only they can release it (or take it over)")
    return None


def decide_refusal(*, current: str | None, actor: str) -> Claimed | None:
    """Why a decision by `actor` is refused for the claim on the gate, or None."""
    if current is not None and current != actor:
        return Claimed(
            f"{current} has claimed this gate; take it over (claim with take_over) before you decide it"
        )
    return None
