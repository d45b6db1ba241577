"""Shared fixtures: the real Temporal dev server, a scripted model server, real databases.

Every test that needs the whole system gets a fresh task queue, worker and web app on a
real port; the Temporal server, the model server and each database live for the session.
The helpers these fixtures build on are in tests/support/system.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from temporalio.testing import WorkflowEnvironment

from exosuit.cli.temporal_server import DEV_SERVER_DYNAMIC_CONFIG, temporal_cli
from exosuit.storage.db import Database, migrate
from exosuit.storage.notifications import Notifications
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.system import Api, System, running_system
from tests.support.webhook_receiver import FAST, Receiver

__all__ = ["Api", "System", "running_system"]  # older imports of these from here keep working

TESTS = Path(__file__).parent
# A test's lane is its folder: a marker of the same name (`-m unit`), and a per-test timeout
# that says what the lane promises (pure tests take milliseconds, time-skipping workflow
# tests well under a second). System tests get the default in pyproject.toml; a test that
# needs longer says so with its own `@pytest.mark.timeout(...)`.
LANE_TIMEOUTS: dict[str, float | None] = {"unit": 10, "workflow": 30, "system": None}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        lane = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else ""
        if lane not in LANE_TIMEOUTS:
            continue
        item.add_marker(lane)
        timeout = LANE_TIMEOUTS[lane]
        if timeout is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(timeout))


POSTGRES_URL = os.environ.get(
    "EXOSUIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


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


@pytest.fixture
async def loopback_system(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    scripted_model: ScriptedModel,
    tmp_path: Path,
) -> AsyncIterator[System]:
    """The system on SQLite, where a webhook may point at a loopback address."""
    async with running_system(
        temporal_env.client, model_server, sqlite_db, scripted_model, tmp_path, webhook_allow_loopback=True
    ) as system:
        yield system


@pytest.fixture
async def notified(
    temporal_env: WorkflowEnvironment,
    model_server: ModelServer,
    sqlite_db: Database,
    scripted_model: ScriptedModel,
    tmp_path: Path,
) -> AsyncIterator[tuple[System, Receiver]]:
    """The system with one notification target per person (`{email}`) on a loopback receiver."""
    receiver = await Receiver().start()
    async with running_system(
        temporal_env.client, model_server, sqlite_db, scripted_model, tmp_path, **FAST
    ) as system:
        url = f"json://127.0.0.1:{receiver.port}/notify/{{email}}"
        await Notifications(system.db).set_targets(system.team, [url])
        yield system, receiver
    await receiver.stop()
