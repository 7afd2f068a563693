"""Host metrics (psutil) of the machine running hashpivot, usually the GPU rig's host.

`HostSampler.sample()` is blocking (psutil reads /proc and /sys): the caller runs it in an
executor. Each call returns one immutable `HostReading`.

Rates (CPU %, disk and network bytes per second) are deltas between consecutive samples of the
same sampler over a monotonic clock, so the first sample has them as `None`, never 0. The CPU
percentage is computed from `psutil.cpu_times()` here rather than with
`psutil.cpu_percent(interval=None)`: that function keeps its "previous sample" in module-level
state, so any other caller in the process would silently shorten our window. The arithmetic is
psutil's own (busy = total - idle - iowait; guest time is already counted in user time).

Anything psutil cannot give on this OS, in this container, or with these permissions is
`None` (or an empty tuple); a failing psutil call never raises out of `sample()`.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Final, TypeVar

import msgspec
import psutil

__all__ = [
    "DiskUsage",
    "HostReading",
    "HostSampler",
    "NetInterface",
    "Temperature",
]

MAX_DISKS: Final = 16
"""Filesystems reported at most; a host with many mounts keeps the reading small."""
MAX_INTERFACES: Final = 32
"""Network interfaces reported at most (container hosts can have hundreds of veth pairs)."""
MAX_TEMPERATURES: Final = 64
"""Temperature sensors reported at most."""

# Filesystems that are real storage yet not worth reporting: read-only images (snaps, live
# media) are always 100 % full by design.
_SKIP_FSTYPES: Final = frozenset({"squashfs", "iso9660", "udf", "erofs", "cramfs"})
_SKIP_DEVICE_PREFIXES: Final = ("/dev/loop",)


class DiskUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Usage of one local filesystem."""

    mountpoint: str
    used_bytes: int
    total_bytes: int
    percent: float
    """Used share as the OS reports it (excludes blocks reserved for root, like `df`)."""


class NetInterface(msgspec.Struct, frozen=True, kw_only=True):
    """Traffic of one network interface (loopback excluded)."""

    name: str
    rx_bytes_per_s: float | None
    """Received bytes per second since the previous sample; None on the first sample."""
    tx_bytes_per_s: float | None
    """Sent bytes per second since the previous sample; None on the first sample."""
    rx_errors: int
    """Receive errors since the interface came up (cumulative)."""
    tx_errors: int
    """Transmit errors since the interface came up (cumulative)."""


class Temperature(msgspec.Struct, frozen=True, kw_only=True):
    """One temperature sensor."""

    label: str
    """`chip/label`, e.g. `coretemp/Package id 0`; `chip/N` (its index) when it has no label."""
    current_c: float
    high_c: float | None = None
    """The sensor's "high" threshold, when it declares one."""
    critical_c: float | None = None
    """The sensor's "critical" threshold, when it declares one."""


class HostReading(msgspec.Struct, frozen=True, kw_only=True):
    """One sample of the host. A value the OS does not give is None, never 0."""

    taken_at: float
    """Unix time of the sample, in seconds."""
    hostname: str
    uptime_s: float | None
    rate_window_s: float | None
    """Seconds since the previous sample: the window of every rate below; None on the first."""
    cpu_percent: float | None
    """Overall CPU busy share 0..100 since the previous sample (all cores together)."""
    cpu_count: int | None
    """Logical CPUs."""
    load_1m: float | None
    load_5m: float | None
    load_15m: float | None
    memory_used_bytes: int | None
    """Memory not available to new programs: total - available (what `percent` measures)."""
    memory_total_bytes: int | None
    memory_percent: float | None
    swap_used_bytes: int | None
    swap_total_bytes: int | None
    disks: tuple[DiskUsage, ...] = ()
    disk_read_bytes_per_s: float | None = None
    disk_write_bytes_per_s: float | None = None
    net: tuple[NetInterface, ...] = ()
    temperatures: tuple[Temperature, ...] = ()


_T = TypeVar("_T")


def _safe(fn: Callable[[], _T]) -> _T | None:
    """Call a psutil function; None when it fails.

    psutil raises a zoo of exceptions depending on OS, container and permissions (AccessDenied,
    OSError, NotImplementedError, RuntimeError on odd /proc files). Host metrics are context,
    not the product: one unreadable metric must cost only that metric.
    """
    try:
        return fn()
    except Exception:
        return None


def _rate(now: float | None, before: float | None, window_s: float | None) -> float | None:
    """Per-second rate of a cumulative counter; None without a window or after a reset."""
    if now is None or before is None or not window_s or window_s <= 0:
        return None
    delta = now - before
    if delta < 0:  # counter reset (interface re-created, driver reloaded): no honest rate
        return None
    return delta / window_s


def _cpu_busy_total(times: Any) -> tuple[float, float]:
    """(busy, total) CPU seconds, as psutil's cpu_percent computes them."""
    total = float(sum(times))
    # On Linux guest time is already included in user/nice: do not count it twice.
    total -= float(getattr(times, "guest", 0.0)) + float(getattr(times, "guest_nice", 0.0))
    busy = total - float(times.idle) - float(getattr(times, "iowait", 0.0))
    return busy, total


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _positive_or_none(value: Any) -> float | None:
    """A sensor threshold: None when absent, non-finite or non-positive (drivers report 0 for
    "no threshold")."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


class HostSampler:
    """Samples this machine's metrics; keeps the previous counters to compute rates.

    Thread-safe: concurrent `sample()` calls are serialised, so two executor threads can never
    interleave their deltas.
    """

    def __init__(
        self,
        *,
        sensors_temperatures: Callable[[], Mapping[str, Iterable[Any]]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_disks: int = MAX_DISKS,
        max_interfaces: int = MAX_INTERFACES,
    ) -> None:
        """
        Args:
            sensors_temperatures: source of temperature sensors in
                `psutil.sensors_temperatures()` shape; default psutil's, where this OS has it.
            monotonic: clock for rate windows (seconds).
            wall_clock: clock for `taken_at` (unix seconds).
            max_disks: filesystems reported at most.
            max_interfaces: network interfaces reported at most.
        """
        self._sensors_temperatures = sensors_temperatures or getattr(
            psutil, "sensors_temperatures", None
        )
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._max_disks = max_disks
        self._max_interfaces = max_interfaces
        self._lock = threading.Lock()
        self._hostname = socket.gethostname()
        self._prev_at: float | None = None
        self._prev_cpu: tuple[float, float] | None = None
        self._prev_disk_io: tuple[int, int] | None = None
        self._prev_net: dict[str, tuple[int, int]] = {}

    def sample(self) -> HostReading:
        """Take one sample (blocking; tens of milliseconds at most on a typical host)."""
        with self._lock:
            return self._sample()

    def _sample(self) -> HostReading:
        now = self._monotonic()
        window_s = now - self._prev_at if self._prev_at is not None else None
        if window_s is not None and window_s <= 0:
            window_s = None  # a clock that did not advance gives no rates
        taken_at = self._wall_clock()

        boot_time = _safe(psutil.boot_time)
        load = _safe(psutil.getloadavg)
        memory = _safe(psutil.virtual_memory)
        swap = _safe(psutil.swap_memory)

        memory_total = int(memory.total) if memory is not None else None
        reading = HostReading(
            taken_at=taken_at,
            hostname=self._hostname,
            uptime_s=max(0.0, taken_at - float(boot_time)) if boot_time else None,
            rate_window_s=window_s,
            cpu_percent=self._cpu_percent(),
            cpu_count=_safe(lambda: psutil.cpu_count(logical=True)),
            load_1m=float(load[0]) if load is not None else None,
            load_5m=float(load[1]) if load is not None else None,
            load_15m=float(load[2]) if load is not None else None,
            memory_used_bytes=(
                int(memory.total - memory.available) if memory is not None else None
            ),
            memory_total_bytes=memory_total,
            memory_percent=float(memory.percent) if memory is not None else None,
            swap_used_bytes=int(swap.used) if swap is not None else None,
            swap_total_bytes=int(swap.total) if swap is not None else None,
            disks=self._disks(),
            **self._disk_rates(window_s),
            net=self._net(window_s),
            temperatures=self._temperatures(),
        )
        self._prev_at = now
        return reading

    def _cpu_percent(self) -> float | None:
        times = _safe(psutil.cpu_times)
        if times is None:
            return None
        busy, total = _cpu_busy_total(times)
        previous, self._prev_cpu = self._prev_cpu, (busy, total)
        if previous is None:
            return None
        busy_delta, total_delta = busy - previous[0], total - previous[1]
        # CPU times tick at 1/100 s: two samples within one tick have no information.
        if total_delta <= 0:
            return None
        return min(100.0, max(0.0, 100.0 * busy_delta / total_delta))

    def _disks(self) -> tuple[DiskUsage, ...]:
        partitions = _safe(lambda: psutil.disk_partitions(all=False)) or []
        disks: list[DiskUsage] = []
        seen_devices: set[str] = set()
        for part in partitions:
            if len(disks) >= self._max_disks:
                break
            # all=False already drops pseudo filesystems (proc, sysfs, tmpfs, overlay...).
            if part.fstype in _SKIP_FSTYPES or part.device.startswith(_SKIP_DEVICE_PREFIXES):
                continue
            # The same device bind-mounted in several places is one filesystem.
            if part.device and part.device in seen_devices:
                continue
            usage = _safe(partial(psutil.disk_usage, part.mountpoint))
            if usage is None or not usage.total:
                continue
            seen_devices.add(part.device)
            disks.append(
                DiskUsage(
                    mountpoint=part.mountpoint,
                    used_bytes=int(usage.used),
                    total_bytes=int(usage.total),
                    percent=float(usage.percent),
                )
            )
        return tuple(disks)

    def _disk_rates(self, window_s: float | None) -> dict[str, float | None]:
        counters = _safe(lambda: psutil.disk_io_counters(perdisk=False))
        current = (
            (int(counters.read_bytes), int(counters.write_bytes)) if counters is not None else None
        )
        previous, self._prev_disk_io = self._prev_disk_io, current
        if current is None or previous is None:
            return {"disk_read_bytes_per_s": None, "disk_write_bytes_per_s": None}
        return {
            "disk_read_bytes_per_s": _rate(current[0], previous[0], window_s),
            "disk_write_bytes_per_s": _rate(current[1], previous[1], window_s),
        }

    def _net(self, window_s: float | None) -> tuple[NetInterface, ...]:
        counters = _safe(lambda: psutil.net_io_counters(pernic=True)) or {}
        interfaces: list[NetInterface] = []
        current: dict[str, tuple[int, int]] = {}
        for name, c in counters.items():
            if _is_loopback_name(name):
                continue
            if len(interfaces) >= self._max_interfaces:
                break
            rx, tx = int(c.bytes_recv), int(c.bytes_sent)
            current[name] = (rx, tx)
            # An interface that appeared since the last sample has no rate yet.
            prev_rx, prev_tx = self._prev_net.get(name, (None, None))
            interfaces.append(
                NetInterface(
                    name=name,
                    rx_bytes_per_s=_rate(rx, prev_rx, window_s),
                    tx_bytes_per_s=_rate(tx, prev_tx, window_s),
                    rx_errors=int(c.errin),
                    tx_errors=int(c.errout),
                )
            )
        self._prev_net = current
        return tuple(interfaces)

    def _temperatures(self) -> tuple[Temperature, ...]:
        source = self._sensors_temperatures
        if source is None:  # macOS/Windows builds of psutil have no sensors_temperatures
            return ()
        sensors = _safe(source)
        if not sensors:
            return ()
        readings: list[Temperature] = []
        try:
            for chip, entries in sensors.items():
                for index, entry in enumerate(entries):
                    current = _finite_or_none(getattr(entry, "current", None))
                    if current is None:
                        continue
                    label = getattr(entry, "label", "") or ""
                    readings.append(
                        Temperature(
                            label=f"{chip}/{label}" if label else f"{chip}/{index}",
                            current_c=current,
                            high_c=_positive_or_none(getattr(entry, "high", None)),
                            critical_c=_positive_or_none(getattr(entry, "critical", None)),
                        )
                    )
                    if len(readings) >= MAX_TEMPERATURES:
                        return tuple(readings)
        except (TypeError, ValueError, AttributeError):
            # A sensor source of an unexpected shape: keep what was read before it.
            pass
        return tuple(readings)


def _is_loopback_name(name: str) -> bool:
    """`lo` on Linux, `lo0` on macOS/BSD, `Loopback Pseudo-Interface 1` on Windows."""
    return (
        name == "lo"
        or (name.startswith("lo") and name[2:].isdigit())
        or (name.lower().startswith("loopback"))
    )
