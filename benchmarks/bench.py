"""`make bench`: Exosuit against raw Temporal on the figures that have goals, in one table.

Runs, on one Temporal dev server with `exosuit dev`'s dynamic config, an `exosuit web` and an
`exosuit worker` process (SQLite, payloads sealed) beside benchmarks/raw_temporal.py's worker,
with benchmarks/load.py's drivers, the two sides taking turns:

1. B submissions at once until each shows its first gate, twice (raw: B workflow starts
   until each has its first gate open); then the RSS of the processes, 2B tasks open;
2. the closed loop of approvals (POST the decision, long-poll `/wait?for=gate`; raw: an
   update that answers once the next gate is open) at each of the flights, S seconds a run,
   R rounds;
3. one `exosuit dev` (web app and worker, against the same Temporal) given the same two
   bursts: its RSS with 2B tasks open (with its worker child's, where it has one).

Prints one table: each figure for Exosuit and raw Temporal, their ratio, the goal and whether
it is met. With `--baseline REF` (`make bench BASELINE=REF`) it first runs the same in a
`git worktree` of REF, with this venv and these drivers (the checkout's exosuit, workflows,
activities and web are what runs: PYTHONPATH), then in this tree, back to back, and prints
before and after columns. The machine's noise hits both runs alike only on average: rerun
before trusting a difference of less than 20-30%.

    .venv/bin/python benchmarks/bench.py [--baseline REF] [--flight 1,50,200] [--seconds 10]
        [--rounds 2] [--burst 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DRIVERS = ("bench.py", "load.py", "raw_temporal.py", "queue_render.py")

Figures = dict[str, float]


@dataclass(frozen=True)
class Row:
    label: str
    key: str  # Exosuit's figure; raw's is "raw " + key when there is one
    unit: str
    goal: str
    meets: Callable[[Figures], bool | None]  # None: no verdict (a figure missing)
    ratio: bool = True  # against raw Temporal's figure (else the goal is absolute)


def _ratio(figures: Figures, key: str) -> float:
    raw = figures.get(f"raw {key}", math.nan)
    return figures.get(key, math.nan) / raw if raw else math.nan


def _rows(flights: list[int], burst: int) -> list[Row]:
    low, mid, high = min(flights), sorted(flights)[len(flights) // 2], max(flights)
    rows = [
        Row(f"approve -> next gate p50, {low} in flight", f"p50 {low}", "ms", "<= 1.5x raw",
            lambda f: _ratio(f, f"p50 {low}") <= 1.5),
        Row(f"approve -> next gate p95, {low} in flight", f"p95 {low}", "ms", "<= 1.5x raw",
            lambda f: _ratio(f, f"p95 {low}") <= 1.5),
        Row(f"decisions/s, {mid} in flight", f"dps {mid}", "/s", ">= 0.6x raw",
            lambda f: _ratio(f, f"dps {mid}") >= 0.6),
        Row(f"decisions/s, {high} in flight", f"dps {high}", "/s", ">= 0.6x raw",
            lambda f: _ratio(f, f"dps {high}") >= 0.6),
        Row(f"approve -> next gate p95, {high} in flight", f"p95 {high}", "ms", "<= 2x raw",
            lambda f: _ratio(f, f"p95 {high}") <= 2),
        Row(f"decision POST p50, {mid} in flight", f"post {mid}", "ms", "< 250 ms",
            lambda f: f[f"post {mid}"] < 250, ratio=False),
        Row(f"decision POST p50, {high} in flight", f"post {high}", "ms", "< 1000 ms",
            lambda f: f[f"post {high}"] < 1000, ratio=False),
        Row(f"{burst} submissions -> all at their first gate", "burst", "s", "<= 2x raw",
            lambda f: _ratio(f, "burst") <= 2),
        Row("submissions answered 429 / 503 or not at all in the bursts (retried)", "burst refused", "",
            "-", lambda f: None, ratio=False),
        Row(f"RSS web + worker, {2 * burst} open tasks: `exosuit dev` (raw: its worker)", "dev rss", "MB",
            "<= 300 MB", lambda f: f["dev rss"] <= 300, ratio=False),
        Row(f"RSS web + worker, {2 * burst} open tasks: `exosuit web` + `exosuit worker`", "rss", "MB",
            "-", lambda f: None, ratio=False),
        Row(f"requests without an answer or 5xx, {high} in flight", f"failed {high}", "", "0",
            lambda f: f[f"failed {high}"] == 0, ratio=False),
    ]  # fmt: skip
    return rows


async def measure(flights: list[int], seconds: float, rounds: int, burst: int) -> Figures:
    """The figures of the tree this interpreter imports from (PYTHONPATH)."""
    from load import Exosuit, Raw, _merge, _pct, _usage, engine_and_model
    from queue_render import scratch_database

    from tests.support.model_server import ScriptedModel

    env, address, models, plan = await engine_and_model()
    figures: Figures = {}
    tmp = Path(tempfile.mkdtemp(prefix="exosuit-bench-"))  # kept if the run fails: the logs
    try:
        async with scratch_database("sqlite") as url:
            exosuit = Exosuit(address, models.register(ScriptedModel(plan)), tmp, url)
            raw = Raw(env.client, address, tmp / "raw.log")
            try:
                await exosuit.start()
                await raw.start()
                times: dict[str, list[float]] = {"raw": [], "exosuit": []}
                for _ in range(2):  # the second burst finds the first's tasks open
                    times["raw"].append(await raw.burst(burst))
                    times["exosuit"].append(await exosuit.burst(burst))
                    print(f"  burst of {burst}: raw {times['raw'][-1]:.1f} s, "
                          f"exosuit {times['exosuit'][-1]:.1f} s", file=sys.stderr, flush=True)  # fmt: skip
                figures["burst refused"] = sum(exosuit.refused.values())  # retried
                figures["burst"] = sum(times["exosuit"]) / 2
                figures["raw burst"] = sum(times["raw"]) / 2
                assert raw.process is not None
                figures["rss"] = sum(_usage(p.pid)[1] for p in exosuit.processes.values())
                figures["raw rss"] = figures["raw dev rss"] = _usage(raw.process.pid)[1]
                for flight in flights:
                    ex_runs, raw_runs = [], []
                    for _ in range(rounds):
                        raw_runs.append(await raw.drive(flight, seconds))
                        ex_runs.append(await exosuit.drive(flight, seconds))
                    ex, rw = _merge(ex_runs), _merge(raw_runs)
                    both = f"{rw.line('raw', seconds * rounds)}\n    {ex.line('exosuit', seconds * rounds)}"
                    print(f"  {flight} in flight:\n    {both}", file=sys.stderr, flush=True)
                    for side, run in (("", ex), ("raw ", rw)):
                        figures[f"{side}p50 {flight}"] = _pct(run.latencies, 50)
                        figures[f"{side}p95 {flight}"] = _pct(run.latencies, 95)
                        figures[f"{side}dps {flight}"] = run.decisions / (seconds * rounds)
                    figures[f"post {flight}"] = _pct(ex.posts, 50)
                    figures[f"failed {flight}"] = sum(ex.failures().values())
                figures["rss at the end"] = sum(_usage(p.pid)[1] for p in exosuit.processes.values())
            except BaseException:
                print(f"the processes' logs are in {tmp}", file=sys.stderr)
                raise
            finally:
                await exosuit.stop()
                await raw.stop()
        figures["dev rss"] = await _dev_rss(address, models.register(ScriptedModel(plan)), tmp, burst)
        shutil.rmtree(tmp)
    finally:
        await models.stop()
        await env.shutdown()
    return figures


async def _dev_rss(address: str, model_url: str, tmp: Path, burst: int) -> float:
    """The RSS of `exosuit dev` (and of its worker child, if it has one) with 2B tasks open."""
    from load import Exosuit, tree_rss
    from queue_render import scratch_database

    async with scratch_database("sqlite") as url:
        dev = Exosuit(address, model_url, tmp, url, dev=True)
        try:
            await dev.start()
            for _ in range(2):
                await dev.burst(burst)
            return tree_rss(dev.processes["dev"].pid)
        finally:
            await dev.stop()


def _run_tree(tree: Path, args: argparse.Namespace, label: str) -> Figures:
    """This script's measure mode in `tree`, its code first on the path (and its children's)."""
    print(f"measuring {label} ({tree})", file=sys.stderr, flush=True)
    out = Path(tempfile.mkstemp(prefix="exosuit-bench-", suffix=".json")[1])
    env = dict(os.environ) | {"PYTHONPATH": str(tree)}
    command = [sys.executable, str(tree / "benchmarks" / "bench.py"), "--measure", str(out),
               "--flight", args.flight, "--seconds", str(args.seconds), "--rounds", str(args.rounds),
               "--burst", str(args.burst)]  # fmt: skip
    try:
        subprocess.run(command, cwd=tree, env=env, check=True)
        figures: Figures = json.loads(out.read_text())
        return figures
    finally:
        out.unlink(missing_ok=True)


def _baseline(ref: str, args: argparse.Namespace) -> Figures:
    """REF checked out beside this tree, with this tree's drivers, measured."""
    with tempfile.TemporaryDirectory(prefix="exosuit-baseline-") as scratch:
        tree = Path(scratch) / "tree"
        add = ["git", "worktree", "add", "--detach", "--quiet", str(tree), ref]
        subprocess.run(add, cwd=ROOT, check=True)
        try:
            for name in DRIVERS:  # the same drivers on both sides: only the system differs
                shutil.copy(HERE / name, tree / "benchmarks" / name)
            # As `make bytecode` does here: the sandbox would otherwise compile every module again.
            compile_all = [
                sys.executable,
                "-m",
                "compileall",
                "-q",
                "exosuit",
                "workflows",
                "activities",
                "web",
            ]
            subprocess.run(compile_all, cwd=tree, check=True)
            return _run_tree(tree, args, f"baseline {ref}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True)


def _show(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.1f} s"
    if unit == "/s":
        return f"{value:.1f}"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.0f}"


def _cells(row: Row, figures: Figures) -> tuple[str, str, str, str]:
    """Exosuit, raw, ratio, goal met: one run's cells of a row."""
    raw = figures.get(f"raw {row.key}", math.nan)
    ratio = _ratio(figures, row.key) if row.ratio else math.nan
    try:
        met = row.meets(figures)
    except KeyError:
        met = None
    verdict = "-" if met is None or math.isnan(figures.get(row.key, math.nan)) else ("yes" if met else "no")
    return (_show(figures.get(row.key, math.nan), row.unit), _show(raw, row.unit),
            "-" if math.isnan(ratio) else f"{ratio:.2f}x", verdict)  # fmt: skip


def table(rows: list[Row], after: Figures, before: Figures | None, ref: str | None) -> str:
    if before is None:
        lines = ["| figure | Exosuit | raw Temporal | ratio | goal | met |", "|---|---|---|---|---|---|"]
        for row in rows:
            ex, raw, ratio, met = _cells(row, after)
            lines.append(f"| {row.label} | {ex} | {raw} | {ratio} | {row.goal} | {met} |")
        lines.append(f"| RSS web + worker at the end of the run | {_show(after['rss at the end'], 'MB')} "
                     "| - | - | - | - |")  # fmt: skip
        return "\n".join(lines)
    lines = [
        f"| figure | Exosuit before ({ref}) | Exosuit after | raw Temporal (before / after) "
        "| ratio before | ratio after | goal | met before / after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        b_ex, b_raw, b_ratio, b_met = _cells(row, before)
        a_ex, a_raw, a_ratio, a_met = _cells(row, after)
        lines.append(f"| {row.label} | {b_ex} | {a_ex} | {b_raw} / {a_raw} | {b_ratio} | {a_ratio} "
                     f"| {row.goal} | {b_met} / {a_met} |")  # fmt: skip
    end = "rss at the end"
    lines.append(f"| RSS web + worker at the end of the run | {_show(before.get(end, math.nan), 'MB')} "
                 f"| {_show(after[end], 'MB')} | - | - | - | - | - |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    raw_text = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw_text)
    parser.add_argument("--baseline", help="a git ref to measure too, first (before / after columns)")
    parser.add_argument("--flight", default="1,50,200", help="tasks in flight: the lowest, middle, highest")
    parser.add_argument("--seconds", type=float, default=10, help="of each closed-loop run")
    parser.add_argument("--rounds", type=int, default=2, help="closed-loop runs per side and flight")
    parser.add_argument("--burst", type=int, default=500, help="submissions at once (twice)")
    parser.add_argument("--measure", metavar="OUT", help=argparse.SUPPRESS)  # one tree's figures, as JSON
    args = parser.parse_args()
    flights = [int(n) for n in args.flight.split(",") if n]
    if args.measure:
        figures = asyncio.run(measure(flights, args.seconds, args.rounds, args.burst))
        Path(args.measure).write_text(json.dumps(figures))
        return
    before = _baseline(args.baseline, args) if args.baseline else None
    after = _run_tree(ROOT, args, "this tree")
    rows = _rows(flights, args.burst)
    print(f"\nclosed loops {args.seconds:.0f} s x {args.rounds} rounds per side; SQLite; "
          f"one Temporal dev server; this machine, {os.cpu_count()} cores, shared")  # fmt: skip
    print(table(rows, after, before, args.baseline))
    failed = [row.label for row in rows if row.key.startswith("failed") and after.get(row.key, 0) > 0]
    if failed:  # the load test's assertion: no 5xx and no dropped request
        raise SystemExit(f"failed requests: {failed}")


if __name__ == "__main__":
    main()
