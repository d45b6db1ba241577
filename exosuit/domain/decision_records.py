"""Decisions as evaluation data: the shapes of an exported decision, and what is masked.

Pure: the storage hands over what it read; this module says how one decision reads as a raw
record or as a chat example, and masks every configured secret in every text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from exosuit.domain.text import text_diff

MASK = "[masked]"


class ExportFormat(StrEnum):
    RAW = "raw"  # one record per decision, every field
    CHAT = "chat"  # approved or edited decisions as {"messages": [...]}: the kept text answers


VERDICTS = ("approve", "edit", "reject", "revise", "answer")


def masked(value: Any, secrets: Iterable[str]) -> Any:
    """`value` (texts inside dicts and lists too) with every secret replaced by a mark."""
    ordered = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)  # longest first
    return _mask(value, ordered)


def _mask(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, Mapping):
        return {key: _mask(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(item, secrets) for item in value]
    return value


def edit_of(proposed: str | None, final: str | None, action: str) -> dict[str, str] | None:
    """A reviewer's edit: the text they left and the unified diff from what was proposed."""
    if action != "edit" or final is None:
        return None
    return {"text": final, "diff": text_diff(proposed or "", final)}


def shaped(record: Mapping[str, Any], form: ExportFormat) -> dict[str, Any] | None:
    """A raw record as the format wants it; None when a chat example has no answer to learn
    (a rejection, a question, a gate with no text)."""
    if form is ExportFormat.RAW:
        return dict(record)
    if record["verdict"] not in ("approve", "edit") or not record["final"] or not record["prompt"]:
        return None
    return {
        "messages": [
            {"role": "user", "content": record["prompt"]},
            {"role": "assistant", "content": record["final"]},
        ],
        "metadata": {
            key: record[key] for key in ("gate_id", "task_id", "team", "template", "kind", "verdict", "model")
        },
    }
