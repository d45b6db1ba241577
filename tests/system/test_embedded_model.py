"""The embedded default model, end to end on the real SmolLM2-135M server (no network).

Skipped only when the model package is absent; `make test` installs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import func, select
from temporalio.testing import WorkflowEnvironment

from exosuit.llm import embedded as embedded_model
from exosuit.llm.embedded import EmbeddedModel
from exosuit.storage.db import Database
from exosuit.storage.tables import ModelCall
from tests.support.flows import MAX_GATES
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import System, running_system

SLOW = 240.0  # seconds: a 135M model decodes ~15-60 tokens/s on 2 cores


@pytest.fixture(scope="module")
async def smollm2(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedModel]:
    if not embedded_model.available():
        pytest.skip("the embedded model package is not installed (`make setup` installs it)")
    model = await EmbeddedModel.start(tmp_path_factory.mktemp("model") / "model.log")
    yield model
    await model.stop()


@pytest.fixture
async def offline_system(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    smollm2: EmbeddedModel,
    tmp_path: Path,
) -> AsyncIterator[System]:
    async with running_system(
        temporal_env.client,
        model_server,
        sqlite_db,
        ScriptedModel(),
        tmp_path,
        endpoint=smollm2.base_url,
        **embedded_model.SETTINGS,
    ) as system:
        yield system


async def test_embedded_model_runs_the_steps_the_rules_planner_made(offline_system: System) -> None:
    user = await offline_system.user("approver")
    task = await user.submit(
        offline_system.team,
        "guarded",
        title="Team lunch",
        instructions="Pick a restaurant for a team lunch of 8 people, then draft the invitation.",
    )
    task = await user.wait_gate(task["id"], "plan", within=10)  # no model call before the plan
    assert [s["title"] for s in task["steps"]] == ["Pick a restaurant", "Draft the invitation"]
    audit = (await user.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    planned = next(e for e in audit if e["action"] == "task.planned")
    assert planned["actor"] == "system" and planned["data"]["planner"] == "rules"
    assert "plans with rules" in planned["data"]["reason"]
    assert "plan.invalid" not in [e["action"] for e in audit]
    await user.approve(task)
    for _ in range(MAX_GATES):
        task = await user.wait(
            task["id"],
            lambda t: t["status"] in ("completed", "failed") or t["open_gate"] is not None,
            "the next gate or the end",
            within=SLOW,
        )
        if task["open_gate"] is None:
            break
        await user.approve(task)
    else:
        raise AssertionError(f"more than {MAX_GATES} gates: {task}")
    assert task["status"] == "completed", task["error"]
    assert all(s["output"] for s in task["steps"])
    assert task["steps"][0]["model"] == "SmolLM2-135M-Instruct"
    async with offline_system.db.session() as session:
        row = (
            await session.exec(
                select(func.sum(ModelCall.prompt_tokens), func.sum(ModelCall.completion_tokens)).where(
                    ModelCall.task_id == task["id"]
                )
            )
        ).one()
    assert (task["usage"]["prompt_tokens"], task["usage"]["completion_tokens"]) == tuple(row)
    assert task["usage"]["completion_tokens"] > 0


async def test_llama_cpp_dialect_sends_a_json_object_schema(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    scripted = ScriptedModel(plan=[
        {"title": t, "instructions": f"Do {t}.", "kind": "llm", "tool": None, "risk": "low"}
        for t in ("One", "Two", "Three")
    ])  # fmt: skip
    asked_to_plan = embedded_model.SETTINGS | {"llm_plan_with": "model"}
    async with running_system(
        temporal_env.client, model_server, sqlite_db, scripted, tmp_path, **asked_to_plan
    ) as system:
        user = await system.user("approver")
        task = await user.submit(system.team, "guarded")
        await user.wait_gate(task["id"], "plan")
    plan_request = next(r for r in scripted.requests if r.get("response_format"))
    assert plan_request["response_format"]["type"] == "json_object"
    schema = plan_request["response_format"]["schema"]
    assert schema["required"] == ["steps"]
    steps = schema["properties"]["steps"]
    assert (steps["minItems"], steps["maxItems"]) == (1, 7)
    # ask_human: a planned question is a step too (docs/review-team.md, Questions)
    assert steps["items"]["properties"]["tool"] == {"enum": ["ask_human", "word_count", "write_file", None]}
    assert plan_request["max_tokens"] == embedded_model.SETTINGS["llm_plan_max_tokens"]
