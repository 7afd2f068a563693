"""The what-if arithmetic and the header text, without a terminal."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from console.config import MarketScenario
from console.economics import MarketParams, scaled_totals, what_if
from console.tui.what_if import (
    WhatIfInputError,
    evaluate,
    fleet_breakeven_lines,
    parse_value,
)
from console.tui.widgets.site_summary import MARKET_STALE_AFTER_S, sourced, summary_lines
from tests.tui.site_fixtures import NOW, fixed_market, fixed_snapshot


def test_parse_values_and_changes() -> None:
    assert parse_value("95000", 91_580, "BTC") == 95_000
    assert parse_value(" $95,000 ", 91_580, "BTC") == 95_000
    assert parse_value("-10%", 100.0, "BTC") == pytest.approx(90.0)
    assert parse_value("+5 %", 146.47, "difficulty") == pytest.approx(153.7935)
    assert parse_value(".045", 0.05, "power") == pytest.approx(0.045)
    for bad, why in (("abc", "not a number"), ("-10", "change in %"), ("0", "above zero")):
        with pytest.raises(WhatIfInputError, match=why):
            parse_value(bad, 1.0, "BTC price")
    with pytest.raises(WhatIfInputError, match="above zero"):
        parse_value("-100%", 1.0, "power")


def test_what_if_equals_the_economics_what_if_on_the_same_arrays() -> None:
    snap = fixed_snapshot()
    assert snap.earnings is not None and snap.market is not None
    w = evaluate(snap, 82_422.0, 146.47e12 * 1.05, 0.0625)
    assert w is not None
    scenario = MarketScenario(
        name="x", btc_price_factor=0.9, difficulty_factor=1.05, power_price_factor=1.25
    )
    expected = what_if(snap.earnings.inputs, MarketParams.of(snap.market), scenario).totals
    assert w.then.profit_usd_per_day == pytest.approx(expected.profit_usd_per_day)
    # ...and with the closed form the snapshot's own scenarios use.
    closed = scaled_totals(snap.earnings.totals, scenario)
    assert w.then.revenue_usd_per_day == pytest.approx(closed.revenue_usd_per_day)
    # Per device: the sum of the rows is the fleet (unknowns left out).
    assert float(np.nansum(w.profit_then)) == pytest.approx(w.then.profit_usd_per_day)
    assert float(np.nansum(w.change)) == pytest.approx(
        w.then.profit_usd_per_day - w.now.profit_usd_per_day
    )


def test_at_each_fleet_breakeven_the_fleet_profit_is_zero() -> None:
    snap = fixed_snapshot()
    # At 0.05 USD/kWh the GPUs' revenue alone covers the fleet's power: no BTC price or
    # difficulty makes the fleet lose money, and the panel says so with a dash.
    w = evaluate(snap, 91_580.0, 146.47e12, 0.05)
    assert w is not None
    assert w.fleet_breakeven_btc_price_usd is None and w.fleet_breakeven_difficulty is None
    assert fleet_breakeven_lines(w)[:2] == ["BTC —", "difficulty —"]
    # At 0.50 USD/kWh it needs its ASICs: every breakeven exists, and zeroes the fleet's profit.
    btc, difficulty, power = 91_580.0, 146.47e12, 0.50
    w = evaluate(snap, btc, difficulty, power)
    assert w is not None
    at = (
        (w.fleet_breakeven_btc_price_usd, difficulty, power),
        (btc, w.fleet_breakeven_difficulty, power),
        (btc, difficulty, w.fleet_breakeven_usd_per_kwh),
    )
    for b, d, p in at:
        assert b is not None and d is not None and p is not None
        there = evaluate(snap, b, d, p)
        assert there is not None
        assert there.then.profit_usd_per_day == pytest.approx(0.0, abs=1e-9)
    # A device's breakeven BTC price zeroes that device's profit.
    i = w.device_ids.index("r1-s21-02")
    there = evaluate(snap, float(w.breakeven_btc_price_usd[i]), difficulty, power)
    assert there is not None
    assert float(there.profit_then[i]) == pytest.approx(0.0, abs=1e-9)
    assert fleet_breakeven_lines(w)[0].startswith("BTC $")


def test_without_asic_revenue_there_is_no_btc_breakeven() -> None:
    snap = fixed_snapshot()
    w = evaluate(snap, 91_580.0, 146.47e12, 0.05)
    assert w is not None
    assert math.isnan(float(w.breakeven_btc_price_usd[w.device_ids.index("r3-s21-07")]))
    assert evaluate(msgspec.structs.replace(snap, earnings=None), 1.0, 1.0, 1.0) is None


def test_header_fits_the_width_and_says_where_every_figure_comes_from() -> None:
    snap = fixed_snapshot()
    for width in (78, 158):
        lines = [line.plain for line in summary_lines(snap, width)]
        assert all(len(line) <= width for line in lines), lines
        text = "\n".join(lines)
        assert "profit $" in text and "revenue $" in text and "cost $" in text
        assert "mining 53% · AI 47%" in text
        assert "BTC $91,580 (mempool.space, 12 s)" in text
        assert "hashprice $" in text and "(computed, 6 min)" in text
        assert "power $0.0500/kWh (config)" in text
    assert len(summary_lines(snap, 158)) == 3


def test_an_old_market_figure_is_called_stale() -> None:
    market = fixed_market()
    old = msgspec.structs.replace(market.btc_price_usd, as_of=NOW - MARKET_STALE_AFTER_S - 1)
    assert sourced(old, NOW) == "mempool.space, 60 min, stale"
    assert sourced(market.power_price_usd_per_kwh, NOW) == "config"
