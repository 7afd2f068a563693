"""The detail screen's field text: unreported values are a dash, never a zero."""

from __future__ import annotations

import dataclasses

import msgspec

from console.model import MISSING
from console.tui.detail_fields import (
    board_cells,
    device_fields,
    earnings_fields,
    fmt_age,
    fmt_duration,
)
from drivers.cgminer.reading import BoardReading
from tests.tui.site_fixtures import NOW, fixed_snapshot


def test_a_device_without_a_reading_shows_dashes_and_why() -> None:
    lost = next(d for d in fixed_snapshot().devices if d.device_id == "r3-s21-07")
    fields = {f.key: f.value.plain for f in device_fields(lost, NOW)}
    assert fields["last_ok"] == MISSING
    assert fields["last_error"] == "no complete reply within 10 s"
    assert fields["freshness"] == "✗ lost"
    assert "firmware" not in fields  # no reading, so no reading fields at all


def test_unreported_board_values_are_dashes() -> None:
    cells = [c.plain for c in board_cells(BoardReading(index=2))]
    assert cells[0] == "2" and all(c == MISSING for c in cells[1:])
    short = board_cells(BoardReading(index=0, chips_found=120, chips_expected=126))
    assert short[1].plain == "120/126 ✗"  # readable without colour


def test_ages_and_durations() -> None:
    assert fmt_age(None) == MISSING and fmt_age(3) == "3 s ago" and fmt_age(600) == "10 min ago"
    assert fmt_duration(None) == MISSING and fmt_duration(5 * 86400 + 7200) == "5 d 2 h"


def test_accrued_revenue_without_a_power_figure_is_not_called_profit() -> None:
    snap = fixed_snapshot()
    e = snap.earnings
    assert e is not None and e.accrued is not None
    device = next(d for d in snap.devices if e.by_id(d.device_id) is not None)
    i = e.index_of(device.device_id)
    assert i is not None
    cost_covered = e.accrued.cost_covered_s.copy()
    cost_covered[i] = 600.0  # power known for 10 min of the 3 h
    accrued = dataclasses.replace(e.accrued, cost_covered_s=cost_covered)
    snap = msgspec.structs.replace(snap, earnings=dataclasses.replace(e, accrued=accrued))
    fields = {f.key: f.value.plain for f in earnings_fields(device, snap)}
    assert "profit unknown (power known for 10 min 0 s of it)" in fields["accrued"]
    assert "revenue over 3 h 0 min" in fields["accrued"]
