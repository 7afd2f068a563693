"""The fleet table's rows without a terminal: diff, incremental sort, filter, earnings cells."""

from __future__ import annotations

import random

import msgspec
import pytest

from console.model import MISSING, ErrorKind, Snapshot
from console.tui import fleet_rows
from console.tui.fleet_rows import FleetRows
from console.tui.rows import COLUMN_KEYS, note
from tests.tui.site_fixtures import NOW, fixed_market, fixed_store, price


def fresh_order(rows: FleetRows, snapshot: Snapshot) -> list[str]:
    """The order a table built from scratch with the same settings shows."""
    other = FleetRows()
    other.set_sort(rows.sort_column, reverse=rows.sort_reverse, problems_first=rows.problems_first)
    other.set_filter(rows.filter_text)
    other.apply(snapshot)
    return other.display_ids()


def test_earnings_cells_come_from_the_priced_snapshot() -> None:
    snap = price(fixed_store().snapshot(now=NOW))
    rows = FleetRows()
    rows.apply(snap)
    assert snap.earnings is not None
    money = snap.earnings.by_id("r1-s21-02")
    assert money is not None and money.profit_usd_per_day is not None
    assert rows.text("r1-s21-02", "profit") == f"${money.profit_usd_per_day:,.2f}"
    assert rows.text("r1-s21-02", "revenue") == f"${money.revenue_usd_per_day:,.2f}"
    assert rows.text("r3-a1246-05", "profit").startswith("-$")  # a loss reads without colour
    # The lost miner is not priced: dashes, never $0.00; an ASIC has no switch gain.
    assert rows.text("r3-s21-07", "profit") == MISSING
    assert rows.text("r1-s21-02", "gain") == ""


def test_a_market_move_changes_the_money_cells_of_every_priced_device() -> None:
    store = fixed_store()
    rows = FleetRows()
    rows.apply(price(store.snapshot(now=NOW)))
    changes = rows.apply(price(store.snapshot(now=NOW), fixed_market(btc_price_usd=80_000.0)))
    # Same statuses, new earnings: every hashing ASIC's revenue and profit change; the lost
    # one (not priced), the sleeping one (no revenue, same power cost) and the GPUs (their
    # revenue is another coin's or a job's rate) do not.
    unchanged = ("r3-s21-07", "r3-s19jpro-06", "g-4090-01", "g-a100-02")
    assert sorted(rows.ids[i] for i in changes.rows) == sorted(
        d for d in rows.ids if d not in unchanged
    )
    assert not changes.layout


def test_sort_by_profit_keeps_unknowns_last_both_ways() -> None:
    snap = price(fixed_store().snapshot(now=NOW))
    rows = FleetRows()
    rows.apply(snap)
    rows.set_sort("profit", problems_first=False)
    order = rows.display_ids()
    assert order[0] == "r3-a1246-05" and order[-1] == "r3-s21-07"
    rows.set_sort(reverse=True)
    order = rows.display_ids()
    assert order[0] == "g-a100-02" and order[-1] == "r3-s21-07"  # the AI job earns most


def test_filter_hides_rows_and_clearing_brings_them_back() -> None:
    rows = FleetRows()
    rows.apply(price(fixed_store().snapshot(now=NOW)))
    assert rows.set_filter("AVALON")
    assert rows.display_ids() == ["r3-a1246-05"]
    assert rows.position_of("r1-s21-02") is None
    assert rows.set_filter("")
    assert len(rows) == 9
    assert rows.set_filter("a100")  # a GPU's model
    assert rows.display_ids() == ["g-a100-02"]


@pytest.mark.parametrize("share", [1.0, 0.0], ids=["move-rows", "full-sort"])
def test_incremental_updates_match_a_table_built_from_scratch(
    share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random readings, failures and market moves, tick after tick: the order kept by moving
    single rows (or, past the share, by one sort) is always the order a fresh sort gives,
    whatever the sort settings."""
    monkeypatch.setattr(fleet_rows, "FULL_SORT_SHARE", share)
    rng = random.Random(5)
    store = fixed_store()
    ids = store.device_ids()
    rows = FleetRows()
    now = NOW
    btc = 91_580.0
    for tick in range(120):
        if tick % 20 == 0:
            column = rng.choice(COLUMN_KEYS)
            rows.set_sort(column, reverse=rng.random() < 0.5, problems_first=rng.random() < 0.7)
            rows.set_filter(rng.choice(["", "", "s19", "fresh", "antminer"]))
        now += 1
        for device_id in rng.sample(ids, rng.randint(0, 3)):
            status = store.status(device_id, now)
            if status.reading is not None and rng.random() < 0.8:
                reading = msgspec.structs.replace(
                    status.reading,
                    hashrate_5s_hs=rng.uniform(0, 250e12),
                    power_w=rng.choice([None, rng.uniform(50, 4000)]),
                    efficiency_j_per_th=rng.choice([None, rng.uniform(12, 40)]),
                )
                store.record_ok(device_id, reading, at=now)
            else:
                store.record_failure(device_id, ErrorKind.TIMEOUT, "no reply", at=now)
        if rng.random() < 0.1:
            btc *= rng.uniform(0.9, 1.1)
        snap = price(store.snapshot(now=now), fixed_market(btc_price_usd=btc))
        rows.apply(snap)
        assert rows.display_ids() == fresh_order(rows, snap), f"tick {tick}"
        for device_id in rows.display_ids():
            assert rows.display_ids()[rows.position_of(device_id) or 0] == device_id


def test_a_gpu_being_switched_notes_its_step_not_its_miners_silence() -> None:
    snap = price(fixed_store().snapshot())
    gpu = next(d for d in snap.devices if d.gpu is not None and d.gpu.mode == "mining")
    assert gpu.gpu is not None
    refused = "127.0.0.1:24067: Connect call failed"
    silent = msgspec.structs.replace(gpu.gpu, miner_error=refused)
    # Mining, and its API does not answer: that is news.
    assert note(msgspec.structs.replace(gpu, gpu=silent)) == refused
    # Being switched to mining: a miner just launched does not answer yet; that is the step.
    starting = msgspec.structs.replace(silent, switching=True, state="PREPARING_MINER")
    assert note(msgspec.structs.replace(gpu, gpu=starting)) == "switching: preparing miner"
