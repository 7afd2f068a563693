"""The store: the latest state of every device plus fixed-size numpy history rings.

The poller writes results here as they arrive; presenters ask for a `Snapshot` at their own
pace (1 Hz for the TUI). Freshness is judged at snapshot time, because a device that stops
answering goes stale without any new event arriving.

History is a preallocated float32 array per metric of shape (slots, devices): recording a
reading is an index write, and memory stays bounded however long the console runs. Slot-major,
because devices polled on the same interval fill the same slot at about the same time: the
writes of a poll cycle land in one band of each array (about 40 KB at 10,000 devices), which
stays in the CPU's cache, instead of one cold cache line per metric and poll in device-major
rows (bench/poll.py `--fleet-check --step-times`: record_ok). Reading one device's history
(the detail screen, one device at a time) is a strided gather instead, which costs nothing that
matters at 1 Hz.

A snapshot costs the devices that changed, not the fleet: every device's freshness at the
snapshot's time is judged for all devices at once (NumPy, over each device's last good
reading time and thresholds), and only the devices recorded since their status was last built,
or whose freshness moved, get a new `DeviceStatus`; the others reuse theirs, and the site
totals are summed from per-device contributions kept with each status. The result is exactly
what `status()` of every device and `site_totals` would give (the tests hold them equal).
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from console.model import (
    CommandedMode,
    DeviceKind,
    DeviceStatus,
    ErrorKind,
    Freshness,
    GpuView,
    Observed,
    SiteTotals,
    Snapshot,
    observe_asic,
    observe_gpu,
    totals_part,
)
from drivers.cgminer.controls import capabilities
from drivers.cgminer.reading import AsicReading
from drivers.host import HostReading

_NAN = float("nan")

# Freshness as a small integer, for judging every device at once (`_freshness_codes`).
_FRESHNESS: tuple[Freshness, ...] = (
    Freshness.FRESH,
    Freshness.STALE,
    Freshness.LOST,
    Freshness.PENDING,
)
_CODE = {f: i for i, f in enumerate(_FRESHNESS)}
_FRESH, _STALE, _LOST, _PENDING = range(4)
_NO_STATUS = -1  # no status built yet


def _view(array: npt.NDArray[np.floating], fmt: Literal["d", "f"]) -> memoryview[float]:
    """A writable 2-D float view of a C-contiguous `array` of that item format."""
    return array.data.cast("B").cast(fmt, array.shape)


class Metric(StrEnum):
    HASHRATE_HS = "hashrate_hs"
    TEMP_MAX_C = "temp_max_c"
    POWER_W = "power_w"


@dataclass(frozen=True, kw_only=True)
class DeviceInfo:
    """What the config says about a device: identity and its freshness thresholds."""

    device_id: str
    kind: DeviceKind
    name: str
    host: str
    port: int
    model: str | None
    interval_s: float
    stale_after_s: float
    lost_after_s: float
    privileged: bool = False
    tags: tuple[str, ...] = ()
    commanded: CommandedMode = CommandedMode.MINING


@dataclass
class _Live:
    """Mutable per-device bookkeeping; only the store touches it."""

    info: DeviceInfo
    row: int
    reading: AsicReading | None = None
    gpu: GpuView | None = None
    last_ok_at: float | None = None
    last_attempt_at: float | None = None
    last_error: str | None = None
    error_kind: ErrorKind | None = None
    consecutive_failures: int = 0
    polls_ok: int = 0
    polls_failed: int = 0
    version: int = 0  # bumped on every record, to know when the cached status is outdated
    cached: tuple[int, Freshness, DeviceStatus] | None = field(default=None)


def freshness_at(
    info: DeviceInfo, last_ok_at: float | None, attempted: bool, now: float
) -> Freshness:
    if last_ok_at is None:
        return Freshness.LOST if attempted else Freshness.PENDING
    age_s = now - last_ok_at
    if age_s <= info.stale_after_s:
        return Freshness.FRESH
    if age_s <= info.lost_after_s:
        return Freshness.STALE
    return Freshness.LOST


class Store:
    def __init__(
        self,
        site: str,
        devices: Sequence[DeviceInfo],
        *,
        history_slots: int = 720,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site = site
        self._clock = clock
        self._live = {d.device_id: _Live(d, i) for i, d in enumerate(devices)}
        if len(self._live) != len(devices):
            raise ValueError("device ids must be unique")
        self._row = {d.device_id: i for i, d in enumerate(devices)}
        self._lives = list(self._live.values())
        n = len(devices)
        # For the snapshot (see the module docstring): per row, what freshness needs (kept
        # up to date for the rows whose status is built), the freshness and status last built,
        # that status's part of the site totals, and the rows recorded since.
        self._last_ok = np.full(n, np.nan)
        self._attempted = np.zeros(n, dtype=np.bool_)
        self._stale_after = np.array([d.stale_after_s for d in devices], dtype=np.float64)
        self._lost_after = np.array([d.lost_after_s for d in devices], dtype=np.float64)
        self._built_code = np.full(n, _NO_STATUS, dtype=np.int8)
        # Scalar writes through memoryviews: a fraction of NumPy's indexing cost per write.
        self._last_ok_view: memoryview[float] = self._last_ok.data.cast("B").cast("d")
        self._attempted_view: memoryview[bool] = self._attempted.data.cast("B").cast("?")
        self._built_code_view: memoryview[int] = self._built_code.data.cast("B").cast("b")
        self._built: list[DeviceStatus | None] = [None] * n
        self._dirty: set[int] = set()
        self._hashrate_part: list[float] = [0.0] * n
        self._power_part: list[float] = [0.0] * n
        self._estimated_part: list[float] = [0.0] * n
        self._problem_part: list[bool] = [False] * n
        self._slots = history_slots
        shape = (history_slots, len(devices))  # slot-major: see the module docstring
        self._history: dict[Metric, npt.NDArray[np.float32]] = {
            m: np.full(shape, np.nan, dtype=np.float32) for m in Metric
        }
        self._history_t = np.full(shape, np.nan, dtype=np.float64)
        # Readings written per device so far (the ring position is this modulo the slots). The
        # writes go through memoryviews of the same buffers: a hundred or so nanoseconds per
        # value instead of numpy's scalar-indexing path, on every poll of every device.
        self._written = [0] * len(devices)
        self._t_view = _view(self._history_t, "d")
        self._hashrate_view = _view(self._history[Metric.HASHRATE_HS], "f")
        self._temp_view = _view(self._history[Metric.TEMP_MAX_C], "f")
        self._power_view = _view(self._history[Metric.POWER_W], "f")
        self.host: HostReading | None = None

    def device_ids(self) -> list[str]:
        return list(self._live)

    def record_ok(self, device_id: str, reading: AsicReading, at: float) -> None:
        live = self._live[device_id]
        live.reading = reading
        live.last_ok_at = live.last_attempt_at = at
        live.last_error = None
        live.error_kind = None
        live.consecutive_failures = 0
        live.polls_ok += 1
        live.version += 1
        self._dirty.add(live.row)
        self._append_history(device_id, reading, at)

    def record_gpu(
        self, device_id: str, view: GpuView, at: float, failure: tuple[ErrorKind, str] | None
    ) -> None:
        """One GPU tick: its view always (mode and workload are known even when NVML is not),
        and a good reading unless `failure` says why NVML gave no fresh sample."""
        live = self._live[device_id]
        live.gpu = view
        if failure is not None:
            self.record_failure(device_id, failure[0], failure[1], at)
            return
        live.last_ok_at = live.last_attempt_at = at
        live.last_error = None
        live.error_kind = None
        live.consecutive_failures = 0
        live.polls_ok += 1
        live.version += 1
        self._dirty.add(live.row)
        self._write_history(device_id, at, view.miner_hashrate_hs, view.temp_c, view.power_w)

    def record_failure(self, device_id: str, kind: ErrorKind, message: str, at: float) -> None:
        live = self._live[device_id]
        live.last_attempt_at = at
        live.last_error = message
        live.error_kind = kind
        live.consecutive_failures += 1
        live.polls_failed += 1
        live.version += 1
        self._dirty.add(live.row)

    def record_host(self, reading: HostReading) -> None:
        self.host = reading

    def set_commanded(self, device_id: str, mode: CommandedMode) -> None:
        live = self._live[device_id]
        live.info = replace(live.info, commanded=mode)
        live.version += 1
        self._dirty.add(live.row)

    def _append_history(self, device_id: str, reading: AsicReading, at: float) -> None:
        self._write_history(
            device_id, at, reading.hashrate_5s_hs, reading.temp_max_c, reading.power_w
        )

    def _write_history(
        self,
        device_id: str,
        at: float,
        hashrate_hs: float | None,
        temp_max_c: float | None,
        power_w: float | None,
    ) -> None:
        row = self._row[device_id]
        written = self._written[row]
        self._written[row] = written + 1
        slot = written % self._slots
        self._t_view[slot, row] = at
        self._hashrate_view[slot, row] = _NAN if hashrate_hs is None else hashrate_hs
        self._temp_view[slot, row] = _NAN if temp_max_c is None else temp_max_c
        self._power_view[slot, row] = _NAN if power_w is None else power_w

    def history(
        self, device_id: str, metric: Metric
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """(timestamps, values) oldest first; unreported values are NaN."""
        row = self._row[device_id]
        written = self._written[row]
        if written <= self._slots:
            order = np.arange(written)
        else:
            start = written % self._slots
            order = np.concatenate([np.arange(start, self._slots), np.arange(start)])
        return self._history_t[order, row], self._history[metric][order, row]

    def status(self, device_id: str, now: float | None = None) -> DeviceStatus:
        live = self._live[device_id]
        now = self._clock() if now is None else now
        fresh = freshness_at(live.info, live.last_ok_at, live.last_attempt_at is not None, now)
        cached = live.cached
        if cached is not None and cached[0] == live.version and cached[1] is fresh:
            return cached[2]
        info = live.info
        gpu = live.gpu
        observed = observe_asic(live.reading) if info.kind is DeviceKind.ASIC else observe_gpu(gpu)
        if fresh is Freshness.LOST:
            observed = Observed.UNKNOWN
        commanded = info.commanded
        model = live.reading.model if live.reading and live.reading.model else info.model
        if gpu is not None:
            commanded = CommandedMode(gpu.mode)
            model = gpu.nvml.static.name if gpu.nvml else model
        status = DeviceStatus(
            device_id=info.device_id,
            kind=info.kind,
            name=info.name,
            host=info.host,
            port=info.port,
            model=model,
            commanded=commanded,
            observed=observed,
            freshness=fresh,
            reading=live.reading,
            gpu=gpu,
            last_ok_at=live.last_ok_at,
            last_attempt_at=live.last_attempt_at,
            last_error=live.last_error,
            error_kind=live.error_kind,
            consecutive_failures=live.consecutive_failures,
            polls_ok=live.polls_ok,
            polls_failed=live.polls_failed,
            privileged=info.privileged,
            tags=info.tags,
            controls=(
                tuple(sorted(capabilities(live.reading.firmware)))
                if info.privileged and live.reading is not None
                else ()
            ),
        )
        live.cached = (live.version, fresh, status)
        self._built_status(live, fresh, status)
        return status

    def _built_status(self, live: _Live, fresh: Freshness, status: DeviceStatus) -> None:
        """Keep the snapshot's per-row state in step with the status just cached."""
        row = live.row
        self._dirty.discard(row)
        self._last_ok_view[row] = _NAN if live.last_ok_at is None else live.last_ok_at
        self._attempted_view[row] = live.last_attempt_at is not None
        self._built_code_view[row] = _CODE[fresh]
        self._built[row] = status
        hashrate, power, estimated = totals_part(status)
        self._hashrate_part[row] = hashrate
        self._power_part[row] = power
        self._estimated_part[row] = estimated
        self._problem_part[row] = status.problem

    def _freshness_codes(self, now: float) -> npt.NDArray[np.int8]:
        """`freshness_at` of every row at `now`, as codes (the same comparisons, vectorised)."""
        age_s = now - self._last_ok
        codes = np.full(age_s.shape, _LOST, dtype=np.int8)
        codes[age_s <= self._lost_after] = _STALE
        codes[age_s <= self._stale_after] = _FRESH
        never = np.isnan(self._last_ok)
        codes[never & ~self._attempted] = _PENDING
        return codes

    def snapshot(self, now: float | None = None) -> Snapshot:
        now = self._clock() if now is None else now
        lives = self._lives
        last_ok, attempted = self._last_ok_view, self._attempted_view
        for row in self._dirty:  # bring the freshness inputs of recorded rows up to date
            live = lives[row]
            last_ok[row] = _NAN if live.last_ok_at is None else live.last_ok_at
            attempted[row] = live.last_attempt_at is not None
        codes = self._freshness_codes(now)
        outdated = np.flatnonzero(codes != self._built_code).tolist()
        if outdated or self._dirty:
            for row in self._dirty.union(outdated):
                self.status(lives[row].info.device_id, now)
        # Every row has a status now: a row never built has no code and was outdated above.
        devices = cast(tuple[DeviceStatus, ...], tuple(self._built))
        counts = np.bincount(codes, minlength=len(_FRESHNESS)).tolist()
        add = operator.add
        totals = SiteTotals(
            devices=len(devices),
            fresh=counts[_FRESH],
            stale=counts[_STALE],
            lost=counts[_LOST],
            pending=counts[_PENDING],
            problems=sum(self._problem_part),
            # `totals_part` summed in device order from 0.0, as `site_totals` does: the same floats.
            hashrate_hs=functools.reduce(add, self._hashrate_part, 0.0),
            power_w=functools.reduce(add, self._power_part, 0.0),
            power_estimated_w=functools.reduce(add, self._estimated_part, 0.0),
        )
        return Snapshot(
            site=self.site, taken_at=now, devices=devices, totals=totals, host=self.host
        )
