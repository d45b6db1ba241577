"""Time from an approval to the next gate, on the embedded Temporal dev server.

Runs the same supervised task three times in one process, side by side: on a dev server
with its default dynamic config (the baseline), with the transfer-queue poll rate that
`exosuit dev` sets, and with that rate but payloads not sealed (what sealing costs).
Each step's gate is approved over HTTP and the clock stops when the API shows the next
gate. The model is the scripted HTTP server from the test suite, so what is measured is
Exosuit plus Temporal, not a model.

    .venv/bin/python benchmarks/approval_latency.py [--steps 20]
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

import httpx
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
from tests.support.model_server import ModelServer, ScriptedModel, serve, shutdown
from web.app import create_app
from web.deps import Services


async def next_gate(http: httpx.AsyncClient, task_id: str, after: str | None) -> dict[str, object]:
    while True:
        task = (await http.get(f"/api/v1/tasks/{task_id}")).json()
        gate = task["open_gate"]
        if task["status"] in ("failed", "rejected", "cancelled"):
            raise RuntimeError(f"the benchmark task ended as {task['status']}: {task['error']}")
        if task["status"] == "completed" or (gate and gate["id"] != after):
            return dict(task)
        await asyncio.sleep(0.01)


async def measure(
    label: str, extra_args: list[str], steps: int, models: ModelServer, *, sealed: bool = True
) -> list[float]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), dev_server_extra_args=extra_args
    )
    temporal = env.client
    if sealed:  # as deployed: every payload sealed (exosuit/sealing.py)
        temporal = await Client.connect(
            env.client.service_client.config.target_host,
            data_converter=sealed_converter(["benchmark secret"]),
        )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/exosuit.db"
        migrate(url)
        db = Database.from_url(url)
        settings = Settings(data_dir=Path(tmp), task_queue=f"bench-{uuid.uuid4().hex}")
        model = ScriptedModel(
            plan=[
                {"title": f"Step {i}", "instructions": f"Do {i}.", "kind": "llm", "tool": None, "risk": "low"}
                for i in range(steps)
            ]
        )
        client = ModelClient([Provider("bench", models.register(model), "m", api_key="x")])
        directory = Directory(db)
        await directory.add_user("submitter@bench", teams=["bench"], role=Role.MEMBER)
        await directory.add_user("approver@bench", teams=["bench"], role=Role.APPROVER)
        submit_token = await directory.create_token("submitter@bench")
        approve_token = await directory.create_token("approver@bench")
        server, task, port = await serve(create_app(Services.build(settings, db, temporal)))
        latencies: list[float] = []
        base = f"http://127.0.0.1:{port}"
        async with (
            build_worker(temporal, settings, db, model=client),
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {submit_token}"}) as sub,
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {approve_token}"}) as app,
        ):
            body = {"title": "Bench", "instructions": "Go.", "team": "bench", "autonomy": "supervised"}
            created = (await sub.post("/api/v1/tasks", json=body)).json()
            current = await next_gate(app, created["id"], None)
            while current["status"] != "completed":
                gate = current["open_gate"]
                assert isinstance(gate, dict)
                started = time.perf_counter()
                decided = await app.post(
                    f"/api/v1/tasks/{created['id']}/decisions",
                    json={"gate_id": gate["id"], "action": "approve"},
                )
                assert decided.status_code == 200, decided.text
                current = await next_gate(app, created["id"], str(gate["id"]))
                if current["status"] != "completed":
                    latencies.append((time.perf_counter() - started) * 1000)
        await shutdown(server, task)
        await db.dispose()
    await env.shutdown()
    print(
        f"{label:<40} n={len(latencies):<3} median {statistics.median(latencies):6.1f} ms"
        f"   p90 {statistics.quantiles(latencies, n=10)[-1]:6.1f} ms"
        f"   min {min(latencies):6.1f} ms"
    )
    return latencies


async def main(steps: int) -> None:
    models = ModelServer()
    await models.start()
    print(f"approval -> next gate, supervised task of {steps} steps (scripted model, SQLite)")
    tuned: list[str] = []
    for value in DEV_SERVER_DYNAMIC_CONFIG:
        tuned += ["--dynamic-config-value", value]
    await measure("baseline: dev server defaults", [], steps, models)
    await measure("exosuit dev: " + ", ".join(DEV_SERVER_DYNAMIC_CONFIG), tuned, steps, models)
    await measure("exosuit dev, payloads not sealed", tuned, steps, models, sealed=False)
    await models.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20, help="at most 20, a plan's limit")
    asyncio.run(main(parser.parse_args().steps))
