"""Exosuit processes side by side, as replicas: `exosuit web` and `exosuit worker` started
with one environment, readied, and stopped together."""

from __future__ import annotations

import asyncio
import os

from exosuit.processes import free_port
from tests.support.cli import EXOSUIT
from tests.support.ready import until_ready


class Replicas:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.processes: list[asyncio.subprocess.Process] = []
        self.web: dict[str, asyncio.subprocess.Process] = {}
        self.worker_metrics: list[str] = []
        self._draining: list[asyncio.Task[None]] = []

    async def start_web(self) -> None:
        port = free_port()
        process, _ = await self._spawn("web", "--port", str(port))
        self.web[f"http://127.0.0.1:{port}"] = process

    async def stop_web(self, url: str) -> None:
        process = self.web.pop(url)
        process.terminate()
        assert await process.wait() == 0

    async def start_worker(self) -> None:
        port = free_port()
        _, started = await self._spawn("worker", EXOSUIT_WORKER_METRICS_PORT=str(port))
        await asyncio.wait_for(started.wait(), 60)  # its log says so once it polls
        self.worker_metrics.append(f"http://127.0.0.1:{port}/metrics")

    async def _spawn(self, *args: str, **extra: str) -> tuple[asyncio.subprocess.Process, asyncio.Event]:
        """The process, and an event set once its log says the worker started."""
        process = await asyncio.create_subprocess_exec(
            EXOSUIT, *args, env=os.environ | self.env | extra,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self.processes.append(process)
        started = asyncio.Event()

        async def drain(log: asyncio.StreamReader) -> None:  # read all: a full pipe would stall it
            async for line in log:
                if b"worker started" in line:
                    started.set()

        assert process.stderr is not None
        self._draining.append(asyncio.create_task(drain(process.stderr)))
        return process, started

    async def ready(self) -> None:
        for base in self.web:
            await until_ready(base, 60, base)

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.terminate()
        for process in self.processes:
            await process.wait()
        await asyncio.gather(*self._draining)
