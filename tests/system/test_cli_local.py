"""The local `exosuit` commands (the ones that open the database) refuse to run where there is
none instead of making one, and say when a task does not exist."""

from __future__ import annotations

import asyncio
import os
from importlib.metadata import version
from pathlib import Path

from exosuit.cli.exit_codes import ExitCode
from tests.support.cli import EXOSUIT


async def exosuit(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXOSUIT_")}
    process = await asyncio.create_subprocess_exec(
        EXOSUIT, *args, cwd=cwd, env=clean | env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_local_command_outside_a_data_dir_refuses_and_creates_nothing(tmp_path: Path) -> None:
    default = await asyncio.to_thread(lambda: tmp_path.resolve() / "var" / "exosuit.db")
    for command in (["usage"], ["audit", "verify", "t_1"], ["token", "list", "a@example.com"]):
        code, out, err = await exosuit(tmp_path, *command)
        assert (code, out) == (ExitCode.NOT_SET_UP, ""), command
        assert f"no Exosuit database at {default}" in err
    code, _, err = await exosuit(tmp_path, "user", "add", "a@example.com", "--team", "t", "--role", "admin")
    assert code == ExitCode.NOT_SET_UP and "set EXOSUIT_DATA_DIR" in err  # not a data dir made by accident
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_audit_verify_says_a_task_does_not_exist(tmp_path: Path) -> None:
    data = {"EXOSUIT_DATA_DIR": str(tmp_path / "data")}
    code, _, err = await exosuit(
        tmp_path, "user", "add", "a@example.com", "--team", "t", "--role", "admin", **data
    )
    assert code == ExitCode.OK, err  # a data dir named on purpose is made
    code, out, err = await exosuit(tmp_path, "audit", "verify", "t_doesnotexist", **data)
    assert (code, out) == (ExitCode.NOT_FOUND, "")
    assert err == "t_doesnotexist: no such task (no row, no audit event, no anchor)\n"
    code, out, _ = await exosuit(tmp_path, "usage", **data)
    assert code == ExitCode.OK and out.startswith("month")


async def test_version(tmp_path: Path) -> None:
    assert await exosuit(tmp_path, "--version") == (0, f"exosuit {version('exosuit')}\n", "")
