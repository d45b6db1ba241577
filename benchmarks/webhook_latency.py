"""Webhook delivery: latency from a gate opening to the receiver, and deliveries per second
sustained, measured side by side with the API's own answer time, in one run.

The whole stack in one process as `exosuit dev` runs it (embedded Temporal dev server with
its tuned dynamic config, sealed payloads, SQLite, one worker, the web app), the scripted
model server from the test suite, and the tests' own webhook receiver on loopback.

- latency: tasks one after another; for each, gate.opened's `opened_at` (the workflow's
  clock) to the moment the receiver has the signed request (wall clock, same machine);
  beside it, how long POST /tasks and POST /decisions take to answer.
- sustained: with the receiver down, a burst of tasks to a team with `--fanout` subscriptions
  (each event is that many deliveries) leaves a backlog in the outbox, every queue retrying
  (at most 1 s apart here); the receiver comes back and the backlog is timed from then to its
  last delivery: the outbox's workflows and activities, not the rate at which tasks are made.

    .venv/bin/python benchmarks/webhook_latency.py [--tasks 30] [--burst 30] [--fanout 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exosuit.cli.temporal_server import DEV_SERVER_DYNAMIC_CONFIG, temporal_cli
from exosuit.cli.worker import build_worker
from exosuit.domain.autonomy import Role
from exosuit.llm.client import ModelClient
from exosuit.llm.providers import Provider
from exosuit.sealing import sealed_converter
from exosuit.settings import Settings
from exosuit.storage.db import Database, migrate
from exosuit.storage.identity import Directory
from exosuit.storage.tables import WebhookDelivery
from tests.support.model_server import ModelServer, ScriptedModel, serve, shutdown
from tests.support.webhook_receiver import Receiver
from web.app import create_app
from web.deps import Services


def summary(label: str, values: list[float]) -> str:
    p95 = statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]
    return f"{label:<44} n={len(values):<4} median {statistics.median(values):7.1f} ms   p95 {p95:7.1f} ms"


async def pending(db: Database) -> int:
    async with db.session() as session:
        found = await session.exec(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "pending")
        )
        return int(found.one())


def arrivals(receiver: Receiver, event: str) -> dict[str, tuple[float, dict[str, Any]]]:
    """task id -> (wall-clock arrival, payload) of the first delivery of `event` per task."""
    found: dict[str, tuple[float, dict[str, Any]]] = {}
    for hit in receiver.delivered("/hooks"):
        payload = hit.json()
        if payload["type"] == event:
            found.setdefault(payload["data"]["task"]["id"], (hit.at, payload))
    return found


async def main(tasks: int, burst: int, fanout: int) -> None:
    models = ModelServer()
    await models.start()
    extra: list[str] = []
    for value in DEV_SERVER_DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", value]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), dev_server_extra_args=extra
    )
    temporal = await Client.connect(
        env.client.service_client.config.target_host, data_converter=sealed_converter(["benchmark secret"])
    )
    receiver = await Receiver().start()
    # The receiver stamps arrivals on the loop's clock; map it to the wall clock once.
    offset = time.time() - asyncio.get_running_loop().time()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/exosuit.db"
        migrate(url)
        db = Database.from_url(url)
        settings = Settings(
            data_dir=Path(tmp),
            task_queue=f"bench-{uuid.uuid4().hex}",
            webhook_allow_loopback=True,
            webhook_retry_initial_seconds=0.2,  # the backlog is retried at once when the receiver returns
            webhook_retry_max_seconds=1.0,
        )
        step = {"title": "Step", "instructions": "Do it.", "kind": "llm", "tool": None, "risk": "low"}
        client = ModelClient(
            [Provider("bench", models.register(ScriptedModel(plan=[step])), "m", api_key="x")]
        )
        directory = Directory(db)
        await directory.set_team_policy("bench", max_active_tasks=10_000, submissions_per_minute=100_000)
        await directory.add_user("submitter@bench", teams=["bench"], role=Role.MEMBER)
        await directory.add_user("approver@bench", teams=["bench"], role=Role.APPROVER)
        sub_token = await directory.create_token("submitter@bench")
        app_token = await directory.create_token("approver@bench")
        server, server_task, port = await serve(create_app(Services.build(settings, db, temporal)))
        base = f"http://127.0.0.1:{port}"
        submit_ms: list[float] = []
        decide_ms: list[float] = []
        latency_ms: list[float] = []
        async with (
            build_worker(temporal, settings, db, model=client),
            httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {sub_token}"}, timeout=120
            ) as sub,
            httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {app_token}"}, timeout=120
            ) as app,
        ):
            hook = await app.post(
                "/api/v1/webhooks",
                json={
                    "team": "bench",
                    "url": f"{receiver.url}/hooks",
                    "events": ["task.created", "gate.opened"],
                },
            )
            assert hook.status_code == 201, hook.text
            body = {"title": "Bench", "instructions": "Go.", "team": "bench", "autonomy": "supervised"}
            for _ in range(tasks):
                started = time.perf_counter()
                created = await sub.post("/api/v1/tasks", json=body)
                submit_ms.append((time.perf_counter() - started) * 1000)
                task_id = created.json()["id"]
                await receiver.wait_for(
                    lambda task_id=task_id: task_id in arrivals(receiver, "gate.opened"), 30
                )
                at, payload = arrivals(receiver, "gate.opened")[task_id]
                opened = datetime.fromisoformat(payload["data"]["gate"]["opened_at"]).timestamp()
                latency_ms.append((at + offset - opened) * 1000)
                started = time.perf_counter()
                decided = await app.post(
                    f"/api/v1/tasks/{task_id}/decisions",
                    json={
                        "gate_id": payload["data"]["gate"]["id"],
                        "action": "reject",
                        "reason": "bench",
                        "on_reject": "stop",
                    },
                )
                assert decided.status_code == 200, decided.text
                decide_ms.append((time.perf_counter() - started) * 1000)

            for _ in range(fanout - 1):  # more subscribers: each event is `fanout` deliveries
                more = await app.post(
                    "/api/v1/webhooks",
                    json={
                        "team": "bench",
                        "url": f"{receiver.url}/hooks",
                        "events": ["task.created", "gate.opened"],
                    },
                )
                assert more.status_code == 201, more.text
            before = len(receiver.delivered("/hooks"))
            expected = 2 * burst * fanout
            await receiver.stop()  # a backlog: every delivery waits for the receiver to return
            burst_started = time.perf_counter()
            await asyncio.gather(*(sub.post("/api/v1/tasks", json=body) for _ in range(burst)))
            submitted_in = time.perf_counter() - burst_started
            for _ in range(3000):  # at most 10 minutes
                if await pending(db) >= expected:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(2 * settings.webhook_retry_max_seconds)  # every queue is retrying
            await receiver.start()
            back = asyncio.get_running_loop().time()
            await receiver.wait_for(lambda: len(receiver.delivered("/hooks")) - before >= expected, 600)
            hits = receiver.delivered("/hooks")[before:]
            span = hits[-1].at - back
        await shutdown(server, server_task)
        await db.dispose()
    await receiver.stop()
    await env.shutdown()
    await models.stop()
    print(
        f"webhooks on the embedded dev server, sealed payloads, SQLite "
        f"({tasks} tasks timed; then {burst} tasks at once to {fanout} subscriptions)"
    )
    print(summary("gate opened -> receiver has it", latency_ms))
    print(summary("API: POST /tasks answered", submit_ms))
    print(summary("API: POST /tasks/{id}/decisions answered", decide_ms))
    print(
        f"{'sustained: a backlog drained':<44} {len(hits)} in {span:.2f} s = {len(hits) / span:.0f}/s "
        f"from the receiver's return (the {burst} submissions answered within {submitted_in:.2f} s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=30, help="tasks timed one after another")
    parser.add_argument("--burst", type=int, default=30, help="tasks submitted at once")
    parser.add_argument("--fanout", type=int, default=10, help="subscriptions during the burst")
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.burst, args.fanout))
