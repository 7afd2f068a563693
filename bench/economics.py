"""Earnings benchmark: time to recompute the whole fleet's earnings, at 1k, 10k and 100k devices.

A synthetic fleet (70 % ASICs, 30 % GPUs across mining / AI / idle, 5 % unpriced, 5 % without
power, 20 queued AI jobs) is priced repeatedly, pinned to one core. Per size it reports the
median and 90th percentile of:

- `compute`     per-device columns only (revenue, cost, profit, J/TH, breakevens, GPU other-mode
                estimates, switch gain, breakeven utilisation), on inputs already prepared;
- `earnings`    recomputing the fleet's earnings for a new market: `fleet_earnings` = compute
                + fleet totals + the three default what-ifs, on the same inputs;
- `+prepare`    the same on fresh inputs (what each new snapshot pays): adds the input-only
                preparation (NaN-free copies, weights, the GPU subset);
- `build`       snapshot → `FleetInputs` with 1 % of the devices holding a new reading (the
                incremental builder; a Python pass over the devices' status objects);
- `accrue`      one accrual step (`Integrator.step`) with 1 % new readings, SQL rows prepared.

    ./dev bench economics
    ./dev bench economics --sizes 1000 10000 100000 --repeat 50
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from console.accrual import Integrator  # noqa: E402
from console.alloc import keep_freed_buffers  # noqa: E402
from console.config import MarketConfig, PowerConfig  # noqa: E402
from console.economics import (  # noqa: E402
    KIND_GPU,
    FleetInputs,
    JobOffers,
    MarketParams,
    blank_columns,
    compute,
    fleet_earnings,
)
from console.fleet_inputs import FleetInputsBuilder  # noqa: E402
from console.market import REFERENCE_AS_OF, MarketSnapshot, StaticMarket, market_at  # noqa: E402
from console.model import (  # noqa: E402
    CommandedMode,
    DeviceKind,
    DeviceStatus,
    Freshness,
    Observed,
    Snapshot,
    site_totals,
)
from drivers.cgminer.reading import AsicReading, Firmware, MinerState  # noqa: E402

GB = 1e9


def synthetic_fleet(n: int, seed: int = 1) -> FleetInputs:
    rng = np.random.default_rng(seed)
    cols = blank_columns(n)
    gpu = rng.random(n) < 0.3
    cols["kind"][:] = gpu.astype(np.int8) * KIND_GPU
    cols["priced"][:] = rng.random(n) >= 0.05
    cols["power_w"][:] = np.where(
        rng.random(n) < 0.05,
        np.nan,
        np.where(gpu, rng.uniform(60, 700, n), rng.uniform(3000, 3600, n)),
    )
    cols["power_estimated"][:] = rng.random(n) < 0.3
    cols["hashrate_hs"][:] = np.where(gpu, rng.uniform(5e7, 1e8, n), rng.uniform(9e13, 2.7e14, n))
    cols["gpu_mode"][:] = np.where(gpu, rng.integers(1, 4, n), 0)
    cols["gpu_algorithm"][:] = np.where(gpu, rng.integers(0, 4, n), -1)
    cols["gpu_mining_hashrate_hs"][:] = np.where(gpu, rng.uniform(5e7, 1e8, n), np.nan)
    cols["gpu_mining_power_w"][:] = np.where(gpu, rng.uniform(250, 350, n), np.nan)
    cols["gpu_job_rate_usd_per_hour"][:] = np.where(
        gpu & (rng.random(n) < 0.8), rng.uniform(0.2, 3.0, n), np.nan
    )
    cols["gpu_vram_bytes"][:] = np.where(gpu, rng.choice([24, 48, 80, 141], n) * GB, np.nan)
    cols["gpu_model"][:] = np.where(gpu, rng.integers(0, 6, n), -1)
    cols["gpu_power_limit_w"][:] = np.where(gpu, rng.choice([350, 450, 700], n), np.nan)
    cols["reading_at"][:] = REFERENCE_AS_OF - rng.uniform(0, 30, n)
    return FleetInputs(
        device_ids=tuple(f"dev-{i:06d}" for i in range(n)),
        gpu_algorithms=("kawpow", "etchash", "autolykos2", "firopow"),
        gpu_models=(
            "NVIDIA H100 80GB HBM3",
            "NVIDIA H200",
            "NVIDIA A100-SXM4-80GB",
            "NVIDIA L40S",
            "NVIDIA GeForce RTX 4090",
            "NVIDIA GeForce RTX 3090",
        ),
        **cols,
    )


def fresh(x: FleetInputs) -> FleetInputs:
    """New inputs with the same values (as the builder makes per snapshot): nothing cached."""
    return FleetInputs(
        device_ids=x.device_ids,
        gpu_algorithms=x.gpu_algorithms,
        gpu_models=x.gpu_models,
        **{name: getattr(x, name).copy() for name in blank_columns(0)},
    )


def job_offers(seed: int = 2) -> JobOffers:
    rng = np.random.default_rng(seed)
    return JobOffers(rng.uniform(0.2, 3.0, 20), rng.choice([16, 24, 48, 80, 141], 20) * GB)


def asic_snapshot(n: int, version: int, previous: Snapshot | None) -> Snapshot:
    """A store-like snapshot: the same status objects as `previous` except 1 % new readings."""
    rng = np.random.default_rng(version)
    if previous is None:
        devices = [asic_status(i, float(i)) for i in range(n)]
    else:
        devices = list(previous.devices)
        for i in rng.choice(n, max(1, n // 100), replace=False).tolist():
            devices[i] = asic_status(i, float(version))
    t = tuple(devices)
    return Snapshot(site="bench", taken_at=REFERENCE_AS_OF, devices=t, totals=site_totals(t[:1]))


def asic_status(i: int, at: float) -> DeviceStatus:
    return DeviceStatus(
        device_id=f"dev-{i:06d}",
        kind=DeviceKind.ASIC,
        name=f"dev-{i:06d}",
        host="127.0.0.1",
        port=4028,
        model="Antminer S21",
        commanded=CommandedMode.MINING,
        observed=Observed.HASHING,
        freshness=Freshness.FRESH,
        reading=AsicReading(
            firmware=Firmware.ANTMINER_STOCK,
            make="Antminer",
            hashrate_5s_hs=2e14 + i,
            power_w=3500.0,
            state=MinerState.MINING,
        ),
        last_ok_at=REFERENCE_AS_OF - 30 + at % 30,
    )


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples) * 1e3, samples[int(0.9 * (len(samples) - 1))] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="skip console.alloc.keep_freed_buffers (the hashpivot entry point applies it)",
    )
    args = parser.parse_args()
    tuned = False if args.default_malloc else keep_freed_buffers()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {args.core % (os.cpu_count() or 1)})

    market = market_at(StaticMarket.from_config(MarketConfig(), PowerConfig()), REFERENCE_AS_OF)
    offers = job_offers()
    print(
        f"numpy {np.__version__}, python {sys.version.split()[0]}, repeat {args.repeat}, "
        f"malloc keeps freed buffers: {tuned}"
    )
    print(f"{'devices':>8}  {'stage':<9} {'median ms':>10} {'p90 ms':>8}")
    for n in args.sizes:
        for stage, (median, p90) in measure(n, market, offers, args.repeat):
            print(f"{n:>8,}  {stage:<9} {median:>10.3f} {p90:>8.3f}")


def measure(
    n: int, market: MarketSnapshot, offers: JobOffers, repeat: int
) -> list[tuple[str, tuple[float, float]]]:
    params = MarketParams.of(market)
    x = synthetic_fleet(n)
    rows = [
        ("compute", timed(lambda: compute(x, params, offers), repeat)),
        ("earnings", timed(lambda: fleet_earnings(x, market, offers=offers), repeat)),
        ("+prepare", timed(lambda: fleet_earnings(fresh(x), market, offers=offers), repeat)),
    ]

    builder = FleetInputsBuilder()
    snap = asic_snapshot(n, 0, None)
    builder.build(snap)
    # Only the build is timed: the next snapshots are prepared outside the clock.
    snaps = []
    for v in range(1, repeat + 2):
        snap = asic_snapshot(n, v, snap)
        snaps.append(snap)
    pending = iter(snaps)
    rows.append(("build", timed(lambda: builder.build(next(pending)), repeat)))

    integrator = Integrator(x.device_ids, np.full(n, 75.0), dt.UTC, REFERENCE_AS_OF)
    c = compute(x, params, offers)
    reading_at = x.reading_at.copy()
    integrator.step(reading_at, c.revenue_usd_per_day, c.power_cost_usd_per_day, REFERENCE_AS_OF)
    rng = np.random.default_rng(3)

    def accrue_step() -> None:
        picked = rng.choice(n, max(1, n // 100), replace=False)
        reading_at[picked] += 30.0
        integrator.step(
            reading_at, c.revenue_usd_per_day, c.power_cost_usd_per_day, REFERENCE_AS_OF + 60
        )

    rows.append(("accrue", timed(accrue_step, repeat)))
    return rows


if __name__ == "__main__":
    main()
