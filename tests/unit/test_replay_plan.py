"""Replay plans: the data intervals that cover a source's timeline, without gaps or overlaps."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from aisle import replay


@pytest.mark.parametrize(
    ("schedule", "first", "last", "expected"),
    [
        ("@daily", datetime(1997, 9, 20, 3, tzinfo=UTC), datetime(1997, 9, 22, 1, tzinfo=UTC), 3),
        ("@weekly", datetime(1997, 9, 20, 3, tzinfo=UTC), datetime(1998, 4, 22, tzinfo=UTC), 32),
        ("0 0 * * 4", datetime(1990, 6, 14, tzinfo=UTC), datetime(1992, 10, 1, tzinfo=UTC), 121),
    ],
)
def test_intervals_cover_the_timeline_without_gaps(schedule, first, last, expected):
    found = replay.intervals(schedule, first, last)
    assert len(found) == expected
    assert found[0].start <= first < found[0].end
    assert found[-1].start <= last < found[-1].end
    assert all(a.end == b.start for a, b in itertools.pairwise(found))
