"""`exosuit --version`: the installed distribution's version."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version


def installed() -> str:
    try:
        return version("exosuit")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"exosuit {installed()}")
