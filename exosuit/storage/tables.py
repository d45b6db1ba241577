"""Database tables: identity, the tasks read model, model calls and the audit chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from exosuit.domain.autonomy import (
    DEFAULT_GATE_DEADLINE_SECONDS,
    DEFAULT_MAX_ACTIVE_TASKS,
    DEFAULT_MAX_AUTONOMY,
    DEFAULT_MAX_REVISIONS,
    DEFAULT_MODEL_WAIT_SECONDS,
    DEFAULT_SUBMISSIONS_PER_MINUTE,
)
from exosuit.domain.quorum import DEFAULT_QUORUM_HIGH
from exosuit.domain.task import TITLE_MAX_CHARS, StepKind, StepStatus, TaskStatus
from exosuit.domain.time_histogram import BUCKETS
from exosuit.storage.db import UTCDateTime, utcnow

OPEN_GATE = text("gate_id IS NOT NULL")  # the rows the open-gate index holds


def _when(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kwargs)


class Team(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=100)
    max_autonomy: str = Field(default=DEFAULT_MAX_AUTONOMY.value, max_length=20)
    gate_deadline_seconds: float = DEFAULT_GATE_DEADLINE_SECONDS
    monthly_budget_usd: float | None = None
    max_active_tasks: int = DEFAULT_MAX_ACTIVE_TASKS  # tasks of the team not yet ended
    submissions_per_minute: int = DEFAULT_SUBMISSIONS_PER_MINUTE  # per person
    model_wait_seconds: float = DEFAULT_MODEL_WAIT_SECONDS  # a model provider's outage is waited out
    max_revisions: int = DEFAULT_MAX_REVISIONS  # `revise` rejections per gate
    quorum_high: int = DEFAULT_QUORUM_HIGH  # distinct approvals a high-risk gate needs
    created_at: datetime = _when()


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True, max_length=320)
    password_hash: str | None = None
    created_at: datetime = _when()
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Bumped by every change to who the user is to the API (a token revoked, a role or team
    # changed, the user disabled): a process's cached principal is good while this is unchanged.
    auth_version: int = 0


class Membership(SQLModel, table=True):
    user_id: int = Field(foreign_key="user.id", primary_key=True)
    team: str = Field(foreign_key="team.name", primary_key=True, max_length=100)
    role: str = Field(max_length=20)


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = _when()
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Task(SQLModel, table=True):
    """The read model of one task, kept current by the workflow's activities."""

    __table_args__ = (
        UniqueConstraint("submitted_by", "idempotency_key", name="uq_task_idempotency"),
        Index("ix_task_team_created", "team", "created_at"),
        # The dashboard's count of tasks by planner over a window, from the index alone.
        Index("ix_task_team_created_planner", "team", "created_at", "planned_by"),
        # Open gates only (partial): the queue's and /approvals' order for each team, with the
        # filter columns after it so filtering and counting never read the table.
        Index(
            "ix_task_team_open_gates",
            "team",
            "gate_opened_at",
            "id",
            "gate_kind",
            "gate_risk",
            "gate_excluded",
            "gate_id",
            sqlite_where=OPEN_GATE,
            postgresql_where=OPEN_GATE,
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    title: str = Field(max_length=TITLE_MAX_CHARS)
    instructions: str = Field(sa_column=Column(Text, nullable=False))
    team: str = Field(foreign_key="team.name", max_length=100)
    submitted_by: str = Field(max_length=320)
    autonomy: str = Field(max_length=20)
    status: str = Field(default=TaskStatus.PLANNING.value, max_length=20)
    result: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    budget_usd: float | None = None
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_fingerprint: str | None = Field(default=None, max_length=64)
    # The open gate, inline so that the queue is one indexed query.
    gate_id: str | None = Field(default=None, max_length=40)
    gate_kind: str | None = Field(default=None, max_length=10)
    gate_step_id: str | None = Field(default=None, max_length=40)
    gate_opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    gate_deadline: datetime | None = Field(default=None, sa_type=UTCDateTime)
    gate_four_eyes: bool = False
    gate_excluded: str | None = Field(default=None, max_length=320)  # who may not decide it
    gate_risk: str | None = Field(default=None, max_length=10)
    gate_reason: str | None = Field(default=None, sa_column=Column(Text))
    gate_question: str | None = Field(default=None, sa_column=Column(Text))  # a question gate's
    gate_choices: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    gate_escalated: bool = False
    # A quorum gate's approvers so far, and how many approvals decide it.
    gate_approvals: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    gate_approvals_needed: int = 1
    # Who is working on the open gate (a claim) and until when; past that, nobody holds it.
    gate_claimed_by: str | None = Field(default=None, max_length=320)
    gate_claim_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Why the task is not moving (a model provider is down) and since when; the next event clears it.
    waiting_reason: str | None = Field(default=None, sa_column=Column(Text))
    waiting_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    template: str | None = Field(default=None, max_length=100)  # the template it was run from
    planned_by: str | None = Field(default=None, max_length=10)  # "model" or "rules"
    created_at: datetime = _when()
    updated_at: datetime = _when()


class Step(SQLModel, table=True):
    __table_args__ = (Index("ix_step_task_index", "task_id", "index"),)

    id: str = Field(primary_key=True, max_length=40)
    task_id: str = Field(foreign_key="task.id", max_length=40)
    index: int
    title: str = Field(max_length=TITLE_MAX_CHARS)
    instructions: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(default=StepKind.LLM.value, max_length=10)
    tool: str | None = Field(default=None, max_length=100)
    risk: str = Field(default="low", max_length=10)
    status: str = Field(default=StepStatus.PENDING.value, max_length=20)
    output: str | None = Field(default=None, sa_column=Column(Text))
    partial_output: str | None = Field(default=None, sa_column=Column(Text))  # while streaming
    args: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # a tool's
    tool_info: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    provider: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=200)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def plan_entry(self) -> dict[str, Any]:
        """The step as a plan lists it (the plan schema's fields)."""
        entry: dict[str, Any] = {
            "title": self.title,
            "instructions": self.instructions,
            "kind": self.kind,
            "tool": self.tool,
            "risk": self.risk,
        }
        if self.args is not None:
            entry["args"] = self.args
        return entry


class ToolExecution(SQLModel, table=True):
    """The exactly-once ledger of tool calls: a row before the call, its result after.

    A row still `sending` was sent (or about to be) by a worker that never recorded the
    result: its outcome is unknown, and it is not sent again without a person's approval.
    """

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)  # TASK_ID:STEP_ID:SEQ
    task_id: str = Field(foreign_key="task.id", index=True, max_length=40)
    step_id: str = Field(max_length=40)
    tool: str = Field(max_length=200)
    args_sha256: str = Field(max_length=64)
    status: str = Field(default="sending", max_length=20)  # sending | completed | failed
    attempts: int = 1
    result: str | None = Field(default=None, sa_column=Column(Text))
    started_at: datetime = _when()
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ModelCall(SQLModel, table=True):
    """One call to a model, with the usage its provider reported."""

    __table_args__ = (Index("ix_modelcall_at", "at"),)  # usage reports by month

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    task_id: str = Field(foreign_key="task.id", index=True, max_length=40)
    step_id: str | None = Field(default=None, max_length=40)
    purpose: str = Field(max_length=20)
    provider: str = Field(default="default", max_length=100)
    model: str = Field(max_length=200)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    at: datetime = _when()


class AuditEvent(SQLModel, table=True):
    """One link of a task's hash chain. Rows are only ever inserted."""

    __table_args__ = (
        UniqueConstraint("task_id", "seq", name="uq_audit_seq"),
        UniqueConstraint("task_id", "idem_key", name="uq_audit_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(foreign_key="task.id", max_length=40)
    seq: int
    at: str = Field(max_length=40)
    actor: str = Field(max_length=400)
    action: str = Field(max_length=60)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    idem_key: str = Field(max_length=200)


class AuditAnchor(SQLModel, table=True):
    """A finished task's head, signed with a key derived from the root secret."""

    task_id: str = Field(foreign_key="task.id", primary_key=True, max_length=40)
    seq: int
    hash: str = Field(max_length=64)
    signature: str = Field(max_length=64)
    at: datetime = _when()


class AuditCheckpoint(SQLModel, table=True):
    """Every task's head at one moment ({task_id: [seq, hash]}), signed as one document."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when()
    heads: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    signature: str = Field(max_length=64)


class DecisionAnswer(SQLModel, table=True):
    """The first answer to a decision sent with an Idempotency-Key (status None: in progress)."""

    __table_args__ = (UniqueConstraint("submitted_by", "task_id", "key", name="uq_decision_answer"),)

    id: int | None = Field(default=None, primary_key=True)
    submitted_by: str = Field(max_length=320)
    task_id: str = Field(max_length=40)
    key: str = Field(max_length=200)
    fingerprint: str = Field(max_length=64)
    status: int | None = None
    body: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _when()


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie carries a random id; only its hash is stored."""

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _when()
    expires_at: datetime = Field(sa_type=UTCDateTime)


# --- automations: webhooks, notifications, templates, schedules (issue 11) -----------------


class WebhookSubscription(SQLModel, table=True):
    """A team's webhook; its signing secret sealed with a key from the root secret."""

    id: str = Field(primary_key=True, max_length=40)
    team: str = Field(foreign_key="team.name", index=True, max_length=100)
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret_sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str = Field(max_length=320)
    created_at: datetime = _when()
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """The outbox: one message to one subscription, written in the task event's transaction.

    `id` is the `webhook-id` every attempt carries; `seq` (the audit seq) orders a task's messages.
    """

    __table_args__ = (
        UniqueConstraint("subscription_id", "task_id", "seq", name="uq_webhook_delivery"),
        Index("ix_webhook_delivery_queue", "subscription_id", "task_id", "status", "seq"),
        Index("ix_webhook_delivery_task_seq", "task_id", "seq"),
    )

    id: str = Field(primary_key=True, max_length=40)
    subscription_id: str = Field(foreign_key="webhooksubscription.id", max_length=40)
    task_id: str = Field(foreign_key="task.id", max_length=40)
    seq: int
    event: str = Field(max_length=40)
    body: str = Field(sa_column=Column(Text, nullable=False))  # exactly the bytes signed
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resent_by: str | None = Field(default=None, max_length=320)
    created_at: datetime = _when()


class NotifyTarget(SQLModel, table=True):
    """An Apprise URL a team's approvers are told through (`{email}` in it: one per approver)."""

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(foreign_key="team.name", index=True, max_length=100)
    url: str = Field(max_length=2000)


class Notification(SQLModel, table=True):
    """One thing to tell one approver (or admin), written in the transaction of what it tells
    of (a task event, an autonomy suggestion); sent in digests."""

    __table_args__ = (
        UniqueConstraint("task_id", "seq", "recipient", name="uq_notification"),
        Index("ix_notification_pending", "team", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=100)
    task_id: str | None = Field(default=None, foreign_key="task.id", max_length=40)  # None: no task's
    seq: int  # the task event's (0 for a notice about no task, such as an autonomy suggestion)
    kind: str = Field(max_length=40)
    recipient: str = Field(max_length=320)
    text: str = Field(sa_column=Column(Text, nullable=False))
    link: str = Field(max_length=400)
    created_at: datetime = _when()
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TaskTemplate(SQLModel, table=True):
    """A named task definition whose title and instructions hold `{{param}}` placeholders.
    Its name is unique within its team (another team's names are neither seen nor taken)."""

    name: str = Field(primary_key=True, max_length=100)
    team: str = Field(foreign_key="team.name", primary_key=True, index=True, max_length=100)
    title: str = Field(max_length=TITLE_MAX_CHARS)
    instructions: str = Field(sa_column=Column(Text, nullable=False))
    autonomy: str = Field(max_length=20)
    params: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=320)
    created_at: datetime = _when()


class TaskSchedule(SQLModel, table=True):
    """A template's recurring runs; the Temporal Schedule `schedule-<id>` fires them."""

    __table_args__ = (ForeignKeyConstraint(["template", "team"], ["tasktemplate.name", "tasktemplate.team"]),)

    id: str = Field(primary_key=True, max_length=40)
    template: str = Field(max_length=100)
    team: str = Field(foreign_key="team.name", index=True, max_length=100)
    params: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    cron: str = Field(max_length=200)
    created_by: str = Field(max_length=320)  # each run is submitted as this person
    created_at: datetime = _when()


# --- what decisions teach (issue 21): facts for the dashboard, suggestions, admin audit ------


class DecisionFact(SQLModel, table=True):
    """One gate: opened, then decided (or closed undecided), written with its audit event.

    The dashboard and the earned-autonomy rule read these slim rows instead of the chain;
    days are UTC dates as text, so grouping by day is the same SQL on every database."""

    __table_args__ = (
        # Every column the dashboard groups or ranks by, so its queries read the index alone.
        Index(
            "ix_decisionfact_team_decided",
            "team",
            "decided_at",
            "action",
            "on_reject",
            "kind",
            "seconds",
            "decided_day",
            "step_kind",
            "tool",
            "template",
        ),
        Index("ix_decisionfact_team_template_decided", "team", "template", "decided_at"),
    )

    gate_id: str = Field(primary_key=True, max_length=40)
    task_id: str = Field(index=True, max_length=40)  # no foreign key: a summary never holds a task back
    team: str = Field(max_length=100)
    template: str | None = Field(default=None, max_length=100)
    kind: str = Field(max_length=10)
    step_id: str | None = Field(default=None, max_length=40)
    step_kind: str | None = Field(default=None, max_length=10)
    tool: str | None = Field(default=None, max_length=100)
    risk: str | None = Field(default=None, max_length=10)
    autonomy: str = Field(max_length=20)  # the task's level when the gate opened
    opened_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_day: str | None = Field(default=None, max_length=10)
    action: str | None = Field(default=None, max_length=10)  # approve, edit, reject, answer, closed
    on_reject: str | None = Field(default=None, max_length=10)
    decided_by: str | None = Field(default=None, max_length=400)
    seconds: float | None = None  # from opened to decided
    edit_chars: int | None = None  # the size of an edit's diff
    proposed: str | None = Field(default=None, sa_column=Column(Text))  # what the gate showed
    final: str | None = Field(default=None, sa_column=Column(Text))  # what went on (edited or not)


class DecisionDay(SQLModel, table=True):
    """Verdict counts of a team's decisions on one UTC day, by one dimension's value (the
    team itself, a gate kind, a step kind, a tool, a template): the dashboard's counts over
    whole days, added to in the transaction of each gate.decided event."""

    team: str = Field(primary_key=True, max_length=100)
    day: str = Field(primary_key=True, max_length=10)
    dimension: str = Field(primary_key=True, max_length=10)  # team, kind, step_kind, tool, template
    value: str = Field(primary_key=True, max_length=100)
    approve: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    edit: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    revise: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    reject: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    answer: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class DecisionMonth(SQLModel, table=True):
    """The same counts by UTC month (`month` is "2026-09"), added to in the same transaction:
    a window of several months reads a row per whole month instead of one per day."""

    team: str = Field(primary_key=True, max_length=100)
    month: str = Field(primary_key=True, max_length=7)
    dimension: str = Field(primary_key=True, max_length=10)
    value: str = Field(primary_key=True, max_length=100)
    approve: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    edit: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    revise: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    reject: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    answer: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


def _time_histograms(name: str, period: str, width: int) -> Table:
    """A team's times to decision per `period` (a UTC day or month), by gate kind, as a fixed
    log-scale histogram (exosuit/domain/time_histogram.py): one counter column per bucket, so
    adding a time is one atomic upsert and a month of a team is a few rows to sum."""
    return Table(
        name,
        SQLModel.metadata,
        Column("team", String(100), primary_key=True),
        Column(period, String(width), primary_key=True),
        Column("kind", String(10), primary_key=True),
        *(
            Column(f"b{i:02d}", Integer, nullable=False, default=0, server_default="0")
            for i in range(BUCKETS)
        ),
    )


DECISION_TIME = _time_histograms("decisiontime", "day", 10)
DECISION_TIME_MONTH = _time_histograms("decisiontimemonth", "month", 7)


class IncidentFact(SQLModel, table=True):
    """Something that went wrong in a task without a gate to say so: a tool call that failed,
    or one sent with its result unknown. Earned autonomy weighs it beside the decisions."""

    __table_args__ = (Index("ix_incidentfact_team_template_at", "team", "template", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(index=True, max_length=40)  # no foreign key, like the decision facts
    team: str = Field(max_length=100)
    template: str | None = Field(default=None, max_length=100)
    step_id: str | None = Field(default=None, max_length=40)
    kind: str = Field(max_length=20)  # tool_failed, tool_unknown
    at: datetime = Field(sa_type=UTCDateTime)


class UsageDay(SQLModel, table=True):
    """A team's model usage on one UTC day, added to with every recorded call."""

    team: str = Field(primary_key=True, max_length=100)
    day: str = Field(primary_key=True, max_length=10)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class PlanDay(SQLModel, table=True):
    """Tasks planned, by team, the UTC day the task was created and who planned it (`model` or
    `rules`): the dashboard's planner share over whole days, kept by the task.planned event."""

    team: str = Field(primary_key=True, max_length=100)
    day: str = Field(primary_key=True, max_length=10)
    planner: str = Field(primary_key=True, max_length=10)
    tasks: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class AutonomySuggestion(SQLModel, table=True):
    """A proposal to move a template's default level, with its evidence; people decide it."""

    __table_args__ = (Index("ix_autonomysuggestion_team_status", "team", "status"),)

    id: str = Field(primary_key=True, max_length=40)
    team: str = Field(foreign_key="team.name", max_length=100)
    template: str = Field(max_length=100)
    from_level: str = Field(max_length=20)
    to_level: str = Field(max_length=20)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="open", max_length=20)  # open, accepted, dismissed
    created_at: datetime = _when()
    decided_by: str | None = Field(default=None, max_length=320)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AdminEvent(SQLModel, table=True):
    """What people did outside any task (accepted a suggestion, exported decisions): one hash
    chain of its own, inserted only, hashed like a task's events."""

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    at: str = Field(max_length=40)
    actor: str = Field(max_length=400)
    action: str = Field(max_length=60)
    team: str | None = Field(default=None, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


def table_of(model: type[SQLModel]) -> Table:
    """A model's Core table: statements on it bind through its columns' types (UTC, JSON)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


class DecisionLink(SQLModel, table=True):
    """A link a notification carried: one person may decide one gate with it, once, until it
    expires (with the gate, or after a day). Only the token's hash is stored."""

    __tablename__ = "decision_link"

    token_hash: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(foreign_key="task.id", index=True, max_length=40)
    gate_id: str = Field(max_length=40)
    email: str = Field(max_length=320)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _when()
