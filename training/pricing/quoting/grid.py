"""The cent grid: the allowed cent prices of an interval (every cent, or only those with an
allowed ending), indexed arithmetically so that a range of millions is never listed."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

import numpy as np

from .guardrails import GuardrailError, ending_cents, positive_number
from .interval import Interval

MAX_CANDIDATES = 20_001  # demand evaluations per search pass: the most grid points one pass scores


class Grid:
    """The allowed cent prices in [lo, hi] (every cent, or those with an allowed ending), sorted
    and indexable without listing them: the k-th is found arithmetically."""

    def __init__(self, lo: int, hi: int, endings: tuple[int, ...] | None) -> None:
        self.endings = np.arange(100) if endings is None else np.asarray(endings, dtype=np.int64)
        ends = self.endings.tolist()
        self.base = (lo // 100) * 100
        self.skip = bisect_left(ends, lo - self.base)
        upto = ((hi - self.base) // 100) * len(ends) + bisect_right(ends, (hi - self.base) % 100)
        self.size = max(0, upto - self.skip) if hi >= lo else 0

    def cents(self, index: np.ndarray | int) -> np.ndarray:
        n = np.asarray(index, dtype=np.int64) + self.skip
        m = len(self.endings)
        return self.base + 100 * (n // m) + self.endings[n % m]

    def spread(self, count: int) -> np.ndarray:
        """At most `count` indices spread evenly over the grid, both ends included."""
        if self.size <= count:
            return np.arange(self.size)
        return np.unique(np.linspace(0, self.size - 1, count).round().astype(np.int64))


def allowed_grid(box: Interval, endings: tuple[int, ...] | None) -> Grid:
    """The allowed prices of `box`; GuardrailError naming price_endings when none has one."""
    grid = Grid(box.lo, box.hi, endings)
    if grid.size == 0:
        assert endings is not None  # a non-empty interval always holds a cent
        raise GuardrailError(
            "price_endings",
            f"price_endings ({_endings_text(endings)}): no price between {box.lo / 100:.2f} "
            f"and {box.hi / 100:.2f} has an allowed ending",
        )
    return grid


def candidate_prices(
    lo: float,
    hi: float,
    endings: tuple[float, ...] | None,
    max_candidates: int = MAX_CANDIDATES,
) -> np.ndarray:
    """Cent prices in [lo, hi] (with an allowed ending when endings are given), ascending; when
    there are more than `max_candidates`, that many spread evenly, both ends included."""
    lo = positive_number("lo", lo)
    hi = positive_number("hi", hi)
    if max_candidates < 2:
        raise ValueError(f"max_candidates must be at least 2, got {max_candidates}")
    try:
        cents = None if endings is None else ending_cents(endings)
    except ValueError as error:
        raise GuardrailError("price_endings", str(error)) from None
    grid = Grid(max(1, math.ceil(round(lo * 100, 6))), math.floor(round(hi * 100, 6)), cents)
    return grid.cents(grid.spread(max_candidates)) / 100


def _endings_text(endings: tuple[int, ...]) -> str:
    return ", ".join(f".{cents:02d}" for cents in endings)
