"""The API's JSON shapes (CONTRACT.md): requests in, public views out."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from exosuit.autonomy import AutonomyLevel
from exosuit.models import AuditEvent, Step, Task
from exosuit.store import TaskView


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    instructions: str = Field(min_length=1, max_length=100_000)
    team: str = Field(min_length=1, max_length=100)
    autonomy: AutonomyLevel = AutonomyLevel.SUPERVISED
    budget_usd: float | None = Field(default=None, gt=0)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gate_id: str = Field(min_length=1, max_length=40)
    action: Literal["approve", "edit", "reject"]
    changes: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = Field(default=None, max_length=10_000)
    on_reject: Literal["revise", "skip", "stop"] = "revise"


class AutonomyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    autonomy: AutonomyLevel


class StepOut(BaseModel):
    id: str
    index: int
    title: str
    instructions: str
    kind: str
    tool: str | None
    risk: str
    status: str
    output: str | None
    partial_output: str | None
    provider: str | None
    model: str | None
    usage: dict[str, Any]


class GateOut(BaseModel):
    id: str
    kind: str
    step_id: str | None
    opened_at: datetime
    deadline: datetime | None
    four_eyes: bool
    escalated: bool
    reason: str | None


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class TaskOut(BaseModel):
    id: str
    title: str
    instructions: str
    team: str
    submitted_by: str
    autonomy: str
    status: str
    steps: list[StepOut]
    open_gate: GateOut | None
    result: str | None
    error: str | None
    usage: UsageOut
    budget_usd: float | None
    created_at: datetime
    updated_at: datetime


class ApprovalOut(BaseModel):
    task: TaskOut
    gate: GateOut
    step: StepOut | None


class AuditEventOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    events: int
    first_bad_seq: int | None


def step_out(step: Step) -> StepOut:
    return StepOut(
        id=step.id,
        index=step.index,
        title=step.title,
        instructions=step.instructions,
        kind=step.kind,
        tool=step.tool,
        risk=step.risk,
        status=step.status,
        output=step.output,
        partial_output=step.partial_output,
        provider=step.provider,
        model=step.model,
        usage={
            "prompt_tokens": step.prompt_tokens,
            "completion_tokens": step.completion_tokens,
            "cost_usd": step.cost_usd,
        },
    )


def gate_out(task: Task) -> GateOut | None:
    if task.gate_id is None or task.gate_kind is None or task.gate_opened_at is None:
        return None
    return GateOut(
        id=task.gate_id,
        kind=task.gate_kind,
        step_id=task.gate_step_id,
        opened_at=task.gate_opened_at,
        deadline=task.gate_deadline,
        four_eyes=task.gate_four_eyes,
        escalated=task.gate_escalated,
        reason=task.gate_reason,
    )


def task_out(view: TaskView) -> TaskOut:
    task = view.task
    return TaskOut(
        id=task.id,
        title=task.title,
        instructions=task.instructions,
        team=task.team,
        submitted_by=task.submitted_by,
        autonomy=task.autonomy,
        status=task.status,
        steps=[step_out(s) for s in view.steps],
        open_gate=gate_out(task),
        result=task.result,
        error=task.error,
        usage=UsageOut(
            prompt_tokens=task.prompt_tokens,
            completion_tokens=task.completion_tokens,
            cost_usd=task.cost_usd,
        ),
        budget_usd=task.budget_usd,
        created_at=task.created_at,
        updated_at=task.updated_at,
    )


def audit_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        data=event.data,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )
