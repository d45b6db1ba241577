"""Another process holding SQLite's write lock: it opens the database file, takes the lock
(`BEGIN EXCLUSIVE`, waiting its turn behind the app's short writes), says so on its stdout,
holds it for a while and lets go, as a backup tool or a stray `sqlite3` shell would.

    python tests/support/write_lock.py DATABASE_FILE SECONDS
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LOCKED = b"locked\n"


def _hold(path: str, seconds: float) -> None:
    connection = sqlite3.connect(path, timeout=60, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    sys.stdout.buffer.write(LOCKED)
    sys.stdout.flush()
    time.sleep(seconds)  # the fault's length: this process does nothing else
    connection.execute("ROLLBACK")
    connection.close()


@dataclass
class WriteLock:
    """The locking process, by PID: `take` returns once it holds the lock, `released` once it
    has let go (and exited)."""

    database: Path
    seconds: float
    process: asyncio.subprocess.Process | None = None

    async def take(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, str(self.database), str(self.seconds),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 90)
        assert line == LOCKED, f"the lock was not taken: {line!r}"

    async def released(self) -> None:
        assert self.process is not None
        code = await self.process.wait()
        assert code == 0, f"the locking process exited with {code}"

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


if __name__ == "__main__":
    _hold(sys.argv[1], float(sys.argv[2]))
