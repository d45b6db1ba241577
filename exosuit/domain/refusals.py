"""Why an action was refused: one exception per kind, raised where the rule is.

The workflow sends a refusal across Temporal as an `ApplicationError` whose type is the
refusal's `kind`; the web gateway turns it back into the same exception, and the web
layer maps each kind to its HTTP status. `Throttled` is not a refusal of the request
itself but of its moment (a limit on how much arrives or runs at once): the same request
later may pass, so it is kept apart from `Refused`, and answered 429 with Retry-After.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class RefusalKind(StrEnum):
    NOT_OPEN = "GateNotOpen"
    FORBIDDEN = "Forbidden"
    FOUR_EYES = "FourEyes"
    INVALID = "Invalid"
    ABOVE_CAP = "AboveCap"
    FINISHED = "TaskFinished"
    THROTTLED = "Throttled"  # not a `Refused`: see `Throttled`
    CLAIMED = "Claimed"  # another approver holds the gate (exosuit.domain.claims)
    REPLAYED = "Replayed"  # a control message the workflow has already applied (its id)
    ALREADY_APPROVED = "AlreadyApproved"  # a quorum gate's approver voting twice (exosuit.domain.quorum)


class Refused(Exception):
    """An action that policy refuses; the message says why, fit to show a person."""

    kind: ClassVar[RefusalKind]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotOpen(Refused):
    """The gate is no longer open (decided, superseded), or the action comes too late."""

    kind = RefusalKind.NOT_OPEN


class Finished(NotOpen):
    """The task has already ended."""

    kind = RefusalKind.FINISHED


class Claimed(NotOpen):
    """Another approver holds the gate (a claim): deciding it needs an explicit take-over."""

    kind = RefusalKind.CLAIMED


class Replayed(NotOpen):
    """A control message whose id the workflow has already applied: a replay, not a new wish."""

    kind = RefusalKind.REPLAYED


class AlreadyApproved(Refused):
    """The approver has already approved this quorum gate: another approver must."""

    kind = RefusalKind.ALREADY_APPROVED


class Forbidden(Refused):
    """The person's role or the four-eyes rule does not allow it."""

    kind = RefusalKind.FORBIDDEN


class FourEyes(Forbidden):
    """The submitter may not decide this gate (four-eyes): another approver must."""

    kind = RefusalKind.FOUR_EYES


class Invalid(Refused):
    """The request is malformed or breaks a rule about its content (a cap, a plan)."""

    kind = RefusalKind.INVALID


class AboveCap(Invalid):
    """The autonomy level asked for is above the team's cap."""

    kind = RefusalKind.ABOVE_CAP


class Throttled(Exception):
    """Not now: too many requests, or too many tasks under way; `retry_after` seconds until
    one is allowed again."""

    kind: ClassVar[RefusalKind] = RefusalKind.THROTTLED

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message, self.retry_after = message, max(1, retry_after)


REFUSALS: tuple[type[Refused], ...] = (
    NotOpen,
    Finished,
    Claimed,
    Replayed,
    AlreadyApproved,
    Forbidden,
    FourEyes,
    Invalid,
    AboveCap,
)
_BY_KIND: dict[str, type[Refused]] = {cls.kind.value: cls for cls in REFUSALS}


def refusal(kind: str | None, message: str) -> Refused:
    """The refusal a kind names; an unknown kind is read as 'not open' (nothing changed)."""
    return _BY_KIND.get(kind or "", NotOpen)(message)
