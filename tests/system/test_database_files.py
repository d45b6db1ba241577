"""An engine opened on a SQLite file this process already uses must leave its locks alone.

Closing any descriptor of a file drops every POSIX lock the process holds on it. Opening a
second engine on the same file (a command, a test, a pool with other settings) once
touched the file that way, and another process then wrote under our locks: "disk I/O
error", "database disk image is malformed".
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from exosuit.storage.db import Database, migrate

# Another process tries to take the write lock at once, without waiting for it.
TAKE_THE_WRITE_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    connection.execute("BEGIN IMMEDIATE")
except sqlite3.OperationalError as error:
    print(error)
else:
    print("took it")
"""


def other_process_takes_the_write_lock(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", TAKE_THE_WRITE_LOCK, str(path)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


async def test_opening_another_engine_keeps_the_locks_this_process_holds(tmp_path: Path) -> None:
    path = tmp_path / "exosuit.db"
    url = f"sqlite:///{path}"
    migrate(url)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # this process writes
    try:
        assert other_process_takes_the_write_lock(path) == "database is locked"
        second = Database.from_url(url)  # e.g. a pool with other settings, on the same file
        migrate(url)
        try:
            assert other_process_takes_the_write_lock(path) == "database is locked"
        finally:
            await second.dispose()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert other_process_takes_the_write_lock(path) == "took it"


def test_a_new_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "exosuit.db"
    migrate(f"sqlite:///{path}")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
