"""Schemathesis throws generated requests at every operation of the running app's own
/openapi.json: no answer may be a 5xx, and every answer must be one the document declares
(status, content type, headers, body schema). A task, a template, a webhook and a schedule
exist beforehand, so the operations on one are reached, not only their 404s."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.support.system import Api, System

ST = str(Path(sys.executable).parent / "st")
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)


async def existing(system: System, api: Api) -> dict[str, str]:
    """One of each thing a path names, as schemathesis's `path.NAME` parameters."""
    # Finished, so `wait` answers at once whatever `for` and `timeout` it is sent.
    task = await api.submit(system.team, "delegated")  # low-risk steps: no gate
    await api.wait_done(task["id"])
    template = {"name": f"t-{system.team}", "team": system.team, "title": "Report on {{topic}}",
                "instructions": "About {{topic}}.", "params": ["topic"]}  # fmt: skip
    created = await api.http.post("/api/v1/templates", json=template)
    assert created.status_code == 201, created.text
    hook = {"team": system.team, "url": "http://127.0.0.1:9/hook", "events": []}
    webhook = await api.http.post("/api/v1/webhooks", json=hook)
    assert webhook.status_code == 201, webhook.text
    plan = {"template": template["name"], "params": {"topic": "rain"}, "cron": "0 9 * * 1-5"}
    schedule = await api.http.post("/api/v1/schedules", json=plan)
    assert schedule.status_code == 201, schedule.text
    return {
        "path.task_id": task["id"],
        "path.name": template["name"],
        "path.webhook_id": webhook.json()["id"],
        "path.schedule_id": schedule.json()["id"],
    }


async def test_every_answer_to_generated_requests_is_declared_and_none_is_a_5xx(
    loopback_system: System, tmp_path: Path
) -> None:
    approver = await loopback_system.user("approver")
    parameters = await existing(loopback_system, approver)
    config = tmp_path / "schemathesis.toml"
    lines = ["[parameters]", *(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in parameters.items())]
    await asyncio.to_thread(config.write_text, "\n".join(lines) + "\n")
    process = await asyncio.create_subprocess_exec(
        ST, "--config-file", str(config), "run", f"{loopback_system.base_url}/openapi.json",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "15",  # bounded: every operation, well under a minute on a loaded machine
        "--seed", "22",
        "--workers", "2",
        "--request-timeout", "75",
        "--header", f"Authorization: {approver.http.headers['authorization']}",
        "--report-dir", str(tmp_path),
        cwd=tmp_path,  # its cache (.schemathesis/) goes there, not into the checkout
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 600)
    report = out.decode()
    assert process.returncode == 0, report[-8000:]
