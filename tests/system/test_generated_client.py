"""A client generated from /openapi.json by openapi-python-client (offline) drives a task."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support.system import System

BIN = Path(sys.executable).parent


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[Any]:
    """A function that generates the client package from a spec and imports it."""
    added: list[str] = []

    def generate(spec: str) -> Any:
        (tmp_path / "openapi.json").write_text(spec)
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff hooks
        subprocess.run(
            [
                shutil.which("openapi-python-client", path=str(BIN)) or "openapi-python-client",
                "generate",
                "--path",
                "openapi.json",
                "--output-path",
                str(tmp_path / "exosuit_client"),
                "--meta",
                "none",
            ],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        sys.path.insert(0, str(tmp_path))
        added.append(str(tmp_path))
        return _import_all()

    yield generate
    for path in added:
        sys.path.remove(path)
    for name in [n for n in sys.modules if n == "exosuit_client" or n.startswith("exosuit_client.")]:
        del sys.modules[name]


def _import_all() -> Any:
    names = [
        "exosuit_client",
        "exosuit_client.models",
        "exosuit_client.api.tasks.create_task",
        "exosuit_client.api.tasks.wait_for_task",
        "exosuit_client.api.tasks.decide_gate",
        "exosuit_client.api.tasks.list_tasks",
        "exosuit_client.api.approvals.list_approvals",
    ]
    modules: dict[str, ModuleType] = {n.rsplit(".", 1)[-1]: importlib.import_module(n) for n in names}
    return type("Generated", (), modules)


async def test_a_generated_client_drives_a_task_from_submit_to_completion(
    ui_system: System, generated: Any
) -> None:
    async with httpx.AsyncClient(base_url=ui_system.base_url) as anonymous:
        spec = (await anonymous.get("/openapi.json")).text
    gen = generated(spec)
    models = gen.models
    submitter_api, approver_api = await ui_system.user("approver"), await ui_system.user("approver")

    def client(api: Any) -> Any:
        token = api.http.headers["authorization"].removeprefix("Bearer ")
        return gen.exosuit_client.AuthenticatedClient(
            base_url=ui_system.base_url, token=token, timeout=httpx.Timeout(75)
        )

    async with client(submitter_api) as submitter, client(approver_api) as approver:
        body = models.TaskCreate(
            title="Quarterly memo",
            instructions="Two short paragraphs.",
            team=ui_system.team,
            autonomy=models.AutonomyLevel.SUPERVISED,
        )
        created = await gen.create_task.asyncio_detailed(
            client=submitter, body=body, idempotency_key="memo-1"
        )
        assert created.status_code == 201
        task = created.parsed
        assert isinstance(task, models.TaskOut) and task.status in set(models.TaskStatus)

        gates: list[str] = []
        for _ in range(10):
            task = await gen.wait_for_task.asyncio(
                task.id, client=submitter, for_=models.WaitFor.GATE, timeout=20
            )
            assert isinstance(task, models.TaskOut)
            if task.status is not models.TaskStatus.AWAITING_APPROVAL:
                break
            gate = task.open_gate
            decision = models.DecisionIn(gate_id=gate.id, action=models.DecisionAction.APPROVE)
            if not gates:  # supervised: four-eyes keeps the submitter from deciding, as a typed problem
                refused = await gen.decide_gate.asyncio(task.id, client=submitter, body=decision)
                assert isinstance(refused, models.ProblemOut)
                assert (refused.status, refused.type_) == (403, "/problems/four-eyes")
            decided = await gen.decide_gate.asyncio_detailed(task.id, client=approver, body=decision)
            assert decided.status_code == 200, decided.content
            gates.append(gate.kind.value)
        assert task.status is models.TaskStatus.COMPLETED
        assert gates == ["plan", "step", "step"]

        listed = await gen.list_tasks.asyncio(client=submitter, limit=1)
        assert isinstance(listed, models.TaskList) and [t.id for t in listed.items] == [task.id]
        queue = await gen.list_approvals.asyncio(client=approver)
        assert isinstance(queue, models.ApprovalList) and queue.items == []


EVERY_ANSWER = {
    "healthz": 200, "readyz": 200,
    "create_template": 201, "list_templates": 200, "get_template": 404, "run_template": 201,
    "wait_for_task": 200, "get_task": 200, "list_tasks": 200, "list_audit_events": 200,
    "verify_audit": 200, "export_audit": 200, "task_events": 200,
    "set_autonomy": 409, "decide_gate": 409, "resume_task": 409,
    "create_task": 201, "list_approvals": 200, "cancel_task": 202,
    "create_webhook": 201, "list_webhooks": 200, "list_deliveries": 200, "resend_delivery": 404,
    "delete_webhook": 204,
    "create_schedule": 201, "list_schedules": 200, "pause_schedule": 200, "resume_schedule": 200,
    "trigger_schedule": 202, "delete_schedule": 204,
    "decode": 422,
    "get_stats": 200, "list_suggestions": 200, "accept_suggestion": 404, "dismiss_suggestion": 404,
    "export_decisions": 403,
    "claim_gate": 409, "release_gate": 409, "bulk_approve": 200,
}  # fmt: skip


async def test_a_generated_client_reaches_every_operation_and_types_each_answer(
    loopback_system: System, generated: Any
) -> None:
    async with httpx.AsyncClient(base_url=loopback_system.base_url) as anonymous:
        spec = (await anonymous.get("/openapi.json")).json()
    gen = generated(json.dumps(spec))
    models = gen.models
    tags = {op["operationId"]: op["tags"][0] for ops in spec["paths"].values() for op in ops.values()}
    assert set(tags) == set(EVERY_ANSWER)  # a new operation is added here, with the answer it gives
    api = await loopback_system.user("approver")
    token = api.http.headers["authorization"].removeprefix("Bearer ")
    answers: dict[str, int] = {}

    async def call(operation: str, *args: Any, **kwargs: Any) -> Any:
        module = importlib.import_module(f"exosuit_client.api.{tags[operation]}.{operation}")
        response = await module.asyncio_detailed(*args, client=client, **kwargs)
        answers[operation] = response.status_code
        if response.status_code >= 400:  # every refusal is typed, never None
            assert isinstance(response.parsed, models.ProblemOut), (operation, response.content)
        return response.parsed

    team, name = loopback_system.team, f"memo-{loopback_system.team}"
    client = gen.exosuit_client.AuthenticatedClient(
        base_url=loopback_system.base_url, token=token, timeout=httpx.Timeout(75)
    )
    async with client:
        await call("healthz")
        await call("readyz")
        template = {"name": name, "team": team, "title": "Memo on {{topic}}", "autonomy": "delegated",
                    "instructions": "About {{topic}}.", "params": ["topic"]}  # fmt: skip
        await call("create_template", body=models.TemplateIn.from_dict(template))
        assert [t.name for t in (await call("list_templates")).items] == [name]
        assert (await call("get_template", "nonesuch")).status == 404
        run = models.RunIn.from_dict({"params": {"topic": "rain"}})
        task = await call("run_template", name, body=run, idempotency_key="memo-1")
        done = await call("wait_for_task", task.id, for_=models.WaitFor.FINISHED, timeout=30)
        assert done.status is models.TaskStatus.COMPLETED
        assert (await call("get_task", task.id)).title == "Memo on rain"
        assert [t.id for t in (await call("list_tasks", team=team)).items] == [task.id]
        assert (await call("list_audit_events", task.id)).items[0].seq == 1
        assert (await call("verify_audit", task.id)).ok is True
        await call("export_audit", task.id)
        await call("task_events", task.id)  # finished: one event, then the stream ends
        slider = models.AutonomyIn(autonomy=models.AutonomyLevel.GUARDED)
        assert (await call("set_autonomy", task.id, body=slider)).type_ == "/problems/task-finished"
        decision = models.DecisionIn(gate_id="g_gone", action=models.DecisionAction.APPROVE)
        await call("decide_gate", task.id, body=decision)
        await call("resume_task", task.id)  # only a failed task resumes

        body = models.TaskCreate(title="Note", instructions="Short.", team=team)
        waiting = await call("create_task", body=body)
        await call("list_approvals")
        await call("claim_gate", task.id, "g_gone", body=models.ClaimIn())  # that gate is not open
        await call("release_gate", task.id, "g_gone")
        item = models.BulkItemIn(task_id=task.id, gate_id="g_gone", etag="e")
        bulk = await call(
            "bulk_approve", body=models.BulkIn.from_dict({"action": "approve", "items": [item.to_dict()]})
        )
        assert [i.status for i in bulk.items] == [409]  # each item answered on its own
        await call("cancel_task", waiting.id)

        hook = models.WebhookIn.from_dict({"team": team, "url": "http://127.0.0.1:9/hook", "events": []})
        webhook = await call("create_webhook", body=hook)
        assert webhook.secret.startswith("whsec_")
        assert [w.id for w in (await call("list_webhooks")).items] == [webhook.id]
        await call("list_deliveries", webhook.id)
        await call("resend_delivery", webhook.id, "d_none")
        await call("delete_webhook", webhook.id)

        plan = {"template": name, "params": {"topic": "snow"}, "cron": "0 9 * * 1-5"}
        schedule = await call("create_schedule", body=models.ScheduleIn.from_dict(plan))
        assert [s.id for s in (await call("list_schedules")).items] == [schedule.id]
        assert (await call("pause_schedule", schedule.id)).paused is True
        assert (await call("resume_schedule", schedule.id)).paused is False
        await call("trigger_schedule", schedule.id)
        await call("delete_schedule", schedule.id)
        await call("decode")  # no payloads sent: refused as a typed problem

        await call("get_stats", team=team)
        await call("list_suggestions")
        await call("accept_suggestion", "as_none")
        await call("dismiss_suggestion", "as_none")
        await call("export_decisions")  # an approver, not an admin: refused
    assert answers == EVERY_ANSWER
