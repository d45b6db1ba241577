"""A real `exosuit dev` process for tests: started, read until ready, its children found."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from exosuit.processes import PROC, alive, free_port, holders_of, process_info
from tests.support.cli import EXOSUIT


@dataclass
class Dev:
    """One running `exosuit dev`."""

    process: asyncio.subprocess.Process
    data_dir: Path
    base_url: str
    temporal: str  # the address it prints
    output: str
    errors: Path  # its stderr (the log)

    @property
    def db(self) -> Path:
        return self.data_dir / "temporal" / "temporal.db"

    def temporal_child(self) -> int | None:
        """The PID of its `temporal server start-dev` child, if one runs."""
        for pid in children_of(self.process.pid):
            info = process_info(pid)
            if info and "start-dev" in info.argv and alive(pid):
                return pid
        return None

    async def new_temporal_child(self, besides: int, within: float = 20.0) -> int:
        deadline = time.perf_counter() + within
        while (pid := self.temporal_child()) in (None, besides):
            assert time.perf_counter() < deadline, f"no new Temporal child: {self.log()[-2000:]}"
            await asyncio.sleep(0.02)
        assert pid is not None
        return pid

    def log(self) -> str:
        return self.errors.read_text(errors="replace")

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 40)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def children_of(parent: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
    return found


def holding(path: Path) -> list[int]:
    """The processes that have the file open."""
    return [info.pid for info in holders_of(path, lambda _: False)]


def servers_on(db: Path) -> list[int]:
    """Every running Temporal server whose command line names `db`."""
    found = []
    for entry in PROC.iterdir():
        info = process_info(int(entry.name)) if entry.name.isdigit() else None
        if info and "start-dev" in info.argv and str(db) in info.argv and alive(info.pid):
            found.append(info.pid)
    return found


def private_port(pid: int) -> int:
    info = process_info(pid)
    assert info is not None
    return int(info.argv[info.argv.index("--port") + 1])


def dev_env(data_dir: Path, model_url: str) -> dict[str, str]:
    env = os.environ | {
        "EXOSUIT_DATA_DIR": str(data_dir),
        "EXOSUIT_LLM_BASE_URL": model_url,
        "EXOSUIT_LLM_API_KEY": "test",
        "EXOSUIT_LLM_MODEL": "scripted-model",
    }
    env.pop("TEMPORAL_ADDRESS", None)
    return env


async def launch(data_dir: Path, model_url: str, name: str = "dev", **env: str) -> Dev:
    """`exosuit dev` until it says it is ready; `env`: more variables (EXOSUIT_...=...)."""
    port = free_port()
    errors = data_dir.parent / f"{data_dir.name}-{name}-{port}.err"
    with errors.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            EXOSUIT, "dev", "--port", str(port), env=dev_env(data_dir, model_url) | env,
            stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.perf_counter() + 60
    while not lines or "Ctrl-C" not in lines[-1]:
        left = deadline - time.perf_counter()
        assert left > 0, f"exosuit dev was not ready in 60 s: {lines}"
        line = (await asyncio.wait_for(process.stdout.readline(), left)).decode()
        assert line, f"exosuit dev exited early: {lines} {errors.read_text()[-3000:]}"
        lines.append(line)
    output = "".join(lines)
    found = re.search(r"Temporal: (127\.0\.0\.1:\d+)", output)
    assert found, output
    return Dev(process, data_dir, f"http://127.0.0.1:{port}", found.group(1), output, errors)
