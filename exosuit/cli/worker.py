"""The worker's wiring: the activities built once with their clients, and the workflow."""

from __future__ import annotations

import os
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner

from activities.planning import PlannerActivities, PlannerConfig
from activities.recording import RecordActivities
from activities.steps import StepActivities
from activities.tool_calls import ToolActivities
from activities.tools import ToolRunner
from exosuit.cli.automation_worker import automation_parts
from exosuit.domain.audit import anchor_key
from exosuit.llm.client import ModelClient
from exosuit.settings import Settings
from exosuit.storage.db import Database
from exosuit.storage.events import EventWriter
from exosuit.storage.reports import Reports
from exosuit.storage.tasks import Tasks
from exosuit.storage.tool_ledger import ToolLedger
from exosuit.tooling import load_tools_config
from workflows.task import TaskWorkflow


def workflow_runner() -> WorkflowRunner:
    """The workflows run outside Temporal's sandbox: it re-imported their modules for every new
    run and wrapped what they call, about half of a replay's CPU and 0.07 MB per cached
    workflow (benchmarks/README.md). What it guarded is checked instead: the workflows import
    only the domain and Temporal (import-linter), that code imports no clock, random source,
    file or network and reads no clock but `workflow.now()`
    (tests/unit/test_workflow_determinism.py), keeps no state in its modules, and replays its
    recorded history under this runner and the sandbox alike (tests/system/test_replay.py)."""
    return UnsandboxedWorkflowRunner()


def build_worker(
    client: Client,
    settings: Settings,
    db: Database,
    *,
    model: ModelClient | None = None,
    task_queue: str | None = None,
) -> Worker:
    tasks, writer = Tasks(db), EventWriter(db, anchor_key(settings.resolved_secret_key))
    model = model or ModelClient.from_settings(settings)
    tools = ToolRunner(
        settings.data_dir / "workspace", load_tools_config(settings.resolved_tools_file), os.environ
    )
    automation = automation_parts(client, settings, db, task_queue or settings.task_queue)
    planner = PlannerActivities(
        model,
        tasks,
        writer,
        PlannerConfig(
            max_tokens=settings.llm_plan_max_tokens,
            min_steps=settings.plan_min_steps,
            max_steps=settings.plan_max_steps,
        ),
        tools,
        automation.after_event,
    )
    tool_calls = ToolActivities(tasks, ToolLedger(db), tools, settings.tool_record_delay_seconds)
    steps = StepActivities(
        model, tasks, writer, Reports(db), settings.llm_step_max_tokens, automation.after_event
    )
    # Tracing needs nothing here: the client's TracingInterceptor (connect()) is also a worker
    # interceptor, and Worker takes those from its client.
    recording = RecordActivities(writer, automation.after_event)
    return Worker(
        client,
        workflow_runner=workflow_runner(),
        task_queue=task_queue or settings.task_queue,
        # On shutdown (SIGTERM) running activities get this long to finish; then they are
        # cancelled and fail as "worker shutdown", which Temporal retries on another worker.
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        workflows=[TaskWorkflow, *automation.workflows],
        activities=[
            recording.record_events,
            *automation.activities,
            planner.draft_plan,
            planner.draft_instructions,
            steps.answer_step,
            steps.check_step_cost,
            tool_calls.call_tool,
        ],
    )
