"""The model as a utility: ordered providers with failover and a circuit breaker.

Every provider is an OpenAI-compatible endpoint reached with the stock client. A timeout,
a refused connection, 429 or 5xx moves the call to the next provider ("transfer switch");
a provider that keeps failing is skipped for a while. Temporal still owns retries: the
client never retries; it raises a `ModelError` that says whether retrying can help, and
the activities turn that into Temporal's retry decision.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import openai
from openai import AsyncOpenAI

from exosuit.domain.usage import CallRecord, cost_usd
from exosuit.llm.providers import Provider, load_providers
from exosuit.settings import Settings

STREAM_FLUSH_SECONDS = 0.25  # how often a streamed answer's text is passed on

OnText = Callable[[str], Awaitable[None]]
Schema = dict[str, Any] | Callable[[str], dict[str, Any]]  # a schema, or one per dialect


class ModelError(Exception):
    """No answer; `kind` names why, `retryable` says whether asking again can help."""

    def __init__(self, message: str, *, kind: str, retryable: bool) -> None:
        super().__init__(message)
        self.message, self.kind, self.retryable = message, kind, retryable


def _unavailable() -> ModelError:
    return ModelError(
        "no model endpoint is configured: set EXOSUIT_LLM_BASE_URL (or OPENAI_BASE_URL), "
        "add providers.toml, or install the embedded model with `make setup`",
        kind="ModelUnavailable",
        retryable=False,
    )


Message = dict[str, Any]  # one chat message (an assistant's tool call holds more than text)


@dataclass(frozen=True)
class FunctionCall:
    """A function the model called instead of answering (OpenAI `tool_calls`, the first one)."""

    id: str
    name: str
    arguments: str  # JSON, as the model wrote it


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    provider: str = "default"
    usage_estimated: bool = False  # the provider streamed without reporting usage
    failovers: int = 0  # providers that failed before this one answered
    function_call: FunctionCall | None = None  # the model called one of the offered tools

    def record(self, key: str, purpose: str, step_id: str | None = None) -> CallRecord:
        """What the store keeps of this call: its usage, cost and who answered."""
        return CallRecord(
            key=key,
            purpose=purpose,
            model=self.model,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=self.cost_usd,
            step_id=step_id,
            provider=self.provider,
            usage_estimated=self.usage_estimated,
        )


class CircuitBreaker:
    """Opens after `threshold` failures in a row; lets one call through after `cooldown` s."""

    def __init__(
        self, threshold: int = 3, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold, self.cooldown, self._clock = threshold, cooldown, clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def open(self) -> bool:
        return self._opened_at is not None and self._clock() - self._opened_at < self.cooldown

    def failed(self) -> None:
        self._failures += 1
        if self._failures >= self.threshold:
            self._opened_at = self._clock()

    def succeeded(self) -> None:
        self._failures, self._opened_at = 0, None


def response_format(dialect: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema in the endpoint's dialect (llama.cpp's server refuses `json_schema`)."""
    if dialect == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}


def _worth_another_provider(exc: Exception) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError)  # includes timeouts


class ModelClient:
    """Completions from the first provider that answers, in order of preference."""

    def __init__(
        self,
        providers: list[Provider],
        *,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 30.0,
    ) -> None:
        self._providers = [
            (
                p,
                AsyncOpenAI(
                    base_url=p.base_url,
                    api_key=p.api_key or "not-needed",
                    max_retries=0,
                    timeout=p.timeout_seconds,
                ),
                CircuitBreaker(breaker_threshold, breaker_cooldown),
            )
            for p in providers
        ]

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelClient:
        return cls(load_providers(settings))

    @property
    def providers(self) -> list[str]:
        return [p.name for p, _, _ in self._providers]

    @property
    def plan_with(self) -> tuple[str, str | None]:
        """Who plans ('model' or 'rules'), as the preferred provider says, and its name."""
        if not self._providers:
            return "model", None  # asking fails at once, with the reason
        preferred = self._providers[0][0]
        return preferred.plan_with, preferred.name

    def projected_cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """What a call would cost at the dearest provider it may reach (a conservative guess)."""
        return max(
            (
                cost_usd(
                    prompt_tokens, completion_tokens, p.price_input_per_million, p.price_output_per_million
                )
                for p, _, _ in self._providers
            ),
            default=0.0,
        )

    async def complete(
        self,
        messages: list[Message],
        *,
        schema: Schema | None = None,
        max_tokens: int | None = None,
        on_text: OnText | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Completion:
        """The first answer any provider gives; with `on_text`, streamed as it is generated.
        With `tools` (OpenAI function definitions) the model may call one instead of answering."""
        if not self._providers:
            raise _unavailable()
        # Skip providers whose circuit is open, unless that would leave none to try.
        candidates = [entry for entry in self._providers if not entry[2].open] or self._providers
        problems: list[str] = []
        all_refused = True
        for provider, client, breaker in candidates:
            try:
                completion = await self._ask(provider, client, messages, schema, max_tokens, on_text, tools)
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                status = getattr(exc, "status_code", None)
                problems.append(f"{provider.name}: {f'HTTP {status}' if status else type(exc).__name__}")
                if _worth_another_provider(exc):
                    all_refused = False
                    breaker.failed()
                continue
            breaker.succeeded()
            return replace(completion, failovers=len(problems))
        if all_refused:
            raise ModelError(
                f"the model endpoint refused the request ({'; '.join(problems)})",
                kind="ModelRequestRefused",
                retryable=False,
            )
        raise ModelError(
            f"no provider answered ({'; '.join(problems)})", kind="ProvidersDown", retryable=True
        )

    async def _ask(
        self,
        provider: Provider,
        client: AsyncOpenAI,
        messages: list[Message],
        schema: Schema | None,
        max_tokens: int | None,
        on_text: OnText | None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Completion:
        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = tools
        if schema is not None:
            shaped = schema(provider.dialect) if callable(schema) else schema
            extra["response_format"] = response_format(provider.dialect, shaped)
        if max_tokens is not None:
            extra["max_tokens"] = max_tokens
        if on_text is not None:
            return await self._stream(provider, client, messages, extra, on_text)
        response = await client.chat.completions.create(
            model=provider.model,
            messages=messages,  # type: ignore[arg-type]
            **extra,
        )
        message = response.choices[0].message if response.choices else None
        text = (message.content or "") if message else ""
        called = message.tool_calls[0] if message and message.tool_calls else None
        usage = response.usage
        completion = _completion(
            provider,
            text,
            response.model,
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
        )
        if called is None or not hasattr(called, "function"):
            return completion
        function = FunctionCall(called.id, called.function.name, called.function.arguments or "")
        return replace(completion, function_call=function)

    async def _stream(
        self,
        provider: Provider,
        client: AsyncOpenAI,
        messages: list[Message],
        extra: dict[str, Any],
        on_text: OnText,
    ) -> Completion:
        stream = await client.chat.completions.create(  # type: ignore[call-overload]
            model=provider.model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
        parts: list[str] = []
        called = _CallParts()
        chunks, model, usage = 0, None, None
        flushed = time.monotonic()
        async for chunk in stream:
            model = chunk.model or model
            usage = chunk.usage or usage
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
                    chunks += 1
                for piece in choice.delta.tool_calls or ():
                    chunks += called.add(piece)
            if time.monotonic() - flushed >= STREAM_FLUSH_SECONDS:
                await on_text("".join(parts))
                flushed = time.monotonic()
        text = "".join(parts)
        if usage is not None:
            completion = _completion(provider, text, model, usage.prompt_tokens, usage.completion_tokens)
        else:
            # Some servers (llama.cpp's) stream no usage: one chunk is one token, prompt estimated.
            prompt = sum(len(m.get("content") or "") for m in messages) // 4
            completion = replace(_completion(provider, text, model, prompt, chunks), usage_estimated=True)
        return replace(completion, function_call=called.call())


class _CallParts:
    """The first tool call of a streamed answer, put together from its fragments."""

    def __init__(self) -> None:
        self.id, self.name, self.arguments = "", "", ""

    def add(self, piece: Any) -> int:
        if piece.index not in (0, None):
            return 0  # one call is all a step acts on
        self.id = piece.id or self.id
        function = piece.function
        if function is not None:
            self.name += function.name or ""
            self.arguments += function.arguments or ""
        return 1

    def call(self) -> FunctionCall | None:
        return FunctionCall(self.id or "call_0", self.name, self.arguments) if self.name else None


def _completion(provider: Provider, text: str, model: str | None, prompt: int, answer: int) -> Completion:
    return Completion(
        text=text,
        model=model or provider.model,
        prompt_tokens=prompt,
        completion_tokens=answer,
        cost_usd=cost_usd(
            prompt, answer, provider.price_input_per_million, provider.price_output_per_million
        ),
        provider=provider.name,
    )
