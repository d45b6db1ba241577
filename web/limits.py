"""Request limits: sign-in attempts, event streams, and admission: the requests a process
serves at once (429 with Retry-After).

Counted with the `limits` library's moving windows: in this process's memory, or, with
EXOSUIT_LIMITS_STORAGE_URL (redis://…), in storage every web replica shares, so that a
limit holds however many replicas serve. New tasks are limited apart, in the database, by
the one submission rule (`Tasks.admit`); event streams and admission are per process by
nature (what it holds open).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from enum import StrEnum

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Receive, Scope, Send

from exosuit.domain.refusals import Throttled
from exosuit.settings import Settings
from web.metrics import Metrics

logger = logging.getLogger(__name__)


def window_storage(url: str | None) -> Storage:
    """Where the windows count: the URL's storage (its asyncio flavour), else this process."""
    if not url:
        return MemoryStorage()
    storage = storage_from_string(url if url.startswith("async+") else f"async+{url}")
    assert isinstance(storage, Storage), url
    return storage


class LimitsDown(Exception):
    """The shared storage the limits count in did not answer (503: the limited call waits)."""


@contextlib.asynccontextmanager
async def _counting() -> AsyncIterator[None]:
    """Any failure of the window's storage (Redis down, cut off) is an outage, not a bug."""
    try:
        yield
    except Exception as error:
        raise LimitsDown(f"{type(error).__name__}: {error}") from error


class Limits:
    def __init__(self, settings: Settings) -> None:
        self._window = MovingWindowRateLimiter(window_storage(settings.limits_storage_url))
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
        async with _counting():
            allowed = await self._window.test(self._per_account, *account)
        if not allowed:
            raise Throttled(
                "Too many failed sign-ins for this account", await self._wait(self._per_account, account)
            )

    async def sign_in_failed(self, email: str) -> None:
        async with _counting():
            await self._window.hit(self._per_account, "login-account", email.strip().lower())

    @contextlib.contextmanager
    def stream(self, email: str) -> Iterator[None]:
        """Hold one of the person's event streams while it is open (429 past the limit)."""
        if self._streams[email] >= self._streams_per_user:
            raise Throttled(f"At most {self._streams_per_user} open event streams per person", 5)
        self._streams[email] += 1
        try:
            yield
        finally:
            self._streams[email] -= 1

    async def _spend(self, item: RateLimitItem, key: tuple[str, ...], message: str) -> None:
        async with _counting():
            allowed = await self._window.hit(item, *key)
        if not allowed:
            raise Throttled(message, await self._wait(item, key))

    async def _wait(self, item: RateLimitItem, key: tuple[str, ...]) -> int:
        async with _counting():
            stats = await self._window.get_window_stats(item, *key)
        return math.ceil(stats.reset_time - time.time())


class Pool(StrEnum):
    """What a request holds while it is served: work, or a wait that may last a minute."""

    WORK = "work"
    WAITING = "waiting"


# Probes and scrapes must answer however busy the process is; long-polls, event streams and
# MCP sessions (a tool call may be a 60 s wait) would fill the work bound while idle.
_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
_WAITING = re.compile(r"/(?:api/v1/)?tasks/[^/]+/(?:wait|events)|/mcp/?")
SHED_RETRY_SECONDS = 1
_LOG_EVERY_SECONDS = 10.0


def pool_of(path: str) -> Pool | None:
    """The bound a request counts against; None for the exempt ones."""
    if path in _EXEMPT:
        return None
    return Pool.WAITING if _WAITING.fullmatch(path) else Pool.WORK


Identify = Callable[[Scope], Awaitable[str | None]]  # the person a request is from, if any


class Admission:
    """ASGI middleware: at most `bounds[pool]` requests of each pool in flight; one more is
    answered at once (`refuse`: 429 problem+json with Retry-After) instead of queueing until
    every request times out. Waiting requests are also bounded per person (`per_person`,
    `identify` names them; an anonymous one counts by its address), so one person holding
    long-polls cannot starve everyone else. Counted in `exosuit_requests_shed_total` and
    logged at most every 10 s."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        bounds: dict[Pool, int],
        metrics: Metrics,
        refuse: Callable[[str, int], ASGIApp],
        per_person: int | None = None,
        identify: Identify | None = None,
    ) -> None:
        self.app, self.bounds, self.metrics, self.refuse = app, bounds, metrics, refuse
        # Never more than half the pool: whoever else comes always finds room.
        self.per_person = min(per_person or bounds[Pool.WAITING], max(1, bounds[Pool.WAITING] // 2))
        self.identify = identify
        self.in_flight: Counter[Pool] = Counter()
        self.waiting_by: Counter[str] = Counter()
        self._unlogged: Counter[Pool] = Counter()
        self._logged_at = -_LOG_EVERY_SECONDS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pool = pool_of(scope["path"]) if scope["type"] == "http" else None
        if pool is None:
            await self.app(scope, receive, send)
            return
        who = await self._who(scope) if pool is Pool.WAITING else None
        if who is not None and self.waiting_by[who] >= self.per_person:
            self._shed(pool, scope)
            message = (
                f"{who} already holds {self.per_person} waiting requests (long-polls, event streams, "
                "/mcp) at once, the limit per person"
            )
            await self.refuse(message, SHED_RETRY_SECONDS)(scope, receive, send)
            return
        if self.in_flight[pool] >= self.bounds[pool]:
            self._shed(pool, scope)
            message = (
                f"this server is serving {self.bounds[pool]} requests ({pool}) at once, "
                "its limit for everyone together"
            )
            await self.refuse(message, SHED_RETRY_SECONDS)(scope, receive, send)
            return
        self.in_flight[pool] += 1
        if who is not None:
            self.waiting_by[who] += 1
        gauge = self.metrics.in_flight.labels(pool.value)
        gauge.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight[pool] -= 1
            if who is not None:
                self.waiting_by[who] -= 1
                if not self.waiting_by[who]:
                    del self.waiting_by[who]
            gauge.dec()

    async def _who(self, scope: Scope) -> str:
        try:
            person = await self.identify(scope) if self.identify else None
        except Exception:  # the database busy: fairness falls back to the address; auth comes later
            logger.debug("could not tell whom a waiting request is from", exc_info=True)
            person = None
        if person:
            return person
        client = scope.get("client")
        return f"address {client[0] if client else 'unknown'}"

    def _shed(self, pool: Pool, scope: Scope) -> None:
        self.metrics.shed.labels(pool.value).inc()
        self._unlogged[pool] += 1
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY_SECONDS:
            self._logged_at = now
            logger.warning(
                "overloaded: refused %s %s with 429, %d %s requests in flight (the bound); "
                "%d refused since the last such line",
                scope["method"],
                scope["path"],
                self.in_flight[pool],
                pool.value,
                self._unlogged[pool],
            )
            self._unlogged.clear()
