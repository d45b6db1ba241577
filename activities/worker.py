"""The worker's entry point: builds the activities with their clients, once."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from activities.model import ModelClient
from activities.planning import PlannerActivities, PlannerConfig
from activities.steps import StepActivities
from activities.store import StoreActivities
from activities.tools import ToolRunner
from exosuit.db import Database
from exosuit.settings import Settings
from exosuit.store import TaskStore
from workflows.task import TaskWorkflow


def build_worker(
    client: Client,
    settings: Settings,
    db: Database,
    *,
    model: ModelClient | None = None,
    task_queue: str | None = None,
) -> Worker:
    store = TaskStore(db)
    model = model or ModelClient.from_settings(settings)
    planner = PlannerActivities(
        model,
        store,
        PlannerConfig(
            max_tokens=settings.llm_plan_max_tokens,
            min_steps=settings.plan_min_steps,
            max_steps=settings.plan_max_steps,
        ),
    )
    tools = ToolRunner(settings.data_dir / "workspace")
    steps = StepActivities(model, store, tools, max_tokens=settings.llm_step_max_tokens)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[TaskWorkflow],
        activities=[
            StoreActivities(store).record_event,
            planner.plan_task,
            planner.redraft_step,
            steps.run_step,
            steps.check_step_cost,
        ],
    )
