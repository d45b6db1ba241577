"""`exosuit dev`, `exosuit web`, `exosuit worker`: the long-running processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.client import Client

from exosuit.cli.supervisor import SupervisionError, TemporalSupervisor
from exosuit.cli.temporal_server import connect, metrics_runtime
from exosuit.domain.audit import anchor_key
from exosuit.domain.autonomy import Role
from exosuit.processes import DataDirInUse, DataDirLock
from exosuit.settings import Settings
from exosuit.storage.audit_log import AuditLog
from exosuit.storage.db import Database, DatabaseDown, migrate
from exosuit.storage.identity import Directory

if TYPE_CHECKING:
    import uvicorn

    from exosuit.cli.worker_health import WorkerHealth
    from exosuit.cli.worker_process import DevWorker
    from exosuit.llm.embedded import EmbeddedModel

# Each command imports only what it runs: the web process never loads the model client, the
# activities or Temporal's worker; the worker never loads the web app, FastAPI or uvicorn
# (startup time and memory, per process).

ADMIN_EMAIL = "admin@exosuit.local"
ADMIN_TEAM = "default"
FIRST_START_FILE = "first-start.txt"
_CONNECT_MAX_DELAY = 5.0  # seconds between tries to reach Temporal, at most
_CONNECT_LOG_EVERY = 6  # tries: the first, then about every 30 s

log = logging.getLogger(__name__)

# How long a stopping web process lets running requests finish: longer than a decision waits
# for Temporal (web/gateway.py's RPC_TIMEOUT, 10 s), so that one in flight gets its answer (or
# its 503) instead of being cut off; waits are answered at once (`_Server.shutdown`). With 3 s,
# decisions in flight on a busy machine were cut off with a 500 (benchmarks/soak.py).
WEB_SHUTDOWN_GRACE = 12
# How long an idle keep-alive connection stays open: longer than clients keep theirs (httpx and
# most HTTP clients 5 s; load balancers about 60 s), so the client closes it first. At uvicorn's
# 5 s the server closed connections just as clients sent a request on them, which got no answer
# (one in a `make bench` run at 200 in flight).
KEEP_ALIVE_SECONDS = 75


def _stop_on_signals(server: uvicorn.Server, temporal: TemporalSupervisor | None = None) -> None:
    """SIGINT and SIGTERM stop the server; so does a supervised Temporal that cannot come back
    (it is restarted if it dies)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    if temporal is not None:
        temporal.supervise(on_give_up=lambda: setattr(server, "should_exit", True))


async def _connect_when_up(
    settings: Settings,
    address: str | None = None,
    *,
    metrics: bool = False,
    within: float | None = 30.0,
) -> Client:
    """Connect, waiting out a server that is still starting (`metrics`: a worker's client).

    `within` bounds the wait (`exosuit dev` has just started its own server); None waits for
    as long as it takes, as `exosuit web` and `exosuit worker` do: an orchestrator may start
    them before Temporal answers, and crashing would only add its restart back-off.
    """
    loop = asyncio.get_running_loop()
    deadline = None if within is None else loop.time() + within
    runtime = metrics_runtime(settings) if metrics else None
    delay, tries = 0.2, 0
    while True:
        try:
            return await connect(settings, address, runtime=runtime)
        except RuntimeError as error:
            tries += 1
            if deadline is not None and loop.time() > deadline:
                raise
            if tries % _CONNECT_LOG_EVERY == 1:
                target = address or settings.temporal_address
                log.warning("Temporal at %s does not answer yet (try %d), retrying: %s", target, tries, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _CONNECT_MAX_DELAY)


async def first_start(directory: Directory, data_dir: Path) -> list[str]:
    """On an empty database: an admin user and an API token; lines to print.

    The credentials go to the terminal only when there is one; otherwise (a log, a
    container) they are written once to a file only this user can read.
    """
    if await directory.user_count() > 0:
        return []
    password = secrets.token_urlsafe(12)
    await directory.add_user(ADMIN_EMAIL, teams=[ADMIN_TEAM], role=Role.ADMIN, password=password)
    token = await directory.create_token(ADMIN_EMAIL, name="first-start")
    secret = [f"  Sign in as {ADMIN_EMAIL} with password {password}", f"  API token (shown once): {token}"]
    lines = [f"  First start: created {ADMIN_EMAIL} (admin of team {ADMIN_TEAM!r})."]
    if sys.stdout.isatty():
        lines += secret
    else:
        path = data_dir / FIRST_START_FILE
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write("\n".join(line.strip() for line in secret) + "\n")
        lines.append(f"  How to sign in (not printed: this is not a terminal): {path.resolve()}")
    return [
        *lines,
        f"  You are the only approver of {ADMIN_TEAM!r}: your tasks there run solo (you decide their",
        "  gates; the audit says so). Four-eyes starts with a second approver:",
        f"  `exosuit user add EMAIL --team {ADMIN_TEAM} --role approver --password PW`.",
    ]


async def _checkpoints(settings: Settings, db: Database) -> None:
    """Sign every task's audit head every few minutes, for as long as the worker runs."""
    audit = AuditLog(db, anchor_key(settings.resolved_secret_key))
    while True:
        await asyncio.sleep(settings.audit_checkpoint_seconds)
        try:
            await audit.checkpoint()
        except DatabaseDown:  # the next one will do
            continue


def _lock_data_dir(settings: Settings) -> DataDirLock:
    """One `exosuit dev` per data dir, held until this process ends, however it ends."""
    try:
        return DataDirLock.acquire(settings.data_dir)
    except DataDirInUse as error:
        raise SystemExit(
            f"exosuit dev: {error}; stop it or set EXOSUIT_DATA_DIR to another directory"
        ) from None


async def _serving(server: uvicorn.Server) -> asyncio.Task[None]:
    """The server's task, once it accepts connections (or has already stopped)."""
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():  # noqa: ASYNC110 (uvicorn has no event)
        await asyncio.sleep(0.05)
    return serving


async def _stop_dev(
    worker: DevWorker | None,
    db: Database,
    model: EmbeddedModel | None,
    temporal: TemporalSupervisor | None,
) -> None:
    """The parts a dev system started, stopped in the reverse order."""
    if worker is not None:
        await worker.stop()
    await db.dispose()
    if model is not None:
        await model.stop()
    if temporal is not None:
        await temporal.stop()


async def _start_temporal(settings: Settings, port: int) -> TemporalSupervisor:
    """The embedded Temporal, its UI decoding payloads through this app's codec endpoint."""
    codec = f"http://{settings.host}:{port}/codec"
    try:
        return await TemporalSupervisor.start(settings.data_dir / "temporal", codec_endpoint=codec)
    except SupervisionError as error:
        raise SystemExit(f"exosuit dev: {error}") from None


def _print_where(
    settings: Settings,
    address: str,
    worker: DevWorker,
    temporal: TemporalSupervisor | None,
    model: EmbeddedModel | None,
) -> None:
    """Where each part of a dev system runs, under the ready line."""
    from exosuit.llm import embedded as embedded_model

    print(f"  Temporal: {address}" + (f", UI {settings.temporal_ui_url}" if settings.temporal_ui_url else ""))
    print(f"  Data dir: {settings.data_dir.resolve()}")
    if settings.dev_worker_process:
        print(f"  Worker: PID {worker.pid}, log {settings.data_dir.resolve() / 'worker.log'}")
    else:
        print("  Worker: in this process (EXOSUIT_DEV_WORKER_PROCESS=true: a process of its own)")
    for note in temporal.notes if temporal is not None else []:
        print(f"  Temporal: {note}")
    if model is not None:
        print(f"  Model: embedded {embedded_model.MODEL_NAME} at {model.base_url} (offline)")
    elif not settings.llm_base_url:
        print("  No model: set EXOSUIT_LLM_BASE_URL, or `make setup` to install the embedded one.")
    else:
        print(f"  Model: {settings.llm_model} at {settings.llm_base_url}")


async def run_dev(settings: Settings, port: int) -> None:
    """Temporal (embedded unless TEMPORAL_ADDRESS is set) + the web app and a worker."""
    from exosuit.llm import embedded as embedded_model

    loop = asyncio.get_running_loop()
    started = loop.time()
    os.umask(0o077)  # the embedded state (databases, logs, secrets) is readable by this user only
    lock = _lock_data_dir(settings)
    migrate(settings.resolved_database_url)
    db = Database.from_settings(settings)
    temporal: TemporalSupervisor | None = None
    model: EmbeddedModel | None = None
    worker: DevWorker | None = None
    # Settings worked out here, which the worker gets too: the port, so that links
    # in notifications name the one this app serves on (without EXOSUIT_PUBLIC_URL).
    decided: dict[str, Any] = {"port": port}
    try:
        address = settings.temporal_address
        if not address:
            temporal = await _start_temporal(settings, port)
            address = temporal.address
            decided["temporal_ui_url"] = temporal.ui_url
        if not settings.llm_base_url and embedded_model.available():
            model = await embedded_model.EmbeddedModel.start(settings.data_dir / "model.log")
            decided |= embedded_model.defaults_for(settings) | {"llm_base_url": model.base_url}
        settings = settings.model_copy(update=decided)
        client = await _connect_when_up(settings, address)
        worker = await _dev_worker(settings, address, decided, db)
        server = _web_server(settings, db, client, port, log_level="warning")
        _stop_on_signals(server, temporal)
        lines = await first_start(Directory(db), settings.data_dir)
        serving = await _serving(server)
        print(
            f"Exosuit is ready at http://{settings.host}:{port} ({loop.time() - started:.1f}s)",
            flush=True,
        )
        _print_where(settings, address, worker, temporal, model)
        print("\n".join([*lines, "  Ctrl-C stops everything."]), flush=True)
        await serving
        log.info(
            "stopping: the worker's running activities get up to %.0f s to finish",
            settings.worker_graceful_shutdown_seconds,
        )
    finally:
        await _stop_dev(worker, db, model, temporal)
        lock.release()
    if temporal is not None and temporal.failure:
        raise SystemExit(f"exosuit dev: {temporal.failure}")


async def _dev_worker(settings: Settings, address: str, decided: dict[str, Any], db: Database) -> DevWorker:
    """`exosuit dev`'s worker, started: a task of this process, or a child process."""
    from exosuit.cli.worker_process import WorkerInProcess, WorkerProcess, worker_env

    grace = settings.worker_graceful_shutdown_seconds
    worker: DevWorker
    if settings.dev_worker_process:
        env = worker_env(address, settings.data_dir, decided)
        worker = WorkerProcess(env, settings.data_dir / "worker.log", grace=grace)
    else:
        here = settings.model_copy(update={"temporal_address": address})

        async def run(stop: asyncio.Event) -> None:
            # A client of its own: the worker's metrics runtime, if EXOSUIT_WORKER_METRICS_PORT is set.
            await work(here, db, await _connect_when_up(here, address, metrics=True), stop)

        worker = WorkerInProcess(run, grace)
    await worker.start()
    return worker


def _web_server(settings: Settings, db: Database, client: Client, port: int, **config: Any) -> uvicorn.Server:
    """The web app under uvicorn, whose loggers go through ours (exosuit/observability/logs.py)."""
    import uvicorn

    from web.app import create_app
    from web.deps import Services

    class _Server(uvicorn.Server):
        """uvicorn without its own signal capture: the supervisor decides when to stop. As it
        stops it ends the app's long waits first (`on_shutdown`), so that they answer within
        its grace."""

        def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
            super().__init__(config)
            self._on_shutdown = on_shutdown

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Woken now, they answer once uvicorn has closed its listeners (before its first
            # await) and marked each busy connection to close after its answer.
            self._on_shutdown()
            await super().shutdown(sockets)

    services = Services.build(settings, db, client)
    app = create_app(services)
    return _Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=port,
            log_config=None,
            access_log=False,  # the app writes its own, as JSON with route and duration (web/access_log.py)
            proxy_headers=False,  # forwarded headers count only from EXOSUIT_TRUSTED_PROXIES (web/app.py)
            timeout_graceful_shutdown=WEB_SHUTDOWN_GRACE,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            **config,
        ),
        on_shutdown=services.watch.close,  # long-polls and event streams answer, not cut off
    )


async def run_web(settings: Settings, port: int) -> None:
    migrate(settings.resolved_database_url)
    db = Database.from_settings(settings)
    try:
        client = await _connect_when_up(settings, within=None)
        server = _web_server(settings, db, client, port)
        _stop_on_signals(server)
        await server.serve()
    finally:
        await db.dispose()


async def run_worker(settings: Settings) -> None:
    from exosuit.cli.worker_health import WorkerHealth

    health = WorkerHealth()
    probes = None
    if settings.worker_health_port:  # first, so that waiting for Temporal shows as alive, not ready
        probes = await health.serve(settings.host, settings.worker_health_port)
    migrate(settings.resolved_database_url)
    db = Database.from_settings(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        client = await _connect_when_up(settings, metrics=True, within=None)
        await work(settings, db, client, stop, health)
    finally:
        await db.dispose()
        if probes is not None:
            probes.close()


async def work(
    settings: Settings, db: Database, client: Client, stop: asyncio.Event, health: WorkerHealth | None = None
) -> None:
    """A worker on the task queue, the audit checkpoints and the reconciler, until `stop` is set:
    `exosuit worker`'s process, or `exosuit dev`'s web process beside its web app."""
    # Imported here: only a worker runs them (the reconciler pulls in the automation
    # activities and their notification libraries, which the web process never needs).
    from exosuit.cli.reconciler import reconcile_forever
    from exosuit.cli.worker import build_worker

    worker = build_worker(client, settings, db)
    if health is not None:
        health.worker = worker
    async with worker:
        checkpoints = asyncio.create_task(_checkpoints(settings, db))
        reconciling = asyncio.create_task(reconcile_forever(settings, db, client))
        # A log line like every other (worker.log is JSON from its first line); its words
        # are what a supervisor or a test waits for.
        log.info("worker started: polling %r on %s", settings.task_queue, settings.temporal_address)
        await stop.wait()
        log.info(
            "worker stopping: no new work; running activities get up to %.0f s to finish",
            settings.worker_graceful_shutdown_seconds,
        )
        checkpoints.cancel()
        reconciling.cancel()
    log.info("worker stopped")
