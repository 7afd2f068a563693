"""Per-device profit history: a fixed-size numpy ring of (reading time, profit USD/day).

The store keeps what devices report (hashrate, temperature, power); profit is not reported,
it is priced, so its history lives here, next to the pricing that computes it. `SitePricing`
records one point per device each time that device has a new reading (its `reading_at`
moved), with the profit the earnings model gave it under the market of that moment: a device
polled every 30 s gets a point every 30 s, whatever rate the pricing runs at.

Memory is bounded like the store's rings: one float32 value and one float64 time per slot
and device, preallocated. Recording is vectorised (no per-device Python loop); reading one
device's history is one fancy index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

DEFAULT_SLOTS = 720
"""Points per device: six hours at a 30 s poll, like the store's rings."""


class ProfitHistory:
    def __init__(self, device_ids: Sequence[str], slots: int = DEFAULT_SLOTS) -> None:
        if slots < 1:
            raise ValueError(f"a profit history needs at least one slot, got {slots}")
        self._row = {device_id: i for i, device_id in enumerate(device_ids)}
        if len(self._row) != len(device_ids):
            raise ValueError("device ids must be unique")
        n = len(device_ids)
        self._slots = slots
        self._t = np.full((n, slots), np.nan)
        self._usd_per_day = np.full((n, slots), np.nan, dtype=np.float32)
        self._next = np.zeros(n, dtype=np.int64)
        self._last_at = np.full(n, -np.inf)

    def record(self, reading_at: F64, profit_usd_per_day: F64) -> int:
        """One point for every device whose reading is newer than its last point; returns how
        many were recorded. Arrays are in device order; a NaN reading time (no reading yet)
        records nothing, a NaN profit (power unknown, device not priced) is kept as NaN."""
        if reading_at.shape != self._last_at.shape or profit_usd_per_day.shape != reading_at.shape:
            raise ValueError(
                f"profit history of {self._last_at.size} devices got arrays of shape "
                f"{reading_at.shape} and {profit_usd_per_day.shape}"
            )
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(reading_at > self._last_at)  # NaN compares False
        if rows.size == 0:
            return 0
        slots = self._next[rows] % self._slots
        self._t[rows, slots] = reading_at[rows]
        self._usd_per_day[rows, slots] = profit_usd_per_day[rows]
        self._next[rows] += 1
        self._last_at[rows] = reading_at[rows]
        return int(rows.size)

    def history(self, device_id: str) -> tuple[F64, F32]:
        """(reading times, profit USD/day) oldest first; NaN where the profit was unknown."""
        row = self._row[device_id]
        written = int(self._next[row])
        if written <= self._slots:
            order = np.arange(written)
        else:
            start = written % self._slots
            order = np.concatenate([np.arange(start, self._slots), np.arange(start)])
        return self._t[row, order], self._usd_per_day[row, order]
