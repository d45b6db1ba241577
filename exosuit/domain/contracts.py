"""The typed payloads that cross the Temporal boundary, between web, workflow and activities.

Payloads stay small: ids, statuses, texts a person typed, and a model's answer on its way
to the database (a model step's run records it when it can, else returns it to the workflow,
so a database outage never throws a paid answer away; answers are capped in tokens). Every
field that has a fixed set of values is a `StrEnum`, serialised as its string, so recorded
histories keep their shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from exosuit.domain.audit import Anchor
from exosuit.domain.autonomy import (
    DEFAULT_MAX_REVISIONS,
    DEFAULT_MODEL_WAIT_SECONDS,
    AutonomyLevel,
    DecisionAction,
    GateKind,
    OnReject,
    Risk,
    Role,
)
from exosuit.domain.task import EventAction, StepKind, StepStatus, TaskStatus
from exosuit.domain.task_state import TaskState
from exosuit.domain.usage import CallRecord

# Activity names: the workflow calls activities by name so it never imports their I/O.
RECORD_EVENTS_ACTIVITY = "record_events"  # the events one workflow task produces, together
COST_CHECK_ACTIVITY = "check_step_cost"
# The model's (or a tool's) work, returned to the workflow, which records it: no store writes.
DRAFT_PLAN_ACTIVITY = "draft_plan"
ANSWER_STEP_ACTIVITY = "answer_step"
DRAFT_INSTRUCTIONS_ACTIVITY = "draft_instructions"
# A tool step's one execution, exactly once per key (its ledger is in the database).
CALL_TOOL_ACTIVITY = "call_tool"
# The types of a tool call's failures that retrying cannot mend.
TOOL_REFUSED = "ToolRefused"  # the policy or the schema refuses the arguments
ARGS_CHANGED = "ArgsChanged"  # the arguments are not the ones approved

# The type of the error that stops a task whose gate was sent back too many times.
REVISION_LIMIT = "RevisionLimit"

# The type of the error a record raises when the chain no longer ends where the workflow
# last recorded (someone wrote around Exosuit): retrying cannot help, the task stops.
CHAIN_CHANGED = "AuditChainChanged"


def workflow_id_for(task_id: str) -> str:
    return f"task-{task_id}"


@dataclass
class TaskInput:
    """What TaskWorkflow starts with; the team's policy is captured at submission."""

    task_id: str
    team: str
    submitted_by: str
    autonomy: AutonomyLevel
    max_autonomy: AutonomyLevel
    gate_deadline_seconds: float
    submitted_via: str | None = None
    model_wait_seconds: float = DEFAULT_MODEL_WAIT_SECONDS  # a provider outage is waited out
    max_revisions: int = DEFAULT_MAX_REVISIONS  # `revise` rejections per gate
    state: TaskState | None = None  # a later run: where the earlier one stopped
    resumed_by: str | None = None  # a person resumed the task after it failed
    resumed_via: str | None = None  # ... through this API token
    solo: bool = False  # the submitter was the team's only approver: no four-eyes (is_solo)
    quorum_high: int = 1  # approvals a high-risk gate needs (exosuit.domain.quorum)


@dataclass
class TaskOutcome:
    """What a finished TaskWorkflow returns: how it ended, and its audit chain's head."""

    status: TaskStatus
    audit_head: Anchor | None = None
    resume: TaskInput | None = None  # a failed task: how to start it again from its failed step


@dataclass
class NewStep:
    """One step of a new or edited plan, with its id already assigned."""

    id: str
    title: str
    instructions: str
    kind: StepKind = StepKind.LLM
    tool: str | None = None
    risk: Risk = Risk.LOW
    args: dict[str, Any] | None = None  # a tool step's arguments
    tool_info: dict[str, Any] | None = None  # its tool's description and input schema, for the gate


@dataclass
class Question:
    """What a step asks a person: the model's `ask_human` call, or a planned question step."""

    text: str
    choices: list[str] | None = None  # the answer must be one of these, when given
    why: str | None = None  # the model's reason for asking
    call_id: str | None = None  # the model's tool call that the answer replies to


@dataclass
class Gate:
    id: str
    kind: GateKind
    step_id: str | None
    opened_at: datetime
    deadline: datetime
    four_eyes: bool
    escalated: bool = False
    risk: Risk = Risk.LOW
    reason: str | None = None  # why a cost gate opened
    approvals: list[str] = field(default_factory=list)  # a quorum gate's approvers so far
    approvals_needed: int = 1  # approvals that decide it (exosuit.domain.quorum)
    question: str | None = None  # a question gate's question
    choices: list[str] | None = None  # ... and the answers it offers


@dataclass
class Decision:
    """A human's (or the deadline's) answer to the open gate."""

    gate_id: str
    action: DecisionAction
    actor: str
    role: Role | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    on_reject: OnReject = OnReject.REVISE
    via_token: str | None = None
    message_id: str = ""  # unique, made by the sender: the workflow applies it once (TaskState.applied)
    answer: str | None = None  # a question gate's answer (action `answer`)


@dataclass
class AutonomyChange:
    """A slider move; the workflow checks it against the team's cap as the sender read it."""

    autonomy: AutonomyLevel
    actor: str
    role: Role | None
    via_token: str | None = None
    message_id: str = ""  # unique, made by the sender: the workflow applies it once
    cap: AutonomyLevel | None = None  # the team's cap now (None: the latest the workflow knows)


@dataclass
class CapChange:
    """A team's cap lowered while the task runs: the task's level follows it down."""

    cap: AutonomyLevel
    reason: str
    message_id: str = ""  # unique, made by the sender: the workflow applies it once


@dataclass
class CancelRequest:
    actor: str
    via_token: str | None = None
    message_id: str = ""  # unique, made by the sender: the workflow applies it once


@dataclass
class TaskEvent:
    """One atomic change to the read model plus the audit event that records it."""

    task_id: str
    key: str
    actor: str
    action: EventAction
    data: dict[str, Any] = field(default_factory=dict)
    status: TaskStatus | None = None
    autonomy: AutonomyLevel | None = None
    open_gate: Gate | None = None
    close_gate: bool = False
    step_id: str | None = None
    step_status: StepStatus | None = None
    new_plan: list[NewStep] | None = None
    instructions: str | None = None
    args: dict[str, Any] | None = None  # a tool step's new arguments (an edit, a redraft)
    output: str | None = None
    error: str | None = None
    after: Anchor | None = None  # the head the workflow last recorded: the chain must still end there
    call: CallRecord | None = None  # the model call whose answer this event records


@dataclass
class Recorded:
    """The chain's head after a record, and whether a budget applies to the task's next steps."""

    seq: int
    hash: str
    budgeted: bool = True


@dataclass
class PlanRequest:
    task_id: str
    key: str
    attempt: int
    feedback: str | None = None
    validation_error: str | None = None
    fallback: bool = False  # the model gave no valid plan: the rules planner plans
    # The first attempt records the planning's start itself (`task.planning`, after a decision
    # that sent the plan back), before it asks the model; what it could not, the workflow does.
    first: list[TaskEvent] = field(default_factory=list)


@dataclass
class PlanDraft:
    """A plan from the model or the rules planner, not yet recorded (steps None: invalid)."""

    actor: str
    data: dict[str, Any]
    steps: list[NewStep] | None = None
    error: str | None = None
    call: CallRecord | None = None
    started: Recorded | None = None  # the head after PlanRequest.first (None: not written)


@dataclass
class Answer:
    """A step's output or redrafted instructions, not yet recorded."""

    text: str
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    call: CallRecord | None = None
    args: dict[str, Any] | None = None  # a tool step's redrafted arguments
    unknown: bool = False  # a tool call: sent earlier, its result never recorded
    question: Question | None = None  # the step asks a person first: no output yet
    # A model step that recorded its own run (StepRequest.first/then): the head after its
    # start, and after its answer and what follows (None: the workflow records the answer).
    started: Recorded | None = None
    recorded: Recorded | None = None
    # The next step's cost check (StepRequest.check_next), when the run made it and wrote what
    # it implies (that step's gate, if within budget); None: the workflow checks it itself.
    next_cost: CostCheck | None = None


def answered(finished: TaskEvent, answer: Answer) -> TaskEvent:
    """A step's `step.finished`, made before its answer came, with the answer filled in."""
    return replace(finished, actor=answer.actor, data=answer.data, output=answer.text, call=answer.call)


@dataclass
class ToolCall:
    """One execution of a tool step: its key, and the hash of the arguments approved."""

    task_id: str
    step_id: str
    key: str  # TASK_ID:STEP_ID:SEQ
    args_sha256: str | None
    resend: bool = False  # a person approved sending again after "sent, result unknown"


@dataclass
class StepRequest:
    """A model step's run. With `first`, the activity records its own start and answer: `first`
    (the decision that let it run and `step.started`) before it calls the model, then `then`
    (`step.finished`, whose answer it fills in, and what follows it) in one transaction each."""

    task_id: str
    step_id: str
    key: str
    feedback: str | None = None
    first: list[TaskEvent] = field(default_factory=list)
    then: list[TaskEvent] = field(default_factory=list)
    # With `then`, for a budgeted task whose next step is a model step: that step, whose cost
    # the run checks once this answer (and its cost) is written, and that step's gate, which
    # the run writes next if the step is within budget (so the flow needs no check of its own).
    check_next: str | None = None
    next_gate: TaskEvent | None = None


@dataclass
class CostCheck:
    """The budget a step's projected cost would cross, in words (None: within budget)."""

    crosses: str | None = None
