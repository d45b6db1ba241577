"""/metrics on the web port, and the worker's metrics port: scraped, parsed, and matched
against what the test did."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from exosuit.processes import free_port
from exosuit.storage.db import Database
from tests.support.flows import approve_all
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import System, running_system


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_gates_tasks_usage_and_decisions(system: System) -> None:
    submitter, approver = await system.user("member"), await system.user("approver")
    done = await submitter.submit(system.team, "supervised")
    met, _ = await approve_all(approver, done["id"])  # plan, step, step
    waiting = await approver.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    assert (await submitter.decide(waiting, "approve")).status_code == 403  # a member: refused
    async with httpx.AsyncClient(base_url=system.base_url) as anonymous:
        scraped = await anonymous.get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    metrics = samples(scraped.text)
    team = system.team
    assert value(metrics, "exosuit_decisions_total", action="approve", outcome="ok") == len(met) == 3
    assert value(metrics, "exosuit_decisions_total", action="approve", outcome="Forbidden") == 1
    assert value(metrics, "exosuit_gate_wait_seconds_count", kind="plan") == 1
    assert value(metrics, "exosuit_open_gates", kind="plan", team=team) == 1
    assert value(metrics, "exosuit_tasks", status="completed", team=team) == 1
    assert value(metrics, "exosuit_tasks", status="awaiting_approval", team=team) == 1
    assert value(metrics, "exosuit_model_calls_total", team=team) == 4  # two plans, two steps
    assert value(metrics, "exosuit_prompt_tokens_total", team=team) == 44  # 11 a call
    assert value(metrics, "exosuit_cost_usd_total", team=team) > 0


async def test_the_worker_serves_its_own_and_the_sdks_metrics(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> None:
    port = free_port()
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path, worker_metrics_port=port
    ) as system:
        user = await system.user("approver")
        await user.wait_done((await user.submit(system.team, "delegated"))["id"])
        async with httpx.AsyncClient() as http:
            for _ in range(50):  # the SDK exports on its own schedule
                metrics = samples((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
                calls = sum(
                    v for (name, _), v in metrics.items() if name == "exosuit_worker_model_calls_total"
                )
                if calls >= 3:
                    break
                await asyncio.sleep(0.2)
    assert calls == 3, metrics  # a plan and two steps
    assert any(name.startswith("temporal_") for name, _ in metrics)  # the SDK's own
