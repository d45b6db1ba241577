"""Steady under load and faults at once, briefly: benchmarks/soak.py's driver and checks at 10
decisions in flight for a minute, while the worker is killed (kill -9), the web process
restarted, the Temporal server killed (kill -9) and started again, and SQLite's write lock held
by another process, each once. No timing is asserted here but "recovered": the p99 figures
belong to the benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.model_server import ModelServer
from tests.support.soak import FaultPlan
from tests.support.soak_driver import soak, timeline

SECONDS = 60.0


# About two minutes alone: the drive, the processes' starts and restarts, the audit reads.
@pytest.mark.timeout(300)
async def test_decisions_in_flight_survive_each_fault_once_with_none_lost_or_doubled(
    model_server: ModelServer, tmp_path: Path
) -> None:
    plan = FaultPlan.spread(SECONDS, lock_seconds=5.0, temporal_down_seconds=2.0)
    record, checks = await soak(
        model_server, tmp_path / "soak", in_flight=10, seconds=SECONDS, plan=plan, stuck_seconds=60.0
    )
    print("\n" + "\n".join([*timeline(record), *record.notes, *(check.line() for check in checks)]))
    assert [f.name for f in record.faults] == list(plan.starts)
    assert all(f.ended is not None for f in record.faults)
    assert record.decided_at, "no decision was accepted"
    failed = [check.line() for check in checks if not check.ok]
    assert not failed, failed
