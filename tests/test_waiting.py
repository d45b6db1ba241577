"""Waiting without polling: `GET /tasks/{id}/wait` and the API's event stream."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import httpx

from tests.conftest import System


async def test_wait_returns_on_the_gate_then_on_completion(ui_system: System) -> None:
    submitter, approver = await ui_system.user("member"), await ui_system.user("approver")
    task = await submitter.submit(ui_system.team, "guarded")  # a plan gate, then low-risk steps run
    gated = await submitter.http.get(
        f"/api/v1/tasks/{task['id']}/wait", params={"for": "gate", "timeout": 20}
    )
    assert gated.status_code == 200 and "exosuit-wait" not in gated.headers
    assert gated.json()["open_gate"]["kind"] == "plan"

    waiting = asyncio.create_task(
        submitter.http.get(f"/api/v1/tasks/{task['id']}/wait", params={"for": "finished", "timeout": 30})
    )
    await asyncio.sleep(0.3)
    assert not waiting.done()  # it waits: nothing is finished yet
    await approver.approve(gated.json())
    finished = await waiting
    assert finished.status_code == 200 and "exosuit-wait" not in finished.headers
    assert finished.json()["status"] == "completed"


async def test_wait_times_out_with_the_header(ui_system: System) -> None:
    submitter = await ui_system.user("member")
    task = await submitter.wait_gate((await submitter.submit(ui_system.team, "supervised"))["id"], "plan")
    started = time.monotonic()
    response = await submitter.http.get(
        f"/api/v1/tasks/{task['id']}/wait", params={"for": "finished", "timeout": 0.5}
    )
    assert 0.5 <= time.monotonic() - started < 3
    assert response.status_code == 200
    assert response.headers["exosuit-wait"] == "timeout"
    assert response.json()["status"] == "awaiting_approval"
    too_long = await submitter.http.get(f"/api/v1/tasks/{task['id']}/wait", params={"timeout": 61})
    assert too_long.status_code == 422
    assert too_long.json()["type"] == "/problems/validation"


async def test_fifty_waiters_wake_within_a_fraction_of_a_second_of_the_change(ui_system: System) -> None:
    submitter, approver = await ui_system.user("member"), await ui_system.user("approver")
    task = await submitter.wait_gate((await submitter.submit(ui_system.team, "guarded"))["id"], "plan")
    url = f"/api/v1/tasks/{task['id']}/wait"
    woke: list[float] = []

    async def waiter() -> None:
        response = await submitter.http.get(url, params={"for": "finished", "timeout": 30})
        answered = datetime.now(UTC)
        assert response.status_code == 200 and response.json()["status"] == "completed"
        woke.append((answered - datetime.fromisoformat(response.json()["updated_at"])).total_seconds())

    many = [asyncio.create_task(waiter()) for _ in range(50)]
    await asyncio.sleep(0.3)
    await approver.approve(task)
    await asyncio.gather(*many)
    woke.sort()
    print(f"wake-up after the change, 50 waiters: p50 {woke[25] * 1000:.0f} ms, max {woke[-1] * 1000:.0f} ms")
    assert woke[-1] < 1.0, woke  # one shared poll a tick (watch_interval_seconds), then one read per waiter


async def test_another_teams_task_cannot_be_waited_on(ui_system: System) -> None:
    submitter = await ui_system.user("member")
    outsider = await ui_system.user("admin", team=f"other-{uuid.uuid4().hex[:6]}")
    task = await submitter.submit(ui_system.team, "supervised")
    for path in ("wait", "events"):
        response = await outsider.http.get(f"/api/v1/tasks/{task['id']}/{path}", params={"timeout": 0})
        assert response.status_code == 404 and response.json()["type"] == "/problems/not-found"


async def test_event_stream_sends_the_task_as_it_changes_until_it_ends(ui_system: System) -> None:
    await ui_system.set_team(max_autonomy="autonomous")
    submitter = await ui_system.user("member")
    task = await submitter.submit(ui_system.team, "autonomous")
    statuses: list[str] = []
    async with submitter.http.stream("GET", f"/api/v1/tasks/{task['id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                statuses.append(json.loads(line[6:])["status"])
    assert statuses[-1] == "completed"  # the stream ended by itself once the task had
    assert len(statuses) >= 2


async def test_event_stream_needs_a_token(ui_system: System) -> None:
    async with httpx.AsyncClient(base_url=ui_system.base_url) as anonymous:
        response = await anonymous.get("/api/v1/tasks/t_x/events")
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/unauthorized"
