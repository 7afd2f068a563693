"""Snapshot rendering for `hashpivot snapshot`: JSON with a stable, versioned schema, or a table.

The JSON shape is documented in docs/snapshot.md and is a contract with scripts and other
tools: it is built field by field here (not by dumping internal structs) so that refactoring
the model never changes it silently. Additive changes keep `schema` at `hashpivot.snapshot/1`;
anything else bumps the version.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from console.economics import DeviceEarnings, EarningsTotals, FleetEarnings
from console.market import Figure, MarketSnapshot
from console.model import (
    MISSING,
    DeviceStatus,
    GpuView,
    Snapshot,
    fmt_age,
    fmt_hashrate,
    fmt_num,
    fmt_usd,
)
from drivers.cgminer.reading import AsicReading
from drivers.host import HostReading

SCHEMA = "hashpivot.snapshot/1"


def _iso(unix_s: float | None) -> str | None:
    if unix_s is None:
        return None
    return dt.datetime.fromtimestamp(unix_s, tz=dt.UTC).isoformat(timespec="milliseconds")


def reading_json(r: AsicReading) -> dict[str, Any]:
    return {
        "make": r.make,
        "model": r.model,
        "firmware": r.firmware.value,
        "firmware_version": r.firmware_version,
        "state": r.state.value,
        "hashrate_5s_hs": r.hashrate_5s_hs,
        "hashrate_avg_hs": r.hashrate_avg_hs,
        "nominal_hashrate_hs": r.nominal_hashrate_hs,
        "power_w": r.power_w,
        "power_estimated": r.power_estimated,
        "efficiency_j_per_th": r.efficiency_j_per_th,
        "temp_max_c": r.temp_max_c,
        "fans_rpm": list(r.fans_rpm),
        "accepted": r.accepted,
        "rejected": r.rejected,
        "stale": r.stale,
        "hardware_errors": r.hardware_errors,
        "uptime_s": r.uptime_s,
        "boards": [msgspec.to_builtins(b) for b in r.boards],
        "pools": [msgspec.to_builtins(p) for p in r.pools],
        "repairs": list(r.repairs),
        "warnings": list(r.warnings),
    }


def gpu_json(g: GpuView) -> dict[str, Any]:
    """A GPU's NVML reading, mode state machine, workload and miner, as plain JSON."""
    out: dict[str, Any] = msgspec.to_builtins(g)
    if g.nvml is not None and g.nvml.sample is not None:
        out["nvml"]["sample"]["taken_at"] = _iso(g.nvml.sample.taken_at)
    out["mode_since"] = _iso(g.mode_since)
    return out


def device_json(
    d: DeviceStatus, taken_at: float, earnings: FleetEarnings | None = None, index: int = -1
) -> dict[str, Any]:
    row = None if earnings is None or index < 0 else earnings.row(index)
    return {
        "id": d.device_id,
        "kind": d.kind.value,
        "name": d.name,
        "host": d.host,
        "port": d.port,
        "model": d.model,
        "commanded": d.commanded.value,
        "observed": d.observed.value,
        "freshness": d.freshness.value,
        "problem": d.problem,
        "last_ok_at": _iso(d.last_ok_at),
        "reading_age_s": None if d.last_ok_at is None else round(taken_at - d.last_ok_at, 3),
        "last_error": d.last_error,
        "error_kind": None if d.error_kind is None else d.error_kind.value,
        "consecutive_failures": d.consecutive_failures,
        "privileged": d.privileged,
        "tags": list(d.tags),
        "reading": None if d.reading is None else reading_json(d.reading),
        "gpu": None if d.gpu is None else gpu_json(d.gpu),
        "earnings": None if row is None else msgspec.to_builtins(row),
    }


def host_json(h: HostReading) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(h)
    out["taken_at"] = _iso(h.taken_at)
    return out


def figure_json(f: Figure | None, now: float) -> dict[str, Any] | None:
    if f is None:
        return None
    age = f.age_s(now)
    return {
        "value": f.value,
        "source": f.source,
        "as_of": _iso(f.as_of),
        "age_s": None if age is None else round(age, 3),
    }


def market_json(m: MarketSnapshot) -> dict[str, Any]:
    now = m.taken_at
    scalar = (
        "hashprice_usd_per_ph_day",
        "hashprice_btc_per_ph_day",
        "btc_price_usd",
        "network_difficulty",
        "block_height",
        "block_subsidy_btc",
        "fees_per_block_btc",
        "pool_fee",
        "power_price_usd_per_kwh",
        "overhead_asic",
        "overhead_gpu",
        "gpu_pool_fee",
        "ai_platform_fee",
        "ai_expected_utilization",
        "ai_load_factor",
        "ai_idle_power_fraction",
    )
    out: dict[str, Any] = {"taken_at": _iso(m.taken_at)}
    for name in scalar:
        out[name] = figure_json(getattr(m, name), now)
    out["pool_scheme"] = {"value": m.pool_scheme, "source": m.pool_scheme_source}
    out["power_period"] = m.power_period
    out["gpu_mining_usd_per_mhs_day"] = {
        k: figure_json(f, now) for k, f in m.gpu_mining_usd_per_mhs_day.items()
    }
    out["ai_rate_usd_per_gpu_hour"] = {
        k: figure_json(f, now) for k, f in m.ai_rate_usd_per_gpu_hour.items()
    }
    out["live_feed"] = {
        "enabled": m.feed.enabled,
        "hosts": [
            {
                "name": h.name,
                "ok": h.ok,
                "last_ok_at": _iso(h.last_ok_at),
                "last_error": h.last_error,
                "retry_at": _iso(h.retry_at),
            }
            for h in m.feed.hosts
        ],
        "errors": dict(m.feed.errors),
    }
    return out


def totals_json(t: EarningsTotals) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(t)
    out["revenue_usd_per_hour"] = t.revenue_usd_per_hour
    out["profit_usd_per_hour"] = t.profit_usd_per_hour
    return out


def earnings_json(e: FleetEarnings) -> dict[str, Any]:
    accrued = None
    if e.accrued is not None:
        a = e.accrued
        revenue, cost = a.revenue_total_usd, a.power_cost_total_usd
        accrued = {
            "day": a.day,
            "timezone": a.timezone,
            "revenue_usd": revenue,
            "power_cost_usd": cost,
            "profit_usd": revenue - cost,
            "devices_cost_unknown": a.devices_cost_unknown,
            "persisted": a.persisted,
            "note": a.note,
        }
    return {
        "totals": totals_json(e.totals),
        "scenarios": [
            {**msgspec.to_builtins(r.scenario), "totals": totals_json(r.totals)}
            for r in e.scenarios
        ],
        "accrued_today": accrued,
    }


def snapshot_json(s: Snapshot) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "site": s.site,
        "taken_at": _iso(s.taken_at),
        "totals": msgspec.to_builtins(s.totals),
        "host": None if s.host is None else host_json(s.host),
        "market": None if s.market is None else market_json(s.market),
        "earnings": None if s.earnings is None else earnings_json(s.earnings),
        "devices": [device_json(d, s.taken_at, s.earnings, i) for i, d in enumerate(s.devices)],
    }


def snapshot_json_bytes(s: Snapshot) -> bytes:
    return msgspec.json.format(msgspec.json.encode(snapshot_json(s)), indent=2) + b"\n"


_COLUMNS = (
    ("NAME", 20, "<"),
    ("MODEL", 22, "<"),
    ("FIRMWARE", 14, "<"),
    ("OBSERVED", 9, "<"),
    ("FRESH", 7, "<"),
    ("HASHRATE", 11, ">"),
    ("TEMP", 6, ">"),
    ("POWER", 8, ">"),
    ("J/TH", 5, ">"),
    ("REV/DAY", 9, ">"),
    ("COST/DAY", 9, ">"),
    ("PROFIT/DAY", 10, ">"),
    ("NOTE", 0, "<"),
)


def _cell(text: str, width: int, align: str) -> str:
    if width == 0:
        return text
    if len(text) > width:
        text = text[: width - 1] + "…"
    return f"{text:{align}{width}}"


def _gpu_row(d: DeviceStatus, g: GpuView, money: DeviceEarnings | None) -> list[str]:
    doing = g.state if not g.job else f"{g.state} {g.job.name}"
    note = d.last_error or g.error or g.miner_error or doing
    return [
        d.name,
        d.model or MISSING,
        f"gpu/{g.mode}",
        d.observed.value,
        d.freshness.value,
        fmt_hashrate(g.miner_hashrate_hs),
        fmt_num(g.temp_c, ".0f", "°C"),
        fmt_num(g.power_w, ".0f", "W"),
        MISSING,
        fmt_usd(money.revenue_usd_per_day) if money else MISSING,
        fmt_usd(money.power_cost_usd_per_day) if money else MISSING,
        fmt_usd(money.profit_usd_per_day) if money else MISSING,
        note,
    ]


def device_row(
    d: DeviceStatus, earnings: FleetEarnings | None = None, index: int = -1
) -> list[str]:
    r = d.reading
    money = None if earnings is None or index < 0 else earnings.row(index)
    if d.gpu is not None:
        return _gpu_row(d, d.gpu, money)
    power = MISSING
    if r is not None and r.power_w is not None:
        power = fmt_num(r.power_w, ".0f", "W") + ("*" if r.power_estimated else "")
    note = d.last_error or ""
    if not note and r is not None and (r.warnings or r.repairs):
        note = "; ".join((*r.warnings, *(f"repaired {x}" for x in r.repairs)))
    return [
        d.name,
        d.model or MISSING,
        r.firmware.value if r else MISSING,
        d.observed.value,
        d.freshness.value,
        fmt_hashrate(r.hashrate_5s_hs) if r else MISSING,
        fmt_num(r.temp_max_c, ".0f", "°C") if r else MISSING,
        power,
        fmt_num(r.efficiency_j_per_th, ".1f") if r else MISSING,
        fmt_usd(money.revenue_usd_per_day) if money else MISSING,
        fmt_usd(money.power_cost_usd_per_day) if money else MISSING,
        fmt_usd(money.profit_usd_per_day) if money else MISSING,
        note,
    ]


def snapshot_table(s: Snapshot) -> str:
    lines = ["  ".join(_cell(name, w, a) for name, w, a in _COLUMNS).rstrip()]
    for i, d in enumerate(s.devices):
        cells = device_row(d, s.earnings, i)
        lines.append(
            "  ".join(_cell(c, w, a) for c, (_, w, a) in zip(cells, _COLUMNS, strict=True)).rstrip()
        )
    t = s.totals
    lines.append("")
    estimated = f" ({t.power_estimated_w / 1000:.1f} kW estimated*)" if t.power_estimated_w else ""
    lines.append(
        f"{s.site}: {t.devices} devices, {t.fresh} fresh, {t.stale} stale, {t.lost} lost, "
        f"{t.problems} need attention; {fmt_hashrate(t.hashrate_hs)}, "
        f"{t.power_w / 1000:.1f} kW{estimated}"
    )
    if s.earnings is not None:
        lines.append(_earnings_line(s.earnings))
    if s.market is not None:
        lines.extend(_market_lines(s.market))
    return "\n".join(lines) + "\n"


def _earnings_line(e: FleetEarnings) -> str:
    t = e.totals
    text = (
        f"earnings: revenue {fmt_usd(t.revenue_usd_per_day)}/day, "
        f"power {fmt_usd(t.power_cost_usd_per_day)}/day, "
        f"profit {fmt_usd(t.profit_usd_per_day)}/day"
    )
    if t.ai_share_of_revenue is not None and t.ai_revenue_usd_per_day > 0:
        text += f"; AI {t.ai_share_of_revenue:.0%} of revenue"
    if t.devices_unpriced:
        text += f"; {t.devices_unpriced} device(s) without a usable reading not priced"
    if e.accrued is not None:
        a = e.accrued
        if float(a.covered_s.sum()) > 0:
            text += (
                f"; today ({a.day}) {fmt_usd(a.revenue_total_usd)} earned, "
                f"{fmt_usd(a.revenue_total_usd - a.power_cost_total_usd)} profit"
            )
            if a.devices_cost_unknown:
                text += (
                    f" ({a.devices_cost_unknown} device(s) earned without a power figure: "
                    "their cost is not in it)"
                )
        else:
            text += f"; today ({a.day}) nothing accrued yet"
        if a.note:
            text += f" ({a.note})"
    return text


def _sourced(f: Figure, now: float) -> str:
    return f"{f.source}, {fmt_age(f.age_s(now))}"


def _market_lines(m: MarketSnapshot) -> list[str]:
    now = m.taken_at
    hp_usd, hp_btc = m.hashprice_usd_per_ph_day, m.hashprice_btc_per_ph_day
    power = m.power_price_usd_per_kwh
    period = f" ({m.power_period})" if m.power_period else ""
    return [
        f"market: hashprice {hp_usd.value:.2f} USD/PH/day, {hp_btc.value:.8f} BTC/PH/day "
        f"({_sourced(hp_usd, now)})",
        f"  BTC {m.btc_price_usd.value:,.0f} USD ({_sourced(m.btc_price_usd, now)}); "
        f"difficulty {m.network_difficulty.value / 1e12:.2f} T "
        f"({_sourced(m.network_difficulty, now)}); "
        f"fees {m.fees_per_block_btc.value:.4f} BTC/block ({_sourced(m.fees_per_block_btc, now)})",
        f"  power {power.value:.4f} USD/kWh{period} ({_sourced(power, now)}); "
        f"pool {m.pool_scheme} fee {m.pool_fee.value:.1%} ({m.pool_fee.source})",
    ]
