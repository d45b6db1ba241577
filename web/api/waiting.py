"""Waiting without polling: long-poll `wait` for scripts, an event stream for API clients.

Both sleep on the process's shared `TaskWatch` (one read of the watched tasks' versions a
tick, whatever the number of waiters) and read a task again only when it changed; FastAPI
writes the stream's frames and its keep-alive comments.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from exosuit.domain.task import TaskStatus
from exosuit.storage.tasks import TaskView
from web.api.openapi import problems
from web.api.task_json import task_response
from web.deps import CurrentPrincipal, Services, ServicesDep, VisibleTask
from web.errors import Problem
from web.schemas import TaskOut, task_out

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=problems(401, 404, 422, 429, 503))

MAX_WAIT_SECONDS = 60.0
STREAM_SECONDS = 300.0  # a client reconnects (SSE does by itself) for more
TIMEOUT_HEADER = "Exosuit-Wait"


class WaitFor(StrEnum):
    GATE = "gate"  # an open gate (or the task has ended: no gate will open)
    FINISHED = "finished"


def _finished(view: TaskView) -> bool:
    return not TaskStatus(view.task.status).active


_READY: dict[WaitFor, Callable[[TaskView], bool]] = {
    WaitFor.GATE: lambda view: view.task.gate_id is not None or _finished(view),
    WaitFor.FINISHED: _finished,
}


async def _current(services: Services, task_id: str) -> TaskView:
    view = await services.tasks.task(task_id)
    if view is None:  # deleted meanwhile (a submission whose start failed)
        raise Problem(404, "Not Found", f"no task {task_id}")
    return view


@router.get(
    "/{task_id}/wait",
    response_model=TaskOut,
    responses={200: {"description": f"the task; with `{TIMEOUT_HEADER}: timeout` when the time ran out"}},
)
async def wait_for_task(
    view: VisibleTask,
    services: ServicesDep,
    for_: Annotated[WaitFor, Query(alias="for", description="what to wait for")] = WaitFor.FINISHED,
    seconds: Annotated[
        float, Query(alias="timeout", ge=0, le=MAX_WAIT_SECONDS, description="seconds, at most 60")
    ] = 30.0,
) -> Response:
    """The task as soon as it has an open gate (`gate`) or has finished (`finished`); after
    `timeout` seconds, the task as it is with the header `Exosuit-Wait: timeout`."""
    view, ready = await wait_until(services, view, for_, seconds)
    return task_response(view, None if ready else {TIMEOUT_HEADER: "timeout"})


async def wait_until(
    services: Services, view: TaskView, for_: WaitFor, seconds: float
) -> tuple[TaskView, bool]:
    """The task once it is ready for `for_` (True), or as it is after `seconds` (False)."""
    ready = _READY[for_]
    loop = asyncio.get_running_loop()
    ends = loop.time() + min(seconds, MAX_WAIT_SECONDS)
    while not ready(view):
        left = ends - loop.time()
        if left <= 0 or not await services.watch.changed(view.task.id, view.task.updated_at, left):
            return view, False
        view = await _current(services, view.task.id)
    return view, True


async def stream_slot(principal: CurrentPrincipal, services: ServicesDep) -> AsyncIterator[None]:
    """One of the caller's event streams, held until the stream ends (429 past the limit)."""
    with services.limits.stream(principal.email):
        yield


@router.get(
    "/{task_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"description": "`changed` events; data: the task"}},
)
async def task_events(
    view: VisibleTask, services: ServicesDep, _slot: Annotated[None, Depends(stream_slot)]
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: `changed` with the task as JSON, now and whenever it changes; the
    stream ends once the task has finished (or after 5 minutes: reconnect for more)."""

    async def read() -> TaskView | None:  # None: deleted meanwhile (a start that failed)
        return await services.tasks.task(view.task.id)

    changes = services.watch.follow(
        view.task.id, view, read, lambda v: v.task.updated_at, seconds=STREAM_SECONDS, last=_finished
    )
    async for current in changes:
        yield ServerSentEvent(event="changed", id=current.task.updated_at.isoformat(), data=task_out(current))
