"""Errors as RFC 9457 problem+json, and the request body size limit."""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exosuit.domain.refusals import Forbidden, Invalid, RefusalKind, Refused, Throttled
from exosuit.storage.db import DatabaseDown
from web.limits import LimitsDown
from web.unavailable import Unavailable as Unavailable  # raised by the gateway, rendered here

PROBLEM = "application/problem+json"
DATABASE_RETRY_SECONDS = 2  # a lock or a full pool clears in moments; a database down answers fast
logger = logging.getLogger(__name__)


class ProblemType(StrEnum):
    """A problem document's `type`: one URI per kind of refusal or failure, each a page the
    app serves (relative, so it resolves against the API's own address)."""

    FOUR_EYES = "/problems/four-eyes"
    FORBIDDEN = "/problems/forbidden"
    GATE_NOT_OPEN = "/problems/gate-not-open"
    CLAIMED = "/problems/claimed"
    ALREADY_APPROVED = "/problems/already-approved"
    TASK_FINISHED = "/problems/task-finished"
    ABOVE_CAP = "/problems/above-cap"
    INVALID = "/problems/invalid"
    VALIDATION = "/problems/validation"
    UNAUTHORIZED = "/problems/unauthorized"
    NOT_FOUND = "/problems/not-found"
    TOO_LARGE = "/problems/too-large"
    RATE_LIMITED = "/problems/rate-limited"
    OVERLOADED = "/problems/overloaded"
    UNAVAILABLE = "/problems/unavailable"
    SERVER_ERROR = "/problems/server-error"
    BLANK = "about:blank"  # any other HTTP error: its status says it all


PROBLEM_TYPES: dict[ProblemType, str] = {
    ProblemType.FOUR_EYES: "403: four-eyes; the submitter cannot decide this gate, another approver must.",
    ProblemType.FORBIDDEN: "403: the caller's role in the task's team does not allow this action.",
    ProblemType.GATE_NOT_OPEN: "409: the gate named is not open (decided, superseded); nothing changed.",
    ProblemType.CLAIMED: "409: another approver has claimed the gate; claim it with take_over first.",
    ProblemType.ALREADY_APPROVED: "409: you have already approved this gate; it needs another approver's "
    "approval (a quorum).",
    ProblemType.TASK_FINISHED: "409: the task has already ended; nothing changed.",
    ProblemType.ABOVE_CAP: "422: the autonomy level is above the team's cap (its max_autonomy).",
    ProblemType.INVALID: "422: the request breaks a rule about its content (a plan, an edit, a reason).",
    ProblemType.VALIDATION: "422: the request does not match the schema; `errors` lists where.",
    ProblemType.UNAUTHORIZED: "401: no valid bearer token.",
    ProblemType.NOT_FOUND: "404: absent, or not visible to the caller's teams (the two look the same).",
    ProblemType.TOO_LARGE: "413: the request body is over the size limit.",
    ProblemType.RATE_LIMITED: "429: too many requests; try again after `Retry-After` seconds.",
    ProblemType.OVERLOADED: "429: the server is serving all the requests it takes at once; "
    "try again after `Retry-After` seconds.",
    ProblemType.UNAVAILABLE: "503: Temporal or the database did not answer; retry after `Retry-After`.",
    ProblemType.SERVER_ERROR: "500: the server failed; the cause is in its log under the request id.",
    ProblemType.BLANK: "any other HTTP error; the status and title say what.",
}

_TYPE_OF_REFUSAL = {
    RefusalKind.FOUR_EYES: ProblemType.FOUR_EYES,
    RefusalKind.FORBIDDEN: ProblemType.FORBIDDEN,
    RefusalKind.NOT_OPEN: ProblemType.GATE_NOT_OPEN,
    RefusalKind.FINISHED: ProblemType.TASK_FINISHED,
    RefusalKind.CLAIMED: ProblemType.CLAIMED,
    RefusalKind.ALREADY_APPROVED: ProblemType.ALREADY_APPROVED,
    RefusalKind.REPLAYED: ProblemType.GATE_NOT_OPEN,  # applied once already: nothing changed
    RefusalKind.ABOVE_CAP: ProblemType.ABOVE_CAP,
    RefusalKind.INVALID: ProblemType.INVALID,
    RefusalKind.THROTTLED: ProblemType.RATE_LIMITED,
}
_TYPE_OF_STATUS = {
    401: ProblemType.UNAUTHORIZED,
    403: ProblemType.FORBIDDEN,
    404: ProblemType.NOT_FOUND,
    409: ProblemType.GATE_NOT_OPEN,
    413: ProblemType.TOO_LARGE,
    422: ProblemType.INVALID,
    429: ProblemType.RATE_LIMITED,
    500: ProblemType.SERVER_ERROR,
    503: ProblemType.UNAVAILABLE,
}


def status_of(refused: Refused | Throttled) -> int:
    """The HTTP status of a refusal: 403 not allowed, 422 invalid, 429 not now, else 409 (not
    open, finished)."""
    if isinstance(refused, Throttled):
        return 429
    if isinstance(refused, Forbidden):
        return 403
    if isinstance(refused, Invalid):
        return 422
    return 409


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type: ProblemType | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra
        self.type = type or type_of_status(status)
        self.headers = headers

    @classmethod
    def of(cls, refused: Refused | Throttled) -> Problem:
        """The problem document a refused action answers with, wherever it was refused."""
        status = status_of(refused)
        extra: dict[str, Any] = getattr(refused, "problem_extra", {})  # members a refusal adds
        headers = {"Retry-After": str(refused.retry_after)} if isinstance(refused, Throttled) else None
        kind = _TYPE_OF_REFUSAL[refused.kind]
        return cls(status, _title(status), refused.message, type=kind, headers=headers, **extra)

    def document(self) -> dict[str, Any]:
        return problem_document(self.status, self.title, self.detail, type=self.type, **self.extra)


def type_of_status(status: int) -> ProblemType:
    """The problem type an error answer has unless it names a more precise one."""
    return _TYPE_OF_STATUS.get(status, ProblemType.BLANK)


def problem_document(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type: ProblemType | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An RFC 9457 problem document."""
    kind = type or type_of_status(status)
    body: dict[str, Any] = {"type": kind.value, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return body | extra


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    type: ProblemType | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_document(status, title, detail, type=type, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        challenge = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}  # RFC 9110: a 401 names it
        headers = (exc.headers or {}) | challenge
        return problem_response(
            exc.status, exc.title, exc.detail, headers or None, type=exc.type, **exc.extra
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return problem_response(
            exc.status_code,
            _title(exc.status_code),
            str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return problem_response(
            422, "Unprocessable Content", "the request is invalid", type=ProblemType.VALIDATION, errors=errors
        )

    async def on_throttled(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Throttled)
        return await on_problem(request, Problem.of(exc))

    async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Logged here, once (the log context carries the request id), without a traceback:
        # an outage is not a bug, and under load a traceback a request floods the log.
        if isinstance(exc, Unavailable):
            answer, cause = exc, exc.message
        elif isinstance(exc, LimitsDown):  # the shared rate-limit storage (Redis)
            answer, cause = Unavailable("the rate limits' storage", DATABASE_RETRY_SECONDS), str(exc)
        elif isinstance(exc, TimeoutError):  # a wait of ours ran out (asyncio.timeout, wait_for)
            answer, cause = Unavailable("a dependency", DATABASE_RETRY_SECONDS), "a timeout"
        else:  # the database's own: locked, busy, out of pooled connections, down
            answer, cause = Unavailable("the database", DATABASE_RETRY_SECONDS), _first_line(exc)
        logger.warning("503 on %s %s: %s", request.method, request.url.path, cause)
        headers = {"Retry-After": str(answer.retry_after)}
        return problem_response(503, "Service Unavailable", answer.message, headers=headers)

    async def on_anything(request: Request, exc: Exception) -> JSONResponse:
        # Never a bare 500 page: the cause goes to the log, a problem document to the client.
        logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(500, "Internal Server Error", "the server failed; it has been logged")

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Throttled, on_throttled)
    app.add_exception_handler(Unavailable, on_unavailable)
    app.add_exception_handler(LimitsDown, on_unavailable)
    for database_error in DatabaseDown:
        app.add_exception_handler(database_error, on_unavailable)
    app.add_exception_handler(TimeoutError, on_unavailable)
    app.add_exception_handler(Exception, on_anything)


def overloaded(message: str, retry_after: int) -> JSONResponse:
    """The answer to a request shed because the process is serving all it takes at once."""
    headers = {"Retry-After": str(retry_after)}
    return problem_response(429, "Too Many Requests", message, headers, type=ProblemType.OVERLOADED)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413, declared or streamed.

    A body without a declared length (chunked) is read up to the limit before the app sees
    it, so an oversized one is refused as 413 however the app would have read it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or len(declared) > 15 or int(declared) > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse(send)
                return
        replayed = False

        async def buffered() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # what follows the body: a disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, buffered, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "type": ProblemType.TOO_LARGE.value,
                "title": "Content Too Large",
                "status": 413,
                "detail": f"request bodies are limited to {self.max_bytes} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
