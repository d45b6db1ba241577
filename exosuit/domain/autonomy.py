"""The autonomy policy as pure functions: which gates a task meets, who may decide them.

Part of the policy layer (`exosuit.domain`): deterministic and free of I/O, so the
workflow can import it.
"""

from __future__ import annotations

from enum import StrEnum


class AutonomyLevel(StrEnum):
    MANUAL = "manual"
    SUPERVISED = "supervised"
    GUARDED = "guarded"
    DELEGATED = "delegated"
    AUTONOMOUS = "autonomous"

    @property
    def rank(self) -> int:
        return list(AutonomyLevel).index(self)


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(Risk).index(self)


class GateKind(StrEnum):
    PLAN = "plan"
    STEP = "step"
    OUTPUT = "output"
    COST = "cost"  # a step that may cross a budget, whatever the level
    QUESTION = "question"  # a step asks a person (ask_human), whatever the level


class DecisionAction(StrEnum):
    """A decision on a gate."""

    APPROVE = "approve"
    EDIT = "edit"  # approve with changes: the edited text is what runs
    REJECT = "reject"
    ANSWER = "answer"  # a question gate's answer: what the step asked for


class OnReject(StrEnum):
    """What a rejection asks for."""

    REVISE = "revise"  # back to the model with the reason; a new gate opens
    SKIP = "skip"  # the step is skipped (step, output and cost gates)
    STOP = "stop"  # the task ends as rejected


class Role(StrEnum):
    MEMBER = "member"
    APPROVER = "approver"
    ADMIN = "admin"


DEFAULT_MAX_AUTONOMY = AutonomyLevel.DELEGATED
DEFAULT_GATE_DEADLINE_SECONDS = 24 * 3600.0
DEFAULT_MAX_ACTIVE_TASKS = 100  # a team's tasks not yet ended (each one a workflow and paid calls)
DEFAULT_SUBMISSIONS_PER_MINUTE = 30  # one person's new tasks
DEFAULT_MODEL_WAIT_SECONDS = 24 * 3600.0  # how long a step waits out a model provider's outage
DEFAULT_MAX_REVISIONS = 20  # `revise` rejections at one gate before the task stops
_FOUR_EYES_LEVELS = {AutonomyLevel.MANUAL, AutonomyLevel.SUPERVISED}


def plan_gate_required(level: AutonomyLevel) -> bool:
    """Plan approval before any step runs: manual, supervised and guarded."""
    return level.rank <= AutonomyLevel.GUARDED.rank


def step_gate_required(level: AutonomyLevel, risk: Risk) -> bool:
    """Approval before a step runs, by level and the step's risk."""
    if level in (AutonomyLevel.MANUAL, AutonomyLevel.SUPERVISED):
        return True
    if level is AutonomyLevel.GUARDED:
        return risk.rank >= Risk.MEDIUM.rank
    if level is AutonomyLevel.DELEGATED:
        return risk is Risk.HIGH
    return False


def output_gate_required(level: AutonomyLevel) -> bool:
    """Review of a step's output before it is accepted: manual only."""
    return level is AutonomyLevel.MANUAL


def gate_required(kind: GateKind, level: AutonomyLevel, risk: Risk = Risk.LOW) -> bool:
    """The autonomy table (docs/autonomy.md) in one call."""
    if kind is GateKind.PLAN:
        return plan_gate_required(level)
    if kind is GateKind.STEP:
        return step_gate_required(level, risk)
    if kind is GateKind.OUTPUT:
        return output_gate_required(level)
    # A question always waits for its answer (the slider never skips it); cost gates follow
    # budgets, not the level.
    return kind is GateKind.QUESTION


def four_eyes_required(level: AutonomyLevel, risk: Risk, *, solo: bool = False) -> bool:
    """The submitter cannot decide: at manual and supervised, and for high risk at any level;
    unless the task is `solo` (see `is_solo`)."""
    return (level in _FOUR_EYES_LEVELS or risk is Risk.HIGH) and not solo


def is_solo(submitter_role: Role | None, other_approvers: int) -> bool:
    """A task runs solo when its submitter may approve and nobody else in the team may.

    Four-eyes needs a second person: without one, every gate it covers would wait for
    ever (a first run has only its admin). A solo task lets its submitter decide those
    gates instead, and says so (on the page and in the audit); from the moment the team
    has a second approver, new tasks are four-eyes again.
    """
    return can_approve(submitter_role) and other_approvers == 0


def excluded_decider(*, four_eyes: bool, submitter: str) -> str | None:
    """Who may not decide a gate: its task's submitter under four-eyes, else nobody.

    The read model stores this on the open gate, so the review queue filters by it
    instead of restating the rule in SQL.
    """
    return submitter if four_eyes else None


def can_approve(role: Role | None) -> bool:
    return role in (Role.APPROVER, Role.ADMIN)


def may_decide(*, actor: str, role: Role | None, excluded: str | None) -> str | None:
    """None if the actor may decide the gate, else the reason they may not."""
    if not can_approve(role):
        return "only an approver of the task's team can decide its gates"
    if actor == excluded:
        return "four-eyes: the submitter cannot decide this gate; another approver must"
    return None


def may_answer(role: Role | None) -> str | None:
    """None if a person with this role in the task's team may answer its question, else why
    not: any member may (four-eyes does not apply to a question; the submitter may answer)."""
    return None if role is not None else "only a member of the task's team can answer its questions"


def may_set_autonomy(*, actor: str, role: Role | None, submitter: str) -> bool:
    """The task's submitter or an approver of its team may move the slider."""
    return actor == submitter or can_approve(role)


def may_cancel(*, actor: str, role: Role | None, submitter: str) -> bool:
    """The task's submitter or an approver of its team may cancel it."""
    return actor == submitter or can_approve(role)


def may_resume(role: Role | None) -> bool:
    """An approver of the task's team may resume it after it failed."""
    return can_approve(role)


def above_cap(level: AutonomyLevel, cap: AutonomyLevel) -> str | None:
    """Why a level is refused under a team's cap, or None if it is within it."""
    if level.rank > cap.rank:
        return f"{level.value} is above the team's cap ({cap.value})"
    return None


def risk_floor(tool_has_side_effects: bool) -> Risk:
    """The lowest risk policy allows for a tool step: side-effecting tools are at least medium."""
    return Risk.MEDIUM if tool_has_side_effects else Risk.LOW


def apply_floor(risk: Risk, floor: Risk) -> Risk:
    return risk if risk.rank >= floor.rank else floor


LEVEL_SUMMARY: dict[AutonomyLevel, str] = {
    AutonomyLevel.MANUAL: "You approve the plan, every step before it runs, and every output.",
    AutonomyLevel.SUPERVISED: "You approve the plan and every step before it runs.",
    AutonomyLevel.GUARDED: "You approve the plan and every medium- or high-risk step.",
    AutonomyLevel.DELEGATED: "Only high-risk steps wait for an approver.",
    AutonomyLevel.AUTONOMOUS: "Nothing waits for approval; you can still watch and cancel.",
}
