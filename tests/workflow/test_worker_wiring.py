"""The worker registers exactly the activities its workflows call: none is kept for runs of
an older workflow version (docs/workflow-versioning.md)."""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from exosuit.cli.worker import build_worker
from exosuit.domain import automation, contracts
from exosuit.settings import Settings
from exosuit.storage.db import Database

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def activity_names_the_workflows_call() -> set[str]:
    """Every `*_ACTIVITY` name the code in workflows/ uses (imports alone do not count)."""
    used = {
        node.id
        for path in WORKFLOWS.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Name) and node.id.endswith("_ACTIVITY")
    }
    return {getattr(contracts, name, None) or getattr(automation, name) for name in used}


async def test_the_worker_registers_only_the_activities_its_workflows_call(
    tmp_path: Path, sqlite_db: Database
) -> None:
    beside = Path(sys.executable).parent / "temporal-test-server"
    server = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=server)
    try:
        settings = Settings(data_dir=tmp_path, llm_base_url="http://127.0.0.1:9/v1", llm_api_key="test")
        worker = build_worker(env.client, settings, sqlite_db)
        registered = {
            activity._Definition.must_from_callable(fn).name for fn in worker.config()["activities"]
        }
    finally:
        await env.shutdown()
    assert registered == activity_names_the_workflows_call()
    assert "record_events" in registered  # the scan sees the names the workflow uses
