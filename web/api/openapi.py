"""The OpenAPI document a client generator reads: operation ids, the bearer scheme, every
status each operation can answer (errors as `application/problem+json` with the problem types
they may carry), the headers that come with them, and the webhook messages Exosuit sends."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from web.api.deliveries import deliveries
from web.errors import PROBLEM, PROBLEM_TYPES, ProblemType
from web.request_context import HEADER as REQUEST_ID
from web.schemas import ProblemOut

_TYPES_BY_STATUS: dict[int, list[ProblemType]] = {}
for _kind, _meaning in PROBLEM_TYPES.items():
    if _kind is not ProblemType.BLANK:
        _TYPES_BY_STATUS.setdefault(int(_meaning[:3]), []).append(_kind)

TAGS = [
    {"name": "tasks", "description": "Submit tasks, wait for them, decide their gates, read their audit."},
    {"name": "approvals", "description": "The gates the caller may decide, oldest first."},
    {"name": "webhooks", "description": "A team's subscriptions to task events and their delivery log."},
    {"name": "templates", "description": "Named tasks with `{{param}}` placeholders, and their runs."},
    {"name": "schedules", "description": "Recurring runs of a template (Temporal Schedules)."},
    {"name": "health", "description": "Liveness and readiness (no token)."},
    {"name": "codec", "description": "Opens sealed payloads for the Temporal UI (signed-in people only)."},
]

# Every response header the API sends, by name: what it means and its schema.
HEADERS: dict[str, dict[str, Any]] = {
    REQUEST_ID: {"description": "the request's id (the caller's, when well formed), as in the logs"},
    "Retry-After": {"description": "seconds to wait before sending the request again", "integer": True},
    "WWW-Authenticate": {"description": "`Bearer`: the scheme this API takes"},
    "Location": {"description": "the URL of what was created"},
    "Idempotent-Replayed": {
        "description": "`true` when this is the first answer to this Idempotency-Key, again"
    },
    "Exosuit-Wait": {"description": "`timeout` when the time ran out before the task got there"},
}
# Headers that only some answers carry: (operation id, status) -> names (none required).
SOMETIMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("create_task", "201"): ("Idempotent-Replayed",),
    ("run_template", "201"): ("Idempotent-Replayed",),
    ("wait_for_task", "200"): ("Exosuit-Wait",),
    **{("decide_gate", code): ("Idempotent-Replayed",) for code in ("200", "403", "409", "422")},
}
# ...and those that every answer of that status carries.
ALWAYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("create_task", "201"): ("Location",),
    ("run_template", "201"): ("Location",),
    ("create_webhook", "201"): ("Location",),
}
# Any call can meet these: no token, the process or a limit shedding it, a dependency down...
EVERY_API_CALL = (401, 429, 503)
UNBOUNDED = ("/healthz", "/readyz")  # ...but the health checks: no token, never shed, no database read


def describe(status: int) -> str:
    """What an error status means here, naming each problem `type` it may carry."""
    kinds = _TYPES_BY_STATUS.get(status, [])
    meanings = (f"`{k.value}`: {PROBLEM_TYPES[k][5:].rstrip('.')}" for k in kinds)
    return "; ".join(meanings) or "a problem document"


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that may answer these error statuses."""
    return {status: {"model": ProblemOut, "description": describe(status)} for status in statuses}


def operation_id(route: APIRoute) -> str:
    """An operation's id is its route function's name: `create_task`, `decide_gate`..."""
    return route.name


def install_openapi(app: FastAPI) -> None:
    """Serve /openapi.json with every error answer typed as problem+json."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                webhooks=deliveries.routes,
                tags=TAGS,
            )
            for delivery in schema.get("webhooks", {}).values():
                delivery["post"]["responses"].pop("422", None)  # Exosuit sends these: it validates nothing
            _every_answer(schema)
            _errors_as_problems(schema)
            _headers(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, op) for path, ops in schema.get("paths", {}).items() for op in ops.values()]


def _every_answer(schema: dict[str, Any]) -> None:
    """The statuses any operation can answer, whatever its route declared: 422 when it takes
    parameters or a body, 413 when a body, and 401 (no token), 429 (shed) and 503 (a dependency
    down) for any but the health checks."""
    for path, operation in _operations(schema):
        answers = operation.setdefault("responses", {})
        if path in UNBOUNDED:
            continue
        statuses = set(EVERY_API_CALL)
        if operation.get("parameters") or "requestBody" in operation:
            statuses.add(422)
        if "requestBody" in operation:
            statuses.add(413)
            answers.setdefault("400", {"description": "the body is not well-formed JSON"})
        for status in sorted(statuses):
            answers.setdefault(str(status), {"description": describe(status)})


def _headers(schema: dict[str, Any]) -> None:
    for _, operation in _operations(schema):
        for code, answer in operation["responses"].items():
            named = {REQUEST_ID: True}
            named |= {"Retry-After": True} if code in ("429", "503") else {}
            named |= {"WWW-Authenticate": True} if code == "401" else {}
            named |= dict.fromkeys(ALWAYS.get((operation["operationId"], code), ()), True)
            named |= dict.fromkeys(SOMETIMES.get((operation["operationId"], code), ()), False)
            answer["headers"] = {name: _header(name, required) for name, required in named.items()}


def _header(name: str, required: bool) -> dict[str, Any]:
    meaning = HEADERS[name]
    kind = "integer" if meaning.get("integer") else "string"
    return {"description": meaning["description"], "required": required, "schema": {"type": kind}}


def _errors_as_problems(schema: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/ProblemOut"}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ProblemOut", ProblemOut.model_json_schema())
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            answers = operation.setdefault("responses", {})
            for code, answer in answers.items():
                if code[0] in "45":
                    answer["content"] = {PROBLEM: {"schema": problem}}
                    if answer.get("description") in (None, "Validation Error"):
                        answer["description"] = describe(int(code))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
