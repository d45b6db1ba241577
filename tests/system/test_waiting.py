"""Waiting without polling: `GET /tasks/{id}/wait` and the API's event stream."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

from tests.support.system import System, until


async def in_flight(system: System, pool: str, count: int) -> bool:
    return await system.in_flight(pool) == count


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
    await until(lambda: in_flight(ui_system, "waiting", 1), "the long-poll to be waiting")
    assert not waiting.done()  # it waits: nothing is finished yet
    await approver.approve(gated.json())
    finished = await waiting
    assert finished.status_code == 200 and "exosuit-wait" not in finished.headers
    assert finished.json()["status"] == "completed"


async def test_wait_times_out_with_the_header(ui_system: System) -> None:
    submitter = await ui_system.user("member")
    task = await submitter.wait_gate((await submitter.submit(ui_system.team, "supervised"))["id"], "plan")
    response = await submitter.http.get(
        f"/api/v1/tasks/{task['id']}/wait", params={"for": "finished", "timeout": 0.5}
    )
    assert response.status_code == 200
    assert response.headers["exosuit-wait"] == "timeout"
    assert response.json()["status"] == "awaiting_approval"
    too_long = await submitter.http.get(f"/api/v1/tasks/{task['id']}/wait", params={"timeout": 61})
    assert too_long.status_code == 422
    assert too_long.json()["type"] == "/problems/validation"


async def test_fifty_waiters_all_wake_on_the_change_not_on_their_timeout(ui_system: System) -> None:
    """How soon they wake is a figure for benchmarks/ (load.py long-polls the same way), not an
    assertion: a 2-core machine shared with other work makes any bound on the clock flaky."""
    submitter, approver = await ui_system.user("member"), await ui_system.user("approver")
    task = await submitter.wait_gate((await submitter.submit(ui_system.team, "guarded"))["id"], "plan")
    url = f"/api/v1/tasks/{task['id']}/wait"
    many = [
        asyncio.create_task(submitter.http.get(url, params={"for": "finished", "timeout": 60}))
        for _ in range(50)
    ]
    await until(lambda: in_flight(ui_system, "waiting", 50), "fifty long-polls to be waiting")
    await approver.approve(task)
    for response in await asyncio.gather(*many):
        assert response.status_code == 200 and "exosuit-wait" not in response.headers
        assert response.json()["status"] == "completed"


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
