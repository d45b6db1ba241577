"""The decisions export: one record per decided gate, read a page at a time, masked.

A record joins the gate's fact row (what was proposed, what went on, timings) with its task,
its step, the model calls behind it, and its gate.decided audit event (reason, seq, hash).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlmodel import Session

from exosuit.domain.decision_records import ExportFormat, edit_of, masked, shaped
from exosuit.domain.task import EventAction
from exosuit.settings import Settings
from exosuit.storage import admin_log
from exosuit.storage.db import Database
from exosuit.storage.tables import AuditEvent, DecisionFact, ModelCall, Step, Task, table_of
from exosuit.tooling import ToolsConfig, load_tools_config

PAGE = 500
_F = table_of(DecisionFact).c
_T = table_of(Task).c
_S = table_of(Step).c
_A = table_of(AuditEvent).c
_C = table_of(ModelCall).c


@dataclass(frozen=True)
class Filters:
    teams: Sequence[str]
    since: datetime | None = None
    until: datetime | None = None
    template: str | None = None
    kind: str | None = None
    verdict: str | None = None  # approve, edit, reject, revise, answer

    def describe(self) -> dict[str, Any]:
        return {
            "teams": list(self.teams),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "template": self.template,
            "kind": self.kind,
            "verdict": self.verdict,
        }


def export_secrets(settings: Settings) -> list[str]:
    """Everything an export must not carry: the system's secrets and the tools' credentials."""
    return [*settings.known_secrets, *tool_secrets(load_tools_config(settings.resolved_tools_file))]


def tool_secrets(config: ToolsConfig, env: Mapping[str, str] | None = None) -> list[str]:
    """The values of every credential tools.toml names (secret headers, the SMTP password,
    MCP servers' variables and header tokens), as this process's environment holds them."""
    env = os.environ if env is None else env
    names = [h.env for h in config.http.secret_headers] if config.http else []
    if config.email and config.email.password_env:
        names.append(config.email.password_env)
    for server in config.mcp:
        names += [*server.env.values(), *server.headers_env.values()]
    return [env[name] for name in names if env.get(name)]


async def audit_export(db: Database, actor: str, form: ExportFormat, filters: Filters) -> None:
    """Who exported what, in the administration audit (before the first line is sent)."""

    def work(session: Session) -> None:
        team = filters.teams[0] if len(filters.teams) == 1 else None
        data = {"format": form.value} | filters.describe()
        admin_log.append(session.connection(), actor, "decisions.exported", team, data)
        session.commit()

    await db.write(work)


async def records(
    db: Database, filters: Filters, form: ExportFormat, secrets: Iterable[str]
) -> AsyncIterator[dict[str, Any]]:
    """The decisions the filters select, oldest first, shaped and masked."""
    secrets = list(secrets)
    after: tuple[datetime, str] | None = None
    while True:
        async with db.engine.connect() as session:
            page = [dict(row) for row in (await session.execute(_page(filters, after))).mappings().all()]
            if not page:
                return
            context = await _context(session, page)
        for fact in page:
            record = shaped(_record(fact, *context), form)
            if record is not None:
                yield masked(record, secrets)
        last = page[-1]
        after = (last["decided_at"], last["gate_id"])


def _page(filters: Filters, after: tuple[datetime, str] | None) -> Any:
    query = select(table_of(DecisionFact)).where(
        _F.team.in_(list(filters.teams)), _F.action.in_(["approve", "edit", "reject", "answer"])
    )
    if filters.since:
        query = query.where(_F.decided_at >= filters.since)
    if filters.until:
        query = query.where(_F.decided_at < filters.until)
    if filters.template:
        query = query.where(_F.template == filters.template)
    if filters.kind:
        query = query.where(_F.kind == filters.kind)
    if filters.verdict == "revise":
        query = query.where(_F.action == "reject", _F.on_reject == "revise")
    elif filters.verdict == "reject":
        query = query.where(_F.action == "reject", or_(_F.on_reject.is_(None), _F.on_reject != "revise"))
    elif filters.verdict:
        query = query.where(_F.action == filters.verdict)
    if after is not None:
        query = query.where(
            or_(_F.decided_at > after[0], and_(_F.decided_at == after[0], _F.gate_id > after[1]))
        )
    return query.order_by(_F.decided_at, _F.gate_id).limit(PAGE)


Context = tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]


async def _context(session: Any, page: list[Any]) -> Context:
    """The page's tasks, steps, planning calls and gate.decided events, four queries."""
    task_ids = list({f["task_id"] for f in page})
    step_ids = [f["step_id"] for f in page if f["step_id"]]
    tasks = {
        r.id: r
        for r in (
            await session.execute(select(_T.id, _T.title, _T.instructions).where(_T.id.in_(task_ids)))
        ).all()
    }
    steps = {
        r.id: r for r in (await session.execute(select(table_of(Step)).where(_S.id.in_(step_ids)))).all()
    }
    plan_calls = (
        select(
            _C.task_id,
            func.max(_C.model),
            func.sum(_C.prompt_tokens),
            func.sum(_C.completion_tokens),
            func.sum(_C.cost_usd),
        )
        .where(_C.task_id.in_(task_ids), _C.purpose == "plan")
        .group_by(_C.task_id)
    )
    plans = {r[0]: r for r in (await session.execute(plan_calls)).all()}
    decided = select(_A.task_id, _A.seq, _A.hash, _A.actor, _A.data).where(
        _A.task_id.in_(task_ids), _A.action == EventAction.GATE_DECIDED.value
    )
    events = {r.data.get("gate_id"): r for r in (await session.execute(decided)).all()}
    return tasks, steps, plans, events


def _record(
    fact: Mapping[str, Any],
    tasks: dict[str, Any],
    steps: dict[str, Any],
    plans: dict[str, Any],
    events: dict[str, Any],
) -> dict[str, Any]:
    task, step, event = tasks.get(fact["task_id"]), steps.get(fact["step_id"]), events.get(fact["gate_id"])
    ask = f"Task: {task.title}\n\n{task.instructions}" if task else ""
    kind = fact["kind"]
    if step is not None:
        ask += f"\n\nStep {step.index + 1}: {step.title}"
        if kind == "output":
            ask += f"\nInstructions:\n{step.instructions}"
    if kind == "plan" and fact["task_id"] in plans:
        _, model, prompt_tokens, completion_tokens, cost = plans[fact["task_id"]]
    elif step is not None:
        model, prompt_tokens, completion_tokens, cost = (
            step.model,
            step.prompt_tokens,
            step.completion_tokens,
            step.cost_usd,
        )
    else:
        model, prompt_tokens, completion_tokens, cost = None, 0, 0, 0.0
    action = fact["action"]
    verdict = "revise" if action == "reject" and fact["on_reject"] == "revise" else action
    data = event.data if event is not None else {}
    return {
        "gate_id": fact["gate_id"],
        "task_id": fact["task_id"],
        "team": fact["team"],
        "template": fact["template"],
        "kind": kind,
        "step": None
        if step is None
        else {"id": step.id, "index": step.index, "title": step.title, "kind": step.kind, "tool": step.tool},
        "prompt": ask,
        "output": fact["proposed"],
        "final": fact["final"] if action in ("approve", "edit") else None,
        "edit": edit_of(fact["proposed"], fact["final"], action),
        "verdict": verdict,
        "reason": data.get("reason"),
        "answer": data.get("answer"),
        "decided_by": fact["decided_by"],
        "opened_at": fact["opened_at"].isoformat(),
        "decided_at": fact["decided_at"].isoformat(),
        "seconds": fact["seconds"],
        "model": model,
        "prompt_tokens": prompt_tokens or 0,
        "completion_tokens": completion_tokens or 0,
        "cost_usd": cost or 0.0,
        "audit": None if event is None else {"seq": event.seq, "hash": event.hash},
    }
