"""The accrual integral: left Riemann over reading times, capped gaps, local midnight."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo

import numpy as np
import pytest

from console.accrual import Integrator, day_bounds

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
UTC = dt.UTC
DAY = 86_400.0


def t_utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_day_bounds_follow_the_zone_and_dst() -> None:
    day, start, end = day_bounds(t_utc(2026, 7, 6, 3, 0), CHICAGO)  # 22:00 on the 5th in CDT
    assert day == "2026-07-05"
    assert start == t_utc(2026, 7, 5, 5, 0) and end == t_utc(2026, 7, 6, 5, 0)
    # DST ends on 2026-11-01 in Chicago: that day has 25 hours; it starts on 2026-03-08 (23 h).
    _, start, end = day_bounds(t_utc(2026, 11, 1, 12, 0), CHICAGO)
    assert end - start == 25 * 3600
    _, start, end = day_bounds(t_utc(2026, 3, 8, 12, 0), CHICAGO)
    assert end - start == 23 * 3600
    assert day_bounds(t_utc(2026, 7, 6, 0, 0), UTC)[0] == "2026-07-06"


def test_left_riemann_over_actual_reading_times() -> None:
    t0 = t_utc(2026, 7, 6, 12, 0)
    acc = Integrator(["a"], [75.0], UTC, t0)
    # First reading: rate 86.4 USD/day = 0.001 USD/s; nothing to credit yet.
    w = acc.step(arr(t0), arr(86.4), arr(43.2), t0)
    assert acc.revenue_usd[0] == 0.0 and w.cursors == [("a", t0, 86.4, 43.2)]
    # Next reading 30 s later at a new rate: the 30 s are credited at the OLD rate.
    acc.step(arr(t0 + 30), arr(172.8), arr(43.2), t0 + 30)
    assert acc.revenue_usd[0] == pytest.approx(0.03)
    assert acc.power_cost_usd[0] == pytest.approx(0.015)
    # 20 s later: credited at the rate of the reading at t0+30 (0.002 USD/s).
    acc.step(arr(t0 + 50), arr(0.0), arr(0.0), t0 + 50)
    assert acc.revenue_usd[0] == pytest.approx(0.03 + 0.04)
    assert acc.covered_s[0] == 50
    # The same reading seen again credits nothing.
    w = acc.step(arr(t0 + 50), arr(0.0), arr(0.0), t0 + 51)
    assert not w and acc.revenue_usd[0] == pytest.approx(0.07)


def test_gaps_are_capped_so_downtime_invents_nothing() -> None:
    t0 = t_utc(2026, 7, 6, 12, 0)
    acc = Integrator(["a", "b"], [75.0, 12.5], UTC, t0)
    acc.step(arr(t0, t0), arr(86.4, 86.4), arr(0, 0), t0)
    # One hour without readings (console down, or device unreachable), then a reading.
    later = t0 + 3600
    acc.step(arr(later, later), arr(86.4, 86.4), arr(0, 0), later)
    assert acc.revenue_usd.tolist() == pytest.approx([0.075, 0.0125])
    assert acc.covered_s.tolist() == [75.0, 12.5]


def test_unknown_rate_credits_nothing_and_a_rewound_clock_restarts_the_cursor() -> None:
    t0 = t_utc(2026, 7, 6, 12, 0)
    acc = Integrator(["a"], [75.0], UTC, t0)
    acc.step(arr(t0), arr(math.nan), arr(math.nan), t0)
    w = acc.step(arr(t0 + 30), arr(86.4), arr(8.64), t0 + 30)
    assert acc.revenue_usd[0] == 0.0 and acc.covered_s[0] == 0.0
    assert w.cursors == [("a", t0 + 30, 86.4, 8.64)]
    acc.step(arr(t0 - 600), arr(86.4), arr(8.64), t0 + 31)  # clock stepped back 10 min
    assert acc.revenue_usd[0] == 0.0 and acc.last_t[0] == t0 - 600
    acc.step(arr(t0 - 570), arr(86.4), arr(8.64), t0 + 61)
    assert acc.revenue_usd[0] == pytest.approx(0.03)


def test_midnight_splits_the_interval_and_starts_a_new_day() -> None:
    # Chicago midnight of 2026-07-06 is 05:00 UTC.
    midnight = t_utc(2026, 7, 7, 5, 0)
    acc = Integrator(["a"], [75.0], CHICAGO, midnight - 100)
    assert acc.day == "2026-07-06"
    acc.step(arr(midnight - 20), arr(86.4), arr(0), midnight - 20)
    acc.revenue_usd[0] = 5.0  # as if it had earned all day
    w = acc.step(arr(midnight + 10), arr(86.4), arr(0), midnight + 10)
    assert acc.day == "2026-07-07"
    assert acc.revenue_usd[0] == pytest.approx(0.010)  # the 10 s after midnight
    assert acc.covered_s[0] == 10
    assert w.earlier == [
        ("2026-07-06", "a", pytest.approx(0.020), 0.0, pytest.approx(20.0), pytest.approx(20.0))
    ]
    assert w.today == [("2026-07-07", "a", pytest.approx(0.010), 0.0, 10.0, 10.0)]


def test_restore_resumes_totals_and_cursors() -> None:
    t0 = t_utc(2026, 7, 6, 12, 0)
    acc = Integrator(["a", "b", "new"], [75.0] * 3, UTC, t0)
    acc.restore(
        {"a": (1.5, 0.5, 3000.0, 3000.0)},
        {"a": (t0 - 10, 86.4, 43.2), "b": (t0 - 1000, None, None)},
    )
    acc.step(arr(t0, t0, t0), arr(1, 1, 1), arr(1, 1, 1), t0)
    assert acc.revenue_usd.tolist() == pytest.approx([1.5 + 0.01, 0.0, 0.0])
    assert acc.power_cost_usd[0] == pytest.approx(0.5 + 0.005)
    assert acc.covered_s.tolist() == [3010.0, 0.0, 0.0]
    assert acc.cost_covered_s.tolist() == [3010.0, 0.0, 0.0]


def test_revenue_without_a_power_figure_accrues_no_cost_and_says_so() -> None:
    # A miner whose power is unknown earns revenue; counting its cost as 0 would pass the
    # revenue off as profit. The cost covers only the seconds with a figure.
    t0 = t_utc(2026, 7, 6, 12, 0)
    acc = Integrator(["known", "unknown", "later"], [75.0] * 3, UTC, t0)
    acc.step(arr(t0, t0, t0), arr(86.4, 86.4, 86.4), arr(43.2, math.nan, math.nan), t0)
    acc.step(
        arr(t0 + 30, t0 + 30, t0 + 30), arr(86.4, 86.4, 86.4), arr(43.2, math.nan, 43.2), t0 + 30
    )
    acc.step(
        arr(t0 + 60, t0 + 60, t0 + 60), arr(86.4, 86.4, 86.4), arr(43.2, math.nan, 43.2), t0 + 60
    )
    assert acc.covered_s.tolist() == [60.0, 60.0, 60.0]
    assert acc.cost_covered_s.tolist() == [60.0, 0.0, 30.0]
    view = acc.view("UTC", persisted=False, note=None)
    assert view.cost_complete.tolist() == [True, False, False]
    assert view.devices_cost_unknown == 2


def test_many_devices_in_one_vectorised_step() -> None:
    n = 10_000
    t0 = t_utc(2026, 7, 6, 12, 0)
    acc = Integrator([f"d{i}" for i in range(n)], np.full(n, 75.0), UTC, t0)
    rates = np.linspace(0, 86.4, n)
    acc.step(np.full(n, t0), rates, rates / 2, t0)
    readings = np.where(np.arange(n) % 2 == 0, t0 + 30, t0)  # half have a new reading
    w = acc.step(readings, rates, rates / 2, t0 + 30)
    assert len(w.today) == n // 2
    np.testing.assert_allclose(acc.revenue_usd[::2], rates[::2] / DAY * 30)
    assert not acc.revenue_usd[1::2].any()
