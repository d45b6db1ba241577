"""How failures leave an activity: as ApplicationErrors that tell Temporal whether to retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from temporalio.exceptions import ApplicationError

from exosuit.llm.client import ModelError
from exosuit.storage.db import DatabaseDown
from exosuit.storage.tasks import Tasks

WAITING_FOR_A_MODEL = "a model provider"  # what the task is waiting for


@asynccontextmanager
async def model_errors(tasks: Tasks, task_id: str) -> AsyncIterator[None]:
    """A model call's failure, typed by its kind; retried only when retrying can help.

    While it is retried, the task says it is waiting for a model provider (and since when);
    its next recorded event clears that.
    """
    try:
        yield
    except ModelError as err:
        if err.retryable:
            with suppress(*DatabaseDown):  # best effort: the database may be down too
                await tasks.note_waiting(task_id, f"{WAITING_FOR_A_MODEL} ({err.message})")
        raise ApplicationError(err.message, type=err.kind, non_retryable=not err.retryable) from None
