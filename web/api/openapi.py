"""The OpenAPI document a client generator reads: operation ids, the bearer scheme, and every
error answer as `application/problem+json` with the problem types it may carry."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from web.errors import PROBLEM, PROBLEM_TYPES, ProblemType
from web.schemas import ProblemOut

_TYPES_BY_STATUS: dict[int, list[ProblemType]] = {}
for _kind, _meaning in PROBLEM_TYPES.items():
    if _kind is not ProblemType.BLANK:
        _TYPES_BY_STATUS.setdefault(int(_meaning[:3]), []).append(_kind)

TAGS = [
    {"name": "tasks", "description": "Submit tasks, wait for them, decide their gates, read their audit."},
    {"name": "approvals", "description": "The gates the caller may decide, oldest first."},
    {"name": "health", "description": "Liveness and readiness (no token)."},
]


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
                tags=TAGS,
            )
            _errors_as_problems(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _errors_as_problems(schema: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/ProblemOut"}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ProblemOut", ProblemOut.model_json_schema())
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            answers = operation.setdefault("responses", {})
            if "requestBody" in operation:
                answers.setdefault("413", {"description": describe(413)})
            for code, answer in answers.items():
                if code[0] in "45":
                    answer["content"] = {PROBLEM: {"schema": problem}}
                    if answer.get("description") in (None, "Validation Error"):
                        answer["description"] = describe(int(code))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
