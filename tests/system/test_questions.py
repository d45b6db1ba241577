"""Questions: a model step asks a person (ask_human), or a plan asks one itself; any member of
the team answers, whatever the level, and the step goes on with the answer."""

from __future__ import annotations

from typing import Any

from tests.support.system import Api, System

CHOICES = ["Formal", "Friendly", "Terse"]
ONE_STEP = [
    {"title": "Draft", "instructions": "Write a greeting.", "kind": "llm", "tool": None, "risk": "low"}
]


def ask_with_choices(system: System) -> None:
    system.model.plan = ONE_STEP
    system.model.step_calls.append(
        {
            "question": "Which tone should the greeting take?",
            "choices": CHOICES,
            "why": "The brief does not say.",
        }
    )
    system.model.step_answer = lambda prompt: "Hello, in the agreed tone."


async def audit(api: Api, task_id: str) -> list[dict[str, Any]]:
    return (await api.http.get(f"/api/v1/tasks/{task_id}/audit")).json()["items"]  # type: ignore[no-any-return]


async def test_a_member_answers_the_models_question_and_the_step_goes_on(system: System) -> None:
    ask_with_choices(system)
    await system.set_team(max_autonomy="autonomous")  # a question waits whatever the level
    submitter = await system.user("approver")
    member = await system.user("member")
    task = await submitter.submit(system.team, "autonomous")
    task = await member.wait_gate(task["id"], "question")
    gate = task["open_gate"]
    assert gate["question"] == "Which tone should the greeting take?"
    assert gate["choices"] == CHOICES
    assert task["steps"][0]["status"] == "running"

    listed = (await member.http.get("/api/v1/approvals")).json()["items"]
    assert [i["gate"]["id"] for i in listed] == [gate["id"]]  # a member is shown the question

    refused = await member.decide(task, "answer", answer="Shouty")
    assert refused.status_code == 422, refused.text
    refused = await member.decide(task, "approve")
    assert refused.status_code == 422, refused.text

    response = await member.decide(task, "answer", answer="Friendly")
    assert response.status_code == 200, response.text
    task = await member.wait_done(task["id"])
    assert task["status"] == "completed"
    assert task["steps"][0]["output"] == "Hello, in the agreed tone."
    assert system.model.tool_results() == ["Friendly"]
    last = system.model.requests[-1]["messages"]
    assert last[-2]["tool_calls"][0]["function"]["name"] == "ask_human"
    assert last[-1] == {
        "role": "tool",
        "tool_call_id": last[-2]["tool_calls"][0]["id"],
        "content": "Friendly",
    }

    events = await audit(member, task["id"])
    opened = next(e for e in events if e["action"] == "gate.opened" and e["data"]["kind"] == "question")
    assert opened["data"]["question"] == "Which tone should the greeting take?"
    assert opened["data"]["choices"] == CHOICES
    assert opened["data"]["why"] == "The brief does not say."
    assert opened["actor"] == "model:scripted-model"
    decided = next(e for e in events if e["action"] == "gate.decided")
    assert decided["actor"] == f"user:{member.email}"
    assert decided["data"]["action"] == "answer" and decided["data"]["answer"] == "Friendly"


async def test_the_submitter_answers_a_free_text_question(system: System) -> None:
    system.model.plan = ONE_STEP
    system.model.step_calls.append({"question": "Whom is it for?"})
    system.model.step_answer = lambda prompt: "Dear Ada"
    submitter = await system.user("member")
    task = await submitter.submit(system.team, "supervised")
    approver = await system.user("approver")
    await approver.approve(await approver.wait_gate(task["id"], "plan"))
    await approver.approve(await approver.wait_gate(task["id"], "step"))
    task = await submitter.wait_gate(task["id"], "question")
    assert task["open_gate"]["choices"] is None and task["open_gate"]["four_eyes"] is False
    response = await submitter.decide(task, "answer", answer="Ada Lovelace")
    assert response.status_code == 200, response.text
    task = await submitter.wait_done(task["id"])
    assert task["status"] == "completed", task
    assert system.model.tool_results() == ["Ada Lovelace"]


async def test_a_planned_question_step_makes_the_answer_its_output(system: System) -> None:
    system.model.plan = [
        {
            "title": "Ask the colour",
            "instructions": "Ask which colour to use.",
            "kind": "tool",
            "tool": "ask_human",
            "risk": "low",
            "args": '{"question": "Which colour?", "choices": ["Red", "Blue"]}',
        },
        {"title": "Paint", "instructions": "Paint it.", "kind": "llm", "tool": None, "risk": "low"},
    ]
    member = await system.user("member")
    task = await member.submit(system.team, "delegated")
    task = await member.wait_gate(task["id"], "question")
    assert task["open_gate"]["question"] == "Which colour?"
    assert task["open_gate"]["choices"] == ["Red", "Blue"]
    response = await member.decide(task, "answer", answer="Blue")
    assert response.status_code == 200, response.text
    task = await member.wait_done(task["id"])
    assert task["status"] == "completed", task
    assert task["steps"][0]["output"] == "Blue"
    assert "Blue" in system.model.prompts("step")[0]  # the next step sees the answer
    finished = [e for e in await audit(member, task["id"]) if e["action"] == "step.finished"]
    assert finished[0]["actor"] == f"user:{member.email}"


async def test_an_approver_may_reject_a_question_to_stop_the_task(system: System) -> None:
    ask_with_choices(system)
    member = await system.user("member")
    approver = await system.user("approver")
    task = await member.submit(system.team, "delegated")
    task = await member.wait_gate(task["id"], "question")
    refused = await member.decide(task, "reject", reason="no", on_reject="stop")
    assert refused.status_code == 403, refused.text
    response = await approver.decide(task, "reject", reason="Not worth asking.", on_reject="stop")
    assert response.status_code == 200, response.text
    task = await approver.wait_done(task["id"])
    assert task["status"] == "rejected"
