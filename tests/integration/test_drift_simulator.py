"""Drift detection on the shop simulator, in little: 20 clean and 20 shifted daily windows for
each knob on a seed that tuned nothing (benchmarks/drift.py has the full table, 100 + 100).

Tolerance: on validation seed 101 and test seed 202 (100 windows each) every knob was detected
in 99-100 % of shifted windows with 1-3 % false alarms. With 20 windows, 18 or more detected
(p = 0.99: P(fewer) < 0.002) and 2 or fewer false alarms (p = 0.03: P(more) < 0.03) hold
unless the check itself got worse.
"""

from __future__ import annotations

import pytest

from core.settings import DriftPolicy
from monitoring.simulation import KNOBS, detection_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WINDOWS = 20


@pytest.fixture(scope="module")
def table():
    return detection_table([303], WINDOWS, DriftPolicy())


@pytest.mark.parametrize("knob", KNOBS)
def test_each_knob_is_detected_without_false_alarms(table, knob):
    score = table[knob]
    assert score.shifted == WINDOWS and score.clean == WINDOWS
    assert score.detected >= 18, score.to_dict()
    assert score.false_alarms <= 2, score.to_dict()
    assert score.delays == [0]  # abrupt shifts are flagged on their first day


def test_the_columns_that_fire_are_the_ones_the_knob_moves(table):
    assert "category" in table["taste_shift"].columns
    assert "price_ratio" in table["price_shock"].columns
    assert "volume" in table["seasonality"].columns
    assert "item_known" in table["new_items"].columns
