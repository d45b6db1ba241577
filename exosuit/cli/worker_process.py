"""`exosuit dev`'s worker: in the web app's process (the default), or an `exosuit worker`
child process (EXOSUIT_DEV_WORKER_PROCESS), either restarted if it fails.

In one process the two load their libraries (the Temporal SDK, SQLAlchemy, pydantic: some
130 MB) once, not twice, and share one core's worth of Python: what a laptop wants. As a
child, the web app and the worker each get an interpreter (and so a core) of their own, as
`exosuit web` and `exosuit worker` do in production. The child dies with `exosuit dev`
(exosuit/processes.py) and is told everything `exosuit dev` worked out at start (the
embedded Temporal's address, the embedded model) through its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from exosuit.processes import spawn, stop

log = logging.getLogger(__name__)

RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)  # then every 10 s, for as long as `exosuit dev` runs


def worker_command() -> list[str]:
    beside = Path(sys.executable).parent / "exosuit"
    found = str(beside) if beside.exists() else shutil.which("exosuit")
    return [found, "worker"] if found else [sys.executable, "-m", "exosuit.cli.main", "worker"]


def worker_env(address: str, data_dir: Path, settings: Mapping[str, Any]) -> dict[str, str]:
    """This environment, plus the settings `exosuit dev` decided (as EXOSUIT_* variables)."""
    env = dict(os.environ) | {"TEMPORAL_ADDRESS": address, "EXOSUIT_DATA_DIR": str(data_dir.resolve())}
    for name, value in settings.items():
        if value is not None:
            env[f"EXOSUIT_{name.upper()}"] = str(value)
    return env


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path, grace: float) -> None:
        self._env, self._log_path, self._grace = env, log_path, grace
        self._process: asyncio.subprocess.Process | None = None
        self._watching: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        self._process = await spawn(worker_command(), self._log_path, self._env)
        self._watching = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        deaths = 0
        while True:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            delay = RESTART_DELAYS[min(deaths, len(RESTART_DELAYS) - 1)]
            deaths += 1
            log.error("the worker (PID %d) exited with code %s; restarting it in %.1f s (see %s)",
                      self._process.pid, code, delay, self._log_path)  # fmt: skip
            await asyncio.sleep(delay)
            self._process = await spawn(worker_command(), self._log_path, self._env)

    async def stop(self) -> None:
        """SIGTERM: the worker hands back or finishes its activities within its grace period."""
        self._stopping = True
        if self._watching is not None:
            self._watching.cancel()
        if self._process is not None:
            await stop(self._process, grace=self._grace + 5)


class WorkerInProcess:
    """The worker as a task of this process: `run(stop)` works until `stop` is set."""

    def __init__(self, run: Callable[[asyncio.Event], Awaitable[None]], grace: float) -> None:
        self._run, self._grace = run, grace
        self._stop = asyncio.Event()
        self._running: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return os.getpid()

    async def start(self) -> None:
        self._running = asyncio.create_task(self._keep_running())

    async def _keep_running(self) -> None:
        deaths = 0
        while not self._stop.is_set():
            try:
                await self._run(self._stop)
            except Exception:
                delay = RESTART_DELAYS[min(deaths, len(RESTART_DELAYS) - 1)]
                deaths += 1
                log.exception("the worker failed; restarting it in %.1f s", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    async def stop(self) -> None:
        """As SIGTERM to a worker: no new work; running activities get the grace to finish."""
        self._stop.set()
        if self._running is not None:
            try:
                await asyncio.wait_for(self._running, self._grace + 5)
            except TimeoutError:
                log.error("the worker did not stop within %.0f s", self._grace + 5)


DevWorker = WorkerProcess | WorkerInProcess
