"""Argument types the `exosuit` parsers share (kept free of heavy imports: `exosuit --version`
and the HTTP commands parse without loading the storage)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any


def finite(text: str) -> float:
    """A finite, non-negative number."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite, non-negative number")
    return value


def count(text: str) -> int:
    """A whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return value


def text_or_file(text: str) -> str:
    """The text itself, or `@FILE`: the file's contents."""
    if not text.startswith("@"):
        return text
    try:
        return Path(text[1:]).read_text(encoding="utf-8")
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {exc.strerror}") from None


def json_object(text: str) -> dict[str, Any]:
    """A JSON object, given inline or as `@FILE`."""
    raw = text_or_file(text)
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object ({...})")
    return value


def param(text: str) -> tuple[str, str]:
    """`NAME=VALUE` (VALUE may be `@FILE`)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, text_or_file(value)
