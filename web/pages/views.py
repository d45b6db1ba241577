"""View models: what the templates show, computed from the read model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exosuit.domain import claims
from exosuit.domain.autonomy import (
    LEVEL_SUMMARY,
    AutonomyLevel,
    GateKind,
    can_approve,
    may_answer,
    may_decide,
    may_resume,
)
from exosuit.domain.contracts import workflow_id_for
from exosuit.domain.quorum import progress
from exosuit.domain.task import EventAction, StepStatus, TaskStatus
from exosuit.domain.text import text_diff
from exosuit.settings import Settings
from exosuit.storage.db import utcnow
from exosuit.storage.identity import Principal
from exosuit.storage.tables import AuditEvent, Step
from exosuit.storage.tasks import TaskView
from web.actions import verify_audit
from web.deps import Services
from web.pages.common import Visitor, when
from web.schemas import gate_etag
from web.tool_edits import ToolView, tool_view

LEVELS = [(level.value, LEVEL_SUMMARY[level]) for level in AutonomyLevel]


@dataclass
class GateView:
    id: str
    kind: str
    step: Step | None
    asks: str
    four_eyes: bool
    escalated: bool
    refusal: str | None  # why this visitor may not decide it, if they may not
    tool: ToolView | None = None  # a tool step's gate: exactly what will run, and its form
    held_by: str | None = None  # who has claimed it (while the claim lasts)
    claim_expires_at: datetime | None = None
    can_claim: bool = False  # the visitor is an approver of the task's team
    etag: str = ""  # what it shows, as the API's gate etag: the queue's bulk approval names it
    renew_seconds: float = 300.0  # how often an open page renews its visitor's claim (a third of the lease)
    approvals: list[str] = field(default_factory=list)  # a quorum gate's approvers so far
    approvals_needed: int = 1
    quorum: str | None = None  # e.g. "1 of 2 approvals; waiting for one more" (None: one decides)
    voted: bool = False  # the visitor has approved it already (a quorum gate)
    question: str | None = None  # a question gate's question, its choices and why it was asked
    choices: list[str] | None = None
    why: str | None = None
    can_reject: bool = True  # a question: only an approver may reject it (members answer)

    @property
    def can_decide(self) -> bool:
        return self.refusal is None

    @property
    def can_edit(self) -> bool:
        """An edit is allowed only as the approval that decides the gate (a quorum's last)."""
        return len(self.approvals) + 1 >= self.approvals_needed


@dataclass
class TimelineEntry:
    event: AuditEvent
    diff: list[tuple[str, str]] = field(default_factory=list)  # (css class, line)
    summary: str = ""


def step_label(step: Step) -> str:
    return f"step {step.index + 1} ({step.title})"


def gate_view(view: TaskView, principal: Principal, settings: Settings | None = None) -> GateView | None:
    task = view.task
    if task.gate_id is None or task.gate_kind is None:
        return None
    step = next((s for s in view.steps if s.id == task.gate_step_id), None)
    tool = tool_view(settings, view, step) if settings and step is not None else None
    asks = _asks(view, step, tool)
    role = principal.role_in(task.team)
    question = task.gate_kind == GateKind.QUESTION
    if question:  # any member of the team answers; four-eyes does not apply
        refusal = may_answer(role)
    else:
        refusal = may_decide(actor=principal.email, role=role, excluded=task.gate_excluded)
    held_by = claims.holder(task.gate_claimed_by, task.gate_claim_expires_at, utcnow())
    approvals = task.gate_approvals or []
    claimed = claims.decide_refusal(current=held_by, actor=principal.email)
    if refusal is None and claimed is not None:
        refusal = claimed.message.rstrip(".")
    return GateView(
        task.gate_id,
        task.gate_kind,
        step,
        asks,
        task.gate_four_eyes,
        task.gate_escalated,
        refusal,
        tool,
        held_by=held_by,
        claim_expires_at=task.gate_claim_expires_at if held_by else None,
        can_claim=can_approve(role),
        etag=gate_etag(view),
        renew_seconds=settings.claim_lease_minutes * 20 if settings else 300.0,
        approvals=approvals,
        approvals_needed=task.gate_approvals_needed,
        quorum=progress(len(approvals), task.gate_approvals_needed),
        voted=principal.email in approvals,
        question=task.gate_question,
        choices=task.gate_choices,
        why=task.gate_reason if question else None,
        can_reject=can_approve(role) or not question,
    )


def _asks(view: TaskView, step: Step | None, tool: ToolView | None) -> str:
    """What the open gate asks of a person, in a sentence."""
    task = view.task
    if task.gate_kind == GateKind.QUESTION:
        who = f"Step {step.index + 1} ({step.title})" if step is not None else "The task"
        return f"{who} asks a question; the step goes on with your answer."
    if task.gate_kind == GateKind.PLAN:
        return f"Approve the plan ({len(view.steps)} steps) before anything runs."
    if step is None:
        return "Decide this gate."
    if task.gate_kind == GateKind.STEP and task.gate_reason:
        return f"{step_label(step).capitalize()}: {task.gate_reason}."  # e.g. sent, result unknown
    if task.gate_kind == GateKind.STEP and tool is not None:
        return (
            f"Approve {step_label(step)} before it runs. Below is exactly what will be sent "
            f"({tool.name}); what runs is bound to what you approve."
        )
    if task.gate_kind == GateKind.STEP:
        return (
            f"Approve {step_label(step)} before it runs. "
            "The instructions below are exactly what the model will receive."
        )
    if task.gate_kind == GateKind.COST:
        label = step_label(step).capitalize()
        return f"{label} may cross a budget: {task.gate_reason}. Approve to run it anyway."
    return f"Review the output of {step_label(step)} before it is accepted."


def waiting_for(view: TaskView) -> str:
    """What a task waits for, in a few words."""
    task = view.task
    if task.waiting_reason:  # an outage being waited out, e.g. a model provider's
        return f"{task.waiting_reason}, since {when(task.waiting_since)}"
    step = next((s for s in view.steps if s.id == task.gate_step_id), None)
    if task.gate_kind == GateKind.PLAN:
        return "plan approval"
    if task.gate_kind == GateKind.STEP and step:
        return f"approval of {step_label(step)}"
    if task.gate_kind == GateKind.OUTPUT and step:
        return f"review of {step_label(step)}'s output"
    if task.gate_kind == GateKind.COST and step:
        return f"a budget decision on {step_label(step)}"
    if task.gate_kind == GateKind.QUESTION:
        return f"an answer to {step_label(step) if step else 'the task'}'s question"
    if task.status == TaskStatus.RUNNING:
        running = next((s for s in view.steps if s.status == StepStatus.RUNNING), None)
        return f"the model: {step_label(running)}" if running else "the model"
    if task.status == TaskStatus.PLANNING:
        return "the model: planning"
    return ""


def _summary(event: AuditEvent) -> str:
    data: dict[str, Any] = event.data
    told = _gate_summary(event.action, data) or _tool_summary(event.action, data)
    if told is not None:
        return told
    if event.action == EventAction.AUTONOMY_CHANGED:
        return f"{data.get('from')} → {data.get('to')}"
    with_model = (EventAction.STEP_FINISHED, EventAction.TASK_PLANNED, EventAction.STEP_REDRAFTED)
    if event.action in with_model and "model" in data:
        source = f"{data['provider']}: {data['model']}" if "provider" in data else data["model"]
        return (
            f"{source}, {data.get('prompt_tokens', 0)} + {data.get('completion_tokens', 0)} tokens, "
            f"${data.get('cost_usd', 0):.6f}"
        )
    if event.action == EventAction.TASK_PLANNED and data.get("planner") in ("rules", "fallback"):
        return f"{data['planner']} planner: {data.get('reason') or 'no reason given'}"
    if event.action == EventAction.PLAN_INVALID:
        return str(data.get("error", ""))
    if event.action.startswith("task.") and data.get("reason"):
        return str(data["reason"])
    return ""


def _gate_summary(action: str, data: dict[str, Any]) -> str | None:
    """What a decision, or a solo task's waived four-eyes, says in the history."""
    if action == EventAction.GATE_DECIDED and data.get("action") == "answer":
        return f"answered {data.get('question')!r}: {data.get('answer')}"
    if action == EventAction.GATE_OPENED and data.get("kind") == GateKind.QUESTION:
        choices = f" (choices: {', '.join(data['choices'])})" if data.get("choices") else ""
        why = f"; why: {data['why']}" if data.get("why") else ""
        return f"asks: {data.get('question')}{choices}{why}"
    if action == EventAction.GATE_DECIDED:
        text = f"{data.get('action')} on the {data.get('kind')} gate"
        if data.get("reason"):
            text += f" ({data.get('on_reject', '')}): {data['reason']}"
        if data.get("args_sha256"):
            text += f"; approved args sha256 {str(data['args_sha256'])[:12]}…"
        if data.get("approvals"):
            text += f"; approved by {', '.join(data['approvals'])}"
        return text
    if action == EventAction.GATE_APPROVED:
        approvals = data.get("approvals") or []
        return f"approval {len(approvals)} of {data.get('approvals_needed')} on the {data.get('kind')} gate"
    if action == EventAction.TASK_SUBMITTED and data.get("solo"):
        return "solo: the submitter is the team's only approver and decides its gates (no four-eyes)"
    if action == EventAction.GATE_OPENED and data.get("four_eyes_waived"):
        return "four-eyes waived: solo task (the team has no second approver)"
    return None


def _tool_summary(action: str, data: dict[str, Any]) -> str | None:
    """What a tool step's call, its unknown result or its outcome says in the history."""
    if action == EventAction.TOOL_CALLED:
        again = ", sent again by a person's approval" if data.get("resend") else ""
        return f"calling {data.get('tool')} with key {data.get('key')}{again}"
    if action == EventAction.TOOL_UNKNOWN:
        return f"sent, result unknown: {data.get('tool')} with key {data.get('key')}"
    if action == EventAction.STEP_FINISHED and data.get("key"):
        repeat = " (already done: the recorded result, not sent again)" if data.get("repeat") else ""
        return f"{data.get('tool')} {data.get('outcome', 'completed')}{repeat}"
    return None


def _plan_text(steps: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{n}. {s['title']} [{s['kind']}, {s['risk']}]: {s['instructions']}" for n, s in enumerate(steps, 1)
    )


def timeline(events: list[AuditEvent]) -> list[TimelineEntry]:
    entries = []
    for event in events:
        data = event.data
        diff_text = data.get("diff")
        if isinstance(data.get("before"), dict) and isinstance(data.get("steps"), list):
            diff_text = text_diff(_plan_text(data["before"]["steps"]), _plan_text(data["steps"]))
        lines: list[tuple[str, str]] = []
        if isinstance(diff_text, str):
            for line in diff_text.splitlines()[2:]:  # skip the ---/+++ header
                css = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
                lines.append((css, line))
        entries.append(TimelineEntry(event, lines, _summary(event)))
    return entries


def live_version(view: TaskView) -> str:
    """Changes whenever the task's read model does (every event bumps updated_at)."""
    return version_of(view.task.updated_at)


def version_of(updated_at: datetime) -> str:
    return str(int(updated_at.timestamp() * 1_000_000))


def decision_context(visitor: Visitor, view: TaskView, settings: Settings | None = None) -> dict[str, Any]:
    """What deciding a task's open gate needs on screen (no I/O but tools.toml's, cached: the
    queue uses it per item)."""
    plan = [s.plan_entry() for s in view.steps]
    return {
        "visitor": visitor,
        "task": view.task,
        "steps": view.steps,
        "gate": gate_view(view, visitor.principal, settings),
        "active": TaskStatus(view.task.status).active,
        "plan_json": json.dumps(plan, indent=2),
    }


def planned_by(events: list[AuditEvent]) -> str | None:
    """Which planner made the current plan, and why, in a sentence."""
    planned = next((e for e in reversed(events) if e.action == EventAction.TASK_PLANNED), None)
    if planned is None:
        return None
    data: dict[str, Any] = planned.data
    if data.get("planner") in ("rules", "fallback"):
        return f"Planned by the rules planner: {data.get('reason') or 'no reason given'}."
    return f"Planned by the model ({planned.actor.removeprefix('model:')})."


async def task_context(services: Services, visitor: Visitor, view: TaskView) -> dict[str, Any]:
    """The whole task page: the decision, the history, the slider, the Temporal link."""
    team = await services.directory.team(view.task.team)
    ui = services.settings.temporal_ui_url
    workflow_path = (
        f"namespaces/{services.settings.temporal_namespace}/workflows/{workflow_id_for(view.task.id)}"
    )
    events = await services.audit.events(view.task.id)
    finished = not TaskStatus(view.task.status).active
    return decision_context(visitor, view, services.settings) | {
        "waiting": waiting_for(view),
        "timeline": timeline(events),
        "planned_by": planned_by(events),
        "levels": LEVELS,
        "cap": AutonomyLevel(team.max_autonomy).rank if team else 0,
        "version": live_version(view),
        "temporal_link": f"{ui}/{workflow_path}" if ui else None,
        "may_resume": may_resume(visitor.principal.role_in(view.task.team)),
        # Once the task has finished its chain no longer grows: the page says whether it holds.
        "audit_check": await verify_audit(services, view) if finished else None,
    }
