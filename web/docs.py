"""Documentation for programs and agents: /docs (Swagger UI, assets served here), /llms.txt,
and the pages the problem types' URIs name."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from web.deps import ServicesDep
from web.errors import PROBLEM_TYPES, Problem, ProblemType

router = APIRouter(include_in_schema=False)

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Exosuit API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/static/vendor/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/static/vendor/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""

LLMS_TXT = """# Exosuit

> Exosuit runs human-in-the-loop jobs. You submit a **task** (a title and instructions); a
> durable workflow has a model plan it as **steps** and runs them, stopping at **gates** where
> a person approves, edits or rejects, as the task's **autonomy** level demands. Hand risky
> work to Exosuit, then wait for a human's answer.

Every call takes `Authorization: Bearer $TOKEN` (an API token: `exosuit token create EMAIL`);
a token acts as its user, with that user's teams and roles. Errors are
`application/problem+json` with a `type` per kind of refusal (below).

## Submit

```sh
API=BASE/api/v1
curl -s -X POST $API/tasks -H "Authorization: Bearer $TOKEN" \\
  -H 'Content-Type: application/json' -H 'Idempotency-Key: my-job-1' \\
  -d '{"title": "Release notes", "instructions": "Draft notes for v2.3",
       "team": "default", "autonomy": "guarded"}'
```

`autonomy` is `manual|supervised|guarded|delegated|autonomous` (never above the team's cap).
The answer (201) is the task: `{id, status, steps, open_gate, result, ...}`. The same
`Idempotency-Key` and body again return the same task.

## Wait (no polling)

```sh
curl -s "$API/tasks/$ID/wait?for=gate&timeout=60" -H "Authorization: Bearer $TOKEN"
curl -s "$API/tasks/$ID/wait?for=finished&timeout=60" -H "Authorization: Bearer $TOKEN"
```

Answers the task as soon as a gate is open (`gate`) or it has finished (`finished`); after
`timeout` seconds (at most 60) the task as it is, with the header `Exosuit-Wait: timeout`:
call again. `GET $API/tasks/$ID/events` streams `changed` events (server-sent events, the task
as JSON) until the task finishes. A task's `status` is one of `planning`, `awaiting_approval`,
`running`, `completed`, `rejected`, `failed`, `cancelled`.

## Decide (approvers)

```sh
curl -s "$API/approvals?limit=20" -H "Authorization: Bearer $TOKEN"   # gates you may decide, oldest first
curl -s -X POST $API/tasks/$ID/decisions -H "Authorization: Bearer $TOKEN" \\
  -H 'Content-Type: application/json' \\
  -d '{"gate_id": "g_...", "action": "approve"}'
curl -s -X POST $API/tasks/$ID/decisions -H "Authorization: Bearer $TOKEN" \\
  -H 'Content-Type: application/json' \\
  -d '{"gate_id": "g_...", "action": "reject", "reason": "too long", "on_reject": "revise"}'
```

`action` is `approve`, `edit` (with `changes`: a plan gate `{"steps": [...]}`, a step gate
`{"instructions": "..."}`, an output gate `{"output": "..."}`) or `reject` (with a `reason`;
`on_reject` = `revise|skip|stop`). A gate of kind `question` (a step asks a person:
`gate.question`, `gate.choices`) is answered instead, by any member of the team:
`{"gate_id": "g_...", "action": "answer", "answer": "..."}` (one of the choices, if any).
Lists take `?limit=` and `?cursor=` (the previous page's `next_cursor`).

## Refusals (problem `type`)

{problems}

## More

- [OpenAPI](BASE/openapi.json), [interactive docs](BASE/docs)
- MCP: `BASE/mcp` (Streamable HTTP, the same bearer token) with the tools `submit_task`,
  `get_task`, `wait_for_task`, `list_approvals` and `decide`, bound by the same rules. Their
  arguments carry the API's names (`wait_for_task`: `task_id`, `for`, `timeout`); one a tool
  does not take is refused.
- Webhooks: the messages Exosuit sends are described in the OpenAPI document's `webhooks`.
"""


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(DOCS_PAGE)


@router.get("/llms.txt")
async def llms_txt(request: Request, services: ServicesDep) -> PlainTextResponse:
    # EXOSUIT_PUBLIC_URL where set: a cache must never hand agents an address a request made up.
    public = services.settings.public_url
    base = public.rstrip("/") if public else str(request.base_url).rstrip("/")
    listed = "\n".join(f"- `{kind.value}`: {meaning}" for kind, meaning in PROBLEM_TYPES.items())
    text = LLMS_TXT.replace("BASE", base).replace("{problems}", listed)
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


@router.get("/problems/{name}")
async def problem_type(name: str) -> PlainTextResponse:
    """What a problem `type` URI means (RFC 9457 suggests it be documentation)."""
    try:
        kind = ProblemType(f"/problems/{name}")
    except ValueError:
        raise Problem(404, "Not Found", f"no problem type {name}") from None
    return PlainTextResponse(f"{kind.value}\n\n{PROBLEM_TYPES[kind]}\n")
