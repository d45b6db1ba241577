"""The pages over HTTP: sign-in, CSRF, headers, and each route for plain and htmx requests."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from tests.support.pages import HTMX, Browser, signed_in
from tests.support.system import System


async def submitted(system: System, browser: Browser, autonomy: str = "supervised", **form: str) -> str:
    data = {
        "title": "Weekly digest",
        "instructions": "Summarise the week.",
        "team": system.team,
        "autonomy": autonomy,
    } | form
    response = await browser.post("/tasks/new", data)
    assert response.status_code == 303, response.text
    return response.headers["location"].rsplit("/", 1)[1]


async def open_gate(system: System, task_id: str, kind: str) -> dict[str, Any]:
    api = await system.user("member")
    return await api.wait_gate(task_id, kind)


async def test_signing_in_rotates_the_session_and_signing_out_ends_it(ui_system: System) -> None:
    email, password = await ui_system.person("member")
    browser = Browser(ui_system)
    wrong = await browser.sign_in(email, "nope")
    assert wrong.status_code == 401
    assert "Wrong email or password" in wrong.text
    first = await browser.sign_in(email, password, "/queue")
    assert first.headers["location"] == "/queue"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie.replace("samesite", "SameSite")
    old_session = browser.http.cookies["exosuit_session"]
    await browser.sign_in(email, password)
    assert browser.http.cookies["exosuit_session"] != old_session
    stale = httpx.AsyncClient(base_url=ui_system.base_url, cookies={"exosuit_session": old_session})
    ui_system.clients.append(stale)
    assert (await stale.get("/")).status_code == 303  # the old session died with the rotation
    assert (await browser.post("/logout", {})).status_code == 303
    assert (await browser.http.get("/")).status_code == 303


async def test_pages_need_a_session(ui_system: System) -> None:
    anonymous = httpx.AsyncClient(base_url=ui_system.base_url)
    ui_system.clients.append(anonymous)
    response = await anonymous.get("/queue")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/queue"
    htmx = await anonymous.get("/queue", headers=HTMX)
    assert htmx.headers["HX-Redirect"] == "/login?next=/queue"
    login = await anonymous.get("/login")
    for label in ("Email", "Password", "Sign in"):
        assert label in login.text


async def test_security_headers_on_every_page(ui_system: System) -> None:
    anonymous = httpx.AsyncClient(base_url=ui_system.base_url)
    ui_system.clients.append(anonymous)
    response = await anonymous.get("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    htmx_js = await anonymous.get("/static/vendor/htmx.min.js")
    assert htmx_js.status_code == 200
    assert "htmx" in htmx_js.text[:2000]


async def test_state_changing_requests_without_the_csrf_token_are_refused(ui_system: System) -> None:
    browser, _ = await signed_in(ui_system, "member")
    data = {"title": "x", "instructions": "y", "team": ui_system.team, "autonomy": "1"}
    refused = await browser.http.post("/tasks/new", data=data)
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    forged = await browser.http.post("/tasks/new", data=data | {"csrf_token": "forged"})
    assert forged.status_code == 403
    assert (await browser.http.post("/logout")).status_code == 403
    listing = await browser.http.get("/")
    assert "You have not submitted any task yet" in listing.text


async def test_submit_page_creates_a_task_and_opens_it(ui_system: System) -> None:
    browser, email = await signed_in(ui_system, "member")
    form = await browser.http.get("/tasks/new")
    for label in ("Title", "Instructions", "Team", "Autonomy", "Submit task"):
        assert label in form.text
    assert "You approve the plan and every step before it runs." in form.text
    htmx = await browser.post(
        "/tasks/new",
        {"title": "Digest", "instructions": "Go.", "team": ui_system.team, "autonomy": "2"},
        htmx=True,
    )
    task_id = htmx.headers["HX-Redirect"].rsplit("/", 1)[1]
    api = await ui_system.user("member")
    task = await api.task(task_id)
    assert task["autonomy"] == "guarded"
    assert task["submitted_by"] == email
    too_high = await browser.post(
        "/tasks/new", {"title": "x", "instructions": "y", "team": ui_system.team, "autonomy": "4"}
    )
    assert too_high.status_code == 422
    assert "above the team&#39;s cap" in too_high.text


async def test_submit_page_and_api_refuse_the_same_bodies(ui_system: System) -> None:
    browser, _ = await signed_in(ui_system, "member")
    api = await ui_system.user("member")
    base = {"title": "x", "instructions": "y", "team": ui_system.team, "autonomy": "supervised"}
    for change, says in [
        ({"title": "t" * 301}, "Title: String should have at most 300 characters"),
        ({"title": "   "}, "Title: String should have at least 1 character"),
        ({"instructions": "\n \t"}, "Instructions: String should have at least 1 character"),
        ({"budget_usd": "-1"}, "Budget: Input should be greater than 0"),
    ]:
        page = await browser.post("/tasks/new", base | change)
        assert page.status_code == 422, change
        assert says in page.text, (change, page.text)
        body = base | change | ({"budget_usd": -1.0} if "budget_usd" in change else {})
        assert (await api.http.post("/api/v1/tasks", json=body)).status_code == 422, change
    listing = (await api.http.get("/api/v1/tasks", params={"team": ui_system.team})).json()["items"]
    assert listing == []


async def test_task_page_plain_and_htmx_and_other_teams_get_404(ui_system: System) -> None:
    browser, _ = await signed_in(ui_system, "member")
    task_id = await submitted(ui_system, browser)
    await open_gate(ui_system, task_id, "plan")
    page = await browser.http.get(f"/tasks/{task_id}")
    assert page.status_code == 200
    assert page.text.startswith("<!doctype html>")
    assert "Approve the plan (2 steps) before anything runs." in page.text
    assert page.headers["vary"] == "HX-Request"
    fragment = await browser.http.get(f"/tasks/{task_id}", headers=HTMX)
    assert fragment.text.lstrip().startswith('<div id="live"')
    assert "<html" not in fragment.text
    version = re.search(r"live\?v=([^\"]+)\"", fragment.text)
    assert version
    unchanged = await browser.http.get(f"/tasks/{task_id}/live", params={"v": version.group(1)}, headers=HTMX)
    assert unchanged.status_code == 204
    outsider = Browser(ui_system)
    email, password = await ui_system.person("admin", team="elsewhere")
    await outsider.sign_in(email, password)
    assert (await outsider.http.get(f"/tasks/{task_id}")).status_code == 404
    assert (
        await outsider.post(f"/tasks/{task_id}/decide", {"gate_id": "g", "action": "approve"})
    ).status_code == 404


async def test_member_sees_no_controls_and_cannot_decide(ui_system: System) -> None:
    browser, _ = await signed_in(ui_system, "member")
    task_id = await submitted(ui_system, browser)
    task = await open_gate(ui_system, task_id, "plan")
    page = await browser.http.get(f"/tasks/{task_id}")
    assert 'value="approve"' not in page.text
    assert "only an approver of the task" in page.text
    response = await browser.post(
        f"/tasks/{task_id}/decide", {"gate_id": task["open_gate"]["id"], "action": "approve"}, htmx=True
    )
    assert response.status_code == 403
    assert "only an approver" in response.text


@pytest.mark.parametrize("htmx", [False, True])
async def test_approver_decides_in_place_and_a_stale_gate_is_a_readable_409(
    ui_system: System, htmx: bool
) -> None:
    submitter, _ = await signed_in(ui_system, "member")
    approver, _ = await signed_in(ui_system, "approver")
    task_id = await submitted(ui_system, submitter)
    gate = (await open_gate(ui_system, task_id, "plan"))["open_gate"]
    decided = await approver.post(
        f"/tasks/{task_id}/decide", {"gate_id": gate["id"], "action": "approve"}, htmx=htmx
    )
    if htmx:
        assert decided.status_code == 200
        assert decided.text.lstrip().startswith('<div id="live"')
    else:
        assert decided.status_code == 303
        assert decided.headers["location"] == f"/tasks/{task_id}"
    again = await approver.post(
        f"/tasks/{task_id}/decide", {"gate_id": gate["id"], "action": "approve"}, htmx=htmx
    )
    assert again.status_code == 409
    assert f"gate {gate['id']} is not open" in again.text


async def test_page_edit_and_reject_carry_their_text(ui_system: System) -> None:
    submitter, _ = await signed_in(ui_system, "member")
    approver, _ = await signed_in(ui_system, "approver")
    task_id = await submitted(ui_system, submitter)
    gate = (await open_gate(ui_system, task_id, "plan"))["open_gate"]
    await approver.post(f"/tasks/{task_id}/decide", {"gate_id": gate["id"], "action": "approve"})
    gate = (await open_gate(ui_system, task_id, "step"))["open_gate"]
    edited = await approver.post(
        f"/tasks/{task_id}/decide",
        {"gate_id": gate["id"], "action": "edit", "instructions": "Three bullet points."},
        htmx=True,
    )
    assert edited.status_code == 200
    api = await ui_system.user("member")
    task = await api.wait_gate(task_id, "step")
    assert task["steps"][0]["output"] == "done: Three bullet points."
    rejected = await approver.post(
        f"/tasks/{task_id}/decide",
        {"gate_id": task["open_gate"]["id"], "action": "reject", "reason": "Not needed", "on_reject": "skip"},
    )
    assert rejected.status_code == 303
    task = await api.wait_done(task_id)
    assert task["steps"][1]["status"] == "skipped"
    page = await approver.http.get(f"/tasks/{task_id}")
    assert '<span class="del">-Write a first draft.</span>' in page.text  # the edit, as a diff
    assert '<span class="add">+Three bullet points.</span>' in page.text
    assert "skip): Not needed" in page.text


async def test_queue_lists_decidable_gates_with_filters(ui_system: System) -> None:
    submitter, _ = await signed_in(ui_system, "approver")
    colleague, _ = await signed_in(ui_system, "approver")
    member, _ = await signed_in(ui_system, "member")
    supervised = await submitted(ui_system, submitter, "supervised", title="Supervised one")
    guarded = await submitted(ui_system, submitter, "guarded", title="Guarded one")
    await open_gate(ui_system, supervised, "plan")
    await open_gate(ui_system, guarded, "plan")
    page = await colleague.http.get("/queue")
    assert page.text.index("Supervised one") < page.text.index("Guarded one")  # oldest first
    assert "Approve the plan (2 steps)" in page.text  # the first item's full context
    board = await colleague.http.get("/queue", params={"item": guarded}, headers=HTMX)
    assert board.text.lstrip().startswith('<div id="board"')
    assert 'class="item selected" data-task="' + guarded in board.text
    assert "Guarded one" in (await colleague.http.get("/queue", params={"kind": "plan", "risk": "low"})).text
    assert "Supervised one" not in (await colleague.http.get("/queue", params={"kind": "step"})).text
    mine = await submitter.http.get("/queue")
    assert "Supervised one" not in mine.text  # four-eyes keeps it out of the submitter's queue
    assert "Guarded one" in mine.text
    assert "Nothing is waiting for you." in (await member.http.get("/queue")).text


async def test_deciding_from_the_queue_moves_to_the_next_item(ui_system: System) -> None:
    submitter, _ = await signed_in(ui_system, "member")
    approver, _ = await signed_in(ui_system, "approver")
    first = await submitted(ui_system, submitter, title="First")
    second = await submitted(ui_system, submitter, title="Second")
    gate = (await open_gate(ui_system, first, "plan"))["open_gate"]
    await open_gate(ui_system, second, "plan")
    board = await approver.post(
        f"/tasks/{first}/decide",
        {"gate_id": gate["id"], "action": "approve", "return_to": "queue", "position": "0"},
        htmx=True,
    )
    assert board.status_code == 200
    assert 'class="item selected" data-task="' + second in board.text
    assert gate["id"] not in board.text  # the decided gate left the queue


async def test_my_tasks_shows_what_each_waits_for(ui_system: System) -> None:
    browser, _ = await signed_in(ui_system, "member")
    task_id = await submitted(ui_system, browser)
    await open_gate(ui_system, task_id, "plan")
    page = await browser.http.get("/")
    assert "Weekly digest" in page.text
    assert "plan approval" in page.text


async def test_user_text_and_model_output_are_escaped(ui_system: System) -> None:
    ui_system.model.step_answer = lambda prompt: '<script>alert("out")</script><img src=x onerror=alert(2)>'
    browser, _ = await signed_in(ui_system, "member")
    approver, _ = await signed_in(ui_system, "approver")
    task_id = await submitted(ui_system, browser, "guarded", title='<script>alert("t")</script>')
    gate = (await open_gate(ui_system, task_id, "plan"))["open_gate"]
    await approver.post(f"/tasks/{task_id}/decide", {"gate_id": gate["id"], "action": "approve"})
    api = await ui_system.user("member")
    await api.wait_done(task_id)
    page = (await browser.http.get(f"/tasks/{task_id}")).text
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page


@pytest.mark.parametrize("htmx", [False, True])
async def test_slider_and_cancel_from_the_task_page(ui_system: System, htmx: bool) -> None:
    submitter, _ = await signed_in(ui_system, "member")
    other_member, _ = await signed_in(ui_system, "member")
    task_id = await submitted(ui_system, submitter)
    await open_gate(ui_system, task_id, "plan")
    page = await submitter.http.get(f"/tasks/{task_id}")
    assert '<option value="autonomous" disabled' in page.text  # above the team's cap
    too_high = await submitter.post(f"/tasks/{task_id}/autonomy", {"autonomy": "autonomous"}, htmx=htmx)
    assert too_high.status_code == 422
    assert "above the team&#39;s cap" in too_high.text
    refused = await other_member.post(f"/tasks/{task_id}/autonomy", {"autonomy": "manual"}, htmx=htmx)
    assert refused.status_code == 403
    moved = await submitter.post(f"/tasks/{task_id}/autonomy", {"autonomy": "manual"}, htmx=htmx)
    assert moved.status_code == (200 if htmx else 303)
    api = await ui_system.user("member")
    assert (await api.task(task_id))["autonomy"] == "manual"
    assert (await other_member.post(f"/tasks/{task_id}/cancel", {}, htmx=htmx)).status_code == 403
    cancelled = await submitter.post(f"/tasks/{task_id}/cancel", {}, htmx=htmx)
    assert cancelled.status_code == (200 if htmx else 303)
    assert (await api.wait_done(task_id))["status"] == "cancelled"


async def test_plan_edit_shows_as_a_diff_in_the_history(ui_system: System) -> None:
    submitter, _ = await signed_in(ui_system, "member")
    approver, _ = await signed_in(ui_system, "approver")
    task_id = await submitted(ui_system, submitter)
    gate = (await open_gate(ui_system, task_id, "plan"))["open_gate"]
    plan = '[{"title": "Only", "instructions": "One thing.", "kind": "llm", "tool": null, "risk": "low"}]'
    bad = await approver.post(
        f"/tasks/{task_id}/decide", {"gate_id": gate["id"], "action": "edit", "plan": "{nope"}
    )
    assert bad.status_code == 422
    assert "not valid JSON" in bad.text
    response = await approver.post(
        f"/tasks/{task_id}/decide", {"gate_id": gate["id"], "action": "edit", "plan": plan}
    )
    assert response.status_code == 303
    page = await approver.http.get(f"/tasks/{task_id}")
    assert '<span class="del">-1. Draft [llm, low]: Write a first draft.</span>' in page.text
    assert '<span class="add">+1. Only [llm, low]: One thing.</span>' in page.text


async def test_cost_gate_says_why_and_offers_no_edit(ui_system: System) -> None:
    submitter, _ = await signed_in(ui_system, "member")
    approver, _ = await signed_in(ui_system, "approver")
    await ui_system.set_team(max_autonomy="autonomous")
    task_id = await submitted(ui_system, submitter, "4", budget_usd="0.001")
    await open_gate(ui_system, task_id, "cost")
    page = await approver.http.get(f"/tasks/{task_id}")
    assert "may cross a budget: this step may cost about $" in page.text
    assert "of a $0.0010 budget" in page.text
    assert 'value="edit"' not in page.text
    assert 'value="revise"' not in page.text
    assert 'value="approve"' in page.text


async def test_task_events_stream_says_when_the_task_changes(ui_system: System) -> None:
    submitter, _ = await signed_in(ui_system, "member")
    task_id = await submitted(ui_system, submitter)
    task = await open_gate(ui_system, task_id, "plan")
    approver = await ui_system.user("approver")

    async def next_event(lines: Any) -> tuple[str, str]:
        event, data = "", ""
        async for line in lines:
            if not line:
                return event, data
            field, _, value = line.partition(": ")
            event, data = (value, data) if field == "event" else (event, value)
        raise AssertionError("the stream ended")

    async with submitter.http.stream("GET", f"/tasks/{task_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        first = await asyncio.wait_for(next_event(lines), 10)
        assert first[0] == "changed"
        await approver.approve(task)
        second = await asyncio.wait_for(next_event(lines), 10)
        assert second[0] == "changed"
        assert second[1] != first[1]
    outsider = Browser(ui_system)
    email, password = await ui_system.person("admin", team="elsewhere")
    await outsider.sign_in(email, password)
    assert (await outsider.http.get(f"/tasks/{task_id}/events")).status_code == 404
