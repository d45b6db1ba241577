"""Cursor pagination of the lists, and a problem `type` per kind of refusal."""

from __future__ import annotations

from typing import Any

from tests.support.system import Api, System


async def pages(api: Api, path: str, limit: int) -> list[list[dict[str, Any]]]:
    """Every page of a list, following `next_cursor`."""
    found, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        body = (await api.http.get(path, params=params)).json()
        found.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return found


async def test_tasks_and_approvals_page_by_cursor_in_the_contracts_order(system: System) -> None:
    submitter, approver = await system.user("member"), await system.user("approver")
    ids = [(await submitter.submit(system.team, "supervised", title=f"Task {n}"))["id"] for n in range(5)]
    for task_id in ids:
        await submitter.wait_gate(task_id, "plan")

    task_pages = await pages(submitter, "/api/v1/tasks", limit=2)
    assert [len(p) for p in task_pages] == [2, 2, 1]
    newest_first = [t["id"] for page in task_pages for t in page]
    assert newest_first == list(reversed(ids))

    approval_pages = await pages(approver, "/api/v1/approvals", limit=2)
    items = [i for page in approval_pages for i in page]
    assert sorted(i["task"]["id"] for i in items) == sorted(ids)  # each once
    opened = [(i["gate"]["opened_at"], i["task"]["id"]) for i in items]
    assert opened == sorted(opened)  # oldest gate first

    for bad in (
        "nonsense",
        task_pages and (await submitter.http.get("/api/v1/tasks?limit=1")).json()["next_cursor"],
    ):
        refused = await approver.http.get("/api/v1/approvals", params={"cursor": bad})
        assert refused.status_code == 422 and refused.json()["type"] == "/problems/validation"


async def test_each_kind_of_refusal_has_its_own_problem_type(system: System) -> None:
    await system.set_team(max_autonomy="guarded")
    submitter, colleague = await system.user("approver"), await system.user("approver")
    member = await system.user("member")
    above = await submitter.http.post(
        "/api/v1/tasks",
        json={"title": "x", "instructions": "y", "team": system.team, "autonomy": "autonomous"},
    )
    assert (above.status_code, above.json()["type"]) == (422, "/problems/above-cap")
    task = await submitter.wait_gate((await submitter.submit(system.team, "supervised"))["id"], "plan")
    four_eyes = await submitter.decide(task, "approve")
    assert (four_eyes.status_code, four_eyes.json()["type"]) == (403, "/problems/four-eyes")
    role = await member.decide(task, "approve")
    assert (role.status_code, role.json()["type"]) == (403, "/problems/forbidden")
    invalid = await colleague.decide(task, "reject")  # no reason
    assert (invalid.status_code, invalid.json()["type"]) == (422, "/problems/invalid")
    await colleague.approve(task)
    stale = await colleague.decide(task, "approve")
    assert (stale.status_code, stale.json()["type"]) == (409, "/problems/gate-not-open")
    missing = await colleague.http.get("/api/v1/tasks/t_nope")
    assert (missing.status_code, missing.json()["type"]) == (404, "/problems/not-found")
    slider = await colleague.http.put(f"/api/v1/tasks/{task['id']}/autonomy", json={"autonomy": "autonomous"})
    assert (slider.status_code, slider.json()["type"]) == (422, "/problems/above-cap")
