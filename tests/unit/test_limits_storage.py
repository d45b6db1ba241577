"""Where the rate limits count: each process's memory, or shared storage that may be down."""

from __future__ import annotations

import pytest
from limits.aio.storage import MemoryStorage, RedisStorage

from exosuit.processes import free_port
from exosuit.settings import Settings
from web.limits import Limits, LimitsDown, window_storage


def test_without_a_storage_url_each_process_counts_in_memory() -> None:
    assert isinstance(window_storage(None), MemoryStorage)


def test_a_redis_url_counts_in_redis_for_every_replica() -> None:
    assert isinstance(window_storage("redis://127.0.0.1:6379"), RedisStorage)
    assert isinstance(window_storage("async+redis://127.0.0.1:6379"), RedisStorage)


async def test_shared_storage_that_does_not_answer_is_an_outage_not_a_crash() -> None:
    closed = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    limits = Limits(Settings(limits_storage_url=closed))
    with pytest.raises(LimitsDown):
        await limits.submission("someone@example.com", per_minute=3)
