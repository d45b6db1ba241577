"""The time-to-decision histogram: which bucket a time lands in, and how close a percentile
read from the buckets is to the exact one."""

from __future__ import annotations

import random

import pytest

from exosuit.domain.time_histogram import BUCKETS, RESOLUTION, bucket, middle, percentile, rank


@pytest.mark.parametrize(
    ("seconds", "index"),
    [
        (0.0, 0),
        (0.99, 0),
        (1.0, 1),  # [1, 2^0.25)
        (1.18, 1),
        (1.19, 2),
        (2.0, 5),  # a doubling is four buckets
        (3600.0, 48),
        (2**23.4, 94),
        (2**23.5, 95),  # about 137 days: the last bucket holds everything longer
        (1e12, 95),
    ],
)
def test_a_time_lands_in_its_log_scale_bucket(seconds: float, index: int) -> None:
    assert bucket(seconds) == index


@pytest.mark.parametrize(
    ("count", "share", "expected"), [(1, 0.5, 1), (2, 0.5, 1), (3, 0.5, 2), (10, 0.9, 9), (11, 0.9, 10)]
)
def test_the_rank_is_the_nearest_rank(count: int, share: float, expected: int) -> None:
    assert rank(count, share) == expected


def test_no_times_have_no_percentile() -> None:
    assert percentile([0] * BUCKETS, 0.5) is None


def test_a_percentile_read_from_buckets_is_within_the_stated_resolution() -> None:
    rng = random.Random(7)
    for _ in range(200):
        times = sorted(rng.lognormvariate(5, 2) + 1 for _ in range(rng.randint(1, 300)))
        counts = [0] * BUCKETS
        for t in times:
            counts[bucket(t)] += 1
        for share in (0.5, 0.9):
            exact = times[rank(len(times), share) - 1]
            read = percentile(counts, share)
            assert read is not None
            assert abs(read - exact) / exact <= RESOLUTION + 1e-12


def test_a_bucket_reads_as_its_geometric_middle() -> None:
    assert middle(1) == pytest.approx(2**0.125)
    assert middle(0) == 0.5
    assert pytest.approx(0.0905, abs=1e-4) == RESOLUTION
