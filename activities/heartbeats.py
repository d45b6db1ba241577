"""Heartbeats while an activity waits on something slow (a model, a tool)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from temporalio import activity

EVERY_SECONDS = 3.0  # well inside the workflows' heartbeat timeout (15 s)


@asynccontextmanager
async def beating() -> AsyncIterator[None]:
    """Heartbeat every few seconds for as long as the block runs."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(EVERY_SECONDS)

    beats = asyncio.create_task(beat())
    try:
        yield
    finally:
        beats.cancel()
        with suppress(asyncio.CancelledError):
            await beats
