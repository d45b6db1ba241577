"""The web app's edges: whose forwarded headers count (EXOSUIT_TRUSTED_PROXIES), where
/llms.txt points (EXOSUIT_PUBLIC_URL wins), and who may scrape /metrics."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from exosuit.storage.db import Database
from tests.conftest import System, running_system
from tests.support.model_server import ModelServer, ScriptedModel

Start = Callable[..., AbstractAsyncContextManager[System]]


@pytest.fixture
def start(
    temporal_env: WorkflowEnvironment, model_server: ModelServer, sqlite_db: Database, tmp_path: Path
) -> Start:
    def starting(**settings: Any) -> AbstractAsyncContextManager[System]:
        return running_system(
            temporal_env.client, model_server, sqlite_db, ScriptedModel(), tmp_path, with_worker=False,
            **settings,
        )  # fmt: skip

    return starting


async def sign_in_attempt(system: System, forwarded_for: str) -> int:
    async with httpx.AsyncClient(base_url=system.base_url) as http:
        page = await http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        form = {"email": "nobody@example.com", "password": "wrong", "csrf_token": token.group(1)}
        response = await http.post("/login", data=form, headers={"X-Forwarded-For": forwarded_for})
        return response.status_code


async def test_a_rotated_forwarded_for_from_an_untrusted_peer_does_not_reset_the_sign_in_limit(
    start: Start,
) -> None:
    async with start(login_limit_per_address="2 per minute") as system:
        codes = [await sign_in_attempt(system, f"198.51.100.{i}") for i in range(3)]
    assert codes == [401, 401, 429]


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_sign_in_limit(start: Start) -> None:
    async with start(login_limit_per_address="2 per minute", trusted_proxies="127.0.0.1/32") as system:
        codes = [await sign_in_attempt(system, f"198.51.100.{i}") for i in range(3)]
        again = [await sign_in_attempt(system, "198.51.100.9") for _ in range(3)]
    assert codes == [401, 401, 401] and again == [401, 401, 429]


async def test_llms_txt_links_come_from_the_public_url_whatever_the_request_says(start: Start) -> None:
    async with start(public_url="https://exosuit.example.com") as system, httpx.AsyncClient() as http:
        text = (
            await http.get(
                f"{system.base_url}/llms.txt",
                headers={"Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil"},
            )
        ).text
    assert "https://exosuit.example.com/api/v1" in text and "evil" not in text


async def test_llms_txt_believes_forwarded_proto_only_from_a_trusted_proxy(start: Start) -> None:
    async with start() as system, httpx.AsyncClient() as http:
        text = (await http.get(f"{system.base_url}/llms.txt", headers={"X-Forwarded-Proto": "https"})).text
    assert "https://" not in text and f"{system.base_url}/api/v1" in text


async def test_metrics_answer_only_with_the_scrape_token(start: Start) -> None:
    async with (
        start(metrics_token="scrape-me") as system,
        httpx.AsyncClient(base_url=system.base_url) as http,
    ):
        missing = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert right.status_code == 200 and "exosuit_tasks" in right.text


async def test_without_a_token_metrics_answer_only_this_machine(start: Start) -> None:
    async with (
        start(trusted_proxies="127.0.0.1") as system,
        httpx.AsyncClient(base_url=system.base_url) as http,
    ):
        local = await http.get("/metrics")
        remote = await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert local.status_code == 200 and remote.status_code == 401
