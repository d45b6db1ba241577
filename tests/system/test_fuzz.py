"""Input that can never 500: generated bodies, forms and query strings at every route.

Hypothesis throws JSON of any shape (deep nesting, huge and non-finite numbers, control
characters, wrong types) at every API route, form posts at every page, and odd query
strings at every GET; each answer must be below 500.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.pages import Browser, signed_in
from tests.support.system import Api, System, running_system

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["approve", "edit", "reject", "revise", "skip", "stop", "manual", "autonomous", "\x00"])
)


def json_values(depth: int) -> st.SearchStrategy[Any]:
    """JSON of any shape up to `depth` (deeper bodies come from `nested`, built in the test)."""
    if depth == 0:
        return SCALARS
    inner = json_values(depth - 1)
    return SCALARS | st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)


JSON = json_values(4)


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"steps": [value]}
    return value


KEYS = ["title", "instructions", "team", "autonomy", "budget_usd", "gate_id", "action", "changes", "reason"]
KEYS += ["on_reject", "steps", "output"]
BODY = (
    st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), JSON, max_size=7)
    | JSON
    # Deep bodies are built in the test from (depth, action), so that a report prints short.
    | st.tuples(st.integers(min_value=0, max_value=600), st.sampled_from(["approve", "edit", "reject"]))
    | st.floats(allow_nan=True, allow_infinity=True).map(
        lambda b: {"title": "t", "instructions": "i", "budget_usd": b}
    )
)
HEADER = st.from_regex(r"[!-~]([ -~]{0,250}[!-~])?", fullmatch=True)  # what a header value can be
SEGMENT = st.text(  # what a client can put in a path segment
    alphabet=st.characters(
        max_codepoint=0x2FFF, exclude_categories=("Cc", "Cs", "Zs"), exclude_characters="/?#%"
    ),
    max_size=30,
)


class World(dict[str, Any]):
    """What the fuzzed requests are sent with (shown briefly in Hypothesis's reports)."""

    def __repr__(self) -> str:
        return "World(member, approver, task, browser, system)"


@pytest.fixture
async def world(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> AsyncIterator[World]:
    """A member's and an approver's API clients, a signed-in browser, a task at its plan gate.
    Sign-in limits are lifted: the forms test signs in again after each fuzzed sign-out."""
    async with running_system(
        temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path,
        login_limit_per_address="100000 per minute", login_limit_per_account="100000 per minute",
    ) as system:  # fmt: skip
        await system.set_team(max_autonomy="autonomous")
        member, approver = await system.user("member"), await system.user("approver")
        task = await approver.wait_gate((await member.submit(system.team, "manual"))["id"], "plan")
        browser, _ = await signed_in(system, "approver")
        yield World(member=member, approver=approver, task=task, browser=browser, system=system)


def api_routes(task_id: str) -> list[tuple[str, str]]:
    t = f"/api/v1/tasks/{task_id}"
    return [
        ("POST", "/api/v1/tasks"), ("POST", f"{t}/decisions"), ("PUT", f"{t}/autonomy"),
        ("POST", f"{t}/cancel"), ("GET", "/api/v1/tasks"), ("GET", t), ("GET", "/api/v1/approvals"),
        ("GET", f"{t}/audit"), ("GET", f"{t}/audit/verify"),
    ]  # fmt: skip


def assert_no_5xx(response: httpx.Response, what: object) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:500])
    if response.status_code >= 400 and response.request.url.path.startswith("/api/"):
        assert response.headers["content-type"] == "application/problem+json", what


@FUZZ
@given(route=st.integers(min_value=0, max_value=8), body=BODY, key=HEADER, raw=st.booleans())
async def test_api_routes_answer_any_body_without_a_5xx(
    world: World, route: int, body: Any, key: str, raw: bool
) -> None:
    method, path = api_routes(world["task"]["id"])[route]
    if isinstance(body, tuple):
        depth, action = body
        gate = world["task"]["open_gate"]["id"]
        body = {"gate_id": gate, "action": action, "changes": nested(depth), "reason": "r"}
    http: httpx.AsyncClient = world["approver" if route % 2 else "member"].http
    content = json.dumps(body, allow_nan=True) if not raw else json.dumps(body)[: len(key)] + key
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    assert_no_5xx(
        await http.request(method, path, content=content.encode(), headers=headers), (method, path, body)
    )


@FUZZ
@given(
    form=st.sampled_from(["/tasks/new", "decide", "autonomy", "cancel", "/login", "/logout"]),
    fields=st.dictionaries(
        st.sampled_from([*KEYS, "plan", "position", "item", "return_to", "email", "password"]),
        st.text(max_size=300) | st.integers(0, 900).map(lambda d: "[" * d + "]" * d),
        max_size=8,
    ),
    htmx=st.booleans(),
)
async def test_page_forms_answer_any_fields_without_a_5xx(
    world: World, form: str, fields: dict[str, str], htmx: bool
) -> None:
    browser: Browser = world["browser"]
    task_id = world["task"]["id"]
    path = form if form.startswith("/") else f"/tasks/{task_id}/{form}"
    if form == "decide":
        fields = {"gate_id": world["task"]["open_gate"]["id"]} | fields
    response = await browser.post(path, fields, htmx=htmx)
    assert_no_5xx(response, (path, fields))
    if form == "/logout" and response.status_code < 400:
        system: System = world["system"]
        world["browser"], _ = await signed_in(system, "approver")


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/",
            "/queue",
            "/tasks/new",
            "/tasks/{id}",
            "/tasks/{id}/live",
            "/tasks/{seg}",
            "/api/v1/tasks",
            "/api/v1/tasks/{seg}",
            "/login",
            "/readyz",
        ]
    ),
    params=st.dictionaries(
        st.sampled_from(["position", "item", "team", "kind", "risk", "v", "status", "limit", "next"]),
        st.text(max_size=60),
        max_size=5,
    ),
    segment=SEGMENT,
)
async def test_any_query_string_or_path_segment_answers_without_a_5xx(
    world: World, path: str, params: dict[str, str], segment: str
) -> None:
    url = path.replace("{id}", world["task"]["id"]).replace("{seg}", segment)
    http = world["browser"].http if not url.startswith("/api/") else world["approver"].http
    assert_no_5xx(await http.get(url, params=params, headers={"HX-Request": "true"}), (url, params))


CRON_FIELD = st.sampled_from(
    ["*", "0", "5", "a", "99", "*/0", "*/15", "1-", "1-5", "60", "32", "13", "MON", "L"]
)
CRON = st.lists(CRON_FIELD | st.text(max_size=4), min_size=0, max_size=7).map(" ".join) | st.text(max_size=30)


async def _schedulable(world: World) -> str:
    """A template of the approver's team that schedules can run (made once per world)."""
    if "template" not in world:
        approver: Api = world["approver"]
        team = world["task"]["team"]
        name = f"fuzzed-{team}"
        body = {"name": name, "team": team, "title": "Report", "instructions": "Draft it.", "params": []}
        made = await approver.http.post("/api/v1/templates", json=body)
        assert made.status_code == 201, made.text
        world["template"] = name
    return str(world["template"])


@FUZZ
@given(cron=CRON)
async def test_a_schedule_with_any_cron_answers_without_a_5xx(world: World, cron: str) -> None:
    approver: Api = world["approver"]
    body = {"template": await _schedulable(world), "params": {}, "cron": cron}
    response = await approver.http.post("/api/v1/schedules", json=body)
    assert_no_5xx(response, cron)
    if response.status_code == 201:  # a valid one: gone again, so the next examples start clean
        await approver.http.delete(f"/api/v1/schedules/{response.json()['id']}")


@FUZZ
@given(body=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v, allow_nan=True).encode()))
async def test_the_codec_answers_any_body_without_a_5xx(world: World, body: bytes) -> None:
    approver: Api = world["approver"]
    response = await approver.http.post(
        "/codec/decode", content=body, headers={"Content-Type": "application/json"}
    )
    assert_no_5xx(response, body)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", body
