"""Every decision kind: approve, edit (plan / step / output), reject with revise, skip, stop."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.system import System


async def started(system: System, level: str) -> tuple[Any, Any, dict[str, Any]]:
    submitter = await system.user("member")
    approver = await system.user("approver")
    task = await submitter.submit(system.team, level)
    return submitter, approver, await approver.wait_gate(task["id"], "plan")


async def decided_event(approver: Any, task_id: str, kind: str) -> dict[str, Any]:
    """The first decision recorded on a gate of `kind`."""
    audit = (await approver.http.get(f"/api/v1/tasks/{task_id}/audit")).json()["items"]
    return next(e for e in audit if e["action"] == "gate.decided" and e["data"]["kind"] == kind)


async def test_edited_plan_is_the_plan_that_runs(system: System) -> None:
    _, approver, task = await started(system, "supervised")
    new_plan = [
        {
            "title": "Only step",
            "instructions": "Write one line about frost.",
            "kind": "llm",
            "tool": None,
            "risk": "low",
        },
    ]
    response = await approver.decide(task, "edit", changes={"steps": new_plan})
    assert response.status_code == 200, response.text
    task = await approver.wait_gate(task["id"], "step")
    assert [s["title"] for s in task["steps"]] == ["Only step"]
    await approver.approve(task)
    task = await approver.wait_done(task["id"])
    assert task["status"] == "completed"
    assert "Write one line about frost." in system.model.prompts("step")[0]
    event = await decided_event(approver, task["id"], "plan")
    assert event["actor"] == f"user:{approver.email}"
    assert event["data"]["before"]["steps"][0]["title"] == "Draft"
    assert event["data"]["steps"][0]["title"] == "Only step"


async def test_edited_step_instructions_reach_the_model(system: System) -> None:
    _, approver, task = await started(system, "supervised")
    await approver.approve(task)
    task = await approver.wait_gate(task["id"], "step")
    edited = "Write exactly three lines about rain."
    response = await approver.decide(task, "edit", changes={"instructions": edited})
    assert response.status_code == 200, response.text
    assert response.json()["steps"][0]["instructions"] == edited
    task = await approver.wait_gate(task["id"], "step")
    assert f"Instructions:\n{edited}" in system.model.prompts("step")[0]
    assert task["steps"][0]["output"] == f"done: {edited}"
    event = await decided_event(approver, task["id"], "step")
    assert event["data"]["before"] == "Write a first draft."
    assert event["data"]["after"] == edited
    assert "-Write a first draft." in event["data"]["diff"] and f"+{edited}" in event["data"]["diff"]


async def test_edited_output_is_the_accepted_output(system: System) -> None:
    _, approver, task = await started(system, "manual")
    system.model.plan = system.model.plan[:1]
    await approver.approve(task)
    task = await approver.wait_gate(task["id"], "step")
    await approver.approve(task)
    task = await approver.wait_gate(task["id"], "output")
    assert task["steps"][0]["status"] == "awaiting_review"
    response = await approver.decide(task, "edit", changes={"output": "A human wrote this."})
    assert response.status_code == 200, response.text
    await approver.approve(await approver.wait_gate(task["id"], "step"))
    await approver.approve(await approver.wait_gate(task["id"], "output"))
    task = await approver.wait_done(task["id"])
    assert task["steps"][0]["output"] == "A human wrote this."
    assert task["status"] == "completed"


async def test_rejected_plan_goes_back_to_the_model_with_the_reason(system: System) -> None:
    _, approver, task = await started(system, "supervised")
    first_gate = task["open_gate"]["id"]
    response = await approver.decide(task, "reject", reason="Too vague; name the audience.")
    assert response.status_code == 200, response.text
    task = await approver.wait_gate(task["id"], "plan")
    assert task["open_gate"]["id"] != first_gate
    plans = system.model.prompts("plan")
    assert len(plans) == 2 and "Too vague; name the audience." in plans[1]


async def test_rejected_step_is_redrafted_by_the_model_and_gated_again(system: System) -> None:
    _, approver, task = await started(system, "supervised")
    await approver.approve(task)
    task = await approver.wait_gate(task["id"], "step")
    gate = task["open_gate"]["id"]
    system.model.redraft_answers.append("Write a draft for children.")
    response = await approver.decide(task, "reject", reason="It is for children.", on_reject="revise")
    assert response.status_code == 200, response.text
    task = await approver.wait(task["id"], lambda t: t["open_gate"] and t["open_gate"]["id"] != gate)
    assert task["open_gate"]["kind"] == "step"
    assert task["steps"][0]["instructions"] == "Write a draft for children."
    assert "It is for children." in system.model.prompts("redraft")[0]
    assert system.model.prompts("step") == []  # nothing ran before the new approval


async def test_rejected_output_is_regenerated_with_the_reason(system: System) -> None:
    _, approver, task = await started(system, "manual")
    await approver.approve(task)
    await approver.approve(await approver.wait_gate(task["id"], "step"))
    task = await approver.wait_gate(task["id"], "output")
    gate = task["open_gate"]["id"]
    response = await approver.decide(task, "reject", reason="Shorter, please.")
    assert response.status_code == 200, response.text
    task = await approver.wait(task["id"], lambda t: t["open_gate"] and t["open_gate"]["id"] != gate)
    assert task["open_gate"]["kind"] == "output"
    steps = system.model.prompts("step")
    assert len(steps) == 2 and "Shorter, please." in steps[1]


@pytest.mark.parametrize("gate_kind", ["step", "output"])
async def test_skip_skips_the_step_and_moves_on(system: System, gate_kind: str) -> None:
    _, approver, task = await started(system, "manual")
    await approver.approve(task)
    task = await approver.wait_gate(task["id"], "step")
    if gate_kind == "output":
        await approver.approve(task)
        task = await approver.wait_gate(task["id"], "output")
    response = await approver.decide(task, "reject", reason="Not needed.", on_reject="skip")
    assert response.status_code == 200, response.text
    task = await approver.wait_gate(task["id"], "step")
    assert task["steps"][0]["status"] == "skipped"
    assert task["open_gate"]["step_id"] == task["steps"][1]["id"]


async def test_stop_ends_the_task_as_rejected(system: System) -> None:
    _, approver, task = await started(system, "supervised")
    response = await approver.decide(task, "reject", reason="Wrong task.", on_reject="stop")
    assert response.status_code == 200, response.text
    task = await approver.wait_done(task["id"])
    assert task["status"] == "rejected"
    assert task["error"] == "Wrong task."
    assert task["open_gate"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"action": "reject"},  # no reason
        {"action": "reject", "reason": "x", "on_reject": "skip"},  # a plan cannot be skipped
        {"action": "edit", "changes": {"instructions": "x"}},  # not a plan
        {"action": "edit", "changes": {"steps": [{"title": "x"}]}},  # an invalid plan
        {"action": "shrug"},
    ],
)
async def test_malformed_decisions_are_422_and_change_nothing(system: System, body: dict[str, Any]) -> None:
    _, approver, task = await started(system, "supervised")
    response = await approver.decide(task, **body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await approver.task(task["id"]))["open_gate"]["id"] == task["open_gate"]["id"]
    await approver.approve(task)  # the gate is still open and decidable


async def test_tool_steps_run_their_tool(system: System) -> None:
    system.model.plan = [
        {"title": "Poem", "instructions": "Write a poem.", "kind": "llm", "tool": None, "risk": "low"},
        {"title": "Count", "instructions": "Count it.", "kind": "tool", "tool": "word_count", "risk": "low"},
        {
            "title": "Save",
            "instructions": "Roses are red.",
            "kind": "tool",
            "tool": "write_file",
            "risk": "low",
        },
    ]
    _, approver, task = await started(system, "guarded")
    assert [s["risk"] for s in task["steps"]] == ["low", "low", "medium"]  # write_file's floor
    await approver.approve(task)
    task = await approver.wait_gate(task["id"], "step")
    assert task["open_gate"]["step_id"] == task["steps"][2]["id"]
    await approver.approve(task)
    task = await approver.wait_done(task["id"])
    assert task["steps"][1]["output"] == "4 words, 1 lines, 19 characters"  # "done: Write a poem."
    assert task["steps"][2]["output"].startswith("wrote 14 bytes to ")


async def test_a_saved_previous_result_is_the_latest_text_a_model_wrote(system: System) -> None:
    await system.set_team(max_autonomy="autonomous")
    system.model.plan = [
        {"title": "Draft", "instructions": "Write a draft.", "kind": "llm", "tool": None, "risk": "low"},
        {
            "title": "Count",
            "instructions": "Count the words.",
            "kind": "tool",
            "tool": "word_count",
            "risk": "low",
        },
        {
            "title": "Save",
            "instructions": "{previous result}",
            "kind": "tool",
            "tool": "write_file",
            "risk": "low",
        },
    ]
    user = await system.user("approver")
    task = await user.wait_done((await user.submit(system.team, "autonomous"))["id"])
    assert task["steps"][1]["output"] == "4 words, 1 lines, 20 characters"  # "done: Write a draft."
    saved = task["steps"][2]["output"]
    assert saved.startswith("wrote 20 bytes to "), saved  # the draft, not the word count
    assert (
        system.settings.data_dir / "workspace" / saved.split(" to ")[1]
    ).read_text() == "done: Write a draft."
