"""Where the rate limits count: each process's memory, or storage every replica shares."""

from __future__ import annotations

from limits.aio.storage import MemoryStorage, RedisStorage

from web.limits import window_storage


def test_without_a_storage_url_each_process_counts_in_memory() -> None:
    assert isinstance(window_storage(None), MemoryStorage)


def test_a_redis_url_counts_in_redis_for_every_replica() -> None:
    assert isinstance(window_storage("redis://127.0.0.1:6379"), RedisStorage)
    assert isinstance(window_storage("async+redis://127.0.0.1:6379"), RedisStorage)
