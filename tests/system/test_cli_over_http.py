"""The `exosuit` HTTP commands as a person or a script runs them, against the real app: every
command, text and `--output json`, an exit code per outcome, never a data dir made."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from exosuit.cli.exit_codes import ExitCode
from tests.support.cli import EXOSUIT
from tests.support.system import Api, System


class Cli:
    """`exosuit` run as its own process, from an empty directory, as one person."""

    def __init__(self, system: System, api: Api, cwd: Path) -> None:
        token = str(api.http.headers["authorization"]).removeprefix("Bearer ")
        self.env = {"EXOSUIT_URL": system.base_url, "EXOSUIT_TOKEN": token}
        self.cwd = cwd

    async def __call__(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("EXOSUIT_")}
        process = await asyncio.create_subprocess_exec(
            EXOSUIT, *args, cwd=self.cwd, env=clean | (self.env if env is None else env),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 90)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def json(self, *args: str) -> Any:
        code, out, err = await self(*args, "--output", "json")
        assert code == ExitCode.OK, err
        return json.loads(out)


async def clis(system: System, tmp_path: Path) -> tuple[Cli, Cli]:
    """A member's CLI and an approver's, both run from a directory that must stay empty."""
    cwd = tmp_path / "elsewhere"
    await asyncio.to_thread(cwd.mkdir)
    member, approver = await system.user("member"), await system.user("approver")
    return Cli(system, member, cwd), Cli(system, approver, cwd)


async def test_a_task_is_submitted_read_decided_and_waited_for_from_the_command_line(
    loopback_system: System, tmp_path: Path
) -> None:
    member, approver = await clis(loopback_system, tmp_path)
    code, out, err = await member(
        "submit", "--title", "Weekly report", "--instructions", "Summarise the week.",
        "--team", loopback_system.team, "--idempotency-key", "weekly-1", "--id-only",
    )  # fmt: skip
    assert code == ExitCode.OK, err
    task_id = out.strip()

    plan = await member.json("wait", task_id, "--for", "gate")
    assert plan["open_gate"]["kind"] == "plan"
    code, out, _ = await member("get", task_id)
    assert out.splitlines()[0].startswith(
        f"{task_id}  awaiting_approval  supervised  team {loopback_system.team}"
    )
    assert f"open gate {plan['open_gate']['id']} (plan)" in out
    code, out, _ = await member("list", "--status", "awaiting_approval")
    assert out.split()[:5] == ["ID", "STATUS", "AUTONOMY", "TEAM", "TITLE"] and task_id in out
    assert [t["id"] for t in (await member.json("list", "--team", loopback_system.team))["items"]] == [
        task_id
    ]

    code, _, err = await member("approve", task_id)
    assert code == ExitCode.REFUSED and "403 /problems/forbidden" in err
    assert (await approver.json("approve", task_id, "--reason", "fine"))["id"] == task_id

    step = await member.json("wait", task_id, "--for", "gate")
    assert step["open_gate"]["kind"] == "step"
    edited = await approver.json("edit", task_id, "--instructions", "Three lines at most.")
    assert edited["steps"][0]["instructions"] == "Three lines at most."

    await member.json("wait", task_id, "--for", "gate")
    code, out, err = await approver("reject", task_id, "--reason", "Not needed.", "--on-reject", "skip")
    assert code == ExitCode.OK, err
    assert out.startswith(task_id)

    done = await member.json("wait", task_id, "--for", "finished")
    assert done["status"] == "completed"
    assert [s["status"] for s in done["steps"]] == ["completed", "skipped"]
    code, _, err = await approver("approve", task_id)
    assert code == ExitCode.REFUSED and "no open gate (it is completed)" in err
    code, _, err = await approver("cancel", task_id)
    assert code == ExitCode.REFUSED and "409 /problems/task-finished" in err
    code, _, err = await approver("resume", task_id)
    assert code == ExitCode.REFUSED and "409" in err
    assert await asyncio.to_thread(os.listdir, member.cwd) == []  # no data dir, database or secret


async def test_each_kind_of_failure_has_its_own_exit_code(loopback_system: System, tmp_path: Path) -> None:
    member, _ = await clis(loopback_system, tmp_path)
    code, _, err = await member("get", "t_doesnotexist")
    assert (code, err.strip()) == (
        ExitCode.NOT_FOUND,
        "exosuit: 404 /problems/not-found: no task t_doesnotexist",
    )

    code, _, err = await member(
        "submit", "--title", " ", "--instructions", "x", "--team", loopback_system.team
    )
    assert code == ExitCode.INVALID
    assert err.splitlines()[0] == "exosuit: 422 /problems/validation: the request is invalid"
    assert "  body.title: String should have at least 1 character" in err.splitlines()
    code, out, _ = await member("get", "t_doesnotexist", "--output", "json")  # the problem, for a script
    assert code == ExitCode.NOT_FOUND and json.loads(out)["type"] == "/problems/not-found"

    task = await member.json(
        "submit", "--title", "Memo", "--instructions", "x", "--team", loopback_system.team
    )
    await member.json("wait", task["id"], "--for", "gate")
    code, out, err = await member("wait", task["id"], "--timeout", "0.3", "--output", "json")
    assert code == ExitCode.TIMED_OUT and "timed out waiting for finished" in err
    assert json.loads(out)["status"] == "awaiting_approval"

    code, out, err = await member("cancel", task["id"])
    assert (code, out.strip()) == (ExitCode.OK, f"{task['id']}: cancelling")
    assert (await member.json("wait", task["id"]))["status"] == "cancelled"

    code, _, err = await member("list", env=member.env | {"EXOSUIT_TOKEN": "exo_wrong"})
    assert code == ExitCode.UNAUTHORIZED and "401 /problems/unauthorized" in err
    code, _, err = await member("list", env={})
    assert code == ExitCode.NOT_SET_UP and "a token is needed" in err
    code, _, err = await member("get", "t_x", "--url", "http://127.0.0.1:9", env=member.env)
    assert code == ExitCode.UNAVAILABLE and "did not answer" in err
    code, _, err = await member("wait")
    assert code == ExitCode.USAGE and "required: task_id" in err


async def test_the_url_and_token_come_from_a_config_file(loopback_system: System, tmp_path: Path) -> None:
    member, _ = await clis(loopback_system, tmp_path)
    config = tmp_path / "config.toml"
    lines = f'url = "{member.env["EXOSUIT_URL"]}"\ntoken = "{member.env["EXOSUIT_TOKEN"]}"\n'
    await asyncio.to_thread(config.write_text, lines)
    await asyncio.to_thread(config.chmod, 0o600)
    code, out, err = await member("list", env={"EXOSUIT_CONFIG": str(config)})
    assert (code, out, err) == (ExitCode.OK, "(none)\n", "")  # the member has no task yet
    await asyncio.to_thread(config.chmod, 0o644)
    code, _, err = await member("list", env={"EXOSUIT_CONFIG": str(config)})
    assert code == ExitCode.OK and "others may read it" in err


async def test_templates_run_and_webhooks_list(loopback_system: System, tmp_path: Path) -> None:
    member, approver = await clis(loopback_system, tmp_path)
    admin = await loopback_system.user("approver")
    name = f"report-{loopback_system.team}"
    template = {"name": name, "team": loopback_system.team, "title": "Report for {{client}}",
                "instructions": "About {{client}}.", "params": ["client"]}  # fmt: skip
    assert (await admin.http.post("/api/v1/templates", json=template)).status_code == 201
    code, out, _ = await member("templates", "list")
    assert name in out and "client" in out
    code, out, err = await member("templates", "run", name, "--param", "client=ACME", "--id-only")
    assert code == ExitCode.OK, err
    assert (await member.json("get", out.strip()))["title"] == "Report for ACME"
    code, _, err = await member("templates", "run", "nonesuch")
    assert code == ExitCode.NOT_FOUND

    hook = {"team": loopback_system.team, "url": "http://127.0.0.1:9/hooks", "events": ["task.completed"]}
    created = (await admin.http.post("/api/v1/webhooks", json=hook)).json()
    code, out, _ = await approver("webhooks", "list")
    assert created["id"] in out and "task.completed" in out and "http://127.0.0.1:9/hooks" in out
    assert [w["id"] for w in (await approver.json("webhooks", "list"))["items"]] == [created["id"]]
