"""`exosuit submit | wait | approve` against a running system: a URL and a token, nothing else."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.support.system import Api, System

EXOSUIT = str(Path(sys.executable).parent / "exosuit")


def token_of(api: Api) -> str:
    return str(api.http.headers["authorization"]).removeprefix("Bearer ")


async def exosuit(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """Run the CLI as a separate process (the server keeps running in this event loop)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXOSUIT_")}
    process = await asyncio.create_subprocess_exec(
        EXOSUIT,
        *args,
        cwd=cwd,
        env=clean | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_submit_wait_approve_from_another_machine(ui_system: System, tmp_path: Path) -> None:
    member, approver = await ui_system.user("member"), await ui_system.user("approver")
    cwd = tmp_path / "elsewhere"  # the system's own data dir is tmp_path
    await asyncio.to_thread(cwd.mkdir)
    as_member = {"EXOSUIT_URL": ui_system.base_url, "EXOSUIT_TOKEN": token_of(member)}
    code, out, err = await exosuit(
        cwd,
        "submit",
        "--title",
        "Weekly report",
        "--instructions",
        "Summarise the week.",
        "--team",
        ui_system.team,
        "--autonomy",
        "guarded",
        "--idempotency-key",
        "weekly-1",
        "--id-only",
        **as_member,
    )
    assert code == 0, err
    task_id = out.strip()

    code, out, err = await exosuit(cwd, "wait", task_id, "--for", "gate", "--output", "json", **as_member)
    assert code == 0, err
    gated: dict[str, Any] = json.loads(out)
    assert gated["open_gate"]["kind"] == "plan"

    code, out, err = await exosuit(cwd, "approve", task_id, **as_member)  # a member may not
    assert code == 1 and "403 /problems/forbidden" in err

    flags = ["--url", ui_system.base_url, "--token", token_of(approver)]
    waiting = asyncio.create_task(
        exosuit(cwd, "wait", task_id, "--for", "finished", "-o", "json", **as_member)
    )
    code, out, err = await exosuit(cwd, "approve", task_id, *flags)
    assert code == 0, err
    code, out, err = await waiting
    assert code == 0, err
    assert json.loads(out)["status"] == "completed"

    code, out, err = await exosuit(cwd, "approve", task_id, *flags)
    assert code == 1 and "no open gate" in err
    assert await asyncio.to_thread(os.listdir, cwd) == []  # no data dir, database or secret: HTTP only


async def test_wait_gives_up_with_exit_5(ui_system: System, tmp_path: Path) -> None:
    member = await ui_system.user("member")
    task = await member.wait_gate((await member.submit(ui_system.team, "supervised"))["id"], "plan")
    flags = ["--url", ui_system.base_url, "--token", token_of(member)]
    code, out, err = await exosuit(tmp_path, "wait", task["id"], "--timeout", "0.5", "-o", "json", *flags)
    assert code == 5 and "timed out" in err
    assert json.loads(out)["status"] == "awaiting_approval"
    code, _, err = await exosuit(
        tmp_path, "wait", task["id"], "--url", ui_system.base_url, "--token", "exo_bad"
    )
    assert code == 6 and "401 /problems/unauthorized" in err
