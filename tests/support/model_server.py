"""A real OpenAI-compatible HTTP server whose answers the tests script.

Each test registers a `ScriptedModel` and points the app's stock `openai` client at
`server.base_url(model)`; the server records every request it receives.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

DEFAULT_PLAN = [
    {"title": "Draft", "instructions": "Write a first draft.", "kind": "llm", "tool": None, "risk": "low"},
    {"title": "Polish", "instructions": "Polish the draft.", "kind": "llm", "tool": None, "risk": "low"},
]


def plan_json(steps: list[dict[str, Any]]) -> str:
    return json.dumps({"steps": steps})


class ScriptedModel:
    """Answers by purpose: plans (asked with a JSON schema), step runs and redrafts."""

    def __init__(self, plan: list[dict[str, Any]] | None = None) -> None:
        self.id = uuid.uuid4().hex
        self.plan = plan or DEFAULT_PLAN
        self.plan_answers: deque[str] = deque()  # queued raw plan answers, used first
        self.step_answer: Callable[[str], str] = lambda prompt: f"done: {_step_line(prompt)}"
        # Function calls to answer step runs with first, e.g. {"question": ..., "choices": [...]}
        # for ask_human (the name defaults to it), one per step request.
        self.step_calls: deque[dict[str, Any]] = deque()
        self.redraft_answers: deque[str] = deque()
        self.failures: deque[int] = deque()  # HTTP statuses to answer with first
        self.down_until = 0.0  # time.monotonic() until which every request gets a 500 (an outage)
        self.delay = 0.0  # seconds to wait before answering (a slow or hung provider)
        self.chunk_delay = 0.0  # seconds between streamed chunks
        self.stream_usage = True  # report usage at the end of a stream when asked
        self.requests: list[dict[str, Any]] = []
        self.usage = (11, 7)  # prompt, completion tokens reported per call
        self.answered = 0  # requests answered with 200

    def purpose(self, body: dict[str, Any]) -> str:
        if body.get("response_format"):
            return "plan"
        system = body["messages"][0]["content"]
        return "redraft" if system.startswith("You revise") else "step"

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append(body)
        if self.failures or time.monotonic() < self.down_until:
            status = self.failures.popleft() if self.failures else 500
            return status, {"error": {"message": "scripted failure", "type": "server_error"}}
        purpose = self.purpose(body)
        prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        if purpose == "step" and self.step_calls:
            return 200, self._function_call(self.step_calls.popleft())
        if purpose == "plan":
            text = self.plan_answers.popleft() if self.plan_answers else plan_json(self.plan)
        elif purpose == "redraft":
            text = self.redraft_answers.popleft() if self.redraft_answers else "Redrafted."
        else:
            text = self.step_answer(prompt)
        prompt_tokens, completion_tokens = self.usage
        self.answered += 1
        return 200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:8]}",
            "object": "chat.completion",
            "created": 0,
            "model": "scripted-model",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _function_call(self, call: dict[str, Any]) -> dict[str, Any]:
        """A completion that calls a function instead of answering."""
        arguments = {k: v for k, v in call.items() if k != "name"}
        self.answered += 1
        prompt_tokens, completion_tokens = self.usage
        tool_call = {
            "id": f"call_{uuid.uuid4().hex[:8]}",
            "type": "function",
            "function": {"name": call.get("name", "ask_human"), "arguments": json.dumps(arguments)},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:8]}",
            "object": "chat.completion",
            "created": 0,
            "model": "scripted-model",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def tool_results(self) -> list[str]:
        """The function results (tool messages) every step request carried, in order."""
        return [m["content"] for r in self.requests for m in r["messages"] if m["role"] == "tool"]

    async def stream(self, body: dict[str, Any], asked: dict[str, Any]) -> AsyncIterator[str]:
        """The answer as server-sent chunks, a word at a time, as OpenAI streams it."""
        message = body["choices"][0]["message"]
        text = message["content"] or ""
        base = {"id": body["id"], "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        for call in message.get("tool_calls") or ():
            function = call["function"]
            arguments = function["arguments"]
            half = len(arguments) // 2  # in two fragments, as providers stream them
            first = {"index": 0, "id": call["id"], "type": "function"}
            for delta in (
                first | {"function": {"name": function["name"], "arguments": arguments[:half]}},
                {"index": 0, "function": {"arguments": arguments[half:]}},
            ):
                chunk = base | {
                    "choices": [{"index": 0, "delta": {"tool_calls": [delta]}, "finish_reason": None}]
                }
                yield f"data: {json.dumps(chunk)}\n\n"
        for piece in re.findall(r"\S+\s*|\s+", text):
            chunk = base | {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        finish = body["choices"][0]["finish_reason"]
        done = base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        yield f"data: {json.dumps(done)}\n\n"
        if self.stream_usage and asked.get("stream_options", {}).get("include_usage"):
            yield f"data: {json.dumps(base | {'choices': [], 'usage': body['usage']})}\n\n"
        yield "data: [DONE]\n\n"

    def prompts(self, purpose: str) -> list[str]:
        """Every message text of the requests made for one purpose, joined per request."""
        return [
            "\n".join(m["content"] or "" for m in r["messages"])
            for r in self.requests
            if self.purpose(r) == purpose
        ]


def _step_line(prompt: str) -> str:
    marker = "Instructions:\n"
    return prompt.split(marker, 1)[1].split("\n\n", 1)[0] if marker in prompt else prompt[:80]


class ModelServer:
    def __init__(self) -> None:
        self.models: dict[str, ScriptedModel] = {}
        self.app = FastAPI()
        self.app.post("/s/{model_id}/v1/chat/completions")(self._complete)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def _complete(self, model_id: str, request: Request) -> Response:
        model = self.models.get(model_id)
        if model is None:
            return JSONResponse({"error": {"message": "unknown model"}}, status_code=404)
        if model.delay:
            await asyncio.sleep(model.delay)
        asked = await request.json()
        status, body = model.answer(asked)
        if status != 200 or not asked.get("stream"):
            return JSONResponse(body, status_code=status)
        return StreamingResponse(model.stream(body, asked), media_type="text/event-stream")

    def register(self, model: ScriptedModel) -> str:
        self.models[model.id] = model
        return f"http://127.0.0.1:{self.port}/s/{model.id}/v1"

    async def start(self) -> None:
        self._server, self._task, self.port = await serve(self.app)

    async def stop(self) -> None:
        assert self._server is not None and self._task is not None
        await shutdown(self._server, self._task)


async def serve(app: Any, port: int = 0) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Run an ASGI app on a real loopback port inside this event loop."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
        proxy_headers=False,  # as `exosuit web` runs: the app decides whose forwarded headers count
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    ready_by = asyncio.get_running_loop().time() + 30
    while not server.started:
        if task.done():
            task.result()
        assert asyncio.get_running_loop().time() < ready_by, "the server did not start in 30 s"
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return server, task, bound


async def shutdown(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await task
