"""The API described for programs and agents: /openapi.json, /docs in Chromium, /llms.txt."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support.system import System


@pytest.mark.browser
async def test_docs_render_from_the_apps_own_assets_with_no_csp_violation(
    chromium: Browser,
    ui_system: System,
) -> None:
    context = await chromium.new_context(base_url=ui_system.base_url)
    page = await context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Exosuit", timeout=15_000)
    await expect(page.locator(".opblock-tag-section").first).to_be_visible()
    await expect(page.get_by_text("/api/v1/tasks/{task_id}/wait").first).to_be_visible()
    await expect(page.locator(".btn.authorize")).to_be_visible()  # the bearer scheme
    assert await page.evaluate("window.__csp || []") == []
    assert problems == [], missing
    outside = [
        url for url in requests if not url.startswith(ui_system.base_url) and not url.startswith("data:")
    ]
    assert outside == []
    await context.close()


async def test_openapi_names_operations_types_errors_and_the_bearer_scheme(ui_system: System) -> None:
    async with httpx.AsyncClient(base_url=ui_system.base_url) as anonymous:
        spec: dict[str, Any] = (await anonymous.get("/openapi.json")).json()
    paths = spec["paths"]
    decide = paths["/api/v1/tasks/{task_id}/decisions"]["post"]
    assert decide["operationId"] == "decide_gate" and decide["tags"] == ["tasks"]
    assert decide["security"] == [{"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "an API token (`exosuit token create EMAIL`)",
    }
    for status in ("401", "403", "404", "409", "422", "429", "503"):
        answer = decide["responses"][status]
        assert list(answer["content"]) == ["application/problem+json"], status
    assert "/problems/four-eyes" in decide["responses"]["403"]["description"]
    assert "/problems/gate-not-open" in decide["responses"]["409"]["description"]
    schemas = spec["components"]["schemas"]
    assert schemas["TaskStatus"]["enum"] == [
        "planning",
        "awaiting_approval",
        "running",
        "completed",
        "rejected",
        "failed",
        "cancelled",
    ]
    for enum in ("GateKind", "Risk", "StepKind", "StepStatus", "AutonomyLevel", "DecisionAction", "WaitFor"):
        assert "enum" in schemas[enum], enum
    for listing, model in (("/api/v1/tasks", "TaskList"), ("/api/v1/approvals", "ApprovalList")):
        operation = paths[listing]["get"]
        assert {p["name"] for p in operation["parameters"]} >= {"cursor", "limit"}
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(model)
        assert "next_cursor" in schemas[model]["properties"]
    assert not [p for p in paths if not p.startswith(("/api/", "/healthz", "/readyz", "/codec"))]  # no pages
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids))


async def test_llms_txt_and_problem_type_pages(ui_system: System) -> None:
    async with httpx.AsyncClient(base_url=ui_system.base_url) as anonymous:
        llms = await anonymous.get("/llms.txt")
        assert llms.headers["content-type"].startswith("text/markdown")
        text = llms.text
        assert text.startswith("# Exosuit")
        for needle in (
            "/tasks/$ID/wait?for=gate",
            "/decisions",
            "/approvals",
            f"{ui_system.base_url}/mcp",
        ):
            assert needle in text, needle
        four_eyes = await anonymous.get("/problems/four-eyes")
        assert four_eyes.status_code == 200 and "another approver" in four_eyes.text
        assert (await anonymous.get("/problems/nonsense")).json()["type"] == "/problems/not-found"


async def test_openapi_declares_each_answers_headers_the_webhook_messages_and_cites_no_file(
    ui_system: System,
) -> None:
    async with httpx.AsyncClient(base_url=ui_system.base_url) as anonymous:
        text = (await anonymous.get("/openapi.json")).text
    spec: dict[str, Any] = json.loads(text)
    assert not re.search(r"[\w/]+\.(md|py)\b", text)  # descriptions stand alone: no file to open
    paths = spec["paths"]
    for path in (
        "/api/v1/templates/{name}",
        "/api/v1/webhooks/{webhook_id}",
        "/api/v1/schedules/{schedule_id}",
    ):
        for operation in paths[path].values():
            assert {"401", "404"} <= set(operation["responses"]), (path, operation["operationId"])
    created = paths["/api/v1/tasks"]["post"]["responses"]
    assert created["201"]["headers"]["Location"]["required"] is True
    assert created["201"]["headers"]["Idempotent-Replayed"]["required"] is False
    assert created["429"]["headers"]["Retry-After"]["required"] is True
    assert created["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert "400" in created and "413" in created
    waited = paths["/api/v1/tasks/{task_id}/wait"]["get"]["responses"]["200"]
    assert "Exosuit-Wait" in waited["headers"]
    assert set(spec["webhooks"]) == {
        "task.created", "gate.opened", "gate.decided", "task.completed", "task.failed", "task.rejected",
        "task.cancelled",
    }  # fmt: skip
    delivery = spec["webhooks"]["gate.opened"]["post"]
    assert {p["name"] for p in delivery["parameters"]} == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    message = spec["components"]["schemas"]["WebhookMessage"]
    assert set(message["required"]) == {"type", "timestamp", "data"}
    async with httpx.AsyncClient(base_url=ui_system.base_url) as anonymous:
        refused = await anonymous.get("/api/v1/tasks")
    assert refused.headers["www-authenticate"] == "Bearer"
