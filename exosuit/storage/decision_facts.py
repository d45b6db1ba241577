"""The facts decisions leave, written by the event writer in the audit event's transaction.

A gate's row is inserted when it opens and completed when it is decided (or closed without a
decision, when its task is cancelled), and its decision is added to its team's daily and
monthly roll-ups; a failed or unknown tool call is an incident; a model call adds to its team's
usage of the day. The dashboard, the earned-autonomy rule and the export read these rows, never
the whole chain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from exosuit.domain import time_histogram
from exosuit.domain.contracts import Gate, TaskEvent
from exosuit.domain.earned_autonomy import TOOL_FAILED, TOOL_UNKNOWN
from exosuit.domain.task import EventAction, StepKind, StepStatus
from exosuit.domain.tools import args_text
from exosuit.domain.usage import CallRecord
from exosuit.storage.db import Database
from exosuit.storage.tables import (
    DECISION_TIME,
    DECISION_TIME_MONTH,
    DecisionDay,
    DecisionFact,
    DecisionMonth,
    IncidentFact,
    PlanDay,
    Step,
    Task,
    UsageDay,
    table_of,
)

CLOSED = "closed"  # the gate closed without a decision (its task was cancelled)
VERDICTS = ("approve", "edit", "revise", "reject", "answer")  # a decision as the roll-ups count it
DIMENSIONS = ("team", "kind", "step_kind", "tool", "template")  # what the verdict counts are by

_FACT = table_of(DecisionFact)
_STEP = table_of(Step)
_USAGE = table_of(UsageDay)
_TASK = table_of(Task)
_f, _s = _FACT.c, _STEP.c

_INSERT_FACT = insert(_FACT)
_DECIDE_FACT = update(_FACT).where(_f.gate_id == bindparam("gate"))
_OPENED = select(_f.opened_at, _f.team, _f.kind, _f.step_kind, _f.tool, _f.template).where(
    _f.gate_id == bindparam("gate")
)
_DAY, _MONTH = table_of(DecisionDay), table_of(DecisionMonth)
_INCIDENT = table_of(IncidentFact)
_STEP_KIND = select(_s.kind).where(_s.id == bindparam("step"))
_STEP_ROW = select(_s.kind, _s.tool, _s.instructions, _s.args, _s.output).where(_s.id == bindparam("step"))
_PLAN = (
    select(_s.title, _s.instructions, _s.kind, _s.tool, _s.risk, _s.args)
    .where(_s.task_id == bindparam("task"))
    .order_by(_s.index)
)


def planner(actor: str) -> str:
    """Who planned, from the task.planned event's actor: a model, or the rules planner."""
    return "model" if actor.startswith("model:") else "rules"


def planned(conn: Connection, task: Mapping[str, Any], by: str) -> None:
    """A task planned (again) by `by`: counted on its team's day of creation for that planner
    (and no longer for the one before, if another planned it first)."""
    before = task["planned_by"]
    if before == by:
        return
    on = day(task["created_at"])
    if before is not None:
        conn.execute(
            _ADD_PLAN[conn.dialect.name], {"team": task["team"], "day": on, "planner": before, "tasks": -1}
        )
    conn.execute(_ADD_PLAN[conn.dialect.name], {"team": task["team"], "day": on, "planner": by, "tasks": 1})


def day(moment: datetime) -> str:
    """The UTC day a moment falls on, as the facts group by it."""
    return moment.date().isoformat()


def month(on: str) -> str:
    """The UTC month of a day, as the monthly roll-ups group by it: "2026-09"."""
    return on[:7]


def opened(conn: Connection, task: Mapping[str, Any], gate: Gate, now: datetime) -> None:
    """A new gate's row: who it belongs to, what it stops, and when it opened (the moment of
    its gate.opened event, as a decision's is its gate.decided event's)."""
    step = conn.execute(_STEP_ROW, {"step": gate.step_id}).first() if gate.step_id else None
    row = {
        "gate_id": gate.id,
        "task_id": task["id"],
        "team": task["team"],
        "template": task["template"],
        "kind": gate.kind,
        "step_id": gate.step_id,
        "step_kind": step.kind if step else None,
        "tool": step.tool if step else None,
        "risk": gate.risk,
        "autonomy": task["autonomy"],
        "opened_at": now,
    }
    conn.execute(_INSERT_FACT, row)


def proposal(conn: Connection, task_id: str, kind: str | None, step_id: str | None) -> str | None:
    """What a gate of this kind shows in the read model now: the plan, a step's instructions
    or a tool's arguments, or a step's output. Read before a decision is applied it is what
    was proposed; after, what goes on."""
    if kind == "plan":
        steps = [dict(row._mapping) for row in conn.execute(_PLAN, {"task": task_id})]
        for entry in steps:
            if entry["args"] is None:
                del entry["args"]
        return json.dumps(steps, indent=2, ensure_ascii=False)
    if step_id is None:
        return None
    step = conn.execute(_STEP_ROW, {"step": step_id}).first()
    if step is None:
        return None
    if kind == "output":
        return step.output  # type: ignore[no-any-return]
    if step.kind == StepKind.TOOL:
        return args_text(step.args)
    return step.instructions  # type: ignore[no-any-return]


def decided(
    conn: Connection,
    gate_id: str,
    *,
    actor: str,
    data: Mapping[str, Any],
    now: datetime,
    proposed: str | None,
    final: str | None,
) -> None:
    """A gate's decision (from its gate.decided event's data), its timing and the texts."""
    fact = conn.execute(_OPENED, {"gate": gate_id}).first()
    if fact is None:  # opened before facts were kept
        return
    diff = data.get("diff")
    seconds = max(0.0, (now - fact.opened_at).total_seconds())
    values = {
        "gate": gate_id,
        "decided_at": now,
        "decided_day": day(now),
        "action": data.get("action"),
        "on_reject": data.get("on_reject"),
        "decided_by": actor,
        "seconds": seconds,
        "edit_chars": len(diff) if isinstance(diff, str) else None,
        "proposed": proposed,
        "final": final,
    }
    conn.execute(_DECIDE_FACT, values)
    counted = verdict(values["action"], values["on_reject"])
    if counted is None:
        return
    named = fact._mapping
    for dimension in DIMENSIONS:
        if named[dimension] is not None:
            _count(conn, named["team"], day(now), dimension, named[dimension], counted)
    if counted != "answer":  # an answer to a question is no time to decide
        _time(conn, named["team"], day(now), named["kind"], seconds)


def verdict(action: Any, on_reject: Any) -> str | None:
    """A decision as the roll-ups and the rates count it (a reject sent back for revision is
    `revise`); None for anything else (a gate closed undecided)."""
    if action == "reject" and on_reject == "revise":
        return "revise"
    return action if action in VERDICTS else None


def _adding(dialect: Any, table: Any, keys: list[str], column: str) -> Any:
    """Add one to a roll-up row's counter, creating the row: one atomic statement."""
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys], set_={column: table.c[column] + 1}
    )


_DIALECTS = (("sqlite", sqlite), ("postgresql", postgresql))
# Each decision adds one to its day's row and to its month's, for each roll-up.
_COUNT = {
    (name, period, column): _adding(dialect, table, ["team", period, "dimension", "value"], column)
    for name, dialect in _DIALECTS
    for period, table in (("day", _DAY), ("month", _MONTH))
    for column in VERDICTS
}
_TIME = {
    (name, period, index): _adding(dialect, table, ["team", period, "kind"], f"b{index:02d}")
    for name, dialect in _DIALECTS
    for period, table in (("day", DECISION_TIME), ("month", DECISION_TIME_MONTH))
    for index in range(time_histogram.BUCKETS)
}


def _count(conn: Connection, team: str, on: str, dimension: str, value: str, counted: str) -> None:
    for period, when in (("day", on), ("month", month(on))):
        row = {"team": team, period: when, "dimension": dimension, "value": value, counted: 1}
        conn.execute(_COUNT[conn.dialect.name, period, counted], row)


def _time(conn: Connection, team: str, on: str, kind: str, seconds: float) -> None:
    index = time_histogram.bucket(seconds)
    for period, when in (("day", on), ("month", month(on))):
        row = {"team": team, period: when, "kind": kind, f"b{index:02d}": 1}
        conn.execute(_TIME[conn.dialect.name, period, index], row)


def incident(conn: Connection, task: Mapping[str, Any], ev: TaskEvent, now: datetime) -> None:
    """A tool call that failed (its step failed the task) or was sent with its result unknown,
    if the event says so. Called after the event changed the step."""
    if ev.step_id is None:
        return
    if ev.action is EventAction.TOOL_UNKNOWN:
        kind = TOOL_UNKNOWN
    elif (
        ev.step_status is StepStatus.FAILED
        and conn.execute(_STEP_KIND, {"step": ev.step_id}).scalar() == StepKind.TOOL
    ):
        kind = TOOL_FAILED
    else:
        return
    row = {"task_id": task["id"], "team": task["team"], "template": task["template"], "step_id": ev.step_id}
    conn.execute(insert(_INCIDENT), row | {"kind": kind, "at": now})


def closed(conn: Connection, gate_id: str, now: datetime) -> None:
    """A gate closed without a decision: it no longer counts as open, nor as decided."""
    conn.execute(
        update(_FACT)
        .where(_f.gate_id == gate_id, _f.decided_at.is_(None))
        .values(decided_at=now, action=CLOSED)
    )


def _upsert(dialect: Any) -> Any:
    """Add to a team's day, creating it: one statement, whoever raced in first."""
    statement = dialect.insert(_USAGE)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_USAGE.c.team, _USAGE.c.day],
        set_={
            "calls": _USAGE.c.calls + excluded.calls,
            "prompt_tokens": _USAGE.c.prompt_tokens + excluded.prompt_tokens,
            "completion_tokens": _USAGE.c.completion_tokens + excluded.completion_tokens,
            "cost_usd": _USAGE.c.cost_usd + excluded.cost_usd,
        },
    )


_ADD_USAGE = {"sqlite": _upsert(sqlite), "postgresql": _upsert(postgresql)}
_PLAN_DAY = table_of(PlanDay)
_ADD_PLAN = {
    name: dialect.insert(_PLAN_DAY).on_conflict_do_update(
        index_elements=[_PLAN_DAY.c.team, _PLAN_DAY.c.day, _PLAN_DAY.c.planner],
        set_={"tasks": _PLAN_DAY.c.tasks + dialect.insert(_PLAN_DAY).excluded.tasks},
    )
    for name, dialect in _DIALECTS
}


def add_usage(conn: Connection, team: str, call: CallRecord, now: datetime) -> None:
    """A new call's usage on its team's day."""
    row = {
        "team": team,
        "day": day(now),
        "calls": 1,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "cost_usd": call.cost_usd,
    }
    conn.execute(_ADD_USAGE[conn.dialect.name], row)


async def mark_template(db: Database, task_id: str, template: str) -> None:
    """The template a task was run from, on it and on the facts its gates left so far."""

    def work(session: Session) -> None:
        conn = session.connection()
        # Decisions counted before the template was known: count them for it now.
        decided = select(_f.team, _f.decided_day, _f.action, _f.on_reject).where(
            _f.task_id == task_id, _f.decided_day.is_not(None), _f.template.is_(None)
        )
        for team, on, action, on_reject in conn.execute(decided).all():
            counted = verdict(action, on_reject)
            if counted is not None:
                _count(conn, team, on, "template", template, counted)
        conn.execute(update(_TASK).where(_TASK.c.id == task_id).values(template=template))
        conn.execute(update(_FACT).where(_f.task_id == task_id).values(template=template))
        conn.execute(update(_INCIDENT).where(_INCIDENT.c.task_id == task_id).values(template=template))
        session.commit()

    await db.write(work)
