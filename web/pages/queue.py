"""The review queue: open gates the visitor may decide, oldest first, a page at a time,
triaged by keyboard."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from exosuit.storage.db import utcnow
from exosuit.storage.identity import Principal
from exosuit.storage.tasks import QueuePage
from web.api import pagination
from web.bulk import approve_all
from web.deps import ServicesDep
from web.errors import Problem
from web.pages.common import CheckedForm, CurrentVisitor, Visitor, is_htmx, render
from web.pages.views import decision_context
from web.schemas import BulkItemIn

router = APIRouter()
FILTERS = ("team", "kind", "risk", "claim")
CLAIM_FILTERS = ("mine", "unclaimed")
STREAM_SECONDS = 300  # the browser reconnects by itself when a stream ends
RECHECK_SECONDS = 2.0  # a new gate shows within this; a decided or claimed one at once (the watch)
PAGE_SIZE = 50
LISTING = "queue"  # the cursor's listing name: a cursor of /approvals is not one of the queue's


def _filters(params: Mapping[str, str]) -> dict[str, str]:
    found = {name: params.get(name, "") for name in FILTERS if params.get(name)}
    if found.get("claim") not in (None, *CLAIM_FILTERS):
        del found["claim"]
    return found


def _after(cursor: str) -> tuple[datetime, str] | None:
    """Where the page starts; a cursor this page did not give (edited, stale) is the first page."""
    try:
        return pagination.decode(LISTING, cursor or None)
    except Problem:
        return None


def _version(page: QueuePage, off_page: str) -> str:
    """What the live poll compares: the rows shown, how many wait in all, an off-page selection."""
    now = utcnow()
    shown = "|".join(
        f"{r.id}:{r.gate_id}:{int(r.gate_escalated)}:{r.held_by(now)}:{len(r.gate_approvals or [])}"
        for r in page.rows
    )
    return hashlib.sha256(f"{shown}#{page.total}#{page.more}#{off_page}".encode()).hexdigest()[:16]


async def queue_response(
    request: Request,
    visitor: Visitor,
    services: ServicesDep,
    params: Mapping[str, str],
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    """One page of the queue (or its board for htmx), with the selected item's full context."""
    principal = visitor.principal
    filters = _filters(params)
    cursor = params.get("cursor", "")
    after = _after(cursor)
    cursor = cursor if after is not None else ""
    teams, answer_only, page = await _page(services, principal, filters, after)
    ids = [r.id for r in page.rows]
    wanted, position = params.get("item", ""), params.get("position", "")
    # An item asked for by id but not on this page (a link, a later page's selection) is shown
    # beside the page if the queue would list it; the poll then also watches when it changes.
    off_page = ""
    if wanted and wanted not in ids:
        changed = (await services.tasks.versions([wanted])).get(wanted)
        off_page = f"{wanted}@{changed.isoformat()}" if changed else ""
    version = _version(page, off_page)
    if params.get("v") == version and error is None and notice is None:
        return Response(status_code=204)  # nothing changed: htmx keeps what is shown
    selected_id: str | None = None
    detail: dict[str, Any] | None = None
    if off_page and await services.tasks.in_queue(
        wanted,
        teams,
        decided_by=principal.email,
        kind=filters.get("kind"),
        risk=filters.get("risk"),
        claim=filters.get("claim"),
        answer_only=answer_only,
    ):
        view = await services.tasks.task(wanted)
        if view is not None:
            selected_id, detail = wanted, decision_context(visitor, view, services.settings)
    if selected_id is None and ids:
        # The item asked for; after a decision, whatever now stands where it stood.
        numeric = position.isascii() and position.isdigit() and len(position) < 7  # not "²", not 10**9999
        selected_id = (
            wanted if wanted in ids else ids[min(int(position), len(ids) - 1)] if numeric else ids[0]
        )
        view = await services.tasks.task(selected_id)
        detail = decision_context(visitor, view, services.settings) if view is not None else None
    last = page.rows[-1] if page.more else None
    context = {
        "visitor": visitor,
        "tasks": page.rows,
        "total": page.total,
        "selected": selected_id,
        "position": ids.index(selected_id) if selected_id in ids else 0,
        "detail": detail,
        "filters": filters,
        "query": urlencode(filters | ({"cursor": cursor} if cursor else {})),
        "filter_query": urlencode(filters),
        "cursor": cursor,
        "next_cursor": pagination.encode(LISTING, last.gate_opened_at, last.id) if last else None,
        "teams": principal.teams,
        "version": version,
        "error": error,
        "notice": notice,
        "now": utcnow(),
        "fragment": is_htmx(request),  # the tab's title travels with the board
    }
    return render(request, "queue.html", context, block="board", status=status)


async def _page(
    services: ServicesDep, principal: Principal, filters: dict[str, str], after: tuple[datetime, str] | None
) -> tuple[list[str], list[str], QueuePage]:
    """The page, and the teams it reads: those the person decides for, and those where they
    only answer questions (a member)."""
    teams = [t for t in principal.approver_teams if filters.get("team") in (None, t)]
    answer_only = [t for t in principal.answer_only_teams if filters.get("team") in (None, t)]
    page = await services.tasks.queue_page(
        teams,
        decided_by=principal.email,
        kind=filters.get("kind"),
        risk=filters.get("risk"),
        claim=filters.get("claim"),
        after=after,
        limit=PAGE_SIZE,
        answer_only=answer_only,
    )
    return teams, answer_only, page


@router.get("/queue")
async def queue(request: Request, visitor: CurrentVisitor, services: ServicesDep) -> Response:
    return await queue_response(request, visitor, services, dict(request.query_params))


@router.post("/queue/bulk")
async def bulk_approve(
    request: Request, visitor: CurrentVisitor, services: ServicesDep, form: CheckedForm
) -> Response:
    """Approve the gates selected in the queue: each as `task:gate:etag`, the etag the detail
    pane showed this session (the page enables only those), each rechecked by the server."""
    items = []
    for value in (await request.form()).getlist("item"):
        task_id, _, rest = str(value).partition(":")
        gate_id, _, etag = rest.partition(":")
        if task_id and gate_id and etag:
            items.append(BulkItemIn(task_id=task_id[:40], gate_id=gate_id[:40], etag=etag[:64]))
    if not items:
        return await queue_response(request, visitor, services, form, error="Select gates you have opened.")
    results = await approve_all(services, visitor.principal, items[:100])
    approved = sum(r.status == 200 for r in results)
    refused = [f"{r.task_id}: {r.detail}" for r in results if r.status != 200]
    notice = f"Approved {approved} of {len(results)}." + (
        f" Not approved: {'; '.join(refused)}" if refused else ""
    )
    return await queue_response(request, visitor, services, form, notice=notice)


async def _stream_held(visitor: CurrentVisitor, services: ServicesDep) -> AsyncIterator[Visitor]:
    """The visitor, with one of their event streams held until the stream ends (429 past the limit)."""
    with services.limits.stream(visitor.principal.email):
        yield visitor


@router.get("/queue/events", response_class=EventSourceResponse)
async def queue_events(
    request: Request, visitor: Annotated[Visitor, Depends(_stream_held)], services: ServicesDep
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: `changed` whenever the visitor's page of the queue changes (a gate
    opened, decided, claimed or escalated). The rows shown are watched through the shared task
    watch, so a decided or claimed gate is told at once; new gates are looked for every
    RECHECK_SECONDS (one indexed query)."""
    params = dict(request.query_params)
    filters, after = _filters(params), _after(params.get("cursor", ""))
    loop = asyncio.get_running_loop()
    ends, sent = loop.time() + STREAM_SECONDS, params.get("v", "")
    while loop.time() < ends and not await request.is_disconnected():
        _, _, page = await _page(services, visitor.principal, filters, after)
        version = _version(page, "")
        if version != sent:
            yield ServerSentEvent(event="changed", raw_data=version)
            sent = version
        await _any_changed(services, [r.id for r in page.rows], RECHECK_SECONDS)


async def _any_changed(services: ServicesDep, task_ids: list[str], within: float) -> None:
    """Until one of the tasks changes (through the shared watch), or `within` seconds."""
    if not task_ids:
        await asyncio.sleep(within)
        return
    seen = await services.tasks.versions(task_ids)
    waits = [asyncio.ensure_future(services.watch.changed(t, seen.get(t), within)) for t in task_ids]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
