"""What a task and its steps are: their statuses, kinds, limits and the events of their lives."""

from __future__ import annotations

from enum import StrEnum

TITLE_MAX_CHARS = 300
INSTRUCTIONS_MAX_CHARS = 100_000
STEP_TITLE_MAX_CHARS = 200
STEP_INSTRUCTIONS_MAX_CHARS = 20_000


class TaskStatus(StrEnum):
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        """Still going: it can be decided, moved or cancelled."""
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = frozenset({TaskStatus.PLANNING, TaskStatus.AWAITING_APPROVAL, TaskStatus.RUNNING})
ENDED_STATUSES = frozenset(set(TaskStatus) - ACTIVE_STATUSES)  # final: nothing changes it any more


class StepStatus(StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_REVIEW = "awaiting_review"
    RUNNING = "running"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    FAILED = "failed"  # the task failed here; resuming it runs this step again


class StepKind(StrEnum):
    LLM = "llm"  # writing or reasoning by a model
    TOOL = "tool"  # one tool from the catalogue


class EventAction(StrEnum):
    """The audit chain's actions: every change to a task is one of these."""

    TASK_SUBMITTED = "task.submitted"
    TASK_PLANNING = "task.planning"
    TASK_PLANNED = "task.planned"
    PLAN_INVALID = "plan.invalid"
    GATE_OPENED = "gate.opened"
    GATE_ESCALATED = "gate.escalated"
    GATE_DECIDED = "gate.decided"
    GATE_APPROVED = "gate.approved"  # one approval of a quorum gate, before the last it needs
    GATE_CLAIMED = "gate.claimed"  # an approver claimed, took over or was assigned the gate
    GATE_RELEASED = "gate.released"  # its holder let the claim go
    STEP_STARTED = "step.started"
    STEP_FINISHED = "step.finished"
    STEP_REDRAFTED = "step.redrafted"
    STEP_COMPLETED = "step.completed"
    STEP_SKIPPED = "step.skipped"
    AUTONOMY_CHANGED = "autonomy.changed"
    TASK_COMPLETED = "task.completed"
    TASK_REJECTED = "task.rejected"
    TASK_FAILED = "task.failed"
    TASK_CANCELLED = "task.cancelled"
    TASK_RESUMED = "task.resumed"  # an approver resumed a failed task from its failed step
    TOOL_CALLED = "tool.called"  # a tool's execution is about to run: its key, the args' hash
    TOOL_UNKNOWN = "tool.unknown"  # sent, result unknown: the worker died between call and record

    @classmethod
    def ended(cls, status: TaskStatus) -> EventAction:
        """The event that ends a task with a final status."""
        return cls(f"task.{status.value}")
