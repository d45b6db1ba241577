"""The model as a utility: the embedded model's speed, and what a provider failure costs.

Side by side in one run:
- the embedded SmolLM2-135M server: start-up, a plan (json_object schema, capped), a step
  (streamed): latency and tokens per second;
- failover: a call whose first provider answers 500, and one whose first provider hangs
  past its timeout, against the baseline of a healthy first provider (two scripted HTTP
  servers on loopback, the stock openai client).

    .venv/bin/python benchmarks/model_utility.py [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exosuit.domain.plan import plan_json_schema
from exosuit.llm import embedded as embedded_model
from exosuit.llm.client import ModelClient
from exosuit.llm.embedded import EmbeddedModel
from exosuit.llm.providers import Provider
from tests.support.model_server import ModelServer, ScriptedModel

PLAN_ASK = [
    {"role": "system", "content": "You plan work. Break the task into 3 to 7 steps. Answer with JSON only."},
    {"role": "user", "content": "Task: Draft release notes for version 2.3 of our app."},
]
STEP_ASK = [{"role": "user", "content": "Write three sentences about the harvest moon."}]


async def embedded() -> None:
    if not embedded_model.available():
        print("embedded model: not installed (make setup installs it)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model = await EmbeddedModel.start(Path(tmp) / "model.log")
        print(f"embedded model: server ready in {time.perf_counter() - started:.1f} s")
        client = ModelClient(
            [Provider("embedded", model.base_url, embedded_model.MODEL_NAME, dialect="json_object")]
        )
        try:
            started = time.perf_counter()
            plan = await client.complete(
                PLAN_ASK,
                schema=plan_json_schema("json_object", 1, 7),
                max_tokens=embedded_model.SETTINGS["llm_plan_max_tokens"],
            )
            took = time.perf_counter() - started
            print(
                f"  plan (json_object + schema): {took:5.1f} s, {plan.completion_tokens} tokens, "
                f"{plan.completion_tokens / took:5.1f} tokens/s"
            )
            first: list[float] = []
            started = time.perf_counter()

            async def on_text(text: str) -> None:
                if not first:
                    first.append(time.perf_counter() - started)

            step = await client.complete(STEP_ASK, max_tokens=160, on_text=on_text)
            took = time.perf_counter() - started
            print(
                f"  step (streamed):             {took:5.1f} s, {step.completion_tokens} tokens, "
                f"{step.completion_tokens / took:5.1f} tokens/s, "
                f"first text after {first[0] if first else took:.2f} s"
            )
        finally:
            await model.stop()


async def failover(runs: int) -> None:
    primary_server, backup_server = ModelServer(), ModelServer()
    await primary_server.start()
    await backup_server.start()
    primary, backup = ScriptedModel(), ScriptedModel()
    providers = [
        Provider("primary", primary_server.register(primary), timeout_seconds=0.5),
        Provider("backup", backup_server.register(backup)),
    ]
    # A breaker that never opens, so that every call meets the failure.
    client = ModelClient(providers, breaker_threshold=10**9)
    ask = [{"role": "user", "content": "hello"}]

    async def timed(prepare: str) -> list[float]:
        times = []
        for _ in range(runs):
            primary.delay = 2.0 if prepare == "hang" else 0.0
            if prepare == "500":
                primary.failures.append(500)
            started = time.perf_counter()
            answer = await client.complete(ask)
            times.append((time.perf_counter() - started) * 1000)
            assert answer.provider == ("primary" if prepare == "healthy" else "backup")
        return times

    print(f"failover, {runs} calls each (first provider's timeout 0.5 s):")
    for label, prepare in [("baseline: first provider healthy", "healthy"),
                           ("first provider answers 500", "500"),
                           ("first provider hangs past its timeout", "hang")]:  # fmt: skip
        times = await timed(prepare)
        print(f"  {label:<42} median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms")
    primary.delay = 0.0
    await primary_server.stop()
    await backup_server.stop()


async def main(runs: int) -> None:
    await failover(runs)
    await embedded()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
