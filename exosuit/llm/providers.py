"""Model providers: an ordered list of interchangeable OpenAI-compatible endpoints.

`providers.toml` in the data dir (or the file `EXOSUIT_PROVIDERS_FILE` names) lists them
in order of preference; without one, the `EXOSUIT_LLM_*` variables (docs/models.md) are the one
provider. Keys are never in the file: each provider names the environment variable that
holds its key.

    [[providers]]
    name = "primary"
    base_url = "https://api.example.com/v1"
    api_key_env = "PRIMARY_API_KEY"
    model = "some-model"
    price_input_per_million = 0.15
    price_output_per_million = 0.60
    dialect = "json_schema"        # or "json_object" for llama.cpp's server
    plan_with = "model"            # or "rules": the deterministic planner plans, the model runs steps
    timeout_seconds = 60
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exosuit.settings import Settings

DIALECTS = ("json_schema", "json_object")
PLANNERS = ("model", "rules")


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str
    model: str = "default"
    api_key: str | None = field(default=None, repr=False)
    price_input_per_million: float = 0.0
    price_output_per_million: float = 0.0
    dialect: str = "json_schema"
    timeout_seconds: float = 120.0
    plan_with: str = "model"


def providers_file(settings: Settings) -> Path:
    return settings.providers_file or settings.data_dir / "providers.toml"


def load_providers(settings: Settings) -> list[Provider]:
    """The providers in order of preference (empty when none is configured)."""
    path = providers_file(settings)
    if path.exists():
        return parse_providers(tomllib.loads(path.read_text()), source=str(path))
    if not settings.llm_base_url:
        return []
    return [
        Provider(
            name="default",
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            price_input_per_million=settings.llm_price_input_per_million,
            price_output_per_million=settings.llm_price_output_per_million,
            dialect=settings.llm_dialect,
            timeout_seconds=settings.llm_timeout_seconds,
            plan_with=settings.llm_plan_with,
        )
    ]


def parse_providers(document: dict[str, Any], source: str = "providers.toml") -> list[Provider]:
    providers = []
    for n, entry in enumerate(document.get("providers", []), start=1):
        where = f"{source}: provider {n}"
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("base_url"):
            raise ValueError(f"{where} needs a name and a base_url")
        unknown = set(entry) - {f for f in Provider.__dataclass_fields__ if f != "api_key"} - {"api_key_env"}
        if unknown:
            raise ValueError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
        if entry.get("dialect", "json_schema") not in DIALECTS:
            raise ValueError(f"{where}: dialect must be one of {', '.join(DIALECTS)}")
        if entry.get("plan_with", "model") not in PLANNERS:
            raise ValueError(f"{where}: plan_with must be one of {', '.join(PLANNERS)}")
        key_env = entry.pop("api_key_env", None)
        providers.append(Provider(**entry, api_key=os.environ.get(key_env) if key_env else None))
    if len({p.name for p in providers}) != len(providers):
        raise ValueError(f"{source}: provider names must be unique")
    return providers
