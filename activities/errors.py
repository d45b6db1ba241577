"""How failures leave an activity: as ApplicationErrors that tell Temporal whether to retry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError

from exosuit.llm.client import ModelError


@contextmanager
def model_errors() -> Iterator[None]:
    """A model call's failure, typed by its kind; retried only when retrying can help."""
    try:
        yield
    except ModelError as err:
        raise ApplicationError(err.message, type=err.kind, non_retryable=not err.retryable) from None
