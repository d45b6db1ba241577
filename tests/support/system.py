"""The whole system for a test, and one signed-in API caller to drive it.

`running_system` starts a worker and the web app on a real port against a Temporal server,
a database and a model server the caller provides (the fixtures in tests/conftest.py do).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from exosuit.cli.temporal_server import DevServer, metrics_runtime
from exosuit.cli.worker import build_worker
from exosuit.domain.autonomy import AutonomyLevel, Role
from exosuit.domain.contracts import workflow_id_for
from exosuit.domain.task import ENDED_STATUSES
from exosuit.sealing import sealed_converter
from exosuit.settings import Settings
from exosuit.storage.db import Database
from exosuit.storage.identity import Directory
from tests.support.cli import EXOSUIT
from tests.support.model_server import ModelServer, ScriptedModel, serve, shutdown
from web.api.waiting import MAX_WAIT_SECONDS, TIMEOUT_HEADER
from web.app import create_app
from web.deps import Services

WAIT_SECONDS = 30.0
ENDED = ENDED_STATUSES


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT_SECONDS) -> None:
    """For state the product keeps but pushes to no one (a gauge, a row, Temporal's view of a
    workflow): ask again until it holds. A task's state has its own signals: `Api.wait`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def asked() -> bool:
        return check()

    return asked


@dataclass
class Api:
    """One signed-in API caller."""

    http: httpx.AsyncClient
    email: str

    async def submit(
        self, team: str, autonomy: str, title: str = "Write a haiku", **extra: Any
    ) -> dict[str, Any]:
        body = {"title": title, "instructions": "About autumn.", "team": team, "autonomy": autonomy}
        response = await self.http.post("/api/v1/tasks", json=body | extra)
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task

    async def task(self, task_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    async def wait(
        self,
        task_id: str,
        check: Callable[[dict[str, Any]], bool],
        what: str = "condition",
        within: float = WAIT_SECONDS,
    ) -> dict[str, Any]:
        """The task once `check` holds, read from the task's own event stream (it sends the
        task now and whenever it changes), so nothing polls. The stream ends with an ended
        task; a failed one can still be resumed, so it is opened again until `within` is up."""
        task: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(within):
                while True:
                    async with self.http.stream("GET", f"/api/v1/tasks/{task_id}/events") as stream:
                        assert stream.status_code == 200, await stream.aread()
                        async for line in stream.aiter_lines():
                            if line.startswith("data: "):
                                task = json.loads(line.removeprefix("data: "))
                                if check(task):
                                    return task
                    await asyncio.sleep(0.05)  # it ended where `check` does not hold: look again
        except TimeoutError:
            pass
        raise AssertionError(f"timed out waiting for {what} (or its stream ended); task is {task}")

    async def wait_gate(
        self, task_id: str, kind: str | None = None, within: float = WAIT_SECONDS
    ) -> dict[str, Any]:
        """The task once a gate (of `kind`) is open, or it has ended."""

        def ready(task: dict[str, Any]) -> bool:
            gate = task["open_gate"]
            return task["status"] in ENDED or (gate is not None and (kind is None or gate["kind"] == kind))

        if kind is None:
            task = await self.long_poll(task_id, "gate", within)
        else:
            task = await self.wait(task_id, ready, f"a {kind} gate", within)
        assert task["open_gate"] is not None, f"task ended without a {kind} gate: {task}"
        return task

    async def wait_done(self, task_id: str, within: float = WAIT_SECONDS) -> dict[str, Any]:
        return await self.long_poll(task_id, "finished", within)

    async def long_poll(self, task_id: str, for_: str, within: float) -> dict[str, Any]:
        """The product's own long-poll: the task once it has a gate or has finished (asked
        again while `within` lasts, as one wait is at most a minute)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            seconds = max(0.0, min(deadline - loop.time(), MAX_WAIT_SECONDS))
            response = await self.http.get(
                f"/api/v1/tasks/{task_id}/wait",
                params={"for": for_, "timeout": seconds},
                timeout=seconds + 10,
            )
            assert response.status_code == 200, response.text
            task: dict[str, Any] = response.json()
            if TIMEOUT_HEADER not in response.headers:
                return task
            assert loop.time() < deadline, f"no {for_} within {within} s; task is {task}"

    async def decide(self, task: dict[str, Any], action: str, **body: Any) -> httpx.Response:
        payload = {"gate_id": task["open_gate"]["id"], "action": action} | body
        return await self.http.post(f"/api/v1/tasks/{task['id']}/decisions", json=payload)

    async def approve(self, task: dict[str, Any]) -> dict[str, Any]:
        response = await self.decide(task, "approve")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@dataclass
class System:
    """The whole app for one test: worker, web app on a real port, a scripted model."""

    base_url: str
    model: ScriptedModel
    directory: Directory
    db: Database
    temporal: Client
    team: str
    settings: Settings
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def user(self, role: str = "approver", team: str | None = None) -> Api:
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        await self.directory.add_user(email, teams=[team or self.team], role=Role(role))
        token = await self.directory.create_token(email, name="tests")
        http = httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self.clients.append(http)
        return Api(http, email)

    async def person(self, role: str = "approver", team: str | None = None) -> tuple[str, str]:
        """A user who signs in with a password: (email, password)."""
        email, password = f"{role}-{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
        await self.directory.add_user(email, teams=[team or self.team], role=Role(role), password=password)
        return email, password

    async def in_flight(self, pool: str) -> float:
        """Requests the web app is serving now in an admission pool (`work`, `waiting`), from
        its own metrics."""
        async with httpx.AsyncClient(base_url=self.base_url) as anonymous:
            metrics = (await anonymous.get("/metrics")).text
        found = re.search(rf'^exosuit_requests_in_flight{{pool="{pool}"}} (\S+)$', metrics, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    async def activity_attempt(self, task_id: str) -> int:
        """The attempt Temporal is on for the task's running activity (0: none is running)."""
        handle = self.temporal.get_workflow_handle(workflow_id_for(task_id))
        pending = (await handle.describe()).raw_description.pending_activities
        return max((activity.attempt for activity in pending), default=0)

    async def set_team(self, **policy: Any) -> None:
        await self.directory.set_team_policy(
            self.team,
            max_autonomy=AutonomyLevel(policy["max_autonomy"]) if "max_autonomy" in policy else None,
            gate_deadline_seconds=policy.get("gate_deadline_seconds"),
            monthly_budget_usd=policy.get("monthly_budget_usd"),
            model_wait_seconds=policy.get("model_wait_seconds"),
            max_revisions=policy.get("max_revisions"),
            quorum_high=policy.get("quorum_high"),
        )


@asynccontextmanager
async def running_system(
    client: Client,
    model_server: ModelServer,
    db: Database,
    model: ScriptedModel,
    tmp_path: Path,
    *,
    endpoint: str | None = None,
    sealed: bool = True,
    with_worker: bool = True,
    **overrides: Any,
) -> AsyncIterator[System]:
    """Worker + web app on a real port; the model is the scripted server unless `endpoint`.

    Like a deployment, the worker and the web app talk to Temporal through a client that
    seals every payload with the system's secret (`sealed=False`: the bare test client).
    """
    settings = Settings(
        **(
            {"data_dir": tmp_path, "task_queue": f"tq-{uuid.uuid4().hex}", "llm_model": "scripted-model"}
            | overrides
        ),
        llm_base_url=endpoint or model_server.register(model),
        llm_api_key="test",
        llm_timeout_seconds=120 if endpoint else 10,
        llm_price_input_per_million=2.0,
        llm_price_output_per_million=8.0,
    )
    if sealed:
        client = await Client.connect(
            client.service_client.config.target_host,
            namespace=client.namespace,
            data_converter=sealed_converter(settings.sealing_secrets),
            runtime=metrics_runtime(settings),  # serves the worker's metrics when the port is set
        )
    worker = build_worker(client, settings, db)
    app = create_app(Services.build(settings, db, client))
    server, server_task, port = await serve(app)
    team = f"team-{uuid.uuid4().hex[:8]}"
    system = System(f"http://127.0.0.1:{port}", model, Directory(db), db, client, team, settings)
    await system.directory.ensure_team(team)
    async with worker if with_worker else contextlib.nullcontext():
        if with_worker:  # a test may stop Temporal next: a worker that had not checked in would fail
            await until(_async(lambda: worker.is_running), "the worker to reach Temporal")
        try:
            yield system
        finally:
            for http in system.clients:
                await http.aclose()
            await shutdown(server, server_task)


def worker_env(system: System, model_url: str, **extra: str) -> dict[str, str]:
    """What an `exosuit worker` process needs to join this system (its queue, database, secret)."""
    settings = system.settings
    return (
        dict(os.environ)
        | {
            "TEMPORAL_ADDRESS": system.temporal.service_client.config.target_host,
            "EXOSUIT_DATABASE_URL": system.db.engine.url.render_as_string(hide_password=False),
            "EXOSUIT_TASK_QUEUE": settings.task_queue,
            "EXOSUIT_SECRET_KEY": settings.resolved_secret_key,
            "EXOSUIT_DATA_DIR": str(settings.data_dir),
            "EXOSUIT_LLM_BASE_URL": model_url,
            "EXOSUIT_LLM_API_KEY": "test",
            "EXOSUIT_LLM_MODEL": "scripted-model",
        }
        | extra
    )


async def start_worker(
    system: System, model_url: str, *, stderr: int = asyncio.subprocess.STDOUT, **extra: str
) -> asyncio.subprocess.Process:
    """A real `exosuit worker` process on this system, once it polls (its first line says so)."""
    process = await asyncio.create_subprocess_exec(
        EXOSUIT,
        "worker",
        env=worker_env(system, model_url, **extra),
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )
    log = process.stderr if stderr == asyncio.subprocess.PIPE else process.stdout
    assert log is not None
    lines: list[bytes] = []
    while not lines or b"worker started" not in lines[-1]:  # its log says so once it polls
        lines.append(await asyncio.wait_for(log.readline(), 60))
        assert lines[-1], b"".join(lines)
    return process


@asynccontextmanager
async def system_on_its_own_temporal(
    model_server: ModelServer, db: Database, tmp_path: Path
) -> AsyncIterator[tuple[System, DevServer]]:
    """The system on a Temporal dev server of its own, for tests that kill it (`kill_temporal`)."""
    server = await DevServer.start(tmp_path / "temporal")
    try:
        client = await Client.connect(server.address)
        async with running_system(client, model_server, db, ScriptedModel(), tmp_path) as system:
            yield system, server
    finally:
        if server.process.returncode is None:
            await server.stop()


async def kill_temporal(server: DevServer) -> None:
    """`kill -9` of the dev server, by its PID."""
    os.kill(server.process.pid, signal.SIGKILL)
    await server.process.wait()
