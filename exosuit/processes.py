"""Child processes that `exosuit dev` supervises (the Temporal dev server, the embedded model)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO


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


def _open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


async def spawn(
    args: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> asyncio.subprocess.Process:
    """Start a child whose output goes to a log file.

    It gets a session of its own, so a Ctrl-C reaches only the supervisor, which stops
    its children in order (after the worker).
    """
    log = await asyncio.to_thread(_open_log, log_path)
    try:
        return await asyncio.create_subprocess_exec(
            *args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    finally:
        log.close()


async def stop(process: asyncio.subprocess.Process, grace: float = 15.0) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()
            await process.wait()
