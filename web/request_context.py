"""Every request has an id: the caller's `X-Request-ID` when well formed, else a new one.

It is echoed in the response and carried by every log line the request causes (the log
context of exosuit/observability/logs.py). This middleware is the outermost of the app's
own, so it is also where an unhandled error is logged, once, with that id, and answered
as problem+json; and where, once the process is stopping, every answer says
`Connection: close`, so that a client opens a new connection for its next request instead
of reusing one the server closes after this answer.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exosuit.observability.logs import request_id
from exosuit.observability.tracing import record_error
from web.errors import problem_response

HEADER = "x-request-id"
# Ids other systems make (UUIDs, ULIDs, trace ids, "svc-1234"), bounded; anything else is
# replaced rather than cleaned, so a log line never carries a caller's control characters.
WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,64}")
logger = logging.getLogger(__name__)


def request_id_for(scope: Scope) -> str:
    """The caller's request id when it is well formed, else a fresh one."""
    for name, value in scope.get("headers", []):
        if name == HEADER.encode():
            given = value.decode("latin-1")
            return given if WELL_FORMED.fullmatch(given) else uuid.uuid4().hex
    return uuid.uuid4().hex


class RequestContext:
    """Request id in, request id out, and in the log context while the request runs."""

    def __init__(self, app: ASGIApp, stopping: Callable[[], bool] = lambda: False) -> None:
        self.app = app
        self.stopping = stopping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_for(scope)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (HEADER.encode(), rid.encode())]
                if self.stopping():
                    message["headers"].append((b"connection", b"close"))
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            # Logged here, once, with the request id; not raised on, so that neither Starlette's
            # error middleware nor the server logs it again.
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            record_error(error)
            if not started:
                detail = "the server failed; it has been logged"
                await problem_response(500, "Internal Server Error", detail)(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
