"""Shared fixtures: the real Temporal dev server, a scripted model server, real databases.

Every test that needs the whole system gets a fresh task queue, worker and web app on a
real port; the Temporal server, the model server and each database live for the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from exosuit.cli.temporal_server import DEV_SERVER_DYNAMIC_CONFIG, DevServer, metrics_runtime, temporal_cli
from exosuit.cli.worker import build_worker
from exosuit.domain.autonomy import AutonomyLevel, Role
from exosuit.sealing import sealed_converter
from exosuit.settings import Settings
from exosuit.storage.db import Database, migrate
from exosuit.storage.identity import Directory
from tests.support.cli import EXOSUIT
from tests.support.model_server import ModelServer, ScriptedModel, serve, shutdown
from web.app import create_app
from web.deps import Services

POSTGRES_URL = os.environ.get(
    "EXOSUIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WAIT_SECONDS = 30.0


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    extra: list[str] = []
    for value in DEV_SERVER_DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", value]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), dev_server_extra_args=extra
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def model_server() -> AsyncIterator[ModelServer]:
    server = ModelServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'exosuit.db'}"
    migrate(url)
    db = Database.from_url(url)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def postgres_db() -> AsyncIterator[Database]:
    """A schema of its own in the machine's PostgreSQL, dropped at the end."""
    schema = f"exosuit_test_{uuid.uuid4().hex[:10]}"
    plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        migrate(url)
        db = Database.from_url(url)
        yield db
        await db.dispose()
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Database:
    """The API suite runs once on SQLite and once on PostgreSQL."""
    db: Database = request.getfixturevalue(f"{request.param}_db")
    return db


@pytest.fixture
def sqlite_only(sqlite_db: Database) -> Database:
    return sqlite_db


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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            task = await self.task(task_id)
            if check(task):
                return task
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; task is {task}")
            await asyncio.sleep(0.03)

    async def wait_gate(
        self, task_id: str, kind: str | None = None, within: float = WAIT_SECONDS
    ) -> dict[str, Any]:
        """The task once a gate (of `kind`) is open, or it has ended."""

        def ready(task: dict[str, Any]) -> bool:
            gate = task["open_gate"]
            ended = task["status"] in ("completed", "rejected", "failed", "cancelled")
            return ended or (gate is not None and (kind is None or gate["kind"] == kind))

        task = await self.wait(task_id, ready, f"a {kind or 'any'} gate", within)
        assert task["open_gate"] is not None, f"task ended without a {kind} gate: {task}"
        return task

    async def wait_done(self, task_id: str, within: float = WAIT_SECONDS) -> dict[str, Any]:
        return await self.wait(
            task_id,
            lambda t: t["status"] in ("completed", "rejected", "failed", "cancelled"),
            "the task to end",
            within,
        )

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

    async def set_team(self, **policy: Any) -> None:
        await self.directory.set_team_policy(
            self.team,
            max_autonomy=AutonomyLevel(policy["max_autonomy"]) if "max_autonomy" in policy else None,
            gate_deadline_seconds=policy.get("gate_deadline_seconds"),
            monthly_budget_usd=policy.get("monthly_budget_usd"),
            model_wait_hours=policy.get("model_wait_hours"),
            max_revisions=policy.get("max_revisions"),
        )


@pytest.fixture
def scripted_model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
async def system(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    database: Database,
    scripted_model: ScriptedModel,
    tmp_path: Path,
) -> AsyncIterator[System]:
    async with running_system(temporal_env.client, model_server, database, scripted_model, tmp_path) as sys:
        yield sys


@pytest.fixture
async def ui_system(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    scripted_model: ScriptedModel,
    tmp_path: Path,
) -> AsyncIterator[System]:
    """The whole system on SQLite, for page and browser tests."""
    async with running_system(temporal_env.client, model_server, sqlite_db, scripted_model, tmp_path) as sys:
        yield sys


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
