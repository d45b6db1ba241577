"""A task as a JSON answer, serialised once.

Returning the model from a route makes FastAPI validate it again against the response model
and encode it through `jsonable_encoder`; pydantic's own `model_dump_json` writes the same
document in one pass in its core, a few milliseconds less per answer on the hot paths (the
decision POST, `/wait`, reading a task). Routes keep `response_model` for the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Response

from exosuit.storage.tasks import TaskView
from web.schemas import task_out


def task_response(view: TaskView, headers: Mapping[str, str] | None = None) -> Response:
    return Response(task_out(view).model_dump_json(), media_type="application/json", headers=headers)
