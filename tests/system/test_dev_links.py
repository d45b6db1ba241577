"""Links in notifications name the port `exosuit dev --port N` serves on (no EXOSUIT_PUBLIC_URL)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.dev import launch
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.webhook_receiver import Receiver


async def test_a_notification_links_to_the_port_exosuit_dev_serves_on(
    tmp_path: Path, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXOSUIT_PUBLIC_URL", raising=False)
    monkeypatch.setenv("EXOSUIT_WEBHOOK_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("EXOSUIT_NOTIFY_DIGEST_SECONDS", "0.2")
    receiver = await Receiver().start()
    dev = await launch(tmp_path / "var", model_server.register(ScriptedModel()))
    try:
        data_dir = {"EXOSUIT_DATA_DIR": str(dev.data_dir)}
        notify = f"json://127.0.0.1:{receiver.port}/notify"
        code, out = await run_cli("team", "set", "default", "--notify", notify, env=data_dir)
        assert code == 0, out
        found = re.search(r"API token \(shown once\): (\S+)", (dev.data_dir / "first-start.txt").read_text())
        assert found
        headers = {"Authorization": f"Bearer {found.group(1)}"}
        async with httpx.AsyncClient(base_url=dev.base_url, headers=headers) as http:
            body = {
                "title": "Linked",
                "instructions": "One line.",
                "team": "default",
                "autonomy": "supervised",
            }
            task = (await http.post("/api/v1/tasks", json=body)).json()
        await receiver.wait_for(lambda: receiver.delivered("/notify"))
        message = receiver.delivered("/notify")[0].json()["message"]
        links = re.findall(r"https?://[^\s)]+/tasks/" + task["id"], message)
        assert links, message
        assert {urlsplit(link).port for link in links} == {urlsplit(dev.base_url).port}
    finally:
        await dev.stop()
        await receiver.stop()
