"""How fast the review queue renders with many open gates, and what live polling costs.

Fills a fresh SQLite database with open gates (as the workflow's activities would leave
them: tasks with steps and an inline open gate), serves the app over real HTTP, signs in,
and times requests side by side with baselines in the same run:

- `/healthz`: the floor, an HTTP round trip through the app and its middleware;
- `/queue` with 10 open gates, and with 1,000;
- `/api/v1/approvals` with 1,000 (the JSON list, which also carries every step);
- the live-update polls that answer 204 when nothing changed (queue and task page).

    .venv/bin/python benchmarks/queue_render.py [--gates 1000] [--runs 40]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exosuit.cli.temporal_server import temporal_cli
from exosuit.domain.autonomy import Role
from exosuit.settings import Settings
from exosuit.storage.db import Database, migrate, utcnow
from exosuit.storage.identity import Directory
from exosuit.storage.tables import Step, Task
from tests.support.model_server import serve, shutdown
from web.app import create_app
from web.deps import Services


async def fill(db: Database, team: str, count: int) -> str:
    """`count` tasks of three steps, each with an open step gate on its second step."""
    now = utcnow()
    all_steps: list[Step] = []
    async with db.session() as session:
        for n in range(count):
            task_id = f"t_{uuid.uuid4().hex[:20]}"
            steps = [
                Step(
                    id=f"s_{uuid.uuid4().hex[:16]}",
                    task_id=task_id,
                    index=i,
                    title=f"Step {i + 1}",
                    instructions="Write the section. " * 20,
                    status="completed" if i == 0 else "pending",
                    output="A paragraph of earlier output. " * 30 if i == 0 else None,
                    risk=("low", "medium", "high")[n % 3],
                )
                for i in range(3)
            ]
            session.add(
                Task(
                    id=task_id,
                    title=f"Task {n}",
                    instructions="Do the thing. " * 10,
                    team=team,
                    submitted_by="someone@bench",
                    autonomy="supervised",
                    status="awaiting_approval",
                    gate_id=f"g_{uuid.uuid4().hex[:16]}",
                    gate_kind="step",
                    gate_step_id=steps[1].id,
                    gate_opened_at=now - timedelta(minutes=count - n),
                    gate_deadline=now + timedelta(hours=24),
                    gate_risk=steps[1].risk,
                    updated_at=now,
                )
            )
            all_steps.extend(steps)
        await session.flush()  # tasks before the steps that point at them
        session.add_all(all_steps)
        await session.commit()
    return task_id


async def timed(http: httpx.AsyncClient, path: str, runs: int, expect: int = 200) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == expect, (path, response.status_code)
    return times


def report(label: str, times: list[float]) -> None:
    p90 = statistics.quantiles(times, n=10)[-1]
    print(f"{label:<52} median {statistics.median(times):7.1f} ms   p90 {p90:7.1f} ms")


Running = tuple[uvicorn.Server, asyncio.Task[None], Database]  # what to stop afterwards


async def setup(env: WorkflowEnvironment, tmp: str, gates: int) -> tuple[httpx.AsyncClient, str, Running]:
    url = f"sqlite:///{tmp}/exosuit.db"
    migrate(url)
    db = Database.from_url(url)
    directory = Directory(db)
    await directory.add_user("approver@bench", teams=["bench"], role=Role.APPROVER, password="pw")
    last = await fill(db, "bench", gates)
    token = await directory.create_token("approver@bench")
    server, task, port = await serve(create_app(Services.build(Settings(data_dir=Path(tmp)), db, env.client)))
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
    login = await http.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf
    await http.post("/login", data={"email": "approver@bench", "password": "pw", "csrf_token": csrf.group(1)})
    http.headers["Authorization"] = f"Bearer {token}"
    return http, last, (server, task, db)


async def main(gates: int, runs: int) -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli())
    print(f"review queue, {runs} requests each, SQLite, over HTTP on loopback")
    with tempfile.TemporaryDirectory() as small_dir, tempfile.TemporaryDirectory() as big_dir:
        small, _, small_parts = await setup(env, small_dir, 10)
        big, last_task, big_parts = await setup(env, big_dir, gates)
        report("baseline: /healthz", await timed(big, "/healthz", runs))
        report("baseline: /queue with 10 open gates", await timed(small, "/queue", runs))
        report(f"/queue with {gates} open gates", await timed(big, "/queue", runs))
        page = (await big.get("/queue", headers={"HX-Request": "true"})).text
        version = re.search(r"v=([0-9a-f]{16})", page)
        assert version
        print(f"  (page size {len((await big.get('/queue')).content) / 1024:.0f} KiB)")
        report(
            f"/queue live poll, unchanged (204), {gates} gates",
            await timed(big, f"/queue?v={version.group(1)}", runs, expect=204),
        )
        live = (await big.get(f"/tasks/{last_task}", headers={"HX-Request": "true"})).text
        task_version = re.search(r"live\?v=([^\"]+)\"", live)
        assert task_version
        report(
            "/tasks/{id}/live poll, unchanged (204)",
            await timed(big, f"/tasks/{last_task}/live?v={task_version.group(1)}", runs, expect=204),
        )
        report(
            f"/api/v1/approvals with {gates} open gates (JSON)",
            await timed(big, "/api/v1/approvals", max(runs // 4, 5)),
        )
        for http, parts in ((small, small_parts), (big, big_parts)):
            await http.aclose()
            server, task, db = parts
            await shutdown(server, task)
            await db.dispose()
    await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gates", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(main(args.gates, args.runs))
