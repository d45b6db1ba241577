"""Decisions on gates: what is well-formed, who may make them, and what each one means.

Pure functions over the contracts, shared by the workflow's update validators and the
web layer; each refusal is raised here, where its rule is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from exosuit.domain.autonomy import (
    AutonomyLevel,
    DecisionAction,
    GateKind,
    OnReject,
    above_cap,
    can_approve,
    excluded_decider,
    may_answer,
    may_decide,
    may_set_autonomy,
)
from exosuit.domain.contracts import AutonomyChange, Decision, Gate
from exosuit.domain.plan import PlanInvalid, PlanStep, validate_steps
from exosuit.domain.quorum import check_vote
from exosuit.domain.refusals import AboveCap, Finished, Forbidden, FourEyes, Invalid, NotOpen, Replayed


class Verdict(StrEnum):
    """What a gate's outcome means for the flow."""

    GO = "go"  # approved, or edited and approved
    REVISE = "revise"
    SKIP = "skip"
    STOP = "stop"
    CANCELLED = "cancelled"  # the task was cancelled while the gate was open


def verdict_of(decision: Decision | None) -> Verdict:
    """A decision's meaning; None (no decision: the task was cancelled) is CANCELLED."""
    if decision is None:
        return Verdict.CANCELLED
    if decision.action is not DecisionAction.REJECT:
        return Verdict.GO
    return Verdict(decision.on_reject.value)


@dataclass(frozen=True)
class TextEdit:
    """An edit of one text: a step's instructions, or its output."""

    field: str
    text: str


@dataclass(frozen=True)
class ArgsEdit:
    """An edit of a tool step's arguments (their schema is checked where the tool is known)."""

    args: dict[str, Any]


Edit = list[PlanStep] | TextEdit | ArgsEdit


def check_edit(kind: GateKind, changes: dict[str, Any]) -> Edit:
    """What an edit of a gate of this kind changes; Invalid if it is malformed."""
    if kind is GateKind.COST:
        raise Invalid("a cost gate has nothing to edit: approve it, or reject to skip or stop")
    if kind is GateKind.PLAN:
        try:
            return validate_steps(changes)
        except PlanInvalid as exc:
            raise Invalid(str(exc)) from None
    if kind is GateKind.STEP and "args" in changes:
        if set(changes) != {"args"} or not isinstance(changes["args"], dict):
            raise Invalid("an edit of a tool step's arguments is {'args': {...}}")
        return ArgsEdit(changes["args"])
    field = "instructions" if kind is GateKind.STEP else "output"
    text = changes.get(field)
    if not isinstance(text, str) or not text.strip() or set(changes) != {field}:
        raise Invalid(f"an edit of a {kind.value} gate changes {{{field!r}: text}}")
    return TextEdit(field, text)


def check_fresh(message_id: str, applied: list[str]) -> None:
    """Refuse a control message without its sender's id, or one already applied (a replay
    of a payload copied from the history: its seal still holds, its id gives it away)."""
    if not message_id:
        raise Invalid("a control message needs a unique message_id made by its sender")
    if message_id in applied:
        raise Replayed(f"message {message_id} was applied already; a replay changes nothing")


def check_decision(decision: Decision, gate: Gate | None, *, submitter: str) -> None:
    """Refuse a decision unless it names the open gate, its maker may decide it, and it is
    well-formed. `gate` is the gate still open for a decision (None when none is)."""
    if gate is None or gate.id != decision.gate_id:
        raise NotOpen(f"gate {decision.gate_id} is not open")
    if gate.kind is GateKind.QUESTION:
        check_question_decision(decision, gate)
        return
    if decision.action is DecisionAction.ANSWER:
        raise Invalid(
            f"only a question is answered; a {gate.kind.value} gate is approved, edited or rejected"
        )
    refusal = may_decide(
        actor=decision.actor,
        role=decision.role,
        excluded=excluded_decider(four_eyes=gate.four_eyes, submitter=submitter),
    )
    if refusal:  # an approver refused can only be the submitter under four-eyes
        raise (FourEyes if can_approve(decision.role) else Forbidden)(refusal)
    check_vote(decision, gate)  # a quorum gate: one approval each, an edit only as the last
    if decision.action is DecisionAction.REJECT:
        if not (decision.reason or "").strip():
            raise Invalid("a rejection needs a reason")
        if decision.on_reject is OnReject.SKIP and gate.kind is GateKind.PLAN:
            raise Invalid("a plan cannot be skipped; revise or stop it")
        if decision.on_reject is OnReject.REVISE and gate.kind is GateKind.COST:
            raise Invalid("a cost gate is approved, or rejected to skip or stop")
    if decision.action is DecisionAction.EDIT:
        check_edit(gate.kind, decision.changes)


MAX_ANSWER_CHARS = 10_000


def check_question_decision(decision: Decision, gate: Gate) -> None:
    """A question is answered by any member of the task's team (the submitter too: four-eyes
    does not apply), with one of its choices when it offers some. An approver may instead
    reject it with a reason, to skip the step or stop the task (no `revise`: there is nothing
    for the model to redo)."""
    if decision.action is DecisionAction.REJECT:
        if not can_approve(decision.role):
            raise Forbidden("only an approver of the task's team can reject a question; members answer it")
        if not (decision.reason or "").strip():
            raise Invalid("a rejection needs a reason")
        if decision.on_reject is OnReject.REVISE:
            raise Invalid("a question is answered, or rejected to skip the step or stop the task")
        return
    if decision.action is not DecisionAction.ANSWER:
        raise Invalid("a question gate is answered: action 'answer' with the answer's text")
    refusal = may_answer(decision.role)
    if refusal:
        raise Forbidden(refusal)
    check_answer(decision.answer, gate.choices)


def check_answer(answer: str | None, choices: list[str] | None) -> str:
    """The answer's text, if it answers a question with these choices; Invalid if not."""
    text = (answer or "").strip()
    if not text:
        raise Invalid("an answer needs its text: {'answer': '...'}")
    if len(text) > MAX_ANSWER_CHARS:
        raise Invalid(f"an answer holds at most {MAX_ANSWER_CHARS} characters")
    if choices and text not in choices:
        raise Invalid(f"the answer must be one of the question's choices: {', '.join(choices)}")
    return text


def check_autonomy_change(
    change: AutonomyChange, *, cap: AutonomyLevel, submitter: str, finished: bool
) -> None:
    """Refuse a slider move on a finished task, above the cap, or by someone who may not."""
    if finished:
        raise Finished("the task has finished")
    reason = above_cap(change.autonomy, cap)
    if reason:
        raise AboveCap(reason)
    if not may_set_autonomy(actor=change.actor, role=change.role, submitter=submitter):
        raise Forbidden("only the submitter or an approver can move the slider")


def decision_data(gate: Gate, decision: Decision) -> dict[str, Any]:
    """What the audit's gate.decided event says of a decision."""
    data: dict[str, Any] = {"gate_id": gate.id, "kind": gate.kind, "action": decision.action}
    if decision.action is DecisionAction.REJECT:
        data |= {"reason": decision.reason, "on_reject": decision.on_reject}
    elif decision.action is DecisionAction.ANSWER:
        data |= {"question": gate.question, "answer": (decision.answer or "").strip()}
    elif decision.reason:
        data["reason"] = decision.reason
    return data
