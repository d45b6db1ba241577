"""Earned autonomy: when people's decisions say a template may run a level higher, or lower.

Pure and deterministic: it reads a template's decided gates (oldest first) and proposes at
most one move of its default level, with the evidence. A person accepts or dismisses it;
nothing here moves a level.

- Up: a level up would have skipped some of the gates seen (those the current level needs
  and the next does not). If the latest `run` of those were all approved unchanged, it
  proposes the next level, never above the team's cap.
- Incidents: a tool call that failed or ended "sent, result unknown", and an output a
  person rejected (a reverted output), are counted in the evidence; the run of approvals
  behind a level up must come after the latest one, so an incident blocks a level up until a
  new run is earned.
- Down: if `rejects` or more of the latest `window` decisions were rejections (stop, skip or
  revise), it proposes the level below. Down is weighed first: trouble outranks a streak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exosuit.domain.autonomy import AutonomyLevel, GateKind, Risk, gate_required

_DECISIONS = frozenset({"approve", "edit", "reject"})  # answers to questions are no verdict on the model
INCIDENT = "incident"  # an Outcome's action when it is no gate but something that went wrong
TOOL_FAILED, TOOL_UNKNOWN = "tool_failed", "tool_unknown"  # incidents' kinds


@dataclass(frozen=True)
class Outcome:
    """One decided gate as the rule sees it."""

    kind: str  # a gate's kind; for an incident, tool_failed or tool_unknown
    risk: str | None
    action: str  # approve (unchanged), edit, reject, answer; or incident

    @property
    def incident(self) -> bool:
        """Something went wrong: a failed or unknown tool call, or a rejected output."""
        return self.action == INCIDENT or (self.kind == "output" and self.action == "reject")


@dataclass(frozen=True)
class Thresholds:
    run: int = 50  # unchanged approvals in a row, of the gates a level up would skip
    window: int = 20  # the latest decisions whose rejections are counted
    rejects: int = 5  # rejections among them that propose a level down


@dataclass(frozen=True)
class Proposal:
    from_level: AutonomyLevel
    to_level: AutonomyLevel
    evidence: dict[str, Any] = field(default_factory=dict)


def skipped_one_level_up(kind: str, risk: str | None, level: AutonomyLevel) -> bool:
    """Whether a gate this level opens would not open one level higher."""
    if level is AutonomyLevel.AUTONOMOUS or kind not in GateKind.__members__.values():
        return False
    gate, at = GateKind(kind), Risk(risk or Risk.LOW.value)
    higher = list(AutonomyLevel)[level.rank + 1]
    return gate_required(gate, level, at) and not gate_required(gate, higher, at)


def propose(
    outcomes: list[Outcome], level: AutonomyLevel, cap: AutonomyLevel, limits: Thresholds
) -> Proposal | None:
    """The move the evidence supports, if any (outcomes oldest first)."""
    decided = [o for o in outcomes if o.action in _DECISIONS]
    incidents = sum(o.incident for o in outcomes)
    recent = decided[-limits.window :]
    rejected = sum(o.action == "reject" for o in recent)
    if rejected >= limits.rejects and level is not AutonomyLevel.MANUAL:
        lower = list(AutonomyLevel)[level.rank - 1]
        summary = f"{rejected} of the last {len(recent)} gates rejected"
        evidence = _evidence(decided, incidents, summary, rejected=rejected, window=len(recent))
        return Proposal(level, lower, evidence)
    if level.rank >= cap.rank:
        return None  # never above the team's cap
    run: list[Outcome] = []
    for outcome in reversed(outcomes):  # the latest unchanged approvals, back to the first doubt
        if outcome.incident:
            break
        if outcome.action not in _DECISIONS or not skipped_one_level_up(outcome.kind, outcome.risk, level):
            continue
        if outcome.action != "approve":
            break
        run.append(outcome)
    if len(run) < limits.run:
        return None
    higher = list(AutonomyLevel)[level.rank + 1]
    kinds = sorted({o.kind for o in run})
    summary = f"{len(run)} of the last {len(run)} {' and '.join(kinds)} gates approved unchanged"
    return Proposal(level, higher, _evidence(decided, incidents, summary, run=len(run), kinds=kinds))


def _evidence(decided: list[Outcome], incidents: int, summary: str, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "gates": len(decided),
        "approved_unchanged": sum(o.action == "approve" for o in decided),
        "edited": sum(o.action == "edit" for o in decided),
        "rejected": sum(o.action == "reject" for o in decided),
        "incidents": incidents,
    } | extra
