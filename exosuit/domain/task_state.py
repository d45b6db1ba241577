"""What a task's workflow remembers between activations, and carries into its next run.

One serializable value: continue-as-new and a resume start the next run from it, so
everything the flow decides with lives here (texts stay in the database). Pure data with
pure questions over it, so the workflow, its tests and the web layer share one shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from exosuit.domain.audit import GENESIS_HASH, Anchor
from exosuit.domain.autonomy import AutonomyLevel, Risk
from exosuit.domain.task import StepKind, StepStatus

DONE = (StepStatus.COMPLETED, StepStatus.SKIPPED)
APPLIED_KEPT = 256  # control messages remembered per task (TaskState.applied)


@dataclass
class StepState:
    """What the workflow remembers of a step (its texts live in the database)."""

    id: str
    index: int
    kind: StepKind
    risk: Risk
    tool: str | None = None
    status: StepStatus = StepStatus.PENDING
    args_sha256: str | None = None  # a tool step's arguments, as they stand (what approval binds)


@dataclass
class Walk:
    """Where a run that continued as new inside a gate loop left off: the gate it was at (a
    step's or the plan's), the revisions so far, and the gate it held open, if it did."""

    gate: str  # the GateKind's value
    step_id: str | None
    revisions: int = 0
    held: HeldGate | None = None


@dataclass
class HeldGate:
    """An open gate carried into the next run, re-opened there with the same id so a decision
    naming it still lands; its deadline and escalation go on, not restart."""

    id: str
    opened_at: datetime
    deadline: datetime
    four_eyes: bool
    escalated: bool = False
    approvals: list[str] = field(default_factory=list)  # a quorum gate's votes so far


@dataclass
class TaskState:
    """The flow's memory: the level, the plan's steps, the event keys and the audit head."""

    level: AutonomyLevel
    steps: list[StepState] = field(default_factory=list)
    events: int = 0  # event keys go on from here
    head: Anchor | None = field(default_factory=lambda: Anchor(0, GENESIS_HASH))  # None: chain broken
    planned: bool = False  # the plan was approved; the steps not yet done are what is left
    budgeted: bool = True  # the task or its team has a budget (as the last record saw it)
    cap: AutonomyLevel | None = None  # the team's cap as last told (None: the one at submission)
    # The ids of the latest control messages applied (updates, signals): one seen again is a
    # replay. Bounded: ids are random, so a replay older than this window is of a gate long
    # closed (a decision) or meets the cap and role checks again (a slider move).
    applied: list[str] = field(default_factory=list)
    walk: Walk | None = None  # set only while continuing as new inside a gate loop

    def applied_before(self, message_id: str) -> bool:
        return message_id in self.applied

    def remember(self, message_id: str) -> None:
        self.applied = [*self.applied, message_id][-APPLIED_KEPT:]

    @property
    def seq(self) -> int:
        """The seq of the last recorded event (the event count when the chain is broken)."""
        return self.head.seq if self.head else self.events

    def step(self, step_id: str | None) -> StepState | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def first_unfinished(self) -> int | None:
        """The step (1-based) a resumed run starts from; None: it plans again."""
        if not self.planned:
            return None
        return next((s.index + 1 for s in self.steps if s.status not in DONE), None)

    def highest_risk(self) -> Risk:
        return max((s.risk for s in self.steps), key=lambda r: r.rank, default=Risk.LOW)
