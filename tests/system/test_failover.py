"""Provider failover ("transfer switch") and circuit breaking against two real HTTP servers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from exosuit.llm.providers import parse_providers
from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import System, running_system


@pytest.fixture(scope="module")
async def backup_server() -> AsyncIterator[ModelServer]:
    """A second scripted provider on a port of its own."""
    server = ModelServer()
    await server.start()
    yield server
    await server.stop()


class Providers:
    def __init__(self, primary: ScriptedModel, secondary: ScriptedModel) -> None:
        self.primary, self.secondary = primary, secondary


@pytest.fixture
async def two_providers(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    backup_server: ModelServer,
    sqlite_db: Database,
    tmp_path: Path,
) -> AsyncIterator[tuple[System, Providers]]:
    primary, secondary = ScriptedModel(), ScriptedModel()
    secondary.usage = (100, 50)
    (tmp_path / "providers.toml").write_text(
        f"""
[[providers]]
name = "primary"
base_url = "{model_server.register(primary)}"
model = "primary-model"
timeout_seconds = 1.0
price_input_per_million = 1.0
price_output_per_million = 2.0

[[providers]]
name = "secondary"
base_url = "{backup_server.register(secondary)}"
model = "secondary-model"
price_input_per_million = 3.0
price_output_per_million = 6.0
"""
    )
    async with running_system(temporal_env.client, model_server, sqlite_db, primary, tmp_path) as system:
        yield system, Providers(primary, secondary)


@pytest.mark.parametrize("failure", ["500", "429", "timeout"])
async def test_a_failing_provider_fails_over_to_the_next(
    two_providers: tuple[System, Providers], failure: str
) -> None:
    system, providers = two_providers
    if failure == "timeout":
        providers.primary.delay = 3.0  # the primary's timeout is 1 s
    else:
        providers.primary.failures.append(int(failure))
    user = await system.user("approver")
    started = time.perf_counter()
    task = await user.wait_gate((await user.submit(system.team, "guarded"))["id"], "plan")
    elapsed = time.perf_counter() - started
    assert len(providers.secondary.prompts("plan")) == 1
    audit = (await user.http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
    planned = next(e for e in audit if e["action"] == "task.planned")
    assert planned["data"]["provider"] == "secondary"
    assert planned["data"]["model"] == "scripted-model"
    assert planned["data"]["cost_usd"] == pytest.approx((100 * 3.0 + 50 * 6.0) / 1e6)
    # Failover within one activity attempt, no Temporal backoff: a retry would ask the primary
    # again (its breaker needs three failures). Counted, not timed: the first task on a cold
    # worker took 1.18 s on a busy machine.
    if failure != "timeout":
        assert len(providers.primary.requests) == 1, elapsed


async def test_a_provider_that_keeps_failing_is_skipped_for_a_while(
    two_providers: tuple[System, Providers],
) -> None:
    system, providers = two_providers
    providers.primary.failures.extend([500] * 10)
    user = await system.user("approver")
    task = await user.submit(system.team, "delegated")  # plan and 2 steps, no gates
    task = await user.wait_done(task["id"])
    assert task["status"] == "completed"
    assert len(providers.primary.requests) == 3  # the breaker opened after three failures
    assert len(providers.secondary.requests) == 3
    assert [s["provider"] for s in task["steps"]] == ["secondary", "secondary"]
    # Usage totals are the sum of what the answering provider reported.
    assert task["usage"]["prompt_tokens"] == 3 * 100
    assert task["usage"]["completion_tokens"] == 3 * 50


async def test_when_every_provider_is_down_temporal_retries_and_the_task_survives(
    two_providers: tuple[System, Providers],
) -> None:
    system, providers = two_providers
    providers.primary.failures.extend([503])
    providers.secondary.failures.extend([503])
    user = await system.user("approver")
    task = await user.wait_gate((await user.submit(system.team, "guarded"))["id"], "plan")
    assert task["steps"]
    assert len(providers.primary.requests) + len(providers.secondary.requests) >= 3


def test_providers_file_is_checked() -> None:
    with pytest.raises(ValueError, match="needs a name and a base_url"):
        parse_providers({"providers": [{"name": "x"}]})
    with pytest.raises(ValueError, match="unknown keys: api_key"):
        parse_providers({"providers": [{"name": "x", "base_url": "http://h", "api_key": "secret"}]})
    with pytest.raises(ValueError, match="dialect"):
        parse_providers({"providers": [{"name": "x", "base_url": "http://h", "dialect": "xml"}]})
