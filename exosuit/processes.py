"""Child processes that `exosuit dev` supervises (the Temporal dev server, the embedded model),
the lock that keeps one `exosuit dev` per data dir, and what Linux's /proc tells about them."""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

PROC = Path("/proc")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_TCP_LISTEN = "0A"  # the state column of /proc/net/tcp


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, besides: int | None = None) -> int:
    """A port free now (`besides`: never that one)."""
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port != besides:
            return port


def pick_port(preferred: int) -> int:
    return preferred if port_free(preferred) else free_port()


def _open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def _die_with_parent() -> Callable[[], None] | None:
    """What a child runs between fork and exec so that the kernel kills it when we die (Linux).

    PR_SET_PDEATHSIG fires when the *thread* that forked exits: children are spawned from the
    event loop's thread, which lives as long as the process. The prctl function is looked up
    here, before the fork, so that the child only calls it.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent, kill = os.getpid(), int(signal.SIGKILL)

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, kill)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return in_child


async def spawn(
    args: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> asyncio.subprocess.Process:
    """Start a child whose output goes to a log file, and who dies with this process.

    It gets a session of its own, so a Ctrl-C reaches only the supervisor, which stops
    its children in order (after the worker); a `kill -9` of the supervisor kills it too.
    """
    log = await asyncio.to_thread(_open_log, log_path)
    try:
        return await asyncio.create_subprocess_exec(
            *args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent(),  # it only calls prctl and getppid: safe after a fork
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


class DataDirInUse(RuntimeError):
    def __init__(self, directory: Path, holder: int | None) -> None:
        self.directory, self.holder = directory, holder
        who = f"PID {holder}" if holder else "another process"
        super().__init__(f"the data dir {directory} is in use by another `exosuit dev` ({who})")


class DataDirLock:
    """One `exosuit dev` per data dir: an flock held for the life of the process.

    The kernel releases it however the process ends (even `kill -9`), so a stale lock file
    never blocks a start; the file holds the owner's PID, for the message a second start gets.
    """

    FILE = "exosuit-dev.lock"

    def __init__(self, descriptor: int) -> None:
        self._descriptor: int | None = descriptor

    @classmethod
    def acquire(cls, directory: Path) -> DataDirLock:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(directory / cls.FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
            os.close(descriptor)
            raise DataDirInUse(directory.resolve(), int(text) if text.isdigit() else None) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        return cls(descriptor)

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing the only descriptor drops the flock
            self._descriptor = None


# What /proc says (Linux). Elsewhere these find nothing, and the callers fall back.


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    argv: list[str]
    cwd: Path | None

    @property
    def command(self) -> str:
        return " ".join(self.argv)[:200]


def _pids() -> Iterator[int]:
    try:
        entries = list(PROC.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            yield int(entry.name)


def process_info(pid: int) -> ProcessInfo | None:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    try:
        cwd: Path | None = (PROC / str(pid) / "cwd").readlink()
    except OSError:
        cwd = None
    return ProcessInfo(pid, [part.decode(errors="replace") for part in raw.split(b"\0") if part], cwd)


def _fd_targets(pid: int) -> Iterator[str]:
    directory = PROC / str(pid) / "fd"
    try:
        entries = list(directory.iterdir())
    except OSError:  # gone, or not ours to read
        return
    for entry in entries:
        try:
            yield os.readlink(entry)
        except OSError:
            continue


def holders_of(path: Path, names_it: Callable[[ProcessInfo], bool]) -> list[ProcessInfo]:
    """Other processes that have `path` (or its SQLite journal) open, or whose command line names it."""
    path = path.resolve()
    opened = {str(path), f"{path}-wal", f"{path}-shm", f"{path}-journal"}
    found = []
    for pid in _pids():
        info = process_info(pid)
        if info is None or not info.argv:  # a kernel thread, or gone
            continue
        if names_it(info) or any(target in opened for target in _fd_targets(pid)):
            found.append(info)
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not PROC.exists()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def stop_pid(pid: int, grace: float = 10.0) -> None:
    """Stop a process that is not our child: SIGTERM, then SIGKILL after `grace` seconds."""
    loop = asyncio.get_running_loop()
    for sig, within in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = loop.time() + within
        while loop.time() < deadline:
            if not await asyncio.to_thread(alive, pid):
                return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"PID {pid} did not stop")


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def listening_pids(port: int, among: Sequence[int] | None = None) -> set[int] | None:
    """The processes (of `among`, default all) holding a listening socket on `port`.

    None where /proc cannot tell (not Linux); an empty set when nobody we can see listens.
    """
    if not (PROC / "net" / "tcp").exists():
        return None
    sockets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not sockets:
        return set()
    return {pid for pid in (among or list(_pids())) if sockets & set(_fd_targets(pid))}
