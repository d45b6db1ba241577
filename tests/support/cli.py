"""Running the `exosuit` command the way a person would, from the tests."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

EXOSUIT = str(Path(sys.executable).parent / "exosuit")


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Exit code and combined output of `exosuit ARGS` with `env` added to ours."""
    process = await asyncio.create_subprocess_exec(
        EXOSUIT, *args, env=os.environ | env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()
