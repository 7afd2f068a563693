"""Pure presentation of one device for the detail screen: every field, the board and pool rows.

No widgets here, so it is testable without a terminal. Every value goes through the one
`MISSING` formatter: a field the hardware did not report shows `—`, never 0. Times are shown
relative to the snapshot's own clock (`now`), so a frozen snapshot always reads the same.

Readings of other device kinds (GPUs) add their own function to `READING_FIELDS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text

from console.model import (
    MISSING,
    DeviceKind,
    DeviceStatus,
    GpuView,
    Snapshot,
    fmt_hashrate,
    fmt_num,
    fmt_usd,
)
from console.tui.states import freshness_text, mode_text, observed_text
from drivers.cgminer.reading import AsicReading, BoardReading, PoolReading
from drivers.gpu_reading import GpuProcess


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    value: Text


def _t(value: str, style: str = "") -> Text:
    return Text(value, style=style, no_wrap=True, overflow="ellipsis")


def fmt_age(seconds: float | None) -> str:
    """`3 s ago`, `4 min ago`, `2 h ago`; `—` when unknown."""
    if seconds is None:
        return MISSING
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def fmt_duration(seconds: float | None) -> str:
    """`5 d 3 h`, `2 h 10 min`, `45 s`; `—` when unreported."""
    if seconds is None:
        return MISSING
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {s} s"
    return f"{s} s"


def fmt_clock(at: float | None) -> str:
    """Local wall-clock time of a unix timestamp, `2026-11-26 03:14:07`."""
    if at is None:
        return MISSING
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _when(at: float | None, now: float) -> str:
    if at is None:
        return MISSING
    return f"{fmt_clock(at)} ({fmt_age(now - at)})"


def _count(value: int | None) -> str:
    return fmt_num(value, ",d")


def device_fields(d: DeviceStatus, now: float) -> list[Field]:
    """Identity, the three state axes, poll health, then the reading's own fields."""
    fields = [
        Field("device_id", "Device id", _t(d.device_id)),
        Field("kind", "Kind", _t(d.kind.value)),
        Field("model", "Model", _t(d.model or MISSING)),
        Field("address", "Address", _t(f"{d.host}:{d.port}")),
        Field("tags", "Tags", _t(", ".join(d.tags) or MISSING)),
        Field("commanded", "Commanded", mode_text(d.commanded)),
        Field("observed", "Observed", observed_text(d.observed)),
        Field("freshness", "Freshness", freshness_text(d.freshness)),
        Field(
            "privileged",
            "Privileged",
            _t("yes: writes allowed" if d.privileged else "no: read only"),
        ),
        Field("controls", "Controls", _t(", ".join(d.controls) or "none")),
        Field("last_ok", "Last reading", _t(_when(d.last_ok_at, now))),
        Field("last_attempt", "Last poll", _t(_when(d.last_attempt_at, now))),
        Field(
            "last_error",
            "Last error",
            _t(d.last_error or "none", "red" if d.last_error else ""),
        ),
        Field("error_kind", "Error kind", _t(d.error_kind.value if d.error_kind else MISSING)),
        Field("failures", "Failures in a row", _t(str(d.consecutive_failures))),
        Field("polls", "Polls ok / failed", _t(f"{d.polls_ok:,} / {d.polls_failed:,}")),
    ]
    if d.reading is not None:
        fields.extend(READING_FIELDS[d.kind](d.reading))
    if d.gpu is not None:
        fields.extend(gpu_fields(d.gpu, now))
    return fields


def asic_reading_fields(r: AsicReading) -> list[Field]:
    power = fmt_num(r.power_w, ",.0f", "W")
    if r.power_w is not None and r.power_estimated:
        power += " (nameplate estimate, not measured)"
    fans = " ".join(f"{rpm:,}" for rpm in r.fans_rpm) + " RPM" if r.fans_rpm else MISSING
    return [
        Field("firmware", "Firmware", _t(r.firmware.value)),
        Field("firmware_version", "Firmware version", _t(r.firmware_version or MISSING)),
        Field("make", "Make", _t(r.make)),
        Field("miner_state", "Miner says", _t(r.state.value)),
        Field("hashrate_5s", "Hashrate (5 s)", _t(fmt_hashrate(r.hashrate_5s_hs))),
        Field("hashrate_avg", "Hashrate (avg)", _t(fmt_hashrate(r.hashrate_avg_hs))),
        Field("hashrate_nominal", "Hashrate (nominal)", _t(fmt_hashrate(r.nominal_hashrate_hs))),
        Field("power", "Power", _t(power)),
        Field("efficiency", "Efficiency", _t(fmt_num(r.efficiency_j_per_th, ".1f", "J/TH"))),
        Field("temp_max", "Hottest chip", _t(fmt_num(r.temp_max_c, ".0f", "°C"))),
        Field("fans", "Fans", _t(fans)),
        Field("accepted", "Shares accepted", _t(_count(r.accepted))),
        Field("rejected", "Shares rejected", _t(_count(r.rejected))),
        Field("stale", "Shares stale", _t(_count(r.stale))),
        Field("hw_errors", "Hardware errors", _t(_count(r.hardware_errors))),
        Field("uptime", "Uptime", _t(fmt_duration(r.uptime_s))),
        Field("boards", "Boards", _t(str(len(r.boards)) if r.boards else MISSING)),
        Field("pools", "Pools", _t(str(len(r.pools)) if r.pools else MISSING)),
        Field(
            "warnings",
            "Warnings",
            _t("; ".join(r.warnings) or "none", "yellow" if r.warnings else ""),
        ),
        Field("repairs", "Reply repairs", _t(", ".join(r.repairs) or "none")),
    ]


def _per_day(usd: float | None) -> str:
    return MISSING if usd is None else f"{fmt_usd(usd)}/day"


def _usd_unit(usd: float | None, spec: str, unit: str) -> str:
    return MISSING if usd is None else f"{fmt_usd(usd, spec)}{unit}"


def _money(usd: float | None) -> Text:
    return _t(_per_day(usd), "red" if usd is not None and usd < 0 else "")


def earnings_fields(d: DeviceStatus, snapshot: Snapshot) -> list[Field]:
    """What the device earns now under the snapshot's market, where it breaks even, and what
    it accrued today. A device without a usable reading is not priced: one line says why."""
    e = snapshot.earnings
    row = None if e is None else e.by_id(d.device_id)
    if row is None:
        why = (
            "no market data"
            if e is None
            else f"not priced: no usable reading ({d.freshness.value})"
        )
        return [Field("priced", "Earnings", _t(why, "dim"))]
    m = snapshot.market
    cost_note = ""
    if m is not None:
        overhead = m.overhead_gpu if d.kind is DeviceKind.GPU else m.overhead_asic
        cost_note = (
            f" at ${m.power_price_usd_per_kwh.value:.4f}/kWh × {overhead.value:.2f} overhead"
        )
    if row.power_estimated:
        cost_note += " (nameplate power)"
    revenue = _per_day(row.revenue_usd_per_day)
    if row.revenue_usd_per_hour is not None:
        revenue += f" ({fmt_usd(row.revenue_usd_per_hour, ',.3f')}/h)"
    fields = [
        Field("revenue", "Revenue", _t(revenue)),
        Field("power_cost", "Power cost", _t(_per_day(row.power_cost_usd_per_day) + cost_note)),
        Field("profit", "Profit", _money(row.profit_usd_per_day)),
        Field(
            "breakeven_power",
            "Breakeven power",
            _t(_usd_unit(row.breakeven_usd_per_kwh, ".4f", "/kWh")),
        ),
    ]
    if d.kind is DeviceKind.ASIC:
        fields.append(
            Field(
                "breakeven_hashprice",
                "Breakeven hashpr.",
                _t(_usd_unit(row.breakeven_hashprice_usd_per_ph_day, ",.2f", "/PH/day")),
            )
        )
    if row.mode is not None:
        fields += [
            Field("gpu_mode", "Earning as", _t(row.mode)),
            Field(
                "other_profit",
                f"If {row.other_mode or MISSING}",
                _t(
                    f"{_per_day(row.other_profit_usd_per_day)} "
                    f"(revenue {_per_day(row.other_revenue_usd_per_day)}, "
                    f"power {_per_day(row.other_power_cost_usd_per_day)})"
                ),
            ),
            Field("switch_gain", "Switch gain", _money(row.switch_gain_usd_per_day)),
            Field(
                "breakeven_util",
                "Breakeven util.",
                _t(
                    MISSING
                    if row.breakeven_utilization is None
                    else f"{row.breakeven_utilization:.0%} of hours rented"
                ),
            ),
        ]
    acc = row.accrued_today
    day = e.accrued.day if e is not None and e.accrued is not None else ""
    if acc is None:
        today = _t("not accrued (no ledger)", "dim")
    elif acc.covered_s <= 0:
        today = _t("nothing accrued yet", "dim")
    elif acc.profit_usd is None:
        # Revenue without a power figure for part of the day: no profit to claim.
        today = _t(
            f"{fmt_usd(acc.revenue_usd)} revenue over {fmt_duration(acc.covered_s)}; profit "
            f"unknown (power known for {fmt_duration(acc.cost_covered_s)} of it)",
            "yellow",
        )
    else:
        today = _t(
            f"{fmt_usd(acc.profit_usd)} profit ({fmt_usd(acc.revenue_usd)} revenue − "
            f"{fmt_usd(acc.power_cost_usd)} power) over {fmt_duration(acc.covered_s)}",
            "red" if acc.profit_usd < 0 else "",
        )
    fields.append(Field("accrued", f"Today {day}".rstrip(), today))
    return fields


READING_FIELDS: dict[DeviceKind, Callable[[AsicReading], list[Field]]] = {
    DeviceKind.ASIC: asic_reading_fields,
}
"""The reading's fields per device kind; the GPU path adds `DeviceKind.GPU` here."""


# What an operator scans first fits in 80 columns; nominal and serial follow.
BOARD_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("board", "Board", 5),
    ("chips", "Chips", 11),
    ("temp_chip", "Chip °C", 7),
    ("temp_board", "Board °C", 8),
    ("hashrate", "Hashrate", 11),
    ("hw_errors", "HW err", 7),
    ("freq", "MHz", 4),
    ("nominal", "Nominal", 11),
    ("serial", "Serial", 18),
)


def board_cells(b: BoardReading) -> tuple[Text, ...]:
    found, expected = b.chips_found, b.chips_expected
    if found is None:
        chips = _t(MISSING)
    elif expected is None:
        chips = _t(f"{found}")
    elif found < expected:
        # The mark carries it without colour: a short board is the fault to look for.
        chips = _t(f"{found}/{expected} ✗", "bold red")
    else:
        chips = _t(f"{found}/{expected}")
    cells = (
        _t(str(b.index)),
        chips,
        _t(fmt_num(b.temp_chip_c, ".0f")),
        _t(fmt_num(b.temp_board_c, ".0f")),
        _t(fmt_hashrate(b.hashrate_hs)),
        _t(_count(b.hardware_errors)),
        _t(fmt_num(b.frequency_mhz, ".0f")),
        _t(fmt_hashrate(b.nominal_hashrate_hs)),
        _t(b.serial or MISSING),
    )
    for cell in (*cells[2:6], cells[6], cells[7]):
        cell.justify = "right"
    return cells


POOL_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("pool", "Pool", 4),
    ("active", "Active", 8),
    ("status", "Status", 9),
    ("priority", "Prio", 4),
    ("url", "URL", 36),
    ("user", "User", 24),
    ("accepted", "Accepted", 9),
    ("rejected", "Rejected", 8),
    ("stale", "Stale", 6),
)


def pool_cells(p: PoolReading) -> tuple[Text, ...]:
    status_style = {"Alive": "green", "Dead": "bold red", "Rejecting": "yellow"}.get(p.status, "")
    cells = (
        _t(str(p.index)),
        _t("▶ active", "bold") if p.active else _t(""),
        _t(p.status, status_style),
        _t(fmt_num(p.priority, "d")),
        _t(p.url),
        _t(p.user or MISSING),
        _t(_count(p.accepted)),
        _t(_count(p.rejected)),
        _t(_count(p.stale)),
    )
    for cell in cells[6:]:
        cell.justify = "right"
    return cells


# --- GPUs -------------------------------------------------------------------------------------

GIB = 2**30


def _bytes(value: int | None) -> str:
    return MISSING if value is None else f"{value / GIB:,.1f} GiB"


def _w(value: float | None) -> str:
    return fmt_num(value, ",.0f", "W")


def _pct(value: float | None) -> str:
    return fmt_num(value, ".0f", "%")


def _c(value: float | None) -> str:
    return fmt_num(value, ".0f", "°C")


def _mhz(value: float | None) -> str:
    return fmt_num(value, ".0f", "MHz")


def gpu_fields(g: GpuView, now: float) -> list[Field]:
    """Every NVML field of the GPU's last sample, and what NVML says about the board."""
    reading = g.nvml
    if reading is None:
        why = g.nvml_unavailable or "NVML has not seen this GPU yet"
        return [Field("nvml", "NVML", _t(why, "red"))]
    st, sm = reading.static, reading.sample
    fields = [
        Field("uuid", "UUID", _t(st.uuid)),
        Field("pci", "PCI bus", _t(st.pci_bus_id)),
        Field("nvml_index", "NVML index", _t(str(st.index))),
        Field(
            "health", "Health", _t(reading.health.value, "" if reading.health == "ok" else "red")
        ),
        Field("driver", "Driver", _t(st.driver_version or MISSING)),
        Field("memory_total", "Memory", _t(_bytes(st.memory_total_bytes))),
        Field(
            "power_limits",
            "Power limits",
            _t(
                f"default {fmt_num(st.power_limit_default_w, '.0f', 'W')}, range "
                f"{fmt_num(st.power_limit_min_w, '.0f')}–{_w(st.power_limit_max_w)}"
            ),
        ),
        Field("temp_slowdown", "Slowdown temp", _t(fmt_num(st.temp_slowdown_c, ".0f", "°C"))),
    ]
    if reading.error:
        fields.append(Field("nvml_error", "NVML error", _t(reading.error, "red")))
    if sm is None:
        fields.append(Field("sample", "Sample", _t("no sample this tick", "yellow")))
        return fields
    used = _bytes(sm.memory_used_bytes)
    fields += [
        Field("sampled", "Sampled", _t(_when(sm.taken_at, now))),
        Field(
            "util",
            "Utilisation",
            _t(f"GPU {_pct(sm.util_gpu_pct)}, memory {_pct(sm.util_memory_pct)}"),
        ),
        Field("memory_used", "Memory used", _t(f"{used} of {_bytes(sm.memory_total_bytes)}")),
        Field(
            "power_now",
            "Power",
            _t(f"{_w(sm.power_w)} (limit {_w(sm.power_limit_w)})"),
        ),
        Field(
            "temp_gpu",
            "Temperature",
            _t(f"GPU {_c(sm.temp_gpu_c)}, memory {_c(sm.temp_memory_c)}"),
        ),
        Field(
            "clocks",
            "Clocks",
            _t(f"SM {_mhz(sm.clock_sm_mhz)}, memory {_mhz(sm.clock_memory_mhz)}"),
        ),
        Field("fan", "Fan", _t(fmt_num(sm.fan_pct, ".0f", "%"))),
        Field("pstate", "P-state", _t(MISSING if sm.pstate is None else f"P{sm.pstate}")),
        Field(
            "pcie",
            "PCIe",
            _t(
                MISSING
                if sm.pcie_generation is None
                else f"gen {sm.pcie_generation} x{fmt_num(sm.pcie_width, 'd')}"
            ),
        ),
        Field(
            "ecc",
            "ECC errors",
            _t(f"corrected {_count(sm.ecc_corrected)}, uncorrected {_count(sm.ecc_uncorrected)}"),
        ),
        Field(
            "energy",
            "Energy",
            _t(fmt_num(None if sm.energy_j is None else sm.energy_j / 3.6e6, ",.2f", "kWh")),
        ),
        Field("unsupported", "Not reported", _t(", ".join(sm.unsupported) or "none")),
    ]
    return fields


def workload_fields(g: GpuView, now: float) -> list[Field]:
    """The switch state machine, the miner and the job on the GPU."""
    state_style = "bold red" if g.state in ("FAULTED", "LOST", "NEEDS_RESET") else ""
    fields = [
        Field(
            "gpu_state", "State", _t(g.state + (" (switching)" if g.switching else ""), state_style)
        ),
        Field("gpu_mode", "Commanded", _t(g.mode)),
        Field("mode_since", "In mode since", _t(_when(g.mode_since, now))),
    ]
    if g.error:
        step = f" at {g.failed_step}" if g.failed_step else ""
        fields.append(Field("gpu_error", "Held because", _t(f"{g.error}{step}", "red")))
    if g.miner_pid is not None or g.miner_hashrate_hs is not None or g.miner_error:
        miner = f"PID {g.miner_pid}" if g.miner_pid is not None else "not running"
        if g.miner_hashrate_hs is not None:
            miner += f", {fmt_hashrate(g.miner_hashrate_hs)} {g.miner_algorithm or ''}".rstrip()
        fields.append(Field("miner", "Miner", _t(miner)))
        if g.miner_error:
            fields.append(Field("miner_error", "Miner API", _t(g.miner_error, "yellow")))
    job = g.job
    if job is None:
        fields.append(Field("job", "AI job", _t("none")))
    else:
        fields += [
            Field("job", "AI job", _t(f"{job.id} {job.name} ({job.customer or 'no customer'})")),
            Field("job_state", "Job state", _t(job.state)),
            Field("job_rate", "Rate", _t(f"${job.rate_usd_per_gpu_hour:.2f}/GPU-h")),
            Field("job_progress", "Progress", _t(f"{job.progress:.1%}")),
            Field("job_runtime", "Runtime", _t(fmt_duration(job.runtime_s))),
            Field("job_earned", "Earned so far", _t(fmt_usd(job.earned_usd))),
        ]
    return fields


def health_lines(g: GpuView, now: float) -> Text:
    """Throttle reasons and XIDs, in words (a throttle or an XID is what to look for)."""
    text = Text()
    sample = g.nvml.sample if g.nvml else None
    reasons = sample.throttle_reasons if sample else ()
    text.append("Throttle reasons  ", style="bold")
    text.append(", ".join(reasons) if reasons else "none", style="yellow" if reasons else "")
    text.append("\nXIDs this tick    ", style="bold")
    xids = sample.xids if sample else ()
    text.append(
        ", ".join(f"XID {x.xid} ({fmt_age(now - x.at)})" for x in xids) if xids else "none",
        style="bold red" if xids else "",
    )
    last = g.nvml.last_xid if g.nvml else None
    text.append("\nLast XID          ", style="bold")
    text.append(
        f"XID {last.xid} at {fmt_clock(last.at)} ({fmt_age(now - last.at)})"
        if last
        else "none seen",
        style="red" if last else "",
    )
    return text


PROCESS_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("pid", "PID", 8),
    ("kind", "Kind", 4),
    ("memory", "Memory", 11),
    ("name", "Process", 30),
)


def process_cells(p: GpuProcess) -> tuple[Text, ...]:
    memory = _t(_bytes(p.used_memory_bytes))
    memory.justify = "right"
    pid = _t(str(p.pid))
    pid.justify = "right"
    return (pid, _t(p.kind), memory, _t(p.name or MISSING))
