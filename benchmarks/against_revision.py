"""approval -> next gate, this tree against an earlier revision, interleaved in one run.

Checks the revision out into a temporary git worktree and runs `approval_latency.py` in
each tree in turn (same Python, same machine, same minute), so a change's cost on the hot
path is measured side by side instead of against a figure from another day.

    .venv/bin/python benchmarks/against_revision.py REV [--rounds 3] [--steps 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def run(tree: Path, steps: int) -> str:
    script = tree / "benchmarks" / "approval_latency.py"
    done = subprocess.run(
        [sys.executable, str(script), "--steps", str(steps)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def main(rev: str, rounds: int, steps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="exosuit-rev-") as scratch:
        old = Path(scratch) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), rev], cwd=HERE, check=True)
        try:
            for n in range(1, rounds + 1):
                for label, tree in ((f"revision {rev}", old), ("this tree", HERE)):
                    print(f"--- round {n}, {label}", flush=True)
                    print(run(tree, steps), end="", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=HERE, check=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rev", help="the earlier revision, e.g. a commit before the change")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    main(args.rev, args.rounds, args.steps)
