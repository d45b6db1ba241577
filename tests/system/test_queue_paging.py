"""The review lists at size: the queue a page at a time, /approvals' page shape, the index."""

from __future__ import annotations

import html
import itertools
import re
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import inspect

from exosuit.domain.submissions import new_task_id
from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import Step, Task
from tests.support.pages import HTMX, signed_in
from tests.support.system import System
from web.pages.queue import PAGE_SIZE

_OPENED = itertools.count()  # seconds after a day ago: every seeded gate opens after the last


async def seed_gates(db: Database, team: str, count: int, **gate: Any) -> list[str]:
    """`count` tasks of `team` with an open gate on their second step, as the workflow leaves
    them (oldest first); `gate` overrides the gate's columns. Their ids, oldest gate first."""
    day_ago, tasks, steps = utcnow() - timedelta(days=1), [], []
    for n in range(count):
        task_id = new_task_id()
        step_ids = [f"s_{uuid.uuid4().hex[:16]}" for _ in range(2)]
        steps += [
            Step(id=s, task_id=task_id, index=i, title=f"Step {i + 1}", instructions="Do it.").model_dump()
            for i, s in enumerate(step_ids)
        ]
        columns = {
            "gate_id": f"g_{uuid.uuid4().hex[:16]}",
            "gate_kind": "step",
            "gate_step_id": step_ids[1],
            "gate_opened_at": day_ago + timedelta(seconds=next(_OPENED)),
            "gate_risk": "low",
        } | gate
        task = Task(
            id=task_id,
            title=f"Seeded {n:03d}",
            instructions="Seeded.",
            team=team,
            submitted_by="someone@example.com",
            autonomy="supervised",
            status="awaiting_approval",
            **columns,
        )
        tasks.append(task.model_dump())
    async with db.engine.begin() as connection:
        await connection.execute(Task.__table__.insert(), tasks)  # type: ignore[attr-defined]
        await connection.execute(Step.__table__.insert(), steps)  # type: ignore[attr-defined]
    return [t["id"] for t in tasks]


def listed(board: str) -> list[str]:
    return re.findall(r'class="item[^"]*" data-task="([^"]+)"', board)


def link(board: str, css: str) -> str | None:
    found = re.search(rf'<a class="{css}"[^>]* href="([^"]+)"', board)
    return html.unescape(found.group(1)) if found else None


async def test_the_queue_shows_one_page_and_the_next_by_cursor(ui_system: System) -> None:
    approver, _ = await signed_in(ui_system, "approver")
    ids = await seed_gates(ui_system.db, ui_system.team, PAGE_SIZE + 7)
    first = (await approver.http.get("/queue")).text
    assert listed(first) == ids[:PAGE_SIZE]
    assert f"{PAGE_SIZE} shown of {PAGE_SIZE + 7} waiting" in first
    assert 'class="item selected" data-task="' + ids[0] in first
    next_page = link(first, "next-page")
    assert next_page is not None and link(first, "first-page") is None
    second = (await approver.http.get(next_page, headers=HTMX)).text
    assert second.lstrip().startswith('<div id="board"')
    assert listed(second) == ids[PAGE_SIZE:]
    assert link(second, "next-page") is None and link(second, "first-page") == "/queue?"
    assert 'class="item selected" data-task="' + ids[PAGE_SIZE] in second
    poll = re.search(r'id="board" hx-get="([^"]+)"', second)
    assert poll and "cursor=" in poll.group(1)  # the live poll watches the page shown
    assert (await approver.http.get(html.unescape(poll.group(1)), headers=HTMX)).status_code == 204
    garbled = await approver.http.get("/queue", params={"cursor": "not-a-cursor"})
    assert garbled.status_code == 200 and listed(garbled.text) == ids[:PAGE_SIZE]  # the first page


async def test_queue_filters_hold_across_pages(ui_system: System) -> None:
    approver, _ = await signed_in(ui_system, "approver")
    team = ui_system.team
    low = await seed_gates(ui_system.db, team, PAGE_SIZE + 2)
    high = await seed_gates(ui_system.db, team, PAGE_SIZE + 3, gate_risk="high")
    plans = await seed_gates(ui_system.db, team, 2, gate_kind="plan", gate_step_id=None, gate_risk="high")
    first = (await approver.http.get("/queue", params={"risk": "high", "team": team})).text
    assert listed(first) == high[:PAGE_SIZE]
    assert f"of {PAGE_SIZE + 5} waiting" in first
    next_page = link(first, "next-page")
    assert next_page is not None and "risk=high" in next_page
    assert listed((await approver.http.get(next_page)).text) == high[PAGE_SIZE:] + plans
    only_plans = (await approver.http.get("/queue", params={"kind": "plan"})).text
    assert listed(only_plans) == plans and link(only_plans, "next-page") is None
    assert listed((await approver.http.get("/queue", params={"risk": "low"})).text) == low[:PAGE_SIZE]


async def test_an_item_past_the_first_page_is_shown_with_its_full_context(ui_system: System) -> None:
    approver, email = await signed_in(ui_system, "approver")
    ids = await seed_gates(ui_system.db, ui_system.team, PAGE_SIZE + 5)
    later = ids[-1]
    page = (await approver.http.get("/queue", params={"item": later})).text
    assert listed(page) == ids[:PAGE_SIZE]  # the first page, and beside it the item asked for
    assert 'aria-label="Selected item"' in page and f"Seeded {PAGE_SIZE + 4:03d}" in page
    assert "Approve step 2 (Step 2) before it runs." in page
    poll = re.search(r'id="board" hx-get="([^"]+)"', page)
    assert poll and f"item={later}" in html.unescape(poll.group(1))
    excluded = await seed_gates(ui_system.db, ui_system.team, 1, gate_excluded=email)
    shown = (await approver.http.get("/queue", params={"item": excluded[0]})).text
    assert 'class="item selected" data-task="' + ids[0] in shown  # four-eyes: not theirs to see here


async def test_approvals_pages_carry_task_gate_and_step(system: System) -> None:
    approver = await system.user("approver")
    ids = await seed_gates(system.db, system.team, 60)
    plan = await seed_gates(system.db, system.team, 1, gate_kind="plan", gate_step_id=None)
    await seed_gates(system.db, system.team, 3, gate_excluded=approver.email)  # four-eyes
    body = (await approver.http.get("/api/v1/approvals")).json()
    assert set(body) == {"items", "next_cursor"} and len(body["items"]) == 50  # the default page
    for item in body["items"]:
        assert set(item) == {"task", "gate", "step"}
        task, gate, step = item["task"], item["gate"], item["step"]
        assert task["open_gate"] == gate and [s["index"] for s in task["steps"]] == [0, 1]
        assert step == task["steps"][1] and step["id"] == gate["step_id"]
    rest = (await approver.http.get("/api/v1/approvals", params={"cursor": body["next_cursor"]})).json()
    assert rest["next_cursor"] is None
    items = body["items"] + rest["items"]
    assert [i["task"]["id"] for i in items] == ids + plan  # oldest first, each once, none excluded
    assert items[-1]["step"] is None and items[-1]["gate"]["kind"] == "plan"


async def test_the_open_gate_index_is_migrated_and_serves_the_page(database: Database) -> None:
    async with database.engine.connect() as connection:
        indexes = await connection.run_sync(lambda sync: inspect(sync).get_indexes("task"))
        by_name = {i["name"]: i["column_names"] for i in indexes}
        assert by_name["ix_task_team_open_gates"][:3] == ["team", "gate_opened_at", "id"]
        assert "ix_task_gate_opened" not in by_name  # replaced: it held every closed task too
        if connection.dialect.name == "sqlite":
            plan = await connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM task WHERE team = 'x' AND gate_id IS NOT NULL"
                " ORDER BY gate_opened_at, id LIMIT 51"
            )
            assert "COVERING INDEX ix_task_team_open_gates" in " ".join(r[-1] for r in plan)
