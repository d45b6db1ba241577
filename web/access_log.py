"""One access log line and one observation of the request histogram per HTTP request.

The line is JSON like every other (exosuit/observability/logs.py), at INFO on the
`exosuit.access` logger, with the method, the route template (`/api/v1/tasks/{task_id}`,
never the raw path: bounded, and no ids or query strings), the status, the duration in
seconds and the request id (set by RequestContext, which runs outside this). uvicorn's own
plain-text access lines are switched off where the servers start.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.metrics import Metrics

logger = logging.getLogger("exosuit.access")
UNMATCHED = "<unmatched>"  # no route: one label value for every 404'd path, however many


def route_of(scope: Scope) -> str:
    """The template of the route that served the request (a mount's prefix for /static)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an error raised through here is answered 500 outside

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            method, route = scope["method"], route_of(scope)
            self.metrics.observe_request(method, route, status, seconds)
            fields = {"method": method, "route": route, "status": status, "duration_seconds": seconds}
            logger.info("%s %s %d %.4fs", method, route, status, seconds, extra={"fields": fields})
