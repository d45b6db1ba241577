"""A system of real processes to soak under faults: `exosuit web` and `exosuit worker` on a
Temporal dev server of their own (persisted to a file, so that it can be killed and started
again on the same port and data), a SQLite database file, and the scripted model server.

Each fault is a real one, by PID: the worker killed with SIGKILL and another started, the web
process stopped (SIGTERM, as a deploy does) and started again on its port, the Temporal server
killed with SIGKILL and started again on its database, and another process holding SQLite's
write lock. tests/support/soak_driver.py drives decisions meanwhile; tests/system/test_soak.py
runs it briefly, benchmarks/soak.py for minutes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from exosuit.cli.temporal_server import DevServer
from exosuit.domain.autonomy import Role
from exosuit.processes import free_port, spawn, stop
from exosuit.storage.db import Database, migrate
from exosuit.storage.identity import Directory
from tests.support.ready import until_ready
from tests.support.write_lock import WriteLock

BIN = Path(sys.executable).parent
TEAM = "soak"
FAULTS = ("worker killed", "web restarted", "Temporal killed", "SQLite write-locked")


@dataclass
class Fault:
    """One fault on the run's clock (seconds since the drive began): from its first act to
    the moment the part it hit was back (or the lock let go)."""

    name: str
    started: float
    ended: float | None = None


@dataclass
class FaultPlan:
    """When each fault starts (seconds into the run), and how long the outages last."""

    starts: dict[str, float]
    lock_seconds: float = 30.0
    temporal_down_seconds: float = 5.0

    @classmethod
    def spread(cls, seconds: float, lock_seconds: float, temporal_down_seconds: float) -> FaultPlan:
        """The faults one after another, a tenth of the run in and then every fifth of it, so
        that each has quiet before and after it and the run ends with at least a fifth of quiet."""
        starts = {name: seconds * (0.1 + 0.2 * n) for n, name in enumerate(FAULTS)}
        return cls(starts, lock_seconds, temporal_down_seconds)


@dataclass
class SoakSystem:
    data_dir: Path
    model_url: str
    web_port: int = field(default_factory=free_port)
    temporal_port: int = field(default_factory=free_port)
    temporal: DevServer | None = None
    web: asyncio.subprocess.Process | None = None
    worker: asyncio.subprocess.Process | None = None
    workers_started: int = 0
    submit_token: str = ""
    approve_token: str = ""
    ui_port: int = 0
    environment: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.environment = self.env()  # one task queue for every process it starts

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def database(self) -> Path:
        return self.data_dir / "exosuit.db"

    def env(self) -> dict[str, str]:
        return dict(os.environ) | {
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "EXOSUIT_DATA_DIR": str(self.data_dir),
            "EXOSUIT_DATABASE_URL": f"sqlite:///{self.database}",
            "EXOSUIT_LLM_BASE_URL": self.model_url,
            "EXOSUIT_LLM_API_KEY": "soak",
            "EXOSUIT_LLM_MODEL": "scripted-model",
            "EXOSUIT_TASK_QUEUE": f"soak-{uuid.uuid4().hex[:8]}",
            "EXOSUIT_SECRET_KEY": "a soak secret of enough length for sealing payloads",
            "EXOSUIT_LOG_FORMAT": "text",
        }

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        url = self.environment["EXOSUIT_DATABASE_URL"]
        await asyncio.to_thread(migrate, url)
        db = Database.from_url(url)
        directory = Directory(db)
        await directory.set_team_policy(TEAM, max_active_tasks=100_000, submissions_per_minute=100_000)
        await directory.add_user(f"submitter@{TEAM}", teams=[TEAM], role=Role.MEMBER)
        await directory.add_user(f"approver@{TEAM}", teams=[TEAM], role=Role.APPROVER)
        self.submit_token = await directory.create_token(f"submitter@{TEAM}")
        self.approve_token = await directory.create_token(f"approver@{TEAM}")
        await db.dispose()
        self.ui_port = free_port(besides=self.temporal_port)
        await self._start_temporal()
        await self._start_web()
        await self._start_worker()

    async def stop(self) -> None:
        for process in (self.worker, self.web):
            if process is not None:
                await stop(process)
        if self.temporal is not None:
            await self.temporal.stop()

    async def _start_temporal(self) -> None:
        self.temporal = await DevServer.start(
            self.data_dir / "temporal", port=self.temporal_port, ui_port=self.ui_port
        )

    async def _start_web(self) -> None:
        log = self.data_dir / "web.log"
        command = [str(BIN / "exosuit"), "web", "--port", str(self.web_port)]
        self.web = await spawn(command, log, self.environment)  # dies with this process, even on kill -9
        await until_ready(self.base_url, 90, f"exosuit web (see {log})")

    async def _start_worker(self) -> None:
        self.workers_started += 1
        log = self.data_dir / f"worker-{self.workers_started}.log"
        self.worker = await spawn([str(BIN / "exosuit"), "worker"], log, self.environment)
        deadline = time.perf_counter() + 90
        while "worker started" not in await asyncio.to_thread(_read, log):  # it polls now
            if self.worker.returncode is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"exosuit worker did not start; see {log}")
            await asyncio.sleep(0.05)

    # The faults. Each calls `began` at its first act and returns once the part is back.

    async def kill_worker(self, began: Callable[[], None]) -> None:
        """`kill -9` of the worker, and another started (as a supervisor would)."""
        assert self.worker is not None
        os.kill(self.worker.pid, signal.SIGKILL)
        began()
        await self.worker.wait()
        await self._start_worker()

    async def restart_web(self, began: Callable[[], None]) -> None:
        """SIGTERM to the web process (a deploy's restart), then a new one on the same port."""
        assert self.web is not None
        began()
        await stop(self.web)
        await self._start_web()

    async def kill_temporal(self, began: Callable[[], None], down: float) -> None:
        """`kill -9` of the Temporal server; after `down` seconds, the server again on its database."""
        assert self.temporal is not None
        os.kill(self.temporal.process.pid, signal.SIGKILL)
        began()
        await self.temporal.process.wait()
        await asyncio.sleep(down)  # the outage's length, not a wait for a result
        await self._start_temporal()

    async def lock_database(self, began: Callable[[], None], seconds: float) -> None:
        """Another process holds SQLite's write lock for `seconds`."""
        lock = WriteLock(self.database, seconds)
        try:
            await lock.take()
            began()
            await lock.released()
        finally:
            await lock.stop()

    async def inject(self, plan: FaultPlan, clock: Callable[[], float], faults: list[Fault]) -> None:
        """Each fault of `plan` at its time on `clock`, one after another, recorded in `faults`."""
        acts: dict[str, Callable[[Callable[[], None]], Awaitable[None]]] = {
            "worker killed": self.kill_worker,
            "web restarted": self.restart_web,
            "Temporal killed": lambda began: self.kill_temporal(began, plan.temporal_down_seconds),
            "SQLite write-locked": lambda began: self.lock_database(began, plan.lock_seconds),
        }
        for name, at in sorted(plan.starts.items(), key=lambda item: item[1]):
            await asyncio.sleep(max(0.0, at - clock()))  # the schedule, not a wait for a result
            fault = Fault(name, clock())

            def began(fault: Fault = fault) -> None:
                fault.started = clock()

            faults.append(fault)
            await acts[name](began)
            fault.ended = clock()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
