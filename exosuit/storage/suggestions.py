"""Autonomy suggestions: the earned-autonomy rule run over each template's decided gates,
its proposals stored for people to accept or dismiss.

The evidence of a template starts after its last accepted or dismissed suggestion, so a
dismissed proposal returns only on new evidence, and an accepted one starts a new run.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import Select, func, literal, null, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Session, col
from sqlmodel import select as select_model

from exosuit.domain.autonomy import AutonomyLevel, above_cap
from exosuit.domain.earned_autonomy import INCIDENT, Outcome, Proposal, Thresholds, propose
from exosuit.domain.refusals import AboveCap, NotOpen
from exosuit.domain.webhooks import Notice
from exosuit.storage import admin_log, outbox
from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import (
    AutonomySuggestion,
    DecisionFact,
    IncidentFact,
    TaskTemplate,
    Team,
    table_of,
)

OPEN, ACCEPTED, DISMISSED, WITHDRAWN = "open", "accepted", "dismissed", "withdrawn"
_LOOK_BACK = 4  # decided gates read per template: this many times the longer of run and window

_F = table_of(DecisionFact).c
_I = table_of(IncidentFact).c
_S = table_of(AutonomySuggestion).c
_TPL = table_of(TaskTemplate).c
_TEAM = table_of(Team).c
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Evidence:
    """One template's decided gates and incidents since its last decided suggestion, oldest first."""

    team: str
    template: str
    level: AutonomyLevel
    cap: AutonomyLevel
    outcomes: list[Outcome]


class Suggestions:
    def __init__(self, db: Database, limits: Thresholds | None = None) -> None:
        self.db = db
        self.limits = limits or Thresholds()
        self.notified: set[str] = set()  # the teams the last refresh queued notifications for

    async def evidence(self, teams: Sequence[str]) -> list[Evidence]:
        """Every template of these teams with its recent decided gates and incidents."""
        found, _ = await self._read(teams)
        return found

    async def _read(self, teams: Sequence[str]) -> tuple[list[Evidence], dict[tuple[str, str], Any]]:
        """The evidence (one indexed read of the latest decided gates and one of the incidents
        per template), and the open suggestions by (team, template), on one connection."""
        look_back = _LOOK_BACK * max(self.limits.run, self.limits.window)
        decided = (
            select(_S.team, _S.template, func.max(_S.decided_at))
            .where(_S.team.in_(list(teams)), _S.status.in_([ACCEPTED, DISMISSED]))
            .group_by(_S.team, _S.template)
        )
        templates = (
            select(_TPL.name, _TPL.team, _TPL.autonomy, _TEAM.max_autonomy)
            .join(table_of(Team), _TEAM.name == _TPL.team)
            .where(_TPL.team.in_(list(teams)))
            .order_by(_TPL.team, _TPL.name)
        )
        standing = select(_S.id, _S.team, _S.template, _S.to_level, _S.evidence).where(
            _S.team.in_(list(teams)), _S.status == OPEN
        )
        async with self.db.engine.connect() as session:
            since = {(team, name): at for team, name, at in (await session.execute(decided)).all()}
            found = list((await session.execute(templates)).all())
            reads = [
                _reads(team, name, since.get((team, name), _EPOCH), look_back) for name, team, _, _ in found
            ]
            if session.dialect.name == "postgresql":  # a round trip costs more than a statement
                seen = await _in_one_statement(session, reads)
            else:
                seen = await _one_by_one(session, reads)
            held = {(row.team, row.template): row for row in (await session.execute(standing)).all()}
        evidence = []
        for (name, team, level, cap), outcomes in zip(found, seen, strict=True):
            outcomes.sort(key=lambda pair: pair[0])  # decisions and incidents as they happened
            kept = [outcome for _, outcome in outcomes]
            evidence.append(Evidence(team, name, AutonomyLevel(level), AutonomyLevel(cap), kept))
        return evidence, held

    async def refresh(self, teams: Sequence[str]) -> list[AutonomySuggestion]:
        """Run the rule for every template of these teams; store what it proposes (an open
        suggestion it no longer supports is withdrawn), telling the team's admins of each new
        one through its notification targets; the open suggestions."""
        found, held = await self._read(teams)
        proposals = {(e.team, e.template): propose(e.outcomes, e.level, e.cap, self.limits) for e in found}
        if not any(_changes(held.get(key), proposal) for key, proposal in proposals.items()):
            self.notified = set()  # nothing to store: no write transaction
            return await self.open(teams)

        def work(session: Session) -> set[str]:
            told: set[str] = set()  # teams whose admins have a notification queued
            conn = session.connection()
            current = conn.execute(
                select(_S.id, _S.team, _S.template, _S.to_level, _S.evidence).where(
                    _S.team.in_(list(teams)), _S.status == OPEN
                )
            ).all()
            standing = {(row.team, row.template): row for row in current}
            suggestions = update(table_of(AutonomySuggestion))
            for key, proposal in proposals.items():
                held = standing.get(key)
                if held and proposal and held.to_level == proposal.to_level:
                    if held.evidence != proposal.evidence:  # the same move, on newer evidence
                        conn.execute(suggestions.where(_S.id == held.id).values(evidence=proposal.evidence))
                    continue
                if held:  # the evidence no longer supports it
                    conn.execute(suggestions.where(_S.id == held.id).values(status=WITHDRAWN))
                if proposal:
                    session.add(_suggestion(*key, proposal))
                    if outbox.notify_admins(
                        conn, key[0], Notice.AUTONOMY_SUGGESTED, notice_text(*key, proposal), _link(key[0])
                    ):
                        told.add(key[0])
            session.commit()
            return told

        self.notified = await self.db.write(work)
        return await self.open(teams)

    async def open(self, teams: Sequence[str]) -> list[AutonomySuggestion]:
        async with self.db.session() as session:
            found = await session.exec(
                select_model(AutonomySuggestion)
                .where(col(AutonomySuggestion.team).in_(list(teams)), AutonomySuggestion.status == OPEN)
                .order_by(col(AutonomySuggestion.team), col(AutonomySuggestion.template))
            )
            return list(found)

    async def suggestion(self, suggestion_id: str) -> AutonomySuggestion | None:
        async with self.db.session() as session:
            return await session.get(AutonomySuggestion, suggestion_id)

    async def accept(self, suggestion_id: str, actor: str) -> AutonomySuggestion:
        """The template's default becomes the suggested level, within the team's cap, audited."""
        return await self._decide(suggestion_id, actor, ACCEPTED)

    async def dismiss(self, suggestion_id: str, actor: str) -> AutonomySuggestion:
        return await self._decide(suggestion_id, actor, DISMISSED)

    async def _decide(self, suggestion_id: str, actor: str, status: str) -> AutonomySuggestion:
        def work(session: Session) -> AutonomySuggestion:
            suggestion = session.get(AutonomySuggestion, suggestion_id, with_for_update=True)
            if suggestion is None or suggestion.status != OPEN:
                raise NotOpen(f"suggestion {suggestion_id} is not open")
            template = session.get(TaskTemplate, (suggestion.template, suggestion.team), with_for_update=True)
            team = session.get(Team, suggestion.team)
            if template is None or team is None:
                raise NotOpen(f"the template {suggestion.template} is gone")
            if status == ACCEPTED:
                if template.autonomy != suggestion.from_level:
                    raise NotOpen(
                        f"{template.name} is at {template.autonomy} now, not {suggestion.from_level}: "
                        "the suggestion no longer applies"
                    )
                refusal = above_cap(AutonomyLevel(suggestion.to_level), AutonomyLevel(team.max_autonomy))
                if refusal:
                    raise AboveCap(refusal)
                template.autonomy = suggestion.to_level
                session.add(template)
            suggestion.status, suggestion.decided_by, suggestion.decided_at = status, actor, utcnow()
            session.add(suggestion)
            session.flush()
            data = {
                "suggestion_id": suggestion.id,
                "template": suggestion.template,
                "from": suggestion.from_level,
                "to": suggestion.to_level,
                "evidence": suggestion.evidence,
            }
            action = "template.autonomy_changed" if status == ACCEPTED else "autonomy.suggestion_dismissed"
            admin_log.append(session.connection(), f"user:{actor}", action, suggestion.team, data)
            session.commit()
            session.refresh(suggestion)
            return suggestion

        return await self.db.write(work)


def notice_text(team: str, template: str, proposal: Proposal) -> str:
    """What a team's admins are told: the move and its evidence, in a line."""
    move = f"{template} at {proposal.from_level.value} → {proposal.to_level.value}"
    return f"Autonomy suggestion for {team}: {move}: {proposal.evidence.get('summary', '')}"


def _link(team: str) -> str:
    """Where the team's suggestions are, with Accept and Dismiss."""
    return f"/dashboard?team={quote(team, safe='')}"


def _reads(team: str, template: str, after: datetime, look_back: int) -> tuple[Select[Any], Select[Any]]:
    """A template's latest decided gates and incidents after a moment, newest first."""
    recent = (
        select(_F.decided_at, _F.kind, _F.risk, _F.action)
        .where(_F.team == team, _F.template == template, _F.decided_at > after)
        .order_by(_F.decided_at.desc())
        .limit(look_back)
    )
    incidents = (
        select(_I.at, _I.kind, null(), literal(INCIDENT))
        .where(_I.team == team, _I.template == template, _I.at > after)
        .order_by(_I.at.desc())
        .limit(look_back)
    )
    return recent, incidents


def _outcomes(rows: Any) -> list[tuple[datetime, Outcome]]:
    return [(at, Outcome(kind, risk, action)) for at, kind, risk, action in rows if action]


async def _one_by_one(session: AsyncConnection, reads: list[tuple[Select[Any], Select[Any]]]) -> list[Any]:
    """Each template's two reads in turn (on SQLite a statement is a call, not a round trip)."""
    seen = []
    for recent, incidents in reads:
        rows = [*(await session.execute(recent)).all(), *(await session.execute(incidents)).all()]
        seen.append(_outcomes(rows))
    return seen


async def _in_one_statement(
    session: AsyncConnection, reads: list[tuple[Select[Any], Select[Any]]]
) -> list[Any]:
    """Every template's reads in one statement: a union of the limited reads, each row
    marked with its template's place."""
    seen: list[list[tuple[datetime, Outcome]]] = [[] for _ in reads]
    parts = [
        read.add_columns(literal(n).label("n")).subquery() for n, pair in enumerate(reads) for read in pair
    ]
    if parts:
        union = union_all(*(select(*(c for c in t.c if c.key != "n"), t.c.n) for t in parts))
        for *row, n in (await session.execute(union)).all():
            seen[n] += _outcomes([row])
    return seen


def _changes(held: Any, proposal: Proposal | None) -> bool:
    """Whether storing this proposal changes the open suggestion held for its template."""
    if held is None or proposal is None:
        return held is not None or proposal is not None
    return bool(held.to_level != proposal.to_level or held.evidence != proposal.evidence)


def _suggestion(team: str, template: str, proposal: Proposal) -> AutonomySuggestion:
    return AutonomySuggestion(
        id=f"sug_{uuid.uuid4().hex[:16]}",
        team=team,
        template=template,
        from_level=proposal.from_level.value,
        to_level=proposal.to_level.value,
        evidence=proposal.evidence,
    )
