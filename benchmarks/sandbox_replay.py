"""What the workflow sandbox costs the worker's CPU, without a server: the recorded history
(tests/histories/, a manual task through every kind of decision) replayed N times by the
worker's runner and by the others, in turns. A replay is every activation of that task
(each workflow task in its history) from a cold start, what an evicted workflow costs.

    .venv/bin/python benchmarks/sandbox_replay.py [--count 20] [--rounds 3]

Prints, per runner, the CPU milliseconds per replay and per activation (median of the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exosuit.cli.worker import workflow_runner
from tests.support.paths import HISTORIES
from workflows.task import TaskWorkflow

RUNNERS: dict[str, WorkflowRunner] = {
    "sandbox, our modules re-imported per run (Temporal's default)": SandboxedWorkflowRunner(),
    "sandbox, every module passed through": SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
    ),
    "unsandboxed": UnsandboxedWorkflowRunner(),
}


async def _copies(history: WorkflowHistory, count: int) -> AsyncIterator[WorkflowHistory]:
    for _ in range(count):
        yield history


async def cpu_per_replay(runner: WorkflowRunner, history: WorkflowHistory, count: int) -> float:
    replayer = Replayer(workflows=[TaskWorkflow], workflow_runner=runner)
    started = time.process_time()
    async with replayer.workflow_replay_iterator(_copies(history, count)) as results:
        async for result in results:
            assert result.replay_failure is None, result.replay_failure
    return (time.process_time() - started) * 1000 / count


async def main(count: int, rounds: int) -> None:
    path = sorted(HISTORIES.glob("*.json"))[-1]
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    tasks = sum(1 for e in history.events if e.HasField("workflow_task_completed_event_attributes"))
    figures: dict[str, list[float]] = {name: [] for name in RUNNERS}
    for runner in RUNNERS.values():  # a first replay each: imports and caches
        await cpu_per_replay(runner, history, 1)
    for _ in range(rounds):
        for name, runner in RUNNERS.items():
            figures[name].append(await cpu_per_replay(runner, history, count))
    mine = type(workflow_runner()).__name__
    print(f"{path.name}: {len(history.events)} events, {tasks} activations; {count} replays x {rounds}")
    print(f"the worker's runner: {mine}")
    for name, runs in figures.items():
        ms = statistics.median(runs)
        print(f"{name:<64} {ms:7.1f} ms per replay   {ms / tasks:5.2f} ms per activation")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.rounds))
