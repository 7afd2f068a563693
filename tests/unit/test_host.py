"""Tests for drivers.host: real psutil on this machine, plus the temperature-source seam."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import msgspec
import psutil
import pytest

from drivers.host import MAX_TEMPERATURES, HostReading, HostSampler


class FakeClock:
    """A monotonic clock the test advances by hand, so rate windows are exact."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def two_samples(sampler_clock: FakeClock, **kwargs: Any) -> tuple[HostReading, HostReading]:
    sampler = HostSampler(monotonic=sampler_clock, **kwargs)
    first = sampler.sample()
    # Let real counters move (CPU times tick at 1/100 s) and give the rates a 2 s window.
    time.sleep(0.05)
    sampler_clock.now += 2.0
    return first, sampler.sample()


def test_first_sample_has_no_rates() -> None:
    reading = HostSampler().sample()
    assert reading.rate_window_s is None
    assert reading.cpu_percent is None
    assert reading.disk_read_bytes_per_s is None
    assert reading.disk_write_bytes_per_s is None
    assert all(n.rx_bytes_per_s is None and n.tx_bytes_per_s is None for n in reading.net)


def test_second_sample_has_rates_over_the_monotonic_window() -> None:
    first, second = two_samples(FakeClock())
    assert second.rate_window_s == pytest.approx(2.0)
    assert second.cpu_percent is not None
    assert 0.0 <= second.cpu_percent <= 100.0
    if psutil.disk_io_counters() is not None:  # a host with no block devices has none
        assert second.disk_read_bytes_per_s is not None
        assert second.disk_read_bytes_per_s >= 0.0
        assert second.disk_write_bytes_per_s is not None
        assert second.disk_write_bytes_per_s >= 0.0
    assert [n.name for n in first.net] == [n.name for n in second.net]
    for interface in second.net:
        assert interface.rx_bytes_per_s is not None and interface.rx_bytes_per_s >= 0.0
        assert interface.tx_bytes_per_s is not None and interface.tx_bytes_per_s >= 0.0


def test_rates_are_counter_deltas_over_the_window() -> None:
    """rate × window equals the counter delta; bracket the sampler's own counter reads with
    reads just before and after each sample, since it does not expose them."""
    clock = FakeClock()
    sampler = HostSampler(monotonic=clock)
    net_b0, disk_b0 = psutil.net_io_counters(pernic=True), psutil.disk_io_counters()
    sampler.sample()
    net_a0, disk_a0 = psutil.net_io_counters(pernic=True), psutil.disk_io_counters()
    clock.now += 4.0
    net_b1, disk_b1 = psutil.net_io_counters(pernic=True), psutil.disk_io_counters()
    reading = sampler.sample()
    net_a1, disk_a1 = psutil.net_io_counters(pernic=True), psutil.disk_io_counters()

    for interface in reading.net:
        name = interface.name
        for attr, rate in (
            ("bytes_recv", interface.rx_bytes_per_s),
            ("bytes_sent", interface.tx_bytes_per_s),
        ):
            assert rate is not None
            low = getattr(net_b1[name], attr) - getattr(net_a0[name], attr)
            high = getattr(net_a1[name], attr) - getattr(net_b0[name], attr)
            assert low - 1e-6 <= rate * 4.0 <= high + 1e-6
    if disk_b0 is not None:
        for attr, rate in (
            ("read_bytes", reading.disk_read_bytes_per_s),
            ("write_bytes", reading.disk_write_bytes_per_s),
        ):
            assert rate is not None
            low = getattr(disk_b1, attr) - getattr(disk_a0, attr)
            high = getattr(disk_a1, attr) - getattr(disk_b0, attr)
            assert low - 1e-6 <= rate * 4.0 <= high + 1e-6


def test_clock_that_does_not_advance_gives_no_rates() -> None:
    clock = FakeClock()
    sampler = HostSampler(monotonic=clock)
    sampler.sample()
    second = sampler.sample()  # same monotonic time
    assert second.rate_window_s is None
    assert second.disk_read_bytes_per_s is None
    assert all(n.rx_bytes_per_s is None for n in second.net)


def test_reading_types_and_invariants() -> None:
    reading = HostSampler().sample()
    assert isinstance(reading, HostReading)
    assert abs(reading.taken_at - time.time()) < 60
    assert reading.hostname
    assert reading.uptime_s is None or reading.uptime_s >= 0
    assert reading.cpu_count is None or reading.cpu_count >= 1
    for load in (reading.load_1m, reading.load_5m, reading.load_15m):
        assert load is None or load >= 0
    assert reading.memory_total_bytes is not None and reading.memory_total_bytes > 0
    assert reading.memory_used_bytes is not None
    assert 0 <= reading.memory_used_bytes <= reading.memory_total_bytes
    assert reading.memory_percent is not None and 0 <= reading.memory_percent <= 100
    if reading.swap_total_bytes is not None and reading.swap_used_bytes is not None:
        assert 0 <= reading.swap_used_bytes <= max(reading.swap_total_bytes, 0)
    assert isinstance(reading.disks, tuple)
    for disk in reading.disks:
        assert disk.mountpoint.startswith("/") or ":" in disk.mountpoint
        assert 0 <= disk.used_bytes <= disk.total_bytes
        assert 0 <= disk.percent <= 100
    mountpoints = [d.mountpoint for d in reading.disks]
    assert len(mountpoints) == len(set(mountpoints))
    assert isinstance(reading.net, tuple)
    for interface in reading.net:
        assert interface.name not in {"lo", "lo0"}
        assert interface.rx_errors >= 0 and interface.tx_errors >= 0
    assert isinstance(reading.temperatures, tuple)


def test_no_pseudo_filesystems() -> None:
    pseudo = {"proc", "sysfs", "tmpfs", "devtmpfs", "overlay", "cgroup", "cgroup2", "squashfs"}
    fstype = {p.mountpoint: p.fstype for p in psutil.disk_partitions(all=True)}
    for disk in HostSampler().sample().disks:
        assert fstype.get(disk.mountpoint) not in pseudo


def test_disk_count_is_capped() -> None:
    assert len(HostSampler(max_disks=0).sample().disks) == 0


def test_interface_count_is_capped() -> None:
    assert len(HostSampler(max_interfaces=1).sample().net) <= 1


def test_reading_is_frozen_and_encodes_to_json() -> None:
    reading = HostSampler().sample()
    with pytest.raises(AttributeError):
        reading.hostname = "x"  # type: ignore[misc]
    decoded = msgspec.json.decode(msgspec.json.encode(reading), type=HostReading)
    assert decoded == reading


# ---- temperatures: this machine may have none, so the source is injectable ----------------------


def test_missing_or_empty_sensors_give_an_empty_tuple() -> None:
    assert HostSampler(sensors_temperatures=lambda: {}).sample().temperatures == ()
    # The real source: a VM or container usually has no sensors; either way, a tuple.
    assert isinstance(HostSampler().sample().temperatures, tuple)


def test_sensors_that_raise_give_an_empty_tuple() -> None:
    def broken() -> Mapping[str, Iterable[Any]]:
        raise OSError("no /sys/class/hwmon here")

    assert HostSampler(sensors_temperatures=broken).sample().temperatures == ()


def test_sensors_of_an_unexpected_shape_give_what_could_be_read() -> None:
    good = SimpleNamespace(label="Package id 0", current=51.0, high=80.0, critical=100.0)

    def odd() -> Mapping[str, Iterable[Any]]:
        return {"coretemp": [good], "weird": 5}  # type: ignore[dict-item]

    temperatures = HostSampler(sensors_temperatures=odd).sample().temperatures
    assert [t.label for t in temperatures] == ["coretemp/Package id 0"]


def test_sensor_entries_are_normalised() -> None:
    def source() -> Mapping[str, Iterable[Any]]:
        entry = SimpleNamespace
        return {
            "coretemp": [
                entry(label="Package id 0", current=51.0, high=80.0, critical=100.0),
                entry(label="", current=49.5, high=None, critical=None),
            ],
            "acpitz": [entry(label="", current=27.8, high=0.0, critical=float("nan"))],
            "nvme": [entry(label="Composite", current=None, high=None, critical=None)],
        }

    temperatures = HostSampler(sensors_temperatures=source).sample().temperatures
    assert [(t.label, t.current_c, t.high_c, t.critical_c) for t in temperatures] == [
        ("coretemp/Package id 0", 51.0, 80.0, 100.0),
        ("coretemp/1", 49.5, None, None),
        ("acpitz/0", 27.8, None, None),  # 0 and NaN thresholds mean "none declared"
    ]


def test_sensor_count_is_capped() -> None:
    many = [
        SimpleNamespace(label=f"c{i}", current=40.0, high=None, critical=None) for i in range(99)
    ]
    temperatures = HostSampler(sensors_temperatures=lambda: {"chip": many}).sample().temperatures
    assert len(temperatures) == MAX_TEMPERATURES


def test_concurrent_samples_are_serialised() -> None:
    from concurrent.futures import ThreadPoolExecutor

    sampler = HostSampler()
    with ThreadPoolExecutor(max_workers=4) as pool:
        readings = list(pool.map(lambda _: sampler.sample(), range(8)))
    assert sum(r.rate_window_s is None for r in readings) == 1


def test_drivers_host_never_imports_console() -> None:
    code = "import sys, drivers.host; print(any(m.split('.')[0] == 'console' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
