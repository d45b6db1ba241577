"""The small typed payloads that cross between web, workflow and activities.

Workflow payloads stay small: ids, statuses, short texts a person typed. Model outputs
live in the database and never travel through Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Activity names: the workflow calls activities by name so it never imports their I/O.
RECORD_ACTIVITY = "record_event"
PLAN_ACTIVITY = "plan_task"
RUN_STEP_ACTIVITY = "run_step"
REDRAFT_ACTIVITY = "redraft_step"
COST_CHECK_ACTIVITY = "check_step_cost"

# Why the workflow refused an update (ApplicationError.type); the gateway maps them.
GATE_NOT_OPEN = "GateNotOpen"
FORBIDDEN = "Forbidden"
INVALID = "Invalid"
TASK_FINISHED = "TaskFinished"


def workflow_id_for(task_id: str) -> str:
    return f"task-{task_id}"


@dataclass
class TaskInput:
    """What TaskWorkflow starts with; the team's policy is captured at submission."""

    task_id: str
    team: str
    submitted_by: str
    autonomy: str
    max_autonomy: str
    gate_deadline_seconds: float
    submitted_via: str | None = None


@dataclass
class StepState:
    """What the workflow remembers of a step (its texts live in the database)."""

    id: str
    index: int
    kind: str
    risk: str
    tool: str | None = None
    status: str = "pending"


@dataclass
class NewStep:
    """One step of a new or edited plan, with its id already assigned."""

    id: str
    title: str
    instructions: str
    kind: str = "llm"
    tool: str | None = None
    risk: str = "low"


@dataclass
class Gate:
    id: str
    kind: str
    step_id: str | None
    opened_at: datetime
    deadline: datetime
    four_eyes: bool
    escalated: bool = False
    risk: str = "low"
    reason: str | None = None  # why a cost gate opened


@dataclass
class Decision:
    """A human's (or the deadline's) answer to the open gate."""

    gate_id: str
    action: str
    actor: str
    role: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    on_reject: str = "revise"
    via_token: str | None = None


@dataclass
class AutonomyChange:
    autonomy: str
    actor: str
    role: str | None
    max_autonomy: str
    via_token: str | None = None


@dataclass
class CancelRequest:
    actor: str
    via_token: str | None = None


@dataclass
class TaskEvent:
    """One atomic change to the read model plus the audit event that records it."""

    task_id: str
    key: str
    actor: str
    action: str
    data: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    autonomy: str | None = None
    open_gate: Gate | None = None
    close_gate: bool = False
    step_id: str | None = None
    step_status: str | None = None
    new_plan: list[NewStep] | None = None
    instructions: str | None = None
    output: str | None = None
    error: str | None = None


@dataclass
class PlanRequest:
    task_id: str
    key: str
    attempt: int
    feedback: str | None = None
    validation_error: str | None = None
    fallback: bool = False  # use the deterministic planner, not the model


@dataclass
class PlanResult:
    valid: bool
    steps: list[StepState] = field(default_factory=list)
    error: str | None = None


@dataclass
class StepRequest:
    task_id: str
    step_id: str
    key: str
    feedback: str | None = None


@dataclass
class CostCheck:
    """A step's projected cost, and the budget it would cross (if any)."""

    projected_usd: float
    crosses: str | None = None


@dataclass
class StepResult:
    ok: bool
    summary: str = ""
