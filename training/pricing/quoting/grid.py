"""The price grid: the allowed cent prices of an interval (every cent, the multiples of a price
step, or those with an allowed ending), indexed arithmetically so that a range of millions is
never listed."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

import numpy as np

from .guardrails import GuardrailError, Pattern, positive_number, price_pattern
from .interval import Interval

MAX_CANDIDATES = 20_001  # demand evaluations per search pass: the most grid points one pass scores
EVERY_CENT = Pattern(1, (0,))


class Grid:
    """The allowed cent prices in [lo, hi] (those of `pattern`; None: every cent), sorted and
    indexable without listing them: the k-th is found arithmetically."""

    def __init__(self, lo: int, hi: int, pattern: Pattern | None) -> None:
        pattern = pattern or EVERY_CENT
        self.period = pattern.period
        self.offsets = np.asarray(pattern.offsets, dtype=np.int64)
        ends = pattern.offsets
        self.base = (lo // self.period) * self.period
        self.skip = bisect_left(ends, lo - self.base)
        upto = ((hi - self.base) // self.period) * len(ends) + bisect_right(
            ends, (hi - self.base) % self.period
        )
        self.size = max(0, upto - self.skip) if hi >= lo else 0

    def cents(self, index: np.ndarray | int) -> np.ndarray:
        n = np.asarray(index, dtype=np.int64) + self.skip
        m = len(self.offsets)
        return self.base + self.period * (n // m) + self.offsets[n % m]

    def spread(self, count: int) -> np.ndarray:
        """At most `count` indices spread evenly over the grid, both ends included."""
        if self.size <= count:
            return np.arange(self.size)
        return np.unique(np.linspace(0, self.size - 1, count).round().astype(np.int64))


def allowed_grid(box: Interval, pattern: Pattern | None, field: str = "price_endings") -> Grid:
    """The allowed prices of `box`; GuardrailError naming `field` (the endings, or the step)
    when none is on the pattern."""
    grid = Grid(box.lo, box.hi, pattern)
    if grid.size == 0:
        assert pattern is not None  # a non-empty interval always holds a cent
        raise GuardrailError(
            field,
            f"{field}: no price between {box.lo / 100:.2f} and {box.hi / 100:.2f} is {pattern}",
        )
    return grid


def candidate_prices(
    lo: float,
    hi: float,
    endings: tuple[float, ...] | None,
    max_candidates: int = MAX_CANDIDATES,
    step: float | None = None,
) -> np.ndarray:
    """Cent prices in [lo, hi] (multiples of `step` and with an allowed ending, when given),
    ascending; when there are more than `max_candidates`, that many spread evenly, both ends
    included."""
    lo = positive_number("lo", lo)
    hi = positive_number("hi", hi)
    if max_candidates < 2:
        raise ValueError(f"max_candidates must be at least 2, got {max_candidates}")
    try:
        pattern = price_pattern(step, endings)
    except GuardrailError:
        raise
    except ValueError as error:  # a bad step or ending: name the one
        field = "price_step" if str(error).startswith("price_step") else "price_endings"
        raise GuardrailError(field, str(error)) from None
    grid = Grid(max(1, math.ceil(round(lo * 100, 6))), math.floor(round(hi * 100, 6)), pattern)
    return grid.cents(grid.spread(max_candidates)) / 100
