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

from console.model import MISSING, DeviceStatus, Snapshot, fmt_hashrate, fmt_num
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


def device_json(d: DeviceStatus, taken_at: float) -> dict[str, Any]:
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
    }


def host_json(h: HostReading) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(h)
    out["taken_at"] = _iso(h.taken_at)
    return out


def snapshot_json(s: Snapshot) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "site": s.site,
        "taken_at": _iso(s.taken_at),
        "totals": msgspec.to_builtins(s.totals),
        "host": None if s.host is None else host_json(s.host),
        "devices": [device_json(d, s.taken_at) for d in s.devices],
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
    ("NOTE", 0, "<"),
)


def _cell(text: str, width: int, align: str) -> str:
    if width == 0:
        return text
    if len(text) > width:
        text = text[: width - 1] + "…"
    return f"{text:{align}{width}}"


def device_row(d: DeviceStatus) -> list[str]:
    r = d.reading
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
        note,
    ]


def snapshot_table(s: Snapshot) -> str:
    lines = ["  ".join(_cell(name, w, a) for name, w, a in _COLUMNS).rstrip()]
    for d in s.devices:
        cells = device_row(d)
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
    return "\n".join(lines) + "\n"
