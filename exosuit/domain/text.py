"""Text helpers of the domain: the diff an edit shows, and a text's fingerprint."""

from __future__ import annotations

import difflib
import hashlib


def text_diff(before: str, after: str) -> str:
    """A unified diff of two texts, as the history shows an edit."""
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), fromfile="before", tofile="after", lineterm=""
    )
    return "\n".join(lines)


def fingerprint(text: str) -> str:
    """SHA-256 of a text, in hex."""
    return hashlib.sha256(text.encode()).hexdigest()
