"""A running step's output streams to its task page; the final text is what is stored."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.pages import signed_in
from tests.support.system import WAIT_SECONDS, System

WORDS = " ".join(f"word{n}" for n in range(40))
ONE_STEP = [{"title": "Write", "instructions": "Write it.", "kind": "llm", "tool": None, "risk": "low"}]


async def started_streaming(system: System) -> tuple[Any, str]:
    await system.set_team(max_autonomy="autonomous")
    system.model.plan = ONE_STEP
    system.model.step_answer = lambda prompt: WORDS
    system.model.chunk_delay = 0.1  # 40 chunks: about 4 s of streaming, seen a few times on a busy machine
    user = await system.user("approver")
    task = await user.submit(system.team, "autonomous")
    return user, task["id"]


async def test_running_step_output_streams_then_the_final_text_is_stored(ui_system: System) -> None:
    user, task_id = await started_streaming(ui_system)
    browser, _ = await signed_in(ui_system, "member")
    seen: list[str] = []
    page_showed_it = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while True:
        assert loop.time() < deadline, f"the task did not complete in {WAIT_SECONDS} s: {seen}"
        task = await user.task(task_id)
        step = task["steps"][0] if task["steps"] else None
        if task["status"] == "completed":
            break
        if step and step["status"] == "running" and step["partial_output"]:
            if not seen or step["partial_output"] != seen[-1]:
                seen.append(step["partial_output"])
            if not page_showed_it:
                page = await browser.http.get(f"/tasks/{task_id}")
                page_showed_it = 'class="text output streaming"' in page.text
        await asyncio.sleep(0.05)
    assert len(seen) >= 2, seen  # the text grew while the step ran
    assert all(WORDS.startswith(part) for part in seen)
    assert len(seen[0]) < len(seen[-1]) < len(WORDS) + 1
    assert page_showed_it
    step = task["steps"][0]
    assert step["output"] == WORDS
    assert step["partial_output"] is None
    assert step["usage"]["prompt_tokens"] == 11  # what the provider reported at the end
    assert step["usage"]["completion_tokens"] == 7


async def test_a_stream_without_usage_is_counted_and_flagged(ui_system: System) -> None:
    ui_system.model.stream_usage = False
    user, task_id = await started_streaming(ui_system)
    task = await user.wait_done(task_id)
    assert task["steps"][0]["usage"]["completion_tokens"] == 40  # one chunk, one token
    audit = (await user.http.get(f"/api/v1/tasks/{task_id}/audit")).json()["items"]
    finished = next(e for e in audit if e["action"] == "step.finished")
    assert finished["data"]["usage_estimated"] is True
