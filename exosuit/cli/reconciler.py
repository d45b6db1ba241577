"""The reconciler: the read model and Temporal agree, whatever crashed and whoever ended a run.

A worker holds the tasks whose read model has not ended against their workflows, every
EXOSUIT_RECONCILE_SECONDS:

- no workflow, and the task has recorded nothing (the process died between storing the
  row and starting the workflow): the workflow is started, as the submission would have;
- the latest run was closed by the server (terminated, timed out, failed, cancelled), so
  the workflow never recorded the end: the task fails with the server's reason, in one
  audit event chained after the head (its gate closed, the step in progress failed, the
  finished task's anchor signed), under the key `reconcile/<run id>`.

A pass leaves alone what changed within the grace period, and stops, to try again next
time, when Temporal or the database does not answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum

from temporalio.client import Client
from temporalio.runtime import Runtime

from exosuit.cli.automation_worker import sweep_outbox
from exosuit.domain.audit import SYSTEM_ACTOR, anchor_key
from exosuit.domain.contracts import TaskEvent
from exosuit.domain.task import EventAction, StepStatus, TaskStatus
from exosuit.settings import Settings
from exosuit.storage.db import Database, DatabaseDown, utcnow
from exosuit.storage.events import EventWriter
from exosuit.storage.tasks import Tasks, Unsettled, workflow_input
from web.gateway import Run, TaskGateway
from web.unavailable import Unavailable

log = logging.getLogger(__name__)

# Longer than a submission may take to start its workflow (the RPC timeout): a row is never
# started here while its request can still start it, or remove it.
GRACE = timedelta(seconds=30)
BATCH = 200  # tasks read at once
CONCURRENCY = 8  # Temporal calls in flight at once
_DOWN = (Unavailable, *DatabaseDown)
_IN_PROGRESS = {StepStatus.RUNNING, StepStatus.AWAITING_APPROVAL, StepStatus.AWAITING_REVIEW}
_HOW = {"terminated": "was terminated", "timed_out": "timed out", "canceled": "was cancelled"}


class Reconciled(StrEnum):
    STARTED = "started"  # a stored task whose workflow never started
    ENDED = "ended"  # a task whose run the server closed


class Reconciler:
    def __init__(
        self, tasks: Tasks, writer: EventWriter, gateway: TaskGateway, *, grace: timedelta = GRACE
    ) -> None:
        self._tasks, self._writer, self._gateway, self._grace = tasks, writer, gateway, grace
        self._reported: set[str] = set()  # tasks with events but no workflow, logged once

    async def run_once(self, *, teams: Sequence[str] | None = None) -> Counter[Reconciled]:
        """One pass over the tasks not ended (of `teams`, else all); what it started and ended.

        Raises Unavailable or DatabaseDown when Temporal or the database does not answer.
        """
        done: Counter[Reconciled] = Counter()
        changed_before, after = utcnow() - self._grace, None
        while True:
            batch = await self._tasks.unsettled(
                changed_before=changed_before, after=after, limit=BATCH, teams=teams
            )
            done.update(kind for kind in await self._settle_all(batch) if kind is not None)
            if len(batch) < BATCH:
                return done
            after = batch[-1].id

    async def _settle_all(self, batch: list[Unsettled]) -> list[Reconciled | None]:
        slots = asyncio.Semaphore(CONCURRENCY)

        async def settle(task: Unsettled) -> Reconciled | None:
            async with slots:
                return await self._settle(task)

        try:
            async with asyncio.TaskGroup() as group:
                settled = [group.create_task(settle(task)) for task in batch]
        except ExceptionGroup as failed:  # Temporal or the database is down: the pass stops
            raise failed.exceptions[0] from None
        return [s.result() for s in settled]

    async def _settle(self, task: Unsettled) -> Reconciled | None:
        try:
            run = await self._gateway.latest_run(task.id)
            if run is None:
                return await self._start(task)
            if run.ended_by_server:
                return await self._end(task.id, run)
            return None  # running, or completed (its end is recorded): nothing to do
        except _DOWN:
            raise
        except Exception:  # one task's trouble does not hold up the others
            log.exception("could not reconcile task %s", task.id, extra={"task_id": task.id})
            return None

    async def _start(self, task: Unsettled) -> Reconciled | None:
        if task.recorded:
            # Its workflow ran and is gone (past retention, or another Temporal server): a
            # person should look; starting it again would replay a history it never had.
            if task.id not in self._reported:
                self._reported.add(task.id)
                log.warning(
                    "task %s has events but Temporal has no workflow for it",
                    task.id,
                    extra={"task_id": task.id},
                )
            return None
        view = await self._tasks.task(task.id)
        team = await self._tasks.team(view.task.team) if view else None
        if view is None or team is None:
            return None
        await self._gateway.start(workflow_input(view.task, team))
        log.info("started task %s, stored but never started", task.id, extra={"task_id": task.id})
        return Reconciled.STARTED

    async def _end(self, task_id: str, run: Run) -> Reconciled | None:
        view = await self._tasks.task(task_id)
        if view is None:
            return None
        end = await self._gateway.server_end(task_id, run.run_id)
        how = f"its workflow {_HOW.get(run.status, run.status)}"
        reason = f"{how}: {end.detail}" if end.detail else how
        step = next((s for s in view.steps if s.status in _IN_PROGRESS), None)
        data = {"reason": reason, "workflow_status": run.status, "run_id": run.run_id}
        await self._writer.apply(
            TaskEvent(
                task_id,
                f"reconcile/{run.run_id}",
                SYSTEM_ACTOR,
                EventAction.TASK_FAILED,
                data=data | ({"identity": end.identity} if end.identity else {}),
                status=TaskStatus.FAILED,
                error=reason,
                close_gate=True,
                step_id=step.id if step else None,
                step_status=StepStatus.FAILED if step else None,
            )
        )
        log.warning("task %s failed: %s", task_id, reason, extra={"task_id": task_id})
        return Reconciled.ENDED


async def reconcile_forever(settings: Settings, db: Database, client: Client) -> None:
    """A pass every `reconcile_seconds` for as long as the worker runs; counted in its metrics."""
    reconciler = Reconciler(
        Tasks(db),
        EventWriter(db, anchor_key(settings.resolved_secret_key)),
        TaskGateway(client, settings.task_queue),
    )
    meter = (client.service_client.config.runtime or Runtime.default()).metric_meter
    counter = meter.create_counter(
        "exosuit_worker_reconciled_tasks", "Tasks the reconciler started or ended, by kind"
    )
    while True:
        await asyncio.sleep(settings.reconcile_seconds)
        try:
            done = await reconciler.run_once()
        except _DOWN as down:  # the next pass will do
            log.warning("reconciling skipped: %s", down)
            continue
        except Exception:
            log.exception("reconciling failed")
            continue
        for kind, count in done.items():
            counter.add(count, {"kind": kind.value})
        try:  # what the pass recorded (a task's end) reaches webhooks and notifications too
            await sweep_outbox(client, settings, db, timedelta(seconds=settings.reconcile_seconds))
        except Exception:
            log.exception("waking the outbox failed")
