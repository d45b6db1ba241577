"""The dashboard's arithmetic: nearest-rank percentiles, verdicts, ages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exosuit.storage.dashboard import Figures, percentiles, verdict


@pytest.mark.parametrize(
    ("values", "p50", "p90"),
    [
        ([], None, None),
        ([7.0], 7.0, 7.0),
        ([1.0, 2.0], 1.0, 2.0),  # ranks ceil(1) and ceil(1.8)
        ([float(n) for n in range(1, 11)], 5.0, 9.0),
        ([float(n) for n in range(1, 12)], 6.0, 10.0),  # ranks ceil(5.5) and ceil(9.9)
        ([3.0, 1.0, 2.0], 2.0, 3.0),  # order does not matter
    ],
)
def test_percentiles_are_nearest_rank(values: list[float], p50: float | None, p90: float | None) -> None:
    found = percentiles(values)
    assert (found.count, found.p50, found.p90) == (len(values), p50, p90)


def test_a_reject_sent_back_for_revision_is_its_own_verdict() -> None:
    assert [verdict("reject", "revise"), verdict("reject", "stop"), verdict("edit", None)] == [
        "revise",
        "reject",
        "edit",
    ]


def test_open_gates_fall_into_age_bands() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    figures = Figures(
        moment, moment, open_gates=[("t", "plan", s) for s in (10, 3599, 3600, 5 * 3600, 90000)]
    )
    assert figures.open_by_age() == {"< 1 h": 2, "1-4 h": 1, "4-24 h": 1, "> 24 h": 1}
