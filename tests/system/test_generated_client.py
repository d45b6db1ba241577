"""A client generated from /openapi.json by openapi-python-client (offline) drives a task."""

from __future__ import annotations

import importlib
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
