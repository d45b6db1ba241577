"""A TCP relay in a process of its own, between the app and a server it depends on (the
database), so that a fault test can cut that server off with `kill -9` by PID and bring it
back on the same port: connections through it are refused meanwhile, as when the server
itself is down, while the server and its data stay as they were.

    python -m tests.support.tcp_relay LISTEN_PORT TARGET_HOST TARGET_PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field

READY = b"relaying\n"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _relay(listen_port: int, target_host: str, target_port: int) -> None:
    async def link(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(link, "127.0.0.1", listen_port, reuse_address=True)
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


@dataclass
class Relay:
    """The relay process: `start` it, `kill` it (-9), `start` it again on the same port."""

    target_host: str
    target_port: int
    port: int
    process: asyncio.subprocess.Process | None = field(default=None, init=False)

    async def start(self) -> None:
        args = [str(self.port), self.target_host, str(self.target_port)]
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.tcp_relay", *args, stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        assert line == READY, line

    async def kill(self) -> None:
        """`kill -9` by PID: every connection through it drops; new ones are refused."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.kill()


if __name__ == "__main__":
    port, host, target = sys.argv[1:4]
    asyncio.run(_relay(int(port), host, int(target)))
