"""The one error the web's Temporal gateway raises of its own: a dependency did not answer.

Apart from web/errors.py (which renders it as a 503) so that a worker, whose reconciler and
team cap go through the gateway, imports neither FastAPI nor the rate limiter.
"""

from __future__ import annotations


class Unavailable(Exception):
    """A dependency (Temporal, the database) did not answer: 503, try again later."""

    def __init__(self, what: str, retry_after: int = 5) -> None:
        super().__init__(f"{what} is unavailable; try again shortly")
        self.message, self.retry_after = str(self), retry_after
