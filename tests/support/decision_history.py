"""A decision history made the way people make one: real tasks through the API, decided by a
script (approve, edit, revise, stop), from two templates and without one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.system import Api, System

TOOL_TOKEN_ENV = "I21_TOOL_TOKEN"
TOOL_TOKEN = "tok-3f9a1c77e2b84d09"  # a credential tools.toml names: never in an export
STEADY, SHAKY = "weekly-report", "risky-report"
# Small thresholds, so a short history earns a move: 3 unchanged approvals up, 2 rejects down.
LEARNING: dict[str, Any] = {
    "earned_autonomy_run": 3,
    "earned_autonomy_window": 4,
    "earned_autonomy_rejects": 2,
}


def tools_file(folder: Path) -> Path:
    """A tools.toml whose HTTP tool adds a secret header from TOOL_TOKEN_ENV."""
    path = folder / "tools.toml"
    path.write_text(
        '[http]\nallow = ["http://127.0.0.1:9/"]\n\n[[http.secret_headers]]\n'
        f'prefix = "http://127.0.0.1:9/"\nname = "Authorization"\nenv = "{TOOL_TOKEN_ENV}"\n'
    )
    return path


@dataclass
class History:
    admin: Api
    approver: Api
    team: str
    tasks: list[str] = field(default_factory=list)
    steady: str = ""  # template names (unique per system)
    shaky: str = ""

    async def audit(self) -> list[dict[str, Any]]:
        """Every audit event of the history's tasks."""
        events: list[dict[str, Any]] = []
        for task_id in self.tasks:
            response = await self.admin.http.get(f"/api/v1/tasks/{task_id}/audit")
            assert response.status_code == 200, response.text
            events += [e | {"task_id": task_id} for e in response.json()["items"]]
        return events


async def template(api: Api, name: str, team: str, autonomy: str) -> None:
    body = {
        "name": name,
        "team": team,
        "title": "Report on {{topic}}",
        "instructions": "Write about {{topic}}. The service token is {{token}}.",
        "autonomy": autonomy,
        "params": ["topic", "token"],
    }
    response = await api.http.post("/api/v1/templates", json=body)
    assert response.status_code == 201, response.text


async def run(api: Api, name: str, topic: str) -> dict[str, Any]:
    response = await api.http.post(
        f"/api/v1/templates/{name}/runs", json={"params": {"topic": topic, "token": TOOL_TOKEN}}
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


async def seed(system: System, steady_runs: int = 3, shaky_runs: int = 2) -> History:
    """`steady_runs` runs of a guarded template whose plans are approved unchanged;
    `shaky_runs` of a supervised one whose plans are rejected; a task whose plan and step
    are edited and whose next step is sent back for revision; one left waiting at its gate."""
    admin, approver = await system.user("admin"), await system.user("approver")
    suffix = system.team.removeprefix("team-")
    history = History(admin, approver, system.team, steady=f"{STEADY}-{suffix}", shaky=f"{SHAKY}-{suffix}")
    await template(admin, history.steady, system.team, "guarded")
    await template(admin, history.shaky, system.team, "supervised")
    for n in range(steady_runs):
        task = await run(admin, history.steady, f"week {n}")
        history.tasks.append(task["id"])
        await approver.approve(await approver.wait_gate(task["id"], "plan"))
        await approver.wait_done(task["id"])
    for n in range(shaky_runs):
        task = await run(admin, history.shaky, f"risk {n}")
        history.tasks.append(task["id"])
        gate = await approver.wait_gate(task["id"], "plan")
        response = await approver.decide(gate, "reject", reason="not what we need", on_reject="stop")
        assert response.status_code == 200, response.text
        await approver.wait_done(task["id"])
    task = await admin.submit(system.team, "supervised", title="An edited one")
    history.tasks.append(task["id"])
    gate = await approver.wait_gate(task["id"], "plan")
    steps = [
        {"title": "Draft", "instructions": "Write a first draft.", "kind": "llm", "risk": "low"},
        {"title": "Check", "instructions": "Check the draft.", "kind": "llm", "risk": "low"},
    ]
    assert (await approver.decide(gate, "edit", changes={"steps": steps})).status_code == 200
    gate = await approver.wait_gate(task["id"], "step")
    edited = "Write a first draft of three lines."
    assert (await approver.decide(gate, "edit", changes={"instructions": edited})).status_code == 200
    gate = await approver.wait_gate(task["id"], "step")
    response = await approver.decide(gate, "reject", reason="check the facts too", on_reject="revise")
    assert response.status_code == 200, response.text
    await approver.approve(await approver.wait_gate(task["id"], "step"))
    await approver.wait_done(task["id"])
    waiting = await admin.submit(system.team, "supervised", title="Still waiting")
    history.tasks.append(waiting["id"])
    await approver.wait_gate(waiting["id"], "plan")
    return history


def nearest_rank(values: list[float], share: float) -> float:
    """The value at rank ceil(share * n) of the sorted values (how the dashboard reports p50, p90)."""
    ordered = sorted(values)
    rank = -(-len(ordered) * int(share * 10) // 10)
    return ordered[max(rank, 1) - 1]


def parse_at(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))
