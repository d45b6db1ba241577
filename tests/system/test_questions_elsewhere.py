"""A question answered from everywhere a gate is decided: the MCP server, a decision link, the
CLI; and the audit says, each time, who answered what."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from exosuit.cli.exit_codes import ExitCode
from exosuit.domain.questions import ASK_HUMAN_FUNCTION, question_from_call
from exosuit.llm.client import ModelClient
from exosuit.llm.providers import Provider
from exosuit.storage.decision_links import DecisionLinks
from tests.support.cli import EXOSUIT
from tests.support.system import Api, System
from tests.support.webhook_receiver import Receiver
from tests.system.test_mcp import agent, answer, refusal
from tests.system.test_metrics import samples, value

CHOICES = ["Formal", "Friendly", "Terse"]
ONE_STEP = [
    {"title": "Greet", "instructions": "Write a greeting.", "kind": "llm", "tool": None, "risk": "low"}
]


async def asking(system: System, member: Api) -> dict[str, Any]:
    """A task whose model step asks, with three choices; the task at its question gate."""
    system.model.plan = ONE_STEP
    system.model.step_calls.append({"question": "Which tone?", "choices": CHOICES})
    system.model.step_answer = lambda prompt: "Greetings."
    task = await member.submit(system.team, "delegated")
    return await member.wait_gate(task["id"], "question")


async def answered_by(api: Api, task_id: str) -> tuple[str, str, str | None]:
    audit = (await api.http.get(f"/api/v1/tasks/{task_id}/audit")).json()["items"]
    event = next(e for e in audit if e["action"] == "gate.decided")
    return event["actor"], event["data"]["answer"], event["data"].get("token")


async def test_an_agent_answers_a_question_over_mcp(ui_system: System) -> None:
    async with agent(ui_system, "member") as member:
        listed = answer(await member.call_tool("list_approvals", {}))
        assert listed["items"] == []
        submitter = await ui_system.user("member")
        task = await asking(ui_system, submitter)
        listed = answer(await member.call_tool("list_approvals", {}))
        assert [i["gate"]["question"] for i in listed["items"]] == ["Which tone?"]
        decision = {"task_id": task["id"], "gate_id": task["open_gate"]["id"], "action": "answer"}
        refused = refusal(await member.call_tool("decide", decision | {"answer": "Loud"}))
        assert refused.startswith("422 ")
        done = answer(await member.call_tool("decide", decision | {"answer": "Terse"}))
        assert done["id"] == task["id"]
        finished = answer(await member.call_tool("wait_for_task", {"task_id": task["id"], "for": "finished"}))
        assert finished["task"]["status"] == "completed"
    actor, text, _ = await answered_by(submitter, task["id"])
    assert actor.startswith("user:member-") and text == "Terse"
    assert ui_system.model.tool_results() == ["Terse"]


def form_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(task_id|etag)" value="([^"]+)"', page))


async def test_a_decision_link_shows_the_question_and_answers_it_once(system: System) -> None:
    member = await system.user("member")
    task = await asking(system, member)
    token = await DecisionLinks(system.db).mint(task["id"], member.email)
    assert token is not None
    async with httpx.AsyncClient(base_url=system.base_url) as browser:
        shown = await browser.get(f"/decide/{token}")
        assert shown.status_code == 200
        assert "Which tone?" in shown.text
        for choice in CHOICES:
            assert f'name="answer" value="{choice}"' in shown.text
        assert (await member.task(task["id"]))["open_gate"]["id"] == task["open_gate"][
            "id"
        ]  # GET decides nothing
        fields = form_fields(shown.text) | {"action": "answer"}
        wrong = await browser.post(f"/decide/{token}", data=fields | {"answer": "Loud"})
        assert wrong.status_code == 422
        done = await browser.post(f"/decide/{token}", data=fields | {"answer": "Formal"})
        assert done.status_code == 200, done.text
        assert "You answered “Formal”" in done.text
    assert (await member.wait_done(task["id"]))["status"] == "completed"
    assert await answered_by(member, task["id"]) == (f"user:{member.email}", "Formal", "decision link")


async def exosuit(api: Api, system: System, cwd: Path, *args: str) -> tuple[int, str, str]:
    token = str(api.http.headers["authorization"]).removeprefix("Bearer ")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXOSUIT_")}
    env = clean | {"EXOSUIT_URL": system.base_url, "EXOSUIT_TOKEN": token}
    process = await asyncio.create_subprocess_exec(
        EXOSUIT, *args, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_member_answers_from_the_command_line(loopback_system: System, tmp_path: Path) -> None:
    member = await loopback_system.user("member")
    task = await asking(loopback_system, member)
    code, out, err = await exosuit(member, loopback_system, tmp_path, "get", task["id"])
    assert code == ExitCode.OK, err
    assert "asks: Which tone? [Formal | Friendly | Terse]" in out
    code, out, err = await exosuit(
        member, loopback_system, tmp_path, "answer", task["id"], "--answer", "Loud"
    )
    assert code != ExitCode.OK and "one of" in err
    code, out, err = await exosuit(
        member, loopback_system, tmp_path, "answer", task["id"], "--answer", "Friendly", "--output", "json"
    )
    assert code == ExitCode.OK, err
    assert json.loads(out)["id"] == task["id"]
    assert (await member.wait_done(task["id"]))["status"] == "completed"
    actor, text, _ = await answered_by(member, task["id"])
    assert (actor, text) == (f"user:{member.email}", "Friendly")


async def test_webhooks_and_metrics_carry_the_question_and_its_answer(loopback_system: System) -> None:
    receiver = await Receiver().start()
    try:
        approver, member = await loopback_system.user("approver"), await loopback_system.user("member")
        hook = (
            await approver.http.post(
                "/api/v1/webhooks",
                json={"team": loopback_system.team, "url": f"{receiver.url}/hooks", "events": []},
            )
        ).json()
        task = await asking(loopback_system, member)
        async with httpx.AsyncClient(base_url=loopback_system.base_url) as anonymous:
            metrics = samples((await anonymous.get("/metrics")).text)
            team = loopback_system.team
            assert value(metrics, "exosuit_open_gates", kind="question", team=team) == 1
            assert (await member.decide(task, "answer", answer="Terse")).status_code == 200
            metrics = samples((await anonymous.get("/metrics")).text)
            assert value(metrics, "exosuit_decisions_total", action="answer", outcome="ok") == 1
        await member.wait_done(task["id"])
        await receiver.wait_for(lambda: len(receiver.delivered("/hooks")) >= 4)
        payloads = [Webhook(hook["secret"]).verify(h.body, h.headers) for h in receiver.delivered("/hooks")]
        opened = next(p for p in payloads if p["type"] == "gate.opened")
        assert (opened["data"]["gate"]["kind"], opened["data"]["gate"]["question"]) == (
            "question",
            "Which tone?",
        )
        assert opened["data"]["gate"]["choices"] == CHOICES
        decided = next(p for p in payloads if p["type"] == "gate.decided")
        assert decided["data"]["decision"] == {
            "action": "answer",
            "actor": f"user:{member.email}",
            "answer": "Terse",
        }
    finally:
        await receiver.stop()


async def test_a_member_is_notified_of_a_question_with_a_link_to_answer_it(
    notified: tuple[System, Receiver],
) -> None:
    system, receiver = notified
    member = await system.user("member")
    task = await asking(system, member)
    mine = f"/notify/{member.email}"
    await receiver.wait_for(lambda: receiver.delivered(mine))
    message = receiver.delivered(mine)[0].json()["message"]
    assert "asks: Which tone?" in message
    found = re.search(r"/decide/([A-Za-z0-9_-]+)", message)
    assert found, message
    async with httpx.AsyncClient(base_url=system.base_url) as browser:
        shown = await browser.get(f"/decide/{found.group(1)}")
        done = await browser.post(
            f"/decide/{found.group(1)}",
            data=form_fields(shown.text) | {"action": "answer", "answer": "Friendly"},
        )
        assert done.status_code == 200, done.text
    assert (await member.wait_done(task["id"]))["status"] == "completed"


async def test_the_model_client_reads_a_function_call_streamed_or_not(system: System) -> None:
    assert system.settings.llm_base_url is not None
    client = ModelClient([Provider("scripted", system.settings.llm_base_url)])
    messages = [{"role": "system", "content": "You carry out one step."}, {"role": "user", "content": "Go."}]
    for on_text in (None, _ignore):
        system.model.step_calls.append({"question": "Which tone?", "choices": CHOICES})
        completion = await client.complete(messages, tools=[ASK_HUMAN_FUNCTION], on_text=on_text)
        assert completion.function_call is not None
        assert completion.function_call.name == "ask_human"
        assert question_from_call(completion.function_call.arguments, None).choices == CHOICES
    assert all(r["tools"][0]["function"]["name"] == "ask_human" for r in system.model.requests)


async def _ignore(text: str) -> None:
    del text
