"""The model, reached through any OpenAI-compatible endpoint with the stock client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI
from temporalio.exceptions import ApplicationError

from exosuit.settings import Settings

MODEL_UNAVAILABLE = "ModelUnavailable"
MODEL_REFUSED = "ModelRequestRefused"


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class ModelClient:
    """One model endpoint. Temporal owns retries, so the client never retries itself."""

    def __init__(
        self,
        client: AsyncOpenAI | None,
        model: str,
        *,
        price_input_per_million: float = 0.0,
        price_output_per_million: float = 0.0,
    ) -> None:
        self._client = client
        self.model = model
        self._price_in = price_input_per_million
        self._price_out = price_output_per_million

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelClient:
        client = None
        if settings.llm_base_url:
            client = AsyncOpenAI(
                base_url=settings.llm_base_url,
                api_key=settings.llm_api_key or "not-needed",
                max_retries=0,
                timeout=settings.llm_timeout_seconds,
            )
        return cls(
            client,
            settings.llm_model,
            price_input_per_million=settings.llm_price_input_per_million,
            price_output_per_million=settings.llm_price_output_per_million,
        )

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        response_format: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        if self._client is None:
            raise ApplicationError(
                "no model endpoint is configured: set EXOSUIT_LLM_BASE_URL (or OPENAI_BASE_URL)",
                type=MODEL_UNAVAILABLE,
                non_retryable=True,
            )
        extra: dict[str, Any] = {"response_format": response_format} if response_format else {}
        if max_tokens is not None:
            extra["max_tokens"] = max_tokens
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                **extra,
            )
        except openai.APIStatusError as exc:
            if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
                raise  # worth another attempt: Temporal's retry policy decides when
            raise ApplicationError(
                f"the model endpoint refused the request (HTTP {exc.status_code}): {exc.message}",
                type=MODEL_REFUSED,
                non_retryable=True,
            ) from None
        text = response.choices[0].message.content or "" if response.choices else ""
        usage = response.usage
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        return Completion(
            text=text,
            model=response.model or self.model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=(prompt * self._price_in + completion * self._price_out) / 1_000_000,
        )
