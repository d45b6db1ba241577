"""Steady under load and faults at once: decisions in flight for minutes on real processes
while each fault lands once, then the checks.

The system is `exosuit web` + `exosuit worker` on a Temporal dev server of their own (persisted
to a file), SQLite, and the scripted model server (tests/support/soak.py). The driver keeps
`--in-flight` supervised tasks moving: it approves each open gate (with an Idempotency-Key,
retried with the same key after a 503's or 429's Retry-After) and long-polls for the next one
(tests/support/soak_driver.py). Meanwhile, a tenth of the run in and then every fifth of it:
the worker killed with kill -9 (another started), the web process restarted (SIGTERM, a new
one on its port), the Temporal server killed with kill -9 (started again on its database after
`--temporal-down` s), and another process holding SQLite's write lock for `--lock-seconds`.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--in-flight 50] [--lock-seconds 30]
        [--temporal-down 5] [--stuck-seconds 120] [--keep]

Prints the timeline per 10 s (decisions/s, approve -> next gate p50/p99, errors by class, each
fault's start and end), then the checks: no decision lost or applied twice (against every
task's audit), every audit chain verifies, no task stuck, no 5xx but 503 (retried), no
unanswered request, and the p99 of approve -> next gate back within 2x of the minute before
each fault within a minute of its end. Exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.model_server import ModelServer
from tests.support.soak import FaultPlan
from tests.support.soak_driver import recoveries, soak, timeline


async def run(
    minutes: float,
    in_flight: int,
    lock_seconds: float,
    temporal_down: float,
    stuck_seconds: float,
    keep: bool,
) -> bool:
    """One soak; True when every check holds."""
    seconds = minutes * 60
    plan = FaultPlan.spread(seconds, lock_seconds, temporal_down)
    print(f"soak: {in_flight} decisions in flight for {seconds:.0f} s; faults at "
          + ", ".join(f"{at:.0f} s {name}" for name, at in plan.starts.items()), flush=True)  # fmt: skip
    data_dir = Path(tempfile.mkdtemp(prefix="exosuit-soak-"))
    models = ModelServer()
    await models.start()
    try:
        record, checks = await soak(
            models, data_dir, in_flight=in_flight, seconds=seconds, plan=plan, stuck_seconds=stuck_seconds
        )
    finally:
        await models.stop()
    checks += recoveries(record)
    print("\n".join(["", *timeline(record), ""]))
    decided = len(record.decided_at)
    print(f"{decided} decisions accepted in {record.seconds:.0f} s ({decided / record.seconds:.1f}/s), "
          f"{len(record.tasks)} tasks, {record.completed} completed")  # fmt: skip
    print("faults: " + "; ".join(f"{f.name} {f.started:.0f}-{f.ended or 0:.0f} s" for f in record.faults))
    if record.notes:
        print("what the unusual answers said (the first few):\n  " + "\n  ".join(record.notes))
    print("\n".join(check.line() for check in checks))
    passed = all(check.ok for check in checks)
    if passed and not keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        print(f"the processes' logs and databases are in {data_dir}")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to drive (default 10)")
    parser.add_argument("--in-flight", type=int, default=50, help="tasks decided at once (default 50)")
    parser.add_argument(
        "--lock-seconds", type=float, default=30.0, help="SQLite write lock held (default 30)"
    )
    parser.add_argument(
        "--temporal-down", type=float, default=5.0, help="seconds Temporal stays dead (default 5)"
    )
    parser.add_argument(
        "--stuck-seconds", type=float, default=120.0,
        help="a task not at its next gate this long after the faults is stuck (default 120)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases")
    args = parser.parse_args(argv)
    passed = asyncio.run(
        run(
            args.minutes, args.in_flight, args.lock_seconds, args.temporal_down, args.stuck_seconds, args.keep
        )
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
