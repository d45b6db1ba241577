"""The `exosuit` command and `exosuit dev` as `make run` starts it (deployment: test_deploy.py)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from exosuit.domain.autonomy import Role
from exosuit.processes import free_port
from exosuit.storage.db import Database
from exosuit.storage.identity import Directory
from tests.support.cli import EXOSUIT, run_cli
from tests.support.model_server import ModelServer, ScriptedModel


async def test_cli_manages_users_teams_and_tokens(tmp_path: Path) -> None:
    env = {"EXOSUIT_DATA_DIR": str(tmp_path)}
    code, out = await run_cli(
        "user",
        "add",
        "Ana@Example.com",
        "--team",
        "red",
        "--team",
        "blue",
        "--role",
        "approver",
        env=env,
    )
    assert code == 0, out
    code, out = await run_cli(
        "team",
        "set",
        "red",
        "--max-autonomy",
        "guarded",
        "--gate-deadline",
        "2",
        "--monthly-budget",
        "25",
        "--max-active-tasks",
        "5",
        "--model-wait",
        "6",
        "--max-revisions",
        "3",
        "--quorum-high",
        "2",
        env=env,
    )
    assert (code, out.strip()) == (
        0,
        "red: max autonomy guarded, gate deadline 2 h, monthly budget $25, at most 5 active tasks, "
        "30 submissions a minute per person, model outages waited out for 6 h, 3 revisions per gate, "
        "2 approvals per high-risk gate",
    )
    code, out = await run_cli("team", "set", "red", "--quorum-high", "0", env=env)
    assert code == 2 and "not at least 1" in out, out
    for bad in ("nan", "inf", "-1", "1e999"):
        code, out = await run_cli("team", "set", "red", "--monthly-budget", bad, env=env)
        assert code == 2 and "finite, non-negative" in out, (bad, out)
    code, out = await run_cli("token", "create", "ana@example.com", "--name", "ci", env=env)
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("exo_")

    db = Database.from_url(f"sqlite:///{tmp_path / 'exosuit.db'}")
    try:
        directory = Directory(db)
        principal = await directory.principal_for_token(token)
        assert principal is not None
        assert principal.email == "ana@example.com" and principal.token_name == "ci"
        assert principal.roles == {"red": Role.APPROVER, "blue": Role.APPROVER}
        team = await directory.team("red")
        assert team is not None and team.gate_deadline_seconds == 7200
        assert team.monthly_budget_usd == 25
        assert team.monthly_budget_usd == 25
        async with db.session() as session:
            from sqlmodel import select

            from exosuit.storage.tables import ApiToken

            stored = (await session.exec(select(ApiToken.token_hash))).all()
        assert token not in stored  # only the hash is kept
    finally:
        await db.dispose()
    code, out = await run_cli("audit", "verify", "t_missing", env=env)
    assert code == 3 and "no such task" in out


@pytest.fixture
async def dev_model(model_server: ModelServer) -> tuple[str, ScriptedModel]:
    model = ScriptedModel()
    return model_server.register(model), model


async def start_dev(
    data_dir: Path, model_url: str, port: int
) -> tuple[asyncio.subprocess.Process, list[str]]:
    env = os.environ | {"EXOSUIT_DATA_DIR": str(data_dir), "EXOSUIT_LLM_BASE_URL": model_url}
    env.pop("TEMPORAL_ADDRESS", None)
    process = await asyncio.create_subprocess_exec(
        EXOSUIT,
        "dev",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    lines: list[str] = []
    ready_by = asyncio.get_running_loop().time() + 90
    while True:
        left = ready_by - asyncio.get_running_loop().time()
        assert left > 0, f"exosuit dev was not ready in 90 s: {lines}"
        line = (await asyncio.wait_for(process.stdout.readline(), left)).decode()
        assert line, f"exosuit dev exited early: {lines}"
        lines.append(line)
        if "Ctrl-C" in line:
            return process, lines


async def stop_dev(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGINT)
    return await asyncio.wait_for(process.wait(), 30)


async def test_exosuit_dev_runs_a_task_and_keeps_it_across_a_restart(
    tmp_path: Path, dev_model: tuple[str, ScriptedModel]
) -> None:
    url, _ = dev_model
    port = free_port()
    process, lines = await start_dev(tmp_path, url, port)
    try:
        text = "".join(lines)
        assert f"ready at http://127.0.0.1:{port}" in text
        # Not a terminal: the credentials are not printed, but written to a private file.
        credentials = tmp_path / "first-start.txt"
        assert "API token" not in text and str(credentials) in text
        password = re.search(r"with password (\S+)", credentials.read_text())
        token_line = re.search(r"API token \(shown once\): (\S+)", credentials.read_text())
        assert password and token_line
        for private in ("first-start.txt", "exosuit.db", "secret_key", "temporal/temporal.db"):
            assert (tmp_path / private).stat().st_mode & 0o077 == 0, private
        headers = {"Authorization": f"Bearer {token_line.group(1)}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            assert (await http.get("/readyz")).status_code == 200
            body = {"title": "Hello", "instructions": "Say hello.", "team": "default", "autonomy": "guarded"}
            task = (await http.post("/api/v1/tasks", json=body)).json()
            for _ in range(300):
                task = (await http.get(f"/api/v1/tasks/{task['id']}")).json()
                if task["open_gate"]:
                    break
                await asyncio.sleep(0.05)
            gate = task["open_gate"]
            decided = await http.post(
                f"/api/v1/tasks/{task['id']}/decisions", json={"gate_id": gate["id"], "action": "approve"}
            )
            assert decided.status_code == 200, decided.text
            for _ in range(600):
                task = (await http.get(f"/api/v1/tasks/{task['id']}")).json()
                if task["status"] == "completed":
                    break
                await asyncio.sleep(0.05)
            assert task["status"] == "completed"
    finally:
        assert await stop_dev(process) == 0
    assert (tmp_path / "temporal" / "temporal.db").exists()

    process, lines = await start_dev(tmp_path, url, port)
    try:
        assert "First start" not in "".join(lines)  # the admin exists already
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            again = (await http.get(f"/api/v1/tasks/{task['id']}")).json()
            assert again["status"] == "completed"
    finally:
        assert await stop_dev(process) == 0
