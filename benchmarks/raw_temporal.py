"""The raw Temporal baseline for benchmarks/load.py: the least a gated step can cost.

A workflow that runs a trivial activity (its "plan"), then waits for an update ("approve
gate N"), runs a trivial activity, opens gate N+1 and waits again; the update returns once
the next gate is open, so its latency is approve -> next gate with nothing of Exosuit's in
it. Run as its own worker process, as
Exosuit's worker is:

    python benchmarks/raw_temporal.py ADDRESS TASK_QUEUE
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn
async def trivial_step(n: int) -> int:
    return n + 1


@workflow.defn
class RawGates:
    def __init__(self) -> None:
        self.gate = -1  # -1: planning
        self.approved = -1
        self.steps = 0

    @workflow.run
    async def run(self, steps: int) -> int:
        self.steps = steps
        self.gate = await workflow.execute_activity(
            trivial_step, -1, start_to_close_timeout=timedelta(seconds=30)
        )
        while self.gate < steps:
            await workflow.wait_condition(lambda: self.approved == self.gate)
            await workflow.execute_activity(
                trivial_step, self.gate, start_to_close_timeout=timedelta(seconds=30)
            )
            self.gate += 1
        return self.gate

    @workflow.update
    async def approve(self, gate: int) -> int:
        """Approve the open gate; answers once the next one is open (or the run is done)."""
        self.approved = gate
        await workflow.wait_condition(lambda: self.gate > gate)
        return self.gate

    @approve.validator
    def _check(self, gate: int) -> None:
        if gate != self.gate or self.approved == gate:
            raise ValueError(f"gate {gate} is not open")

    @workflow.update
    async def first_gate(self) -> int:
        """Answers once the first gate is open (what a burst waits for)."""
        await workflow.wait_condition(lambda: self.gate >= 0)
        return self.gate

    @workflow.query
    def open_gate(self) -> int:
        return self.gate


async def main(address: str, queue: str) -> None:
    client = await Client.connect(address)
    worker = Worker(client, task_queue=queue, workflows=[RawGates], activities=[trivial_step])
    print("raw worker polling", queue, flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
