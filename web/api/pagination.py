"""Cursor pagination: an opaque cursor holds the last row's sort key (keyset, never OFFSET)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated

from fastapi import Query

from web.errors import Problem, ProblemType

Cursor = Annotated[
    str | None, Query(max_length=400, description="`next_cursor` of the previous page; omit for the first")
]
MAX_LIMIT = 500
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many items")]


def encode(listing: str, at: datetime, row_id: str) -> str:
    """The cursor after a row of `listing`, sorted by (at, row_id)."""
    raw = json.dumps([listing, at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(listing: str, cursor: str | None) -> tuple[datetime, str] | None:
    """The sort key a cursor of `listing` holds; 422 if it is not one this API gave."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, at, row_id = json.loads(raw)
        if name != listing or not isinstance(row_id, str):
            raise ValueError(name)
        return datetime.fromisoformat(at), row_id
    except (binascii.Error, ValueError, TypeError) as exc:
        raise Problem(
            422, "Unprocessable Content", "the cursor is not one this list gave", type=ProblemType.VALIDATION
        ) from exc
