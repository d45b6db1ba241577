"""The embedded Temporal server of `exosuit dev`, supervised.

- Its port is ours for as long as `exosuit dev` runs: a `PortKeeper` listens on the advertised
  address (7233 when free) and relays each connection to the `temporal` child, which listens on
  a private port. While the child is down nothing can take the advertised port, and nothing
  that connects there reaches anything but the child we started and checked.
- The child is checked before any connection reaches it: the kernel must say that the child's
  PID holds the listening socket, and it must answer with the cluster id of our database.
- A child that is alive but does not answer (hung, or stopped with SIGSTOP) is found by a health
  probe: its cluster info asked every `PROBE_SECONDS`, each within `PROBE_TIMEOUT`; after
  `PROBE_MISSES` unanswered probes in a row it is killed (`kill -9`) and restarted as below.
- If the child exits on its own it is restarted on the same database, at once and then with
  back-off; after `MAX_RESTARTS` within `RESTART_WINDOW` seconds `exosuit dev` stops with the
  reason. Connections made meanwhile wait, so the worker and the web app carry on after it.
- The child dies with `exosuit dev`, even on `kill -9` (exosuit/processes.py); a Temporal server
  that an older version left running on the database is stopped before ours starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from temporalio.api.workflowservice.v1 import GetClusterInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError

from exosuit.cli.temporal_server import DB_FILE, DevServer
from exosuit.processes import free_port, holders_of, pick_port, port_free, stop_pid

log = logging.getLogger(__name__)

RESTART_BACKOFF = (0.0, 1.0, 2.0, 4.0, 8.0)  # seconds before the 1st, 2nd... restart in a window
MAX_RESTARTS = len(RESTART_BACKOFF)
RESTART_WINDOW = 300.0  # seconds
HOLD_SECONDS = 60.0  # how long a new connection waits for the server to be back
STARTUP_SECONDS = 30.0
PROBE_SECONDS = 5.0  # how often a running server is asked for its cluster info
PROBE_TIMEOUT = 5.0  # how long one probe waits for the answer
PROBE_MISSES = 3  # unanswered probes in a row that make a live server hung


class SupervisionError(RuntimeError):
    """The embedded Temporal server cannot be (or stay) the one `exosuit dev` started."""


class PortKeeper:
    """Holds the advertised Temporal address and relays connections to the checked child."""

    def __init__(self) -> None:
        self._backend: tuple[str, int] | None = None
        self._ready = asyncio.Event()
        self._links: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.address = ""

    @classmethod
    async def open(cls, host: str, port: int) -> PortKeeper:
        keeper = cls()
        keeper._server = await asyncio.start_server(keeper._relay, host, port)
        keeper.address = f"{host}:{port}"
        return keeper

    def relay_to(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self._backend = (host, int(port))
        self._ready.set()

    @property
    def relaying(self) -> bool:
        """Connections go to a checked server now (not held for a restart)."""
        return self._ready.is_set() and self._backend is not None

    def hold(self) -> None:
        """New connections wait; the ones relayed to the old server are cut."""
        self._ready.clear()
        self._backend = None
        for writer in list(self._links):
            writer.transport.abort()

    async def close(self) -> None:
        self.hold()
        self._ready.set()  # the waiting connections wake, find no server, and close
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            await asyncio.wait_for(self._ready.wait(), HOLD_SECONDS)
            if self._backend is None:
                return
            up_reader, upstream = await asyncio.open_connection(*self._backend)
            self._links.update((writer, upstream))
            pipes = {
                asyncio.create_task(_pipe(reader, upstream)),
                asyncio.create_task(_pipe(up_reader, writer)),
            }
            _, pending = await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            for pipe in pending:
                pipe.cancel()
        except (OSError, TimeoutError):
            pass
        finally:
            for end in (writer, upstream):
                if end is not None:
                    end.transport.abort()
                    self._links.discard(end)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


async def cluster_id(address: str, within: float = STARTUP_SECONDS) -> str:
    """The cluster id of the Temporal server at `address`: the same database gives the same one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            client = await Client.connect(address)
            info = await client.workflow_service.get_cluster_info(
                GetClusterInfoRequest(), timeout=timedelta(seconds=5)
            )
            return info.cluster_id
        except (RuntimeError, RPCError):  # not healthy yet
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def clear_orphans(db: Path) -> list[str]:
    """Stop Temporal servers an earlier `exosuit dev` left on `db`; refuse if anything else holds it.

    Only called under the data dir's lock: no running `exosuit dev` owns a server on this db.
    """
    notes = []
    for holder in await asyncio.to_thread(holders_of, db, lambda p: DevServer.serves(p, db)):
        if not DevServer.serves(holder, db):
            raise SupervisionError(f"{db} is open in PID {holder.pid} ({holder.command}); stop it first")
        try:
            await stop_pid(holder.pid)
        except (OSError, RuntimeError) as error:
            raise SupervisionError(f"a Temporal server (PID {holder.pid}) runs on {db}: {error}") from error
        notes.append(f"stopped a Temporal server (PID {holder.pid}) left running on {db} by an earlier run")
        log.warning("stopped an orphaned Temporal server (PID %d) on %s: %s", holder.pid, db, holder.command)
    return notes


class TemporalSupervisor:
    """The embedded Temporal server behind a kept port: checked, restarted, never a stranger."""

    def __init__(self, data_dir: Path, codec_endpoint: str | None, keeper: PortKeeper) -> None:
        """Use `start`; `data_dir` is absolute (the Temporal part of the data dir)."""
        self.data_dir, self.codec_endpoint, self.keeper = data_dir, codec_endpoint, keeper
        self.server: DevServer | None = None
        self.cluster_id = ""
        self.notes: list[str] = []  # what the start found and did, for the banner
        self.failure: str | None = None  # why supervision gave up
        self._ui_port = 0
        self._restarts: deque[float] = deque()
        self._watching: asyncio.Task[None] | None = None
        self._probing: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def address(self) -> str:
        return self.keeper.address

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self._ui_port}"

    @classmethod
    async def start(cls, data_dir: Path, codec_endpoint: str | None = None) -> TemporalSupervisor:
        data_dir = await asyncio.to_thread(data_dir.resolve)
        notes = await clear_orphans(data_dir / DB_FILE)
        try:
            keeper = await PortKeeper.open("127.0.0.1", pick_port(7233))
        except OSError:  # taken since it looked free
            keeper = await PortKeeper.open("127.0.0.1", free_port())
        supervisor = cls(data_dir, codec_endpoint, keeper)
        supervisor.notes = notes
        supervisor._ui_port = pick_port(8233)
        if str(supervisor._ui_port) == keeper.address.rsplit(":", 1)[1]:
            supervisor._ui_port = free_port(besides=supervisor._ui_port)
        try:
            server = await supervisor._first_server()
            supervisor.cluster_id = await cluster_id(server.address)
        except (RuntimeError, RPCError) as error:
            await supervisor.stop()
            raise SupervisionError(f"the embedded Temporal server did not start: {error}") from error
        except BaseException:
            await supervisor.stop()
            raise
        keeper.relay_to(server.address)
        return supervisor

    async def _first_server(self, tries: int = 3) -> DevServer:
        """A free port can be taken before the child binds it (by an outgoing connection): try another."""
        for _ in range(tries - 1):
            try:
                return await self._start_server(previous_port=None)
            except RuntimeError as error:
                log.warning("the embedded Temporal server did not start (%s); trying again", error)
        return await self._start_server(previous_port=None)

    async def _start_server(self, previous_port: int | None) -> DevServer:
        if not port_free(self._ui_port):  # taken while the server was down: the UI moves, work goes on
            moved = free_port(besides=self._ui_port)
            log.warning("the Temporal UI port %d is taken; the UI moves to port %d", self._ui_port, moved)
            self._ui_port = moved
        # A fresh private port each time: whatever took the last one is never talked to.
        port = free_port(besides=previous_port)
        self.server = await DevServer.start(
            self.data_dir, self.codec_endpoint, port=port, ui_port=self._ui_port
        )
        return self.server

    def supervise(self, on_give_up: Callable[[], None]) -> None:
        """Watch the server from now on; `on_give_up` runs (with `failure` set) if it cannot come back."""

        async def watch() -> None:
            try:
                await self._watch()
            except Exception as error:  # whatever it is, `exosuit dev` must not limp on
                self.failure = str(error) if isinstance(error, SupervisionError) else repr(error)
                log.error("giving up on the embedded Temporal server: %s", self.failure)
                await self.keeper.close()  # refuse at once rather than hold connections for nothing
                on_give_up()

        self._watching = asyncio.create_task(watch())
        self._probing = asyncio.create_task(self._probe())

    async def _probe(self) -> None:
        """Kill a server that is alive but answers nothing: `_watch` then restarts it."""
        misses, client, address = 0, None, ""
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            server = self.server
            if server is None or server.process.returncode is not None or not self.keeper.relaying:
                misses = 0  # down or restarting: `_watch` has it (a new server is checked there)
                continue
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    if client is None or address != server.address:
                        client, address = await Client.connect(server.address), server.address
                    await client.workflow_service.get_cluster_info(
                        GetClusterInfoRequest(), timeout=timedelta(seconds=PROBE_TIMEOUT)
                    )
                misses = 0
            except (RuntimeError, RPCError, TimeoutError, OSError) as error:
                misses += 1
                log.warning("the embedded Temporal server did not answer a health probe (%d of %d): %r",
                            misses, PROBE_MISSES, error)  # fmt: skip
                if misses >= PROBE_MISSES and server.process.returncode is None:
                    log.error("the embedded Temporal server (PID %d) is hung; killing it to restart it",
                              server.process.pid)  # fmt: skip
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(server.process.pid, signal.SIGKILL)  # works on a stopped process too
                    misses = 0

    async def _watch(self) -> None:
        while True:
            assert self.server is not None
            code = await self.server.process.wait()
            if self._stopping:
                return
            self.keeper.hold()
            died = asyncio.get_running_loop().time()
            log.error(
                "the embedded Temporal server (PID %d) exited with code %s; restarting it on %s",
                self.server.process.pid,
                code,
                self.data_dir / DB_FILE,
            )
            server = await self._restart(self.server.port, f"it exited with code {code}")
            self.keeper.relay_to(server.address)
            log.warning(
                "the embedded Temporal server is back (PID %d, cluster %s), %.1f s after it exited",
                server.process.pid,
                self.cluster_id,
                asyncio.get_running_loop().time() - died,
            )

    async def _restart(self, previous_port: int, reason: str) -> DevServer:
        loop = asyncio.get_running_loop()
        while True:
            while self._restarts and self._restarts[0] < loop.time() - RESTART_WINDOW:
                self._restarts.popleft()
            if len(self._restarts) >= MAX_RESTARTS:
                raise SupervisionError(
                    f"the embedded Temporal server keeps stopping ({MAX_RESTARTS} restarts in "
                    f"{RESTART_WINDOW:.0f} s; last, {reason}); see {self.data_dir / 'temporal.log'}"
                )
            await asyncio.sleep(RESTART_BACKOFF[len(self._restarts)])
            self._restarts.append(loop.time())
            try:
                server = await self._start_server(previous_port)
            except RuntimeError as error:
                reason = str(error)
                continue
            try:
                found = await cluster_id(server.address)
            except (RuntimeError, RPCError) as error:
                await server.stop()
                reason = f"it did not answer: {error}"
                continue
            if found != self.cluster_id:
                await server.stop()
                raise SupervisionError(
                    f"the restarted Temporal server has cluster id {found}, not {self.cluster_id}: "
                    f"{self.data_dir / DB_FILE} is not the database it started with; stopping"
                )
            return server

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._probing, self._watching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.keeper.close()
        if self.server is not None:
            await self.server.stop()
