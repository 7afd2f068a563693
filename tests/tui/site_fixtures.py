"""Deterministic console input for screenshot tests: a fixed snapshot and a site that serves it."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from console.model import CommandedMode, DeviceKind, ErrorKind, Snapshot
from console.store import DeviceInfo, Store
from drivers.cgminer.reading import AsicReading, BoardReading, Firmware, MinerState


def _reading(
    model: str, firmware: Firmware, hashrate_ths: float, power_w: float, **kw: object
) -> AsicReading:
    return AsicReading(
        firmware=firmware,
        make=model.split()[0],
        model=model,
        hashrate_5s_hs=hashrate_ths * 1e12,
        hashrate_avg_hs=hashrate_ths * 1e12,
        nominal_hashrate_hs=kw.pop("nominal_ths", hashrate_ths) * 1e12,  # type: ignore[operator]
        power_w=power_w,
        efficiency_j_per_th=power_w / hashrate_ths if hashrate_ths else None,
        state=MinerState.MINING,
        boards=(BoardReading(index=0, temp_chip_c=kw.pop("temp_c", 65.0)),),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def fixed_snapshot() -> Snapshot:
    """A deterministic site for screenshot tests: every state the table can show."""
    now = 1_790_000_000.0
    devices = [
        ("r1-s19jpro-01", "Antminer S19j Pro", Firmware.ANTMINER_STOCK, 104.2, 3068.0, True),
        ("r1-s21-02", "Antminer S21", Firmware.LUXOS, 201.3, 3511.0, False),
        ("r2-m50-03", "Whatsminer M50VH50", Firmware.WHATSMINER, 118.1, 3422.0, False),
        ("r2-s19xp-04", "Antminer S19 XP", Firmware.ANTMINER_STOCK, 93.4, 2010.0, True),
        ("r3-a1246-05", "AvalonMiner 1246", Firmware.AVALON, 83.0, 3236.0, False),
        ("r3-s19jpro-06", "Antminer S19j Pro", Firmware.BRAIINS, 0.0, 60.0, False),
    ]
    infos = [
        DeviceInfo(
            device_id=name,
            kind=DeviceKind.ASIC,
            name=name,
            host=f"192.0.2.{i + 1}",
            port=4028,
            model=model,
            interval_s=30,
            stale_after_s=75,
            lost_after_s=300,
            commanded=CommandedMode.MINING,
        )
        for i, (name, model, *_rest) in enumerate(devices)
    ]
    lost = DeviceInfo(
        device_id="r3-s21-07",
        kind=DeviceKind.ASIC,
        name="r3-s21-07",
        host="192.0.2.7",
        port=4028,
        model="Antminer S21",
        interval_s=30,
        stale_after_s=75,
        lost_after_s=300,
    )
    store = Store("lab", [*infos, lost])
    for name, model, firmware, ths, watts, estimated in devices:
        nominal = {"Antminer S19 XP": 140.0}.get(model, ths or 104.0)
        state = {"r3-s19jpro-06": MinerState.SLEEPING}.get(name, MinerState.MINING)
        reading = _reading(
            model, firmware, ths, watts, power_estimated=estimated, nominal_ths=nominal
        )
        if state is not MinerState.MINING:
            reading = AsicReading(**{**_fields(reading), "state": state})
        store.record_ok(name, reading, at=now - 3)
    store.record_failure(
        "r3-s21-07", ErrorKind.TIMEOUT, "no complete reply within 10 s", at=now - 1
    )
    store.record_ok(
        "r2-m50-03",
        _reading("Whatsminer M50VH50", Firmware.WHATSMINER, 118.1, 3422.0),
        at=now - 100,
    )
    return store.snapshot(now=now)


def _fields(reading: AsicReading) -> dict[str, object]:
    return {f: getattr(reading, f) for f in reading.__struct_fields__}


class FixedSite:
    """A site that never changes: for screenshots, where live noise would make every run differ."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def run(self) -> None:
        await asyncio.Event().wait()

    def snapshot(self) -> Snapshot:
        return self._snapshot
