"""Template names belong to their team: another team's name is neither revealed nor taken."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.conftest import running_system
from tests.support.model_server import ModelServer, ScriptedModel

TEMPLATE = {"title": "Weekly report", "instructions": "Draft the weekly report.", "params": []}


async def test_two_teams_may_each_have_a_template_of_the_same_name(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path, with_worker=False
    ) as system:
        other_team = f"{system.team}-b"
        await system.directory.ensure_team(other_team)
        ours, theirs = await system.user("approver"), await system.user("approver", team=other_team)
        name = f"weekly-{system.team}"
        first = await ours.http.post("/api/v1/templates", json=TEMPLATE | {"name": name, "team": system.team})
        second = await theirs.http.post(
            "/api/v1/templates", json=TEMPLATE | {"name": name, "team": other_team}
        )
        assert first.status_code == 201 and second.status_code == 201, second.text
        again = await ours.http.post("/api/v1/templates", json=TEMPLATE | {"name": name, "team": system.team})
        assert again.status_code == 422  # unique within the team
        mine = (await theirs.http.get(f"/api/v1/templates/{name}")).json()
        assert mine["team"] == other_team
        run = await theirs.http.post(f"/api/v1/templates/{name}/runs", json={"params": {}})
        assert run.status_code == 201 and run.json()["team"] == other_team
        schedule = await theirs.http.post(
            "/api/v1/schedules", json={"template": name, "params": {}, "cron": "0 3 1 1 *"}
        )
        assert schedule.status_code == 201 and schedule.json()["team"] == other_team
        await theirs.http.delete(f"/api/v1/schedules/{schedule.json()['id']}")
