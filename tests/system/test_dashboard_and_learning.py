"""The dashboard, earned autonomy and the decisions export, on a history made through the API."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from exosuit.storage import admin_log
from exosuit.storage.db import Database
from tests.support.cli import run_cli
from tests.support.decision_history import (
    LEARNING,
    TOOL_TOKEN,
    TOOL_TOKEN_ENV,
    History,
    nearest_rank,
    parse_at,
    seed,
    tools_file,
)
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import System, running_system


@pytest.fixture
async def learning_system(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[System]:
    monkeypatch.setenv(TOOL_TOKEN_ENV, TOOL_TOKEN)
    async with running_system(
        temporal_env.client,
        model_server,
        database,
        ScriptedModel(),
        tmp_path,
        tools_file=tools_file(tmp_path),
        **LEARNING,
    ) as system:
        yield system


@pytest.fixture
async def history(learning_system: System) -> History:
    return await seed(learning_system)


def decisions_in(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gate.decided events people made, each with its gate's time to decision."""
    opened = {e["data"]["gate_id"]: parse_at(e["at"]) for e in events if e["action"] == "gate.opened"}
    decided = [e for e in events if e["action"] == "gate.decided" and e["actor"].startswith("user:")]
    return [
        e | {"seconds": (parse_at(e["at"]) - opened[e["data"]["gate_id"]]).total_seconds()} for e in decided
    ]


async def test_the_dashboards_figures_are_those_the_audit_events_give(history: History) -> None:
    response = await history.approver.http.get("/api/v1/stats", params={"team": history.team})
    assert response.status_code == 200, response.text
    stats = response.json()
    decided = decisions_in(await history.audit())
    actions = Counter(e["data"]["action"] for e in decided)
    seconds = [e["seconds"] for e in decided]
    assert stats["decisions"] == len(decided) == 9
    assert stats["by_action"] == {"approve": actions["approve"], "edit": 2, "reject": 3, "answer": 0}
    assert stats["time_to_decision_seconds"]["p50"] == pytest.approx(nearest_rank(seconds, 0.5), abs=1e-6)
    assert stats["time_to_decision_seconds"]["p90"] == pytest.approx(nearest_rank(seconds, 0.9), abs=1e-6)
    tasks = [await history.admin.task(task_id) for task_id in history.tasks]
    assert stats["cost_usd"] == pytest.approx(sum(t["usage"]["cost_usd"] for t in tasks), abs=1e-6)
    assert stats["tokens"] == sum(
        t["usage"]["prompt_tokens"] + t["usage"]["completion_tokens"] for t in tasks
    )
    assert stats["open_gates"] == 1
    assert stats["rates"]["template"][history.steady] == {"approve": 3, "edit": 0, "revise": 0, "reject": 0}
    assert stats["rates"]["kind"]["step"] == {"approve": 1, "edit": 1, "revise": 1, "reject": 0}
    assert stats["planners"] == {"model": 7}
    assert stats["plan_edit_rate"] == pytest.approx(1 / 6)
    # Over whole UTC days the counts come from the daily roll-ups the writer kept: the same.
    today = datetime.combine(datetime.now(UTC).date(), time(), UTC)
    whole_days = {
        "since": (today - timedelta(days=1)).isoformat(),
        "until": (today + timedelta(days=1)).isoformat(),
    }
    response = await history.approver.http.get("/api/v1/stats", params={"team": history.team} | whole_days)
    assert response.status_code == 200, response.text
    rolled_up = response.json()
    for key in (
        "decisions",
        "by_action",
        "time_to_decision_seconds",
        "per_day",
        "rates",
        "time_by_team_and_kind",
        "planners",
    ):
        assert rolled_up[key] == stats[key], key
    assert stats["time_to_decision_seconds"]["exact"] is True


async def test_figures_are_for_approvers_of_the_team(history: History, learning_system: System) -> None:
    member = await learning_system.user("member")
    assert (await member.http.get("/api/v1/stats")).status_code == 403
    outsider = await learning_system.user("approver", team="other-team")
    response = await outsider.http.get("/api/v1/stats", params={"team": history.team})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_unchanged_approvals_earn_a_level_up_and_rejects_a_level_down(history: History) -> None:
    response = await history.approver.http.get("/api/v1/autonomy/suggestions")
    assert response.status_code == 200, response.text
    found = {s["template"]: s for s in response.json()["items"]}
    assert (found[history.steady]["from"], found[history.steady]["to"]) == ("guarded", "delegated")
    assert found[history.steady]["evidence"]["summary"] == "3 of the last 3 plan gates approved unchanged"
    assert (found[history.shaky]["from"], found[history.shaky]["to"]) == ("supervised", "manual")
    assert found[history.shaky]["evidence"]["summary"] == "2 of the last 2 gates rejected"


async def test_suggestions_are_shown_as_stored_between_refreshes(learning_system: System) -> None:
    watcher = await learning_system.user("approver")
    response = await watcher.http.get("/api/v1/autonomy/suggestions")  # the rule runs: nothing yet
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
    await seed(learning_system)
    # The evidence now earns a level up and a level down, but the team's suggestions were
    # refreshed less than EXOSUIT_EARNED_AUTONOMY_REFRESH_SECONDS ago: the stored ones are shown.
    assert (await watcher.http.get("/api/v1/autonomy/suggestions")).json()["items"] == []


async def test_accepting_sets_the_templates_default_within_the_cap_and_is_audited(
    history: History, learning_system: System
) -> None:
    items = (await history.approver.http.get("/api/v1/autonomy/suggestions")).json()["items"]
    up = next(s for s in items if s["template"] == history.steady)
    accept = f"/api/v1/autonomy/suggestions/{up['id']}/accept"
    assert (await history.approver.http.post(accept)).status_code == 403  # admins decide
    await learning_system.set_team(max_autonomy="guarded")
    refused = await history.admin.http.post(accept)
    assert refused.status_code == 422, refused.text  # never above the team's cap
    assert (await history.admin.http.get(f"/api/v1/templates/{history.steady}")).json()[
        "autonomy"
    ] == "guarded"
    await learning_system.set_team(max_autonomy="delegated")
    accepted = await history.admin.http.post(accept)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert (await history.admin.http.get(f"/api/v1/templates/{history.steady}")).json()[
        "autonomy"
    ] == "delegated"
    assert (await history.admin.http.post(accept)).status_code == 409  # decided once
    chain = await admin_log.events(learning_system.db, "template.autonomy_changed")
    mine = [e for e in chain if e.data["suggestion_id"] == up["id"]]
    assert [(e.actor, e.data["from"], e.data["to"]) for e in mine] == [
        (f"user:{history.admin.email}", "guarded", "delegated")
    ]
    assert admin_log.verify(await admin_log.events(learning_system.db)) is None
    remaining = (await history.approver.http.get("/api/v1/autonomy/suggestions")).json()["items"]
    assert history.steady not in {s["template"] for s in remaining}  # a new run starts from here


async def test_a_dismissed_suggestion_moves_nothing_and_stays_away(history: History) -> None:
    items = (await history.approver.http.get("/api/v1/autonomy/suggestions")).json()["items"]
    down = next(s for s in items if s["template"] == history.shaky)
    response = await history.admin.http.post(f"/api/v1/autonomy/suggestions/{down['id']}/dismiss")
    assert response.status_code == 200, response.text
    assert (await history.admin.http.get(f"/api/v1/templates/{history.shaky}")).json()[
        "autonomy"
    ] == "supervised"
    items = (await history.approver.http.get("/api/v1/autonomy/suggestions")).json()["items"]
    assert history.shaky not in {s["template"] for s in items}


async def test_the_export_matches_the_audit_line_by_line_and_carries_no_secret(
    history: History, learning_system: System
) -> None:
    member = await learning_system.user("member")
    assert (await member.http.get("/api/v1/exports/decisions")).status_code == 403
    assert (await history.approver.http.get("/api/v1/exports/decisions")).status_code == 403
    response = await history.admin.http.get("/api/v1/exports/decisions", params={"team": history.team})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in response.text.splitlines()]
    decided = {e["data"]["gate_id"]: e for e in decisions_in(await history.audit())}
    assert {r["gate_id"] for r in records} == set(decided)
    for record in records:
        event = decided[record["gate_id"]]
        revise = event["data"].get("on_reject") == "revise"
        assert record["verdict"] == ("revise" if revise else event["data"]["action"])
        assert record["reason"] == event["data"].get("reason")
        assert (record["audit"]["seq"], record["audit"]["hash"]) == (event["seq"], event["hash"])
        assert record["seconds"] == pytest.approx(event["seconds"], abs=1e-6)
        assert record["decided_by"] == event["actor"]
    edits = [r for r in records if r["verdict"] == "edit"]
    assert {r["kind"] for r in edits} == {"plan", "step"}
    step_edit = next(r for r in edits if r["kind"] == "step")
    assert step_edit["edit"]["text"] == "Write a first draft of three lines."
    assert "+Write a first draft of three lines." in step_edit["edit"]["diff"]
    secrets = [TOOL_TOKEN, learning_system.settings.resolved_secret_key]
    assert not [s for s in secrets if s in response.text]
    assert "[masked]" in response.text  # the token was in the task's instructions
    exported = await admin_log.events(learning_system.db, "decisions.exported")
    assert any(e.actor == f"user:{history.admin.email}" and e.team == history.team for e in exported)


async def test_the_chat_export_answers_with_the_text_people_kept(history: History) -> None:
    response = await history.admin.http.get(
        "/api/v1/exports/decisions", params={"team": history.team, "format": "chat", "kind": "step"}
    )
    assert response.status_code == 200, response.text
    examples = [json.loads(line) for line in response.text.splitlines()]
    assert [e["metadata"]["verdict"] for e in examples] == ["edit", "approve"]  # the revise taught nothing
    assert examples[0]["messages"][-1] == {
        "role": "assistant",
        "content": "Write a first draft of three lines.",
    }
    assert examples[0]["messages"][0]["role"] == "user"


async def test_the_cli_exports_the_same_lines_and_is_audited(
    history: History, learning_system: System
) -> None:
    settings = learning_system.settings
    env = {
        "EXOSUIT_DATABASE_URL": learning_system.db.engine.url.render_as_string(hide_password=False),
        "EXOSUIT_SECRET_KEY": settings.resolved_secret_key,
        "EXOSUIT_DATA_DIR": str(settings.data_dir),
        "EXOSUIT_TOOLS_FILE": str(settings.tools_file),
        "EXOSUIT_LLM_API_KEY": "test",
    }
    code, out = await run_cli("export", "decisions", "--team", history.team, "--format", "chat", env=env)
    assert code == 0, out
    over_http = await history.admin.http.get(
        "/api/v1/exports/decisions", params={"team": history.team, "format": "chat"}
    )
    assert [json.loads(line) for line in out.splitlines()] == [
        json.loads(line) for line in over_http.text.splitlines()
    ]
    assert TOOL_TOKEN not in out
    exported = await admin_log.events(learning_system.db, "decisions.exported")
    assert any(e.actor.startswith("cli:") and e.data["format"] == "chat" for e in exported)
