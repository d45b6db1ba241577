"""A fixed log-scale histogram of times to decision, so percentiles over many decisions are
read from a few counters instead of every time.

Bucket 0 holds times under a second; bucket i (1 to 94) holds [2^((i-1)/4), 2^(i/4))
seconds, each about 19% wider than the one before; the last holds 2^23.5 s (about 137 days)
and more. A percentile is read as the geometric middle of the bucket that holds its
nearest-rank value, so it is within 2^(1/8) (9.1%) of the exact figure from one second up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

BUCKETS = 96
PER_OCTAVE = 4  # buckets per doubling of time
RESOLUTION = 2 ** (1 / (2 * PER_OCTAVE)) - 1  # the most a percentile read here is off, relatively


def bucket(seconds: float) -> int:
    """The bucket a time falls in."""
    if seconds < 1:
        return 0
    return min(BUCKETS - 1, 1 + math.floor(PER_OCTAVE * math.log2(seconds)))


def middle(index: int) -> float:
    """The figure a bucket reads as: its geometric middle (0.5 s under a second; the last
    bucket, open-ended, reads as its lower bound)."""
    if index == 0:
        return 0.5
    if index == BUCKETS - 1:
        return float(2 ** ((index - 1) / PER_OCTAVE))
    return float(2 ** ((index - 0.5) / PER_OCTAVE))


def rank(count: int, share: float) -> int:
    """The nearest rank of a percentile among `count` values: ceil(share * count), at least 1."""
    tenths = round(share * 10)  # p50 and p90 are whole tenths: exact integer arithmetic
    return max(1, -(-tenths * count // 10))


def percentile(counts: Sequence[int], share: float) -> float | None:
    """The percentile read from bucket counts, or None for no times."""
    total = sum(counts)
    if total == 0:
        return None
    wanted, seen = rank(total, share), 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= wanted:
            return middle(index)
    raise AssertionError("unreachable: the ranks add up to the total")
