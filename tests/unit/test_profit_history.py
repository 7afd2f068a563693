"""The profit history ring: a point per device and new reading, bounded, oldest first."""

from __future__ import annotations

import math

import numpy as np
import pytest

from console.profit_history import ProfitHistory

NAN = math.nan


def test_records_only_devices_with_a_newer_reading() -> None:
    h = ProfitHistory(["a", "b", "c"], slots=4)
    assert h.record(np.array([10.0, NAN, 10.0]), np.array([1.0, 2.0, NAN])) == 2
    # Same reading times again (the pricing runs faster than the polls): nothing new.
    assert h.record(np.array([10.0, NAN, 10.0]), np.array([1.5, 2.0, 3.0])) == 0
    assert h.record(np.array([40.0, 12.0, 10.0]), np.array([1.25, -0.5, 3.0])) == 2
    t, v = h.history("a")
    assert t.tolist() == [10.0, 40.0] and v.tolist() == [1.0, 1.25]
    t, v = h.history("b")
    assert t.tolist() == [12.0] and v.tolist() == [-0.5]
    t, v = h.history("c")  # unknown profit stays unknown: NaN, never 0
    assert t.tolist() == [10.0] and math.isnan(float(v[0]))


def test_the_ring_keeps_the_latest_slots_oldest_first() -> None:
    h = ProfitHistory(["a"], slots=3)
    for step in range(5):
        h.record(np.array([100.0 + step]), np.array([float(step)]))
    t, v = h.history("a")
    assert t.tolist() == [102.0, 103.0, 104.0]
    assert v.tolist() == [2.0, 3.0, 4.0]


def test_empty_history_and_bad_input() -> None:
    h = ProfitHistory(["a", "b"])
    t, v = h.history("b")
    assert t.size == 0 and v.size == 0
    with pytest.raises(ValueError, match="2 devices"):
        h.record(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="unique"):
        ProfitHistory(["a", "a"])
    with pytest.raises(KeyError):
        h.history("nope")
