"""Each web process caches the principals of the tokens it has seen; a revocation, a role or
team change or a disabled user still counts from the very next request, on every replica.

Two real `exosuit web` processes on one SQLite file; the identity changes are made by another
process's `Directory` (what the `exosuit` CLI runs), as an admin would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from exosuit.domain.autonomy import Role
from exosuit.storage.db import Database, migrate, utcnow
from exosuit.storage.identity import Directory
from exosuit.storage.tables import Task
from exosuit.storage.tasks import Tasks
from tests.support.replicas import Replicas


@asynccontextmanager
async def two_replicas(
    tmp_path: Path, temporal: WorkflowEnvironment
) -> AsyncIterator[tuple[list[str], Database]]:
    url = f"sqlite:///{tmp_path / 'exosuit.db'}"
    migrate(url)
    replicas = Replicas(
        {
            "EXOSUIT_DATABASE_URL": url,
            "EXOSUIT_DATA_DIR": str(tmp_path),
            "EXOSUIT_SECRET_KEY": uuid.uuid4().hex * 2,
            "TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host,
            "EXOSUIT_TASK_QUEUE": f"identity-{uuid.uuid4().hex[:8]}",
        }
    )
    db = Database.from_url(url)
    try:
        await replicas.start_web()
        await replicas.start_web()
        await replicas.ready()
        yield list(replicas.web), db
    finally:
        await db.dispose()
        await replicas.stop()


async def a_task_at_its_gate(db: Database, team: str, submitter: str) -> str:
    """A task's row with an open gate, as its workflow would have left it (no workflow runs)."""
    task_id = f"t-{uuid.uuid4().hex[:12]}"
    await Tasks(db).insert(
        Task(
            id=task_id, title="Cached", instructions="x", team=team, submitted_by=submitter,
            autonomy="supervised", status="awaiting_approval", gate_id="g-1", gate_kind="plan",
            gate_opened_at=utcnow(),
        )
    )  # fmt: skip
    return task_id


async def statuses(webs: list[str], token: str, method: str, path: str) -> list[int]:
    """The status of the same request sent to each replica, in turn."""
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30, headers=auth) as http:
        return [(await http.request(method, f"{web}{path}")).status_code for web in webs]


async def test_a_revoked_token_and_a_disabled_user_are_refused_by_the_next_request_on_every_replica(
    tmp_path: Path, temporal_env: WorkflowEnvironment
) -> None:
    async with two_replicas(tmp_path, temporal_env) as (webs, db):
        directory = Directory(db)
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        await directory.add_user(email, teams=["ops"], role=Role.APPROVER)
        task_id = await a_task_at_its_gate(db, "ops", email)
        kept = await directory.create_token(email, "kept")
        revoked = await directory.create_token(email, "gone")
        paths = [("GET", f"/api/v1/tasks/{task_id}"), ("GET", f"/api/v1/tasks/{task_id}/wait?timeout=0"),
                 ("GET", "/api/v1/tasks")]  # fmt: skip
        for method, path in paths * 2:  # twice: the second time from each replica's cache
            assert await statuses(webs, revoked, method, path) == [200, 200], path
            assert await statuses(webs, kept, method, path) == [200, 200], path

        assert await directory.revoke_token(email, "gone") == 1
        for method, path in paths:
            assert await statuses(webs, revoked, method, path) == [401, 401], path
            assert await statuses(webs, kept, method, path) == [200, 200], path  # read again, still good

        await directory.disable_user(email)
        for method, path in paths:
            assert await statuses(webs, kept, method, path) == [401, 401], path


async def test_a_role_or_team_change_counts_from_the_next_request_on_every_replica(
    tmp_path: Path, temporal_env: WorkflowEnvironment
) -> None:
    async with two_replicas(tmp_path, temporal_env) as (webs, db):
        directory = Directory(db)
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        await directory.add_user(email, teams=["ops"], role=Role.APPROVER)
        await directory.ensure_team("other")
        ours = await a_task_at_its_gate(db, "ops", email)
        theirs = await a_task_at_its_gate(db, "other", email)
        token = await directory.create_token(email)
        release = f"/api/v1/tasks/{ours}/gates/g-1/claim"
        for _ in range(2):
            assert await statuses(webs, token, "DELETE", release) == [200, 200]
            assert await statuses(webs, token, "GET", f"/api/v1/tasks/{theirs}") == [404, 404]

        await directory.add_user(email, teams=["ops"], role=Role.MEMBER)  # an approver no more
        assert await statuses(webs, token, "DELETE", release) == [403, 403]

        await directory.add_user(email, teams=["other"], role=Role.MEMBER)
        assert await statuses(webs, token, "GET", f"/api/v1/tasks/{theirs}") == [200, 200]
