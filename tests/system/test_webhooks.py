"""Signed webhooks: every event of a task's life reaches a receiver of the tests' own, signed
the Standard Webhooks way, in order, and a receiver that was down gets everything, same ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from temporalio.testing import WorkflowEnvironment

from exosuit.domain.webhooks import new_secret, sign
from exosuit.outbound import DestinationRefused, check_destination
from exosuit.storage.db import Database
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import Api, System, running_system, until
from tests.support.webhook_receiver import FAST, Receiver

LIFE = ["task.created"] + ["gate.opened", "gate.decided"] * 3 + ["task.completed"]


@pytest.fixture
async def auto_system(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    database: Database,
    scripted_model: ScriptedModel,
    tmp_path: Path,
) -> AsyncIterator[System]:
    """The whole system on SQLite and on PostgreSQL, with retries in tenths of a second."""
    async with running_system(
        temporal_env.client, model_server, database, scripted_model, tmp_path, **FAST
    ) as system:
        yield system


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    if server._server is not None:
        await server.stop()


async def subscribe(approver: Api, team: str, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = await approver.http.post(
        "/api/v1/webhooks", json={"team": team, "url": url, "events": events or []}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def walk_supervised_task(system: System, submitter: Api, approver: Api) -> dict[str, Any]:
    task = await submitter.submit(system.team, "supervised")
    for kind in ("plan", "step", "step"):
        task = await approver.wait_gate(task["id"], kind)
        await approver.approve(task)
    return await approver.wait_done(task["id"])


def verified(secret: str, hits: list[Any]) -> list[dict[str, Any]]:
    """Each delivery's payload, verified with the spec's reference implementation."""
    return [Webhook(secret).verify(h.body, h.headers) for h in hits]


async def test_every_event_of_a_task_arrives_signed_and_in_order(
    auto_system: System, receiver: Receiver
) -> None:
    submitter, approver = await auto_system.user("member"), await auto_system.user("approver")
    hook = await subscribe(approver, auto_system.team, f"{receiver.url}/hooks")
    assert hook["secret"].startswith("whsec_")
    task = await walk_supervised_task(auto_system, submitter, approver)
    await receiver.wait_for(lambda: len(receiver.delivered("/hooks")) >= len(LIFE))

    hits = receiver.delivered("/hooks")
    payloads = verified(hook["secret"], hits)
    assert [p["type"] for p in payloads] == LIFE
    assert {p["data"]["task"]["id"] for p in payloads} == {task["id"]}
    assert payloads[1]["data"]["gate"]["kind"] == "plan"
    assert payloads[2]["data"]["decision"]["action"] == "approve"
    assert payloads[-1]["data"]["task"]["status"] == "completed"
    assert len({h.headers["webhook-id"] for h in hits}) == len(LIFE)
    with pytest.raises(WebhookVerificationError):  # a wrong secret fails verification
        Webhook(new_secret()).verify(hits[0].body, hits[0].headers)

    log = (await approver.http.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert sorted(d["id"] for d in log) == sorted(h.headers["webhook-id"] for h in hits)
    assert {(d["status"], d["attempts"]) for d in log} == {("delivered", 1)}
    listed = (await approver.http.get("/api/v1/webhooks")).json()["items"]
    assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]
    metrics = (await approver.http.get("/metrics")).text
    assert (
        f'exosuit_webhook_deliveries{{status="delivered",team="{auto_system.team}"}} {len(LIFE)}.0' in metrics
    )


async def test_a_receiver_that_was_down_gets_everything_in_order_with_the_same_ids(
    auto_system: System, receiver: Receiver
) -> None:
    submitter, approver = await auto_system.user("member"), await auto_system.user("approver")
    hook = await subscribe(approver, auto_system.team, f"{receiver.url}/hooks")
    await receiver.stop()  # down: connections refused
    task = await submitter.submit(auto_system.team, "supervised")
    task = await approver.wait_gate(task["id"], "plan")
    await approver.approve(task)

    async def log() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (
            await approver.http.get(f"/api/v1/webhooks/{hook['id']}/deliveries")
        ).json()["items"]
        return items

    first: dict[str, Any] = {}
    while not first or first["attempts"] < 3:
        first = min(await log(), key=lambda d: d["created_at"])
    assert first["status"] == "pending" and first["next_attempt_at"] and first["last_error"]
    receiver.answer = 503  # up, but failing: the attempts arrive and are refused
    await receiver.start()
    await receiver.wait_for(lambda: len(receiver.received) >= 2)
    receiver.answer = 200
    for kind in ("step", "step"):
        task = await approver.wait_gate(task["id"], kind)
        await approver.approve(task)
    await receiver.wait_for(lambda: len(receiver.delivered("/hooks")) >= len(LIFE))

    refused = [r for r in receiver.received if r.status == 503]
    delivered = receiver.delivered("/hooks")
    assert {r.headers["webhook-id"] for r in refused} == {first["id"]}  # retried under one id
    payloads = verified(hook["secret"], delivered)
    assert [p["type"] for p in payloads] == LIFE  # nothing lost, nothing out of order
    assert delivered[0].headers["webhook-id"] == first["id"]
    final = await log()
    assert {d["status"] for d in final} == {"delivered"}
    assert max(d["attempts"] for d in final) >= 4


async def test_send_again_repeats_the_same_message(auto_system: System, receiver: Receiver) -> None:
    approver = await auto_system.user("approver")
    hook = await subscribe(approver, auto_system.team, f"{receiver.url}/hooks", ["task.created"])
    await approver.submit(auto_system.team, "supervised")
    await receiver.wait_for(lambda: len(receiver.delivered()) == 1)
    message = receiver.delivered()[0]
    delivery_id = message.headers["webhook-id"]
    response = await approver.http.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery_id}/resend")
    assert response.status_code == 202, response.text
    await receiver.wait_for(lambda: len(receiver.delivered()) == 2)
    again = receiver.delivered()[1]
    assert again.headers["webhook-id"] == delivery_id and again.body == message.body
    log: list[dict[str, Any]] = []
    while not log or log[0]["attempts"] < 2:  # the receiver may answer before the log is written
        log = (await approver.http.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert log[0]["resent_by"] == approver.email and log[0]["status"] == "delivered"


async def test_only_approvers_of_the_team_manage_its_webhooks(
    auto_system: System, receiver: Receiver
) -> None:
    member, approver = await auto_system.user("member"), await auto_system.user("approver")
    body = {"team": auto_system.team, "url": f"{receiver.url}/hooks", "events": []}
    assert (await member.http.post("/api/v1/webhooks", json=body)).status_code == 403
    hook = await subscribe(approver, auto_system.team, f"{receiver.url}/hooks")
    other_team = await auto_system.user("approver", team="elsewhere")
    assert (await other_team.http.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).status_code == 404
    assert (await other_team.http.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 404
    private = body | {"url": "http://10.1.2.3/hooks"}
    assert (await approver.http.post("/api/v1/webhooks", json=private)).status_code == 422
    assert (await approver.http.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 204
    assert (await approver.http.get("/api/v1/webhooks")).json()["items"] == []


def test_the_signature_is_the_standard_webhooks_one() -> None:
    secret, at = new_secret(), datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    ours = sign(secret, "msg_1", int(at.timestamp()), '{"a":1}')
    assert ours == Webhook(secret).sign("msg_1", at, '{"a":1}')


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:192.168.1.1]/x",
        "http://0.0.0.0/x",
        "ftp://example.com/x",
        "http://user:pw@example.com/x",
    ],
)
async def test_private_and_odd_destinations_are_refused(url: str) -> None:
    with pytest.raises(DestinationRefused):
        await check_destination(url, allow_loopback=False)


async def test_loopback_only_with_the_setting() -> None:
    await check_destination("http://127.0.0.1:9/x", allow_loopback=True)
    with pytest.raises(DestinationRefused):
        await check_destination("http://192.168.0.10/x", allow_loopback=True)


async def test_the_team_page_shows_the_log_and_sends_again(auto_system: System, receiver: Receiver) -> None:
    from tests.support.pages import Browser

    email, password = await auto_system.person("approver")
    token = await auto_system.directory.create_token(email, name="page")
    api = Api(
        httpx.AsyncClient(base_url=auto_system.base_url, headers={"Authorization": f"Bearer {token}"}), email
    )
    auto_system.clients.append(api.http)
    hook = await subscribe(api, auto_system.team, f"{receiver.url}/hooks", ["task.created"])
    await api.submit(auto_system.team, "supervised")
    await receiver.wait_for(lambda: len(receiver.delivered()) == 1)
    delivery_id = receiver.delivered()[0].headers["webhook-id"]
    browser = Browser(auto_system)
    await browser.sign_in(email, password)
    page = await browser.http.get(f"/teams/{auto_system.team}")
    assert page.status_code == 200 and delivery_id in page.text and "Send again" in page.text
    resend = f"/teams/{auto_system.team}/webhooks/{hook['id']}/deliveries/{delivery_id}/resend"
    assert (await browser.post(resend, {})).status_code == 303
    await receiver.wait_for(lambda: len(receiver.delivered()) == 2)
    assert receiver.delivered()[1].headers["webhook-id"] == delivery_id
    other = await browser.http.get("/teams/not-mine")
    assert other.status_code == 404


async def test_a_message_refused_for_the_whole_window_is_given_up_and_the_next_goes(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    scripted_model: ScriptedModel,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    window = FAST | {"webhook_give_up_seconds": 1.5}  # 1.5 s instead of 25 h
    async with running_system(
        temporal_env.client, model_server, sqlite_db, scripted_model, tmp_path, **window
    ) as system:
        approver = await system.user("approver")
        hook = await subscribe(
            approver, system.team, f"{receiver.url}/hooks", ["task.created", "gate.opened"]
        )
        receiver.answer = 500
        task = await approver.submit(system.team, "supervised")
        await receiver.wait_for(lambda: len(receiver.received) >= 2)
        await approver.wait_gate(task["id"], "plan")

        async def given_up() -> bool:  # refused for the whole window, however slow the machine
            log = (await approver.http.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
            return any(d["event"] == "task.created" and d["status"] == "failed" for d in log)

        await until(given_up, "task.created to be given up")
        receiver.answer = 200
        await receiver.wait_for(lambda: len(receiver.delivered()) == 1)
        assert verified(hook["secret"], receiver.delivered())[0]["type"] == "gate.opened"
        log: list[dict[str, Any]] = []
        while len({d["status"] for d in log}) < 2:
            log = (await approver.http.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
        by_event = {d["event"]: d for d in log}
        assert by_event["task.created"]["status"] == "failed"
        assert "given up" in by_event["task.created"]["last_error"]
        assert by_event["gate.opened"]["status"] == "delivered"
