"""Helpers that drive a task through its gates over the API."""

from __future__ import annotations

from typing import Any

from exosuit.domain.task import ENDED_STATUSES
from tests.support.system import Api

ENDED = ENDED_STATUSES
MAX_GATES = 50  # more than any scenario here opens: a loop that goes on is a bug

THREE_RISKS = [
    {"title": "Outline", "instructions": "Outline it.", "kind": "llm", "tool": None, "risk": "low"},
    {"title": "Write", "instructions": "Write it.", "kind": "llm", "tool": None, "risk": "medium"},
    {"title": "Send", "instructions": "Send it.", "kind": "llm", "tool": None, "risk": "high"},
]


def step_index(task: dict[str, Any]) -> int | None:
    gate = task["open_gate"]
    if gate is None or gate["step_id"] is None:
        return None
    return next(s["index"] for s in task["steps"] if s["id"] == gate["step_id"])


async def next_gate(api: Api, task_id: str, seen: set[str]) -> dict[str, Any]:
    """The task once a gate not seen before is open, or the task has ended."""
    return await api.wait(
        task_id,
        lambda t: t["status"] in ENDED or (t["open_gate"] is not None and t["open_gate"]["id"] not in seen),
        "the next gate",
    )


async def approve_all(api: Api, task_id: str) -> tuple[list[tuple[str, int | None]], dict[str, Any]]:
    """Approve every gate as it opens; the gates met, in order, and the final task."""
    met: list[tuple[str, int | None]] = []
    seen: set[str] = set()
    for _ in range(MAX_GATES):
        task = await next_gate(api, task_id, seen)
        if task["status"] in ENDED:
            return met, task
        seen.add(task["open_gate"]["id"])
        met.append((task["open_gate"]["kind"], step_index(task)))
        await api.approve(task)
    raise AssertionError(f"task {task_id} opened more than {MAX_GATES} gates: {met}")
