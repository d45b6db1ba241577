"""Where things are in the repository, wherever the test that asks lives."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HISTORIES = ROOT / "tests" / "histories"
