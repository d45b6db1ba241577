"""Request limits: sign-in attempts, submissions, event streams (429 with Retry-After).

Counted in this process's memory with the `limits` library's moving windows; with several
web processes behind a balancer each counts its own share (the concurrent-task limit is
counted in the database, so it holds across processes).
"""

from __future__ import annotations

import math
import time
from collections import Counter

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from exosuit.settings import Settings


class Throttled(Exception):
    """Too many requests; `retry_after` seconds until one is allowed again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message, self.retry_after = message, max(1, retry_after)


class Limits:
    def __init__(self, settings: Settings) -> None:
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self._per_account = parse(settings.login_limit_per_account)
        self._per_address = parse(settings.login_limit_per_address)
        self._streams_per_user = settings.event_streams_per_user
        self._streams: Counter[str] = Counter()

    async def sign_in_attempt(self, address: str, email: str) -> None:
        """Count an attempt from an address; refuse an account locked by failed attempts."""
        await self._spend(
            self._per_address, ("login-address", address), "Too many sign-in attempts from here"
        )
        account = ("login-account", email.strip().lower())
        if not await self._window.test(self._per_account, *account):
            raise Throttled(
                "Too many failed sign-ins for this account", await self._wait(self._per_account, account)
            )

    async def sign_in_failed(self, email: str) -> None:
        await self._window.hit(self._per_account, "login-account", email.strip().lower())

    async def submission(self, email: str, per_minute: int) -> None:
        """One new task by this person, within their team's rate."""
        await self._spend(RateLimitItemPerMinute(per_minute), ("submit", email), "Too many new tasks")

    def open_stream(self, email: str) -> None:
        """Take one of the person's event streams (close_stream gives it back)."""
        if self._streams[email] >= self._streams_per_user:
            raise Throttled(f"At most {self._streams_per_user} open event streams per person", 5)
        self._streams[email] += 1

    def close_stream(self, email: str) -> None:
        self._streams[email] -= 1

    async def _spend(self, item: RateLimitItem, key: tuple[str, ...], message: str) -> None:
        if not await self._window.hit(item, *key):
            raise Throttled(message, await self._wait(item, key))

    async def _wait(self, item: RateLimitItem, key: tuple[str, ...]) -> int:
        stats = await self._window.get_window_stats(item, *key)
        return math.ceil(stats.reset_time - time.time())
