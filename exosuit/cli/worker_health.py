"""A worker's health check: a tiny HTTP endpoint on EXOSUIT_WORKER_HEALTH_PORT.

A worker serves no HTTP of its own, so orchestrators (compose, Kubernetes) probe this:
`/readyz` answers 200 only while the Temporal worker runs (polls its task queue), and
503 while it is still waiting for Temporal or once it has stopped; `/healthz` answers
200 while the process is alive and its worker has not stopped, so a worker that waits
out a Temporal outage is not restarted for it. When the process ends, both are gone.
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio.worker import Worker

PATHS = ("/healthz", "/readyz")
_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
# What a client that vanished, stalled or sent no HTTP raises: it gets no answer.
_BAD_REQUEST = (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)


class WorkerHealth:
    """What the probes see of one worker process."""

    def __init__(self) -> None:
        self.worker: Worker | None = None

    def answer(self, path: str) -> tuple[int, str]:
        """Status and a one-word reason for a probe of `path`."""
        worker = self.worker
        stopped = worker is not None and worker.is_shutdown
        if path == "/healthz":
            return (503, "stopped") if stopped else (200, "alive")
        if path == "/readyz":
            if worker is not None and worker.is_running:
                return 200, "polling"
            return 503, "stopped" if stopped else "connecting"
        return 404, "not found"

    async def serve(self, host: str, port: int) -> asyncio.Server:
        """Start answering probes on host:port (HTTP/1.0-style: one request a connection)."""
        return await asyncio.start_server(self._handle, host, port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(*_BAD_REQUEST):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            status, text = self.answer(path.split("?", 1)[0]) if method in ("GET", "HEAD") else (404, "")
            body = f"{text}\n".encode()
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + (b"" if method == "HEAD" else body)
            )
            await writer.drain()
        writer.close()
