"""A new autonomy suggestion is told to the team's admins through the team's notification
targets (here an Apprise json:// URL on a loopback receiver), once, and to no one else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from exosuit.storage.notifications import Notifications
from tests.support.decision_history import LEARNING, TOOL_TOKEN, TOOL_TOKEN_ENV, seed, tools_file
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import System, running_system, until
from tests.support.webhook_receiver import FAST, Receiver

SUGGESTION = "Autonomy suggestion"


@pytest.fixture
async def notified(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[System, Receiver]]:
    monkeypatch.setenv(TOOL_TOKEN_ENV, TOOL_TOKEN)
    receiver = await Receiver().start()
    async with running_system(
        temporal_env.client,
        model_server,
        sqlite_db,
        ScriptedModel(),
        tmp_path,
        tools_file=tools_file(tmp_path),
        **LEARNING,
        **FAST,
    ) as system:
        url = f"json://127.0.0.1:{receiver.port}/notify/{{email}}"
        await Notifications(system.db).set_targets(system.team, [url])
        yield system, receiver
    await receiver.stop()


def suggestions_told(receiver: Receiver) -> dict[str, list[str]]:
    """Who was told of suggestions, and what (title and body)."""
    got: dict[str, list[str]] = {}
    for hit in receiver.delivered("/notify/"):
        message = hit.json()
        text = f"{message['title']}\n{message['message']}"
        if SUGGESTION in text:
            got.setdefault(unquote(hit.path.removeprefix("/notify/")), []).append(text)
    return got


async def test_a_new_suggestion_is_told_to_the_teams_admins_once(notified: tuple[System, Receiver]) -> None:
    system, receiver = notified
    history = await seed(system)

    async def nothing_pending() -> bool:
        return not await Notifications(system.db).pending(system.team)

    response = await history.approver.http.get("/api/v1/autonomy/suggestions")  # the rule runs
    assert response.status_code == 200, response.text
    moves = {(s["template"], s["from"], s["to"]) for s in response.json()["items"]}
    assert moves == {(history.steady, "guarded", "delegated"), (history.shaky, "supervised", "manual")}
    await receiver.wait_for(lambda: history.admin.email in suggestions_told(receiver))
    await until(nothing_pending, "every queued notification to be sent")
    told = suggestions_told(receiver)
    assert set(told) == {history.admin.email}, told  # the admin; not the approver
    (digest,) = told[history.admin.email]
    assert f"{history.steady} at guarded → delegated: 3 of the last 3 plan gates approved unchanged" in digest
    assert f"{history.shaky} at supervised → manual: 2 of the last 2 gates rejected" in digest
    assert f"/dashboard?team={system.team}" in digest

    await history.admin.http.get("/api/v1/autonomy/suggestions")  # looked at again: nothing new
    assert await nothing_pending()
    assert suggestions_told(receiver) == told
