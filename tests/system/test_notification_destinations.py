"""Notification URLs meet the same address policy as webhooks: loopback only with
EXOSUIT_WEBHOOK_ALLOW_LOOPBACK, private and metadata addresses never."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.notifications import destination_refusal
from exosuit.storage.db import Database
from exosuit.storage.notifications import Notifications
from tests.support.cli import run_cli
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import running_system, until
from tests.support.webhook_receiver import Receiver


@pytest.mark.parametrize(
    "url",
    [
        "json://169.254.169.254/latest",
        "jsons://10.0.0.7/hook",
        "form://[2002:a9fe:a9fe::1]/x",  # 6to4 carrying the metadata address
        "xml://[64:ff9b::a9fe:a9fe]/x",  # NAT64 carrying it
        "json://127.0.0.1:9/x",
        "json://localhost:9/x",
    ],
)
async def test_a_notification_url_inside_the_network_is_refused(url: str) -> None:
    assert await destination_refusal(url, allow_loopback=False) is not None


async def test_loopback_notifications_only_with_the_allow_switch() -> None:
    assert await destination_refusal("json://127.0.0.1:9/x", allow_loopback=True) is None
    assert await destination_refusal("json://169.254.169.254/x", allow_loopback=True) is not None
    assert await destination_refusal("slack://TokenA/TokenB/TokenC", allow_loopback=False) is None


async def test_no_notification_reaches_loopback_without_the_switch(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    scripted_model: ScriptedModel,
    tmp_path: Path,
) -> None:
    receiver = await Receiver().start()
    settings = {"webhook_allow_loopback": False, "notify_digest_seconds": 0.6}
    try:
        async with running_system(
            temporal_env.client, model_server, sqlite_db, scripted_model, tmp_path, **settings
        ) as system:
            notifications = Notifications(system.db)
            await notifications.set_targets(
                system.team, [f"json://127.0.0.1:{receiver.port}/notify/{{email}}"]
            )
            submitter, approver = await system.user("member"), await system.user("approver")
            task = await submitter.submit(system.team, "supervised")
            await approver.wait_gate(task["id"], "plan")
            # The gate's notice is written with the gate's event; drained means refused, not sent.
            assert await notifications.pending(system.team) != []

            async def drained() -> bool:
                return await notifications.pending(system.team) == []

            await until(drained, "the notice to be drained")
            assert receiver.delivered("/notify/") == []
    finally:
        await receiver.stop()


async def test_team_set_refuses_a_notification_url_inside_the_network(tmp_path: Path) -> None:
    code, out = await run_cli(
        "team",
        "set",
        "alpha",
        "--notify",
        "json://169.254.169.254/latest",
        env={"EXOSUIT_DATA_DIR": str(tmp_path)},
    )
    assert code != 0 and "169.254.169.254" in out
    code, out = await run_cli(
        "team", "set", "alpha", "--notify", "none", env={"EXOSUIT_DATA_DIR": str(tmp_path)}
    )
    assert code == 0, out
