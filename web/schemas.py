"""The API's JSON shapes (docs/api.md): requests in, public views out."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from exosuit.domain import claims
from exosuit.domain.audit import canonical_json
from exosuit.domain.autonomy import AutonomyLevel, DecisionAction, GateKind, OnReject, Risk
from exosuit.domain.task import INSTRUCTIONS_MAX_CHARS, TITLE_MAX_CHARS, StepKind, StepStatus, TaskStatus
from exosuit.domain.text import fingerprint
from exosuit.storage.db import utcnow
from exosuit.storage.tables import AuditEvent, Step, Task
from exosuit.storage.tasks import TaskView

MAX_DEPTH = 12  # of a decision's `changes`: a plan is 4 deep
MAX_NODES = 20_000  # values in a decision's `changes`
MAX_BUDGET_USD = 1_000_000.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _no_control(text: str) -> str:
    if _CONTROL.search(text):
        raise ValueError("must not contain control characters")
    return text


def _lines_only(text: str) -> str:
    if _CONTROL_BUT_LINES.search(text):
        raise ValueError("must not contain control characters other than tabs and line breaks")
    return text


def _bounded(value: Any) -> Any:
    """Refuse JSON nested deeper than MAX_DEPTH or holding more than MAX_NODES values."""
    stack, seen = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if depth > MAX_DEPTH or seen > MAX_NODES:
            raise ValueError(f"must nest at most {MAX_DEPTH} deep and hold at most {MAX_NODES} values")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return value


class TaskCreate(BaseModel):
    """A submission: the API's body, and what the submit page's form is read into."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Annotated[str, Field(min_length=1, max_length=TITLE_MAX_CHARS), AfterValidator(_no_control)]
    instructions: Annotated[
        str, Field(min_length=1, max_length=INSTRUCTIONS_MAX_CHARS), AfterValidator(_lines_only)
    ]
    team: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_control)]
    autonomy: AutonomyLevel = AutonomyLevel.SUPERVISED
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_BUDGET_USD, allow_inf_nan=False)


class DecisionIn(BaseModel):
    """A decision: the API's body, and what a decision form on a page is read into."""

    model_config = ConfigDict(extra="forbid")

    gate_id: str = Field(min_length=1, max_length=40)
    action: DecisionAction
    changes: Annotated[dict[str, Any], BeforeValidator(_bounded)] = Field(default_factory=dict)
    reason: Annotated[str, Field(max_length=10_000), AfterValidator(_lines_only)] | None = None
    on_reject: OnReject = OnReject.REVISE
    answer: Annotated[str, Field(max_length=10_000), AfterValidator(_lines_only)] | None = None


_LABELS = {"budget_usd": "Budget", "on_reject": "On reject", "gate_id": "Gate"}  # as the pages say


def readable(error: ValidationError) -> str:
    """A validation error as a sentence for a page: 'Title: String should have at most …'."""
    parts = []
    for problem in error.errors():
        names = [str(p) for p in problem["loc"]]
        field = " ".join(_LABELS.get(n, n) for n in names).capitalize()
        parts.append(f"{field}: {problem['msg']}" if field else problem["msg"])
    return "; ".join(parts) + "."


class AutonomyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    autonomy: AutonomyLevel


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class StepBase(BaseModel):
    """What a step is wherever it is shown: the API, and the webhook messages."""

    id: str
    index: int
    title: str
    instructions: str
    kind: StepKind
    tool: str | None
    risk: Risk
    status: StepStatus
    output: str | None


class StepOut(StepBase):
    partial_output: str | None
    provider: str | None
    model: str | None
    usage: UsageOut
    args: dict[str, Any] | None = None  # a tool step's arguments: exactly what will run


class GateOut(BaseModel):
    id: str
    kind: GateKind
    step_id: str | None
    opened_at: datetime
    deadline: datetime | None
    four_eyes: bool
    escalated: bool
    reason: str | None
    question: str | None = None  # a question gate's question (kind `question`)
    choices: list[str] | None = None  # ... and the answers to pick from (none: free text)
    claimed_by: str | None  # who is working on it (a claim), while the claim lasts
    claim_expires_at: datetime | None
    approvals: list[str]  # who has approved it so far (a high-risk gate under a quorum)
    approvals_needed: int  # how many distinct approvals decide it (1 unless a quorum applies)
    etag: str  # what the gate shows (its text, args and plan): a bulk approval names the one it saw


class TaskOut(BaseModel):
    id: str
    title: str
    instructions: str
    team: str
    submitted_by: str
    autonomy: AutonomyLevel
    status: TaskStatus
    steps: list[StepOut]
    open_gate: GateOut | None
    result: str | None
    error: str | None
    usage: UsageOut
    budget_usd: float | None
    waiting_reason: str | None  # an outage being waited out, e.g. "a model provider (...)"
    waiting_since: datetime | None
    created_at: datetime
    updated_at: datetime


class ApprovalOut(BaseModel):
    task: TaskOut
    gate: GateOut
    step: StepOut | None


class TaskList(BaseModel):
    """A page of tasks, newest first; `next_cursor` fetches the next page (null: the last)."""

    items: list[TaskOut]
    next_cursor: str | None = None


class ApprovalList(BaseModel):
    """A page of open gates the caller may decide, oldest first; `next_cursor` as for tasks."""

    items: list[ApprovalOut]
    next_cursor: str | None = None


class ClaimIn(BaseModel):
    """Claim a gate: for the caller, or assigned to another approver of the task's team."""

    model_config = ConfigDict(extra="forbid")

    assignee: str | None = Field(default=None, max_length=320)
    take_over: bool = False  # take the gate from whoever holds it now (audited)


class BulkItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(max_length=40)
    gate_id: str = Field(max_length=40)
    etag: str = Field(max_length=64)  # the gate's etag as the approver was shown it


class BulkIn(BaseModel):
    """Approve several gates at once, each only as it was shown (its etag)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve"]
    items: list[BulkItemIn] = Field(min_length=1, max_length=100)


class BulkItemOut(BaseModel):
    task_id: str
    gate_id: str
    status: int  # 200 approved; 403 not allowed; 409 not open or claimed; 412 changed; 422 refused
    detail: str | None = None


class BulkOut(BaseModel):
    items: list[BulkItemOut]


class ProblemOut(BaseModel):
    """An RFC 9457 problem document (`application/problem+json`); `type` names the kind."""

    type: str = Field(description="a URI per kind of problem, e.g. /problems/four-eyes")
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = Field(default=None, description="validation: where and why")


class AuditEventOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


class AuditEventList(BaseModel):
    items: list[AuditEventOut]


class VerifyOut(BaseModel):
    ok: bool
    events: int
    first_bad_seq: int | None
    head: str | None  # the last event's hash
    anchored: bool  # held against the workflow's recorded head or a signed anchor
    reason: str | None = None


def _copied(
    source: object, model: type[BaseModel], prefix: str = "", skip: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The public model's fields read off a table row (optionally `prefix`ed there)."""
    return {name: getattr(source, prefix + name) for name in model.model_fields if name not in skip}


def usage_out(row: Step | Task) -> UsageOut:
    return UsageOut(**_copied(row, UsageOut))


def step_out(step: Step) -> StepOut:
    return StepOut(**_copied(step, StepOut, skip=frozenset({"usage"})), usage=usage_out(step))


def gate_etag(view: TaskView) -> str:
    """A digest of what the open gate shows: the gate, the plan with every step's text and args,
    and the gated step's output; any edit, redraft or new gate changes it."""
    task = view.task
    gate_step = next((s for s in view.steps if s.id == task.gate_step_id), None)
    shown = {
        "gate": [task.gate_id, task.gate_kind, task.gate_reason, task.gate_question, task.gate_choices],
        "plan": [s.plan_entry() for s in view.steps],
        "output": gate_step.output if gate_step is not None else None,
    }
    return fingerprint(canonical_json(shown))[:32]


def gate_out(view: TaskView) -> GateOut | None:
    task = view.task
    if task.gate_id is None:
        return None
    gate = GateOut(
        **_copied(task, GateOut, prefix="gate_", skip=frozenset({"etag", "approvals"})),
        approvals=task.gate_approvals or [],
        etag=gate_etag(view),
    )
    if claims.holder(gate.claimed_by, gate.claim_expires_at, utcnow()) is None:
        gate.claimed_by = gate.claim_expires_at = None  # a lapsed claim holds nothing
    return gate


def task_out(view: TaskView) -> TaskOut:
    task = view.task
    return TaskOut(
        **_copied(task, TaskOut, skip=frozenset({"steps", "open_gate", "usage"})),
        steps=[step_out(s) for s in view.steps],
        open_gate=gate_out(view),
        usage=usage_out(task),
    )


def audit_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(**_copied(event, AuditEventOut))
