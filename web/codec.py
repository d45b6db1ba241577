"""The Temporal UI's codec endpoint: sealed payloads opened for the people who may see them.

The UI posts `{"payloads": [...]}` (protobuf JSON) to `/codec/decode`; a payload opens only
for a signed-in person (session cookie, or a bearer token) of the team whose task it belongs
to; every other payload comes back as it was, sealed. There is no `/codec/encode`: nothing
sent from the Temporal UI is sealed by Exosuit, so nothing sent from there is obeyed.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from exosuit.domain.contracts import workflow_id_for
from exosuit.sealing import Payload, PayloadSealer, workflow_of
from exosuit.storage.identity import Principal
from web.deps import ServicesDep, bearer_principal
from web.errors import Problem
from web.security import session_cookie

router = APIRouter(tags=["codec"])
MAX_PAYLOADS = 1000


async def _caller(request: Request, services: ServicesDep) -> Principal | None:
    """A bearer token's person, else the signed-in browser's (the Temporal UI sends cookies)."""
    if request.headers.get("authorization"):
        return await bearer_principal(request, services)
    cookie = session_cookie(request)
    found = await services.directory.session_for(cookie) if cookie else None
    return found[0] if found else None


def _cors(request: Request, services: ServicesDep, response: Response) -> Response:
    ui = (services.settings.temporal_ui_url or "").rstrip("/")
    if ui and request.headers.get("origin") == ui:
        response.headers["Access-Control-Allow-Origin"] = ui
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Headers"] = "content-type, x-namespace, authorization"
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Vary"] = "Origin"
    return response


@router.options("/codec/decode", include_in_schema=False)
async def preflight(request: Request, services: ServicesDep) -> Response:
    return _cors(request, services, Response(status_code=204))


@router.post("/codec/decode")
async def decode(request: Request, services: ServicesDep) -> Response:
    """Open the sealed payloads of tasks the caller's teams own; leave the rest sealed."""
    principal = await _caller(request, services)
    if principal is None:
        raise Problem(401, "Unauthorized", "sign in to Exosuit (or send a bearer token) to see payloads")
    try:
        body = await request.json()
    except ValueError:  # not JSON, or not UTF-8
        raise Problem(400, "Bad Request", "the body is not JSON") from None
    payloads = body.get("payloads") if isinstance(body, dict) else None
    if not isinstance(payloads, list) or len(payloads) > MAX_PAYLOADS:
        raise Problem(
            422, "Unprocessable Content", f"expected {{'payloads': [...]}} (at most {MAX_PAYLOADS})"
        )
    sealer = PayloadSealer(services.settings.sealing_secrets)
    visible: dict[str, bool] = {}
    opened = []
    for raw in payloads:
        payload = _payload(raw)
        workflow = workflow_of(payload) if payload else None
        if payload is None or workflow is None:
            opened.append(raw)
            continue
        if workflow not in visible:
            task = await services.tasks.task(workflow.removeprefix("task-"))
            visible[workflow] = (
                task is not None
                and task.task.team in principal.roles
                and workflow_id_for(task.task.id) == workflow
            )
        inner = sealer.open(payload) if visible[workflow] else None
        opened.append(_json(inner) if inner is not None else raw)
    return _cors(request, services, JSONResponse({"payloads": opened}))


def _payload(raw: Any) -> Payload | None:
    if not isinstance(raw, dict):
        return None
    try:
        metadata = {
            str(k): base64.b64decode(v, validate=True) for k, v in (raw.get("metadata") or {}).items()
        }
        return Payload(metadata=metadata, data=base64.b64decode(raw.get("data") or "", validate=True))
    except (binascii.Error, TypeError, ValueError, AttributeError):
        return None


def _json(payload: Payload) -> dict[str, Any]:
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }
