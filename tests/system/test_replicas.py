"""Several replicas on PostgreSQL and Redis: one migration, shared limits, metrics that sum.

Real processes: two `exosuit web` and two `exosuit worker` on one Temporal task queue, one
PostgreSQL schema and the machine's Redis, as deploy/k8s runs them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from exosuit.domain.autonomy import AutonomyLevel, Role
from exosuit.processes import free_port
from exosuit.settings import Settings
from exosuit.storage import migrations
from exosuit.storage.db import Database
from exosuit.storage.identity import Directory
from tests.conftest import POSTGRES_URL
from tests.support.cli import EXOSUIT
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.replicas import Replicas
from web.limits import Limits, LimitsDown

pytestmark = pytest.mark.postgres
REDIS_URL = "redis://127.0.0.1:6379"
VERSIONS = sorted((Path(migrations.__file__).parent / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
MIGRATIONS = len(VERSIONS)
HEAD = VERSIONS[-1].name[:4]  # revision ids are the files' numbers


@asynccontextmanager
async def empty_postgres_schema() -> AsyncIterator[str]:
    """A database URL whose schema has nothing in it yet."""
    schema = f"exosuit_replicas_{uuid.uuid4().hex[:10]}"
    plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def exosuit(*args: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        EXOSUIT, *args, env=os.environ | env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out.decode()
    return out.decode()


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
async def test_two_processes_starting_on_an_empty_database_migrate_it_once(tmp_path: Path, kind: str) -> None:
    async with empty_postgres_schema() as postgres:
        url = postgres if kind == "postgres" else f"sqlite:///{tmp_path / 'exosuit.db'}"
        env = {"EXOSUIT_DATABASE_URL": url, "EXOSUIT_DATA_DIR": str(tmp_path)}
        outputs = await asyncio.gather(*(exosuit("db", "upgrade", env=env) for _ in range(2)))
        assert sorted(line.split(":")[0] for line in outputs) == [
            "already at head\n",
            f"applied {MIGRATIONS} migrations",
        ], outputs
        assert (await exosuit("db", "current", env=env)).strip() == f"{MIGRATIONS:04d}"


def samples(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def test_two_web_replicas_and_two_workers_share_limits_and_report_metrics_that_sum(
    tmp_path: Path, temporal_env: WorkflowEnvironment, model_server: ModelServer
) -> None:
    async with empty_postgres_schema() as url:
        env = {
            "EXOSUIT_DATABASE_URL": url,
            "EXOSUIT_DATA_DIR": str(tmp_path),
            "EXOSUIT_SECRET_KEY": uuid.uuid4().hex * 2,
            "EXOSUIT_LIMITS_STORAGE_URL": REDIS_URL,
            "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
            "EXOSUIT_TASK_QUEUE": f"replicas-{uuid.uuid4().hex[:8]}",
            "EXOSUIT_LLM_BASE_URL": model_server.register(ScriptedModel()),
            "EXOSUIT_LLM_API_KEY": "test",
            "EXOSUIT_LLM_MODEL": "scripted-model",
        }
        replicas = Replicas(env)
        try:
            # Both web processes start on the empty schema at once: one migrates, both serve.
            await asyncio.gather(replicas.start_web(), replicas.start_web())
            async with httpx.AsyncClient(timeout=90) as http:
                await replicas.ready()
                await asyncio.gather(replicas.start_worker(), replicas.start_worker())
                db = Database.from_url(url)
                try:
                    team, email = f"team-{uuid.uuid4().hex[:6]}", f"{uuid.uuid4().hex[:8]}@example.com"
                    directory = Directory(db)
                    await directory.add_user(email, teams=[team], role=Role.MEMBER)
                    await directory.set_team_policy(
                        team, max_autonomy=AutonomyLevel.AUTONOMOUS, submissions_per_minute=3
                    )
                    token = await directory.create_token(email, name="replicas")
                finally:
                    await db.dispose()
                auth = {"Authorization": f"Bearer {token}"}
                body = {"title": "Note", "instructions": "Two lines.", "team": team, "autonomy": "autonomous"}
                answers = []
                web_urls = list(replicas.web)
                for n in range(4):  # alternately through each replica: 3 a minute for the team's member
                    web = web_urls[n % 2]
                    answers.append(await http.post(f"{web}/api/v1/tasks", json=body, headers=auth))
                assert [a.status_code for a in answers] == [201, 201, 201, 429], [a.text for a in answers]
                assert int(answers[3].headers["Retry-After"]) > 0
                for answer, web in zip(answers[:3], web_urls * 2, strict=False):
                    path = f"{web}/api/v1/tasks/{answer.json()['id']}/wait"
                    done = await http.get(path, params={"for": "finished", "timeout": 60}, headers=auth)
                    assert done.json()["status"] == "completed", done.text

                scraped = [(await http.get(f"{web}/metrics")).text for web in web_urls]
                assert sum(samples(t, "exosuit_read_model_reporter") for t in scraped) == 1
                completed = sum(samples(t, "exosuit_tasks", status="completed", team=team) for t in scraped)
                assert completed == 3  # counted once, not once per replica
                calls = sum(samples(t, "exosuit_model_calls_total", team=team) for t in scraped)
                assert calls == 9  # three plans, three times two steps
                workers = [(await http.get(url)).text for url in replicas.worker_metrics]
                assert sum(samples(t, "exosuit_worker_model_calls_total") for t in workers) == calls

                # The reporting replica goes: the other takes over at its next scrape.
                reporter = [samples(t, "exosuit_read_model_reporter") for t in scraped].index(1)
                await replicas.stop_web(web_urls[reporter])
                other = (await http.get(f"{web_urls[1 - reporter]}/metrics")).text
                assert samples(other, "exosuit_read_model_reporter") == 1
                assert samples(other, "exosuit_tasks", status="completed", team=team) == 3
        finally:
            await replicas.stop()


async def test_alembic_itself_reads_the_migrations_and_the_configured_database(tmp_path: Path) -> None:
    env = os.environ | {"EXOSUIT_DATA_DIR": str(tmp_path)}
    alembic = str(Path(EXOSUIT).parent / "alembic")
    root = Path(__file__).parents[2]
    process = await asyncio.create_subprocess_exec(
        alembic,
        "history",
        cwd=root,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    assert f"-> {HEAD} (head)" in out.decode()


async def test_shared_limit_storage_that_does_not_answer_is_an_outage_not_a_crash() -> None:
    closed = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    limits = Limits(Settings(limits_storage_url=closed))
    with pytest.raises(LimitsDown):
        await limits.sign_in_failed("someone@example.com")
