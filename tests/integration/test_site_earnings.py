"""Earnings through the whole site: simulated miners over TCP, the real poller, pricing, the
SQLite ledger under the state dir, and `hashpivot snapshot` as a process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from console.config import load_config
from console.market import hashprice_btc_per_ph_day
from console.site import Site
from simulators.asic import AsicFleet, MinerSpec
from tests.market_api import MarketApiThread

ROOT = Path(__file__).resolve().parents[2]

SPECS = [
    MinerSpec(persona="antminer_stock", model="Antminer S19j Pro", port=0, seed=1),
    MinerSpec(persona="whatsminer", model="Whatsminer M50", port=0, seed=2),
    MinerSpec(persona="braiins", model="Antminer S21", port=0, seed=3),
]


def site_toml(tmp_path: Path, endpoints: list[tuple[str, int]], extra: str = "") -> Path:
    text = (
        f'[site]\nname = "econ"\nstate_dir = "{tmp_path / "state"}"\ntimezone = "UTC"\n'
        "[host]\nenabled = false\n"
        "[poller]\nasic_poll_interval_s = 0.2\nasic_timeout_s = 1.0\n"
        "[market]\nas_of = 2026-01-12\nbtc_price_usd = 91580.0\nnetwork_difficulty = 146.47e12\n"
        "fees_per_block_btc = 0.0172\n"
        "[power]\nprice_usd_per_kwh = 0.05\n" + extra
    )
    for i, (host, port) in enumerate(endpoints):
        text += f'[[asics]]\nname = "m{i}"\nhost = "{host}"\nport = {port}\n'
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


async def test_a_running_site_prices_and_accrues_and_a_restart_keeps_today(
    tmp_path: Path,
) -> None:
    async with AsicFleet(SPECS) as fleet:
        config = load_config(site_toml(tmp_path, [(m.host, m.port) for m in fleet.miners]))
        async with Site(config) as site:
            runner = asyncio.create_task(site.run())
            snap = site.snapshot()
            for _ in range(60):  # until every device has accrued something
                await asyncio.sleep(0.1)
                snap = site.snapshot()
                acc = snap.earnings.accrued if snap.earnings else None
                if acc is not None and (acc.covered_s > 0.5).all():
                    break
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

        assert snap.market is not None and snap.earnings is not None
        m = snap.market
        assert m.btc_price_usd.source == "config" and m.power_price_usd_per_kwh.value == 0.05
        e = snap.earnings
        assert e.device_ids == tuple(d.device_id for d in snap.devices)
        usd_per_hs_day = hashprice_btc_per_ph_day(146.47e12, 3.125, 0.0172) * 91580 / 1e15 * 0.975
        for i, d in enumerate(snap.devices):
            row = e.row(i)
            assert row is not None and d.reading is not None, d
            hashrate = d.reading.hashrate_5s_hs
            assert hashrate is not None and hashrate > 1e12
            assert row.revenue_usd_per_day == pytest.approx(hashrate * usd_per_hs_day)
            assert d.reading.power_w is not None
            assert row.power_cost_usd_per_day == pytest.approx(
                d.reading.power_w * 1.05 * 0.024 * 0.05
            )
            assert row.accrued_today is not None and row.accrued_today.revenue_usd > 0
        accrued = e.accrued
        assert accrued is not None and accrued.persisted and accrued.timezone == "UTC"
        assert (config.site.state_path / "earnings.sqlite").exists()

        # Restart: a one-shot site (as `hashpivot snapshot` runs) reads today's figures back.
        async with Site(config) as again:
            await again.poll_all_once()
            later = again.snapshot()
        assert later.earnings is not None and later.earnings.accrued is not None
        back = later.earnings.accrued
        assert back.day == accrued.day
        # At least what the running site had shown (it may have committed one step more).
        assert (back.revenue_usd >= accrued.revenue_usd - 1e-12).all()
        assert (back.covered_s > 0.5).all()


def hashpivot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_snapshot_json_carries_market_with_sources_and_device_earnings(tmp_path: Path) -> None:
    async def serve_and_snapshot() -> subprocess.CompletedProcess[str]:
        async with AsicFleet(SPECS) as fleet:
            with MarketApiThread() as api:
                live = (
                    f'[market.live]\nenabled = true\nmempool_url = "{api.mempool_url}"\n'
                    f'coingecko_url = "{api.coingecko_url}"\ntimeout_s = 3.0\n'
                )
                path = site_toml(tmp_path, [(m.host, m.port) for m in fleet.miners], live)
                return await asyncio.to_thread(
                    hashpivot, "snapshot", "--config", str(path), "--json"
                )

    result = asyncio.run(serve_and_snapshot())
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "hashpivot.snapshot/1"
    market = doc["market"]
    hp_btc = market["hashprice_btc_per_ph_day"]
    assert hp_btc["value"] == pytest.approx(0.00043143, rel=1e-3)
    assert hp_btc["source"] == "computed" and hp_btc["age_s"] is not None
    hp_usd = market["hashprice_usd_per_ph_day"]
    assert hp_usd["value"] == pytest.approx(39.53, rel=1e-3)
    assert market["btc_price_usd"]["source"] == "mempool.space"
    assert market["btc_price_usd"]["as_of"].startswith("2026-01-12")
    assert market["network_difficulty"]["source"] == "mempool.space"
    assert market["block_height"]["value"] == 931_000
    assert market["block_subsidy_btc"] == {**market["block_height"], "value": 3.125}
    assert market["power_price_usd_per_kwh"]["source"] == "config"
    assert market["power_price_usd_per_kwh"]["age_s"] is None  # a contract price does not age
    assert market["live_feed"]["enabled"] is True
    for figure in (market["pool_fee"], market["ai_rate_usd_per_gpu_hour"]["H100"]):
        assert set(figure) == {"value", "source", "as_of", "age_s"}
        assert figure["source"] == "default 2026-01-12"
    earnings = doc["earnings"]
    assert earnings["totals"]["devices_priced"] == 3
    assert earnings["totals"]["revenue_usd_per_day"] > 0
    assert [s["name"] for s in earnings["scenarios"]] == [
        "btc-10pct",
        "difficulty+5pct",
        "power+25pct",
    ]
    assert earnings["accrued_today"] is None  # nothing ever accrued in this state dir
    for device in doc["devices"]:
        money = device["earnings"]
        assert money["revenue_usd_per_day"] > 0
        assert money["profit_usd_per_day"] == pytest.approx(
            money["revenue_usd_per_day"] - money["power_cost_usd_per_day"]
        )
        assert money["j_per_th"] > 5
        assert money["mode"] is None and money["accrued_today"] is None


def test_snapshot_table_shows_money_columns_and_market_lines(tmp_path: Path) -> None:
    async def run() -> subprocess.CompletedProcess[str]:
        async with AsicFleet(SPECS) as fleet:
            path = site_toml(tmp_path, [(m.host, m.port) for m in fleet.miners])
            return await asyncio.to_thread(hashpivot, "snapshot", "--config", str(path))

    result = asyncio.run(run())
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[-4:] == ["REV/DAY", "COST/DAY", "PROFIT/DAY", "NOTE"]
    assert "earnings: revenue $" in result.stdout
    assert "market: hashprice 39.5" in result.stdout and "USD/PH/day" in result.stdout
    assert "BTC 91,580 USD (config," in result.stdout
