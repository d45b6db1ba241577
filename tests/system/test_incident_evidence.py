"""Incidents the event writer records (a tool call sent with its result unknown) reach the
earned-autonomy evidence: they block a level up until a new run of approvals is earned."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from exosuit.domain.autonomy import GateKind
from exosuit.domain.contracts import Gate, TaskEvent
from exosuit.domain.earned_autonomy import Thresholds
from exosuit.domain.task import EventAction
from exosuit.storage import decision_facts as facts
from exosuit.storage.db import Database, utcnow
from exosuit.storage.suggestions import Suggestions
from exosuit.storage.tables import TaskTemplate, Team


async def test_an_unknown_tool_call_blocks_a_level_up_until_a_new_run(database: Database) -> None:
    unique = uuid.uuid4().hex[:8]
    team, template = f"ops-{unique}", f"weekly-{unique}"
    task: dict[str, Any] = {"id": f"t_{unique}", "team": team, "template": template, "autonomy": "guarded"}
    moment = [utcnow() - timedelta(hours=1)]

    def later() -> datetime:
        moment[0] += timedelta(seconds=5)
        return moment[0]

    def setup(session: Session) -> None:
        session.add(Team(name=team, max_autonomy="autonomous"))
        session.flush()
        session.add(
            TaskTemplate(
                name=template, team=team, title="t", instructions="i", autonomy="guarded", created_by="x"
            )
        )
        session.commit()

    def approvals(count: int) -> Callable[[Session], None]:
        def work(session: Session) -> None:
            conn = session.connection()
            for _ in range(count):
                opened_at = later()
                gate = Gate(f"g_{uuid.uuid4().hex[:12]}", GateKind.PLAN, None, opened_at, opened_at, False)
                facts.opened(conn, task, gate, opened_at)
                approved = {"action": "approve"}
                facts.decided(
                    conn, gate.id, actor="user:a@x", data=approved, now=later(), proposed="p", final="p"
                )
            session.commit()

        return work

    def unknown_tool_call(session: Session) -> None:
        event = TaskEvent(task["id"], "k", "worker", EventAction.TOOL_UNKNOWN, step_id=f"s_{unique}")
        facts.incident(session.connection(), task, event, later())
        session.commit()

    suggestions = Suggestions(database, Thresholds(run=3, window=10, rejects=5))
    await database.write(setup)
    await database.write(approvals(3))
    await database.write(unknown_tool_call)
    assert await suggestions.refresh([team]) == []
    (evidence,) = await suggestions.evidence([team])
    assert [o.action for o in evidence.outcomes] == ["approve"] * 3 + ["incident"]

    await database.write(approvals(3))
    (suggestion,) = await suggestions.refresh([team])
    assert (suggestion.from_level, suggestion.to_level) == ("guarded", "delegated")
    assert suggestion.evidence["incidents"] == 1
    assert suggestion.evidence["run"] == 3


async def test_each_template_reads_its_own_latest_outcomes_in_one_read(database: Database) -> None:
    unique = uuid.uuid4().hex[:8]
    team = f"ops-{unique}"
    names = [f"{n}-{unique}" for n in ("busy", "shaky", "idle")]
    moment = [utcnow() - timedelta(hours=1)]

    def later() -> datetime:
        moment[0] += timedelta(seconds=5)
        return moment[0]

    def task(name: str) -> dict[str, Any]:
        return {"id": f"t_{uuid.uuid4().hex[:12]}", "team": team, "template": name, "autonomy": "guarded"}

    def setup(session: Session) -> None:
        session.add(Team(name=team, max_autonomy="autonomous"))
        session.flush()
        for name in names:
            session.add(
                TaskTemplate(
                    name=name, team=team, title="t", instructions="i", autonomy="guarded", created_by="x"
                )
            )
        session.commit()

    def history(session: Session) -> None:
        conn = session.connection()
        for name, actions in (
            (names[0], ["reject"] + ["approve"] * 5),
            (names[1], ["edit", "unknown", "approve"]),
        ):
            for action in actions:
                if action == "unknown":
                    event = TaskEvent(f"t_{unique}", "k", "worker", EventAction.TOOL_UNKNOWN, step_id="s_x")
                    facts.incident(conn, task(name), event, later())
                    continue
                opened_at = later()
                gate = Gate(f"g_{uuid.uuid4().hex[:12]}", GateKind.PLAN, None, opened_at, opened_at, False)
                facts.opened(conn, task(name), gate, opened_at)
                decision = {"action": action}
                facts.decided(
                    conn, gate.id, actor="user:a@x", data=decision, now=later(), proposed="p", final="q"
                )
        session.commit()

    suggestions = Suggestions(database, Thresholds(run=1, window=1, rejects=5))  # looks back 4 gates
    await database.write(setup)
    await database.write(history)
    found = {e.template: [o.action for o in e.outcomes] for e in await suggestions.evidence([team])}
    assert found == {
        names[0]: ["approve"] * 4,  # the latest 4 of 6, oldest first
        names[1]: ["edit", "incident", "approve"],
        names[2]: [],
    }
    first = await suggestions.refresh([team])
    again = await suggestions.refresh([team])  # nothing new: nothing stored, the same suggestions
    assert [(s.id, s.template, s.to_level) for s in again] == [(s.id, s.template, s.to_level) for s in first]
    assert {s.template for s in first} == {names[0], names[1]}
