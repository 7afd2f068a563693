"""Deterministic console input for screenshot tests: a fixed site with history and an audit log.

`fixed_store()` builds a real `Store` with half an hour of readings per device at a fixed
clock; `fixed_market()` a market with live, config and default figures of known ages;
`price()` prices a store snapshot with the real earnings model (and a fixed accrual for
today); `fixed_profit_history()` prices every point of the store's history into a real
`ProfitHistory`. `FixedSite` serves its one priced snapshot forever, with a real `ActionPath`
over a real SQLite `AuditLog` (in the test's tmp dir) so the detail screen's audit list is
real too.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import Self

import msgspec
import numpy as np
import numpy.typing as npt

from console.actions import ActionPath, AuditEntry
from console.audit import AuditLog
from console.config import MarketConfig, PowerConfig
from console.economics import (
    KIND_ASIC,
    AccruedToday,
    FleetInputs,
    JobOffers,
    MarketParams,
    blank_columns,
    compute,
    fleet_earnings,
)
from console.events import EventHub
from console.fleet_inputs import FleetInputsBuilder, GpuEconomics
from console.gpu_site import GpuSide
from console.market import Figure, LiveValues, MarketSnapshot, StaticMarket, market_at
from console.mining_memory import MiningMemory
from console.model import (
    CommandedMode,
    DeviceKind,
    DeviceStatus,
    ErrorKind,
    GpuJobView,
    GpuView,
    Snapshot,
)
from console.profit_history import ProfitHistory
from console.store import DeviceInfo, Metric, Store
from console.workloads.events import EventBus
from console.workloads.queue import Job, JobState
from drivers.cgminer.reading import (
    AsicReading,
    BoardReading,
    Firmware,
    MinerState,
    PoolReading,
)
from drivers.gpu_reading import (
    GpuHealth,
    GpuProcess,
    GpuReading,
    GpuSample,
    GpuStatic,
    XidEvent,
)

NOW = 1_790_000_000.0
HISTORY_POINTS = 60
HISTORY_STEP_S = 30.0
DETAIL_DEVICE = "r1-s21-02"
"""The privileged LuxOS miner the detail and modal screenshots show."""


def _boards(ths: float, temp_c: float, count: int = 3, short_board: int | None = None) -> tuple:
    per = ths / count * 1e12
    boards = []
    for i in range(count):
        chips = 126 - (2 if i == short_board else 0)
        boards.append(
            BoardReading(
                index=i,
                hashrate_hs=per,
                nominal_hashrate_hs=per,
                temp_board_c=temp_c - 12 + i,
                temp_chip_c=temp_c - 2 + i if i < count - 1 else temp_c,
                chips_found=chips,
                chips_expected=126,
                hardware_errors=17 * (i + 1),
                frequency_mhz=490.0,
                serial=f"SN{2401000 + i:07d}",
            )
        )
    return tuple(boards)


def _pools(name: str) -> tuple[PoolReading, ...]:
    return (
        PoolReading(
            index=0,
            url="stratum+tcp://pool.example.net:3333",
            user=f"site.{name}",
            status="Alive",
            active=True,
            priority=0,
            accepted=48_211,
            rejected=12,
            stale=3,
        ),
        PoolReading(
            index=1,
            url="stratum+tcp://backup.example.org:443",
            user=f"site.{name}",
            status="Alive",
            priority=1,
            accepted=0,
            rejected=0,
            stale=0,
        ),
        PoolReading(
            index=2,
            url="stratum+tcp://old.example.com:3333",
            user="",
            status="Dead",
            priority=2,
        ),
    )


def _reading(
    model: str,
    firmware: Firmware,
    hashrate_ths: float,
    power_w: float,
    *,
    name: str = "",
    nominal_ths: float | None = None,
    temp_c: float = 65.0,
    power_estimated: bool = False,
    state: MinerState = MinerState.MINING,
    short_board: int | None = None,
) -> AsicReading:
    return AsicReading(
        firmware=firmware,
        make=model.split()[0],
        model=model,
        firmware_version="2024.6.3" if firmware is Firmware.LUXOS else None,
        hashrate_5s_hs=hashrate_ths * 1e12,
        hashrate_avg_hs=hashrate_ths * 1e12,
        nominal_hashrate_hs=(nominal_ths if nominal_ths is not None else hashrate_ths) * 1e12,
        power_w=power_w,
        power_estimated=power_estimated,
        efficiency_j_per_th=power_w / hashrate_ths if hashrate_ths else None,
        state=state,
        boards=_boards(hashrate_ths, temp_c, short_board=short_board),
        fans_rpm=(4320, 4380, 4290, 4410),
        accepted=48_211,
        rejected=12,
        stale=3,
        hardware_errors=102,
        uptime_s=5 * 86400 + 3 * 3600 + 17 * 60,
        pools=_pools(name),
    )


# name, model, firmware, TH/s, W, power estimated
_DEVICES = [
    ("r1-s19jpro-01", "Antminer S19j Pro", Firmware.ANTMINER_STOCK, 104.2, 3068.0, True),
    (DETAIL_DEVICE, "Antminer S21", Firmware.LUXOS, 201.3, 3511.0, False),
    ("r2-m50-03", "Whatsminer M50VH50", Firmware.WHATSMINER, 118.1, 3422.0, False),
    ("r2-s19xp-04", "Antminer S19 XP", Firmware.ANTMINER_STOCK, 93.4, 2010.0, True),
    ("r3-a1246-05", "AvalonMiner 1246", Firmware.AVALON, 83.0, 3236.0, False),
    ("r3-s19jpro-06", "Antminer S19j Pro", Firmware.BRAIINS, 0.0, 60.0, False),
]


GPU_MINING = "g-4090-01"
GPU_AI = "g-a100-02"
GPU_UUIDS = {
    GPU_MINING: "GPU-6b1f0c2e-4a1d-4c55-9e2b-0d6c1a7f4090",
    GPU_AI: "GPU-0a9d3b7c-2e8f-4b11-8c3d-5f4e2a1b0a10",
}
GIB = 2**30


def _gpu_static(name: str) -> GpuStatic:
    a100 = name == GPU_AI
    return GpuStatic(
        uuid=GPU_UUIDS[name],
        index=1 if a100 else 0,
        name="NVIDIA A100 80GB PCIe" if a100 else "NVIDIA GeForce RTX 4090",
        pci_bus_id="00000000:02:00.0" if a100 else "00000000:01:00.0",
        memory_total_bytes=80 * GIB if a100 else 24 * GIB,
        power_limit_min_w=150.0,
        power_limit_max_w=300.0 if a100 else 600.0,
        power_limit_default_w=300.0 if a100 else 450.0,
        temp_slowdown_c=88.0 if a100 else 90.0,
        driver_version="550.127.05",
    )


def fixed_jobs() -> list[Job]:
    """The AI queue of the fixed site: one running on the A100, two waiting, one done."""

    def job(job_id: int, name: str, customer: str, rate: float, state: JobState, **kw: object):  # type: ignore[no-untyped-def]
        fields: dict[str, object] = {
            "id": job_id,
            "name": name,
            "argv": ("python", "train.py"),
            "env": {},
            "customer": customer,
            "rate_usd_per_gpu_hour": rate,
            "min_vram_bytes": int(16e9),
            "priority": 0,
            "checkpoint_signal": "SIGTERM",
            "grace_s": 60.0,
            "checkpoint_dir": f"/var/lib/hashpivot/jobs/{job_id}/checkpoint",
            "log_path": f"/var/lib/hashpivot/jobs/{job_id}/job.log",
            "progress_path": f"/var/lib/hashpivot/jobs/{job_id}/progress",
            "state": state,
            "progress": 0.0,
            "gpu_uuid": None,
            "process": None,
            "submitted_at": NOW - 7200 + job_id,
            "updated_at": NOW - 60,
            "started_at": None,
            "finished_at": None,
            "runtime_s": 0.0,
            "earned_usd": 0.0,
            "attempts": 0,
            "last_error": None,
            "cancel_requested": False,
            "submitted_by": "night-shift",
        }
        fields.update(kw)
        return Job(**fields)  # type: ignore[arg-type]

    return [
        job(1, "llama-finetune", "acme", 1.10, JobState.RUNNING, gpu_uuid=GPU_UUIDS[GPU_AI],
            started_at=NOW - 5400, progress=0.42, attempts=1, runtime_s=1800.0,
            earned_usd=0.55, priority=10),
        job(2, "sdxl-batch", "pixelworks", 0.45, JobState.QUEUED, priority=5,
            min_vram_bytes=int(20e9)),
        job(3, "eval-suite", "acme", 0.30, JobState.REQUEUED, progress=0.1, runtime_s=600.0,
            earned_usd=0.05, attempts=1),
        job(4, "embed-corpus", "lexicon", 0.80, JobState.DONE, progress=1.0, runtime_s=3600.0,
            earned_usd=0.80, finished_at=NOW - 900, attempts=1),
    ]  # fmt: skip


def gpu_view(name: str, at: float, wobble: float = 0.0) -> GpuView:
    """A mining RTX 4090 and an A100 running job 1, as the GPU side would record them."""
    a100 = name == GPU_AI
    static = _gpu_static(name)
    power = (238.0 if a100 else 312.0) * (1 + 0.02 * wobble)
    processes = (
        (GpuProcess(pid=41877, used_memory_bytes=61 * GIB, kind="C", name="python"),)
        if a100
        else (GpuProcess(pid=39120, used_memory_bytes=5 * GIB, kind="C", name="t-rex"),)
    )
    sample = GpuSample(
        taken_at=at,
        power_w=power,
        power_limit_w=300.0 if a100 else 450.0,
        energy_j=3.6e6 * (41.5 if a100 else 63.2),
        temp_gpu_c=(67.0 if a100 else 61.0) + 2 * wobble,
        util_gpu_pct=97.0 if a100 else 100.0,
        util_memory_pct=71.0 if a100 else 88.0,
        memory_used_bytes=processes[0].used_memory_bytes,
        memory_total_bytes=static.memory_total_bytes,
        clock_sm_mhz=1410.0 if a100 else 2520.0,
        clock_memory_mhz=1512.0 if a100 else 10501.0,
        fan_pct=None if a100 else 64.0,
        pstate=0 if a100 else 2,
        throttle_reasons=("PWR",) if not a100 else (),
        pcie_generation=4,
        pcie_width=16,
        ecc_corrected=0 if a100 else None,
        ecc_uncorrected=0 if a100 else None,
        processes=processes,
        unsupported=("fan_pct",) if a100 else ("ecc_corrected", "ecc_uncorrected"),
    )
    reading = GpuReading(
        static=static,
        health=GpuHealth.OK,
        sample=sample,
        last_xid=XidEvent(xid=43, at=NOW - 86400 * 2) if a100 else None,
    )
    if a100:
        job = fixed_jobs()[0]
        return GpuView(
            uuid=static.uuid,
            nvml=reading,
            mode="ai",
            state="AI_RUNNING",
            switching=False,
            mode_since=NOW - 5400,
            job=GpuJobView(
                id=job.id,
                name=job.name,
                customer=job.customer,
                state=job.state.value,
                rate_usd_per_gpu_hour=job.rate_usd_per_gpu_hour,
                progress=job.progress,
                runtime_s=job.runtime_s_at(NOW),
                earned_usd=job.earned_usd_at(NOW),
            ),
        )
    return GpuView(
        uuid=static.uuid,
        nvml=reading,
        mode="mining",
        state="MINING",
        switching=False,
        mode_since=NOW - 3 * 86400,
        miner_pid=39120,
        miner_hashrate_hs=61.3e6 * (1 + 0.01 * wobble),
        miner_algorithm="kawpow",
    )


def gpu_economics(status: DeviceStatus) -> GpuEconomics | None:
    """The GPU side's own pricing of a GPU status (`GpuSide.economics`), with mining
    figures remembered for the A100 as if it had mined before."""
    memory = MiningMemory()
    memory.hashrate_hs[GPU_UUIDS[GPU_AI]] = 48.0e6
    memory.algorithm[GPU_UUIDS[GPU_AI]] = "kawpow"
    memory.power_w[GPU_UUIDS[GPU_AI]] = 250.0
    return GpuSide.economics(SimpleNamespace(_mining=memory), status)  # type: ignore[arg-type]


def fixed_store() -> Store:
    """Every state the table can show, and half an hour of history for each miner."""
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
            privileged=name == DETAIL_DEVICE,
            tags=("row-1", "immersion") if name == DETAIL_DEVICE else (),
        )
        for i, (name, model, *_rest) in enumerate(_DEVICES)
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
    gpus = [
        DeviceInfo(
            device_id=name,
            kind=DeviceKind.GPU,
            name=name,
            host="localhost",
            port=4067 + i,
            model=None,
            interval_s=1.0,
            stale_after_s=5.0,
            lost_after_s=120.0,
            privileged=False,
        )
        for i, name in enumerate((GPU_MINING, GPU_AI))
    ]
    store = Store("lab", [*infos, lost, *gpus])
    for step in range(HISTORY_POINTS):
        at = NOW - 1 - (HISTORY_POINTS - 1 - step) * HISTORY_STEP_S
        wobble = math.sin(step / 6.0)
        for name in (GPU_MINING, GPU_AI):
            store.record_gpu(name, gpu_view(name, at, wobble), at, None)
    for name, model, firmware, ths, watts, estimated in _DEVICES:
        nominal = {"Antminer S19 XP": 140.0}.get(model, ths or 104.0)
        state = {"r3-s19jpro-06": MinerState.SLEEPING}.get(name, MinerState.MINING)
        for step in range(HISTORY_POINTS):
            # A slow deterministic wobble, so the sparklines have a shape to compare.
            wobble = math.sin(step / 6.0 + len(name))
            last = step == HISTORY_POINTS - 1
            reading = _reading(
                model,
                firmware,
                ths if last else max(0.0, ths * (1 + 0.03 * wobble)),
                watts if last else watts * (1 + 0.01 * wobble),
                name=name,
                nominal_ths=nominal,
                temp_c=65.0 if last else 65.0 + 3 * wobble,
                power_estimated=estimated,
                state=state,
                short_board=1 if name == DETAIL_DEVICE else None,
            )
            # r2-m50-03 stopped answering 100 s ago: stale, with its history ending there.
            end = NOW - (100 if name == "r2-m50-03" else 3)
            at = end - (HISTORY_POINTS - 1 - step) * HISTORY_STEP_S
            store.record_ok(name, reading, at=at)
    store.record_failure(
        "r3-s21-07", ErrorKind.TIMEOUT, "no complete reply within 10 s", at=NOW - 1
    )
    return store


ACCRUED_S = 3 * 3600.0
"""Today's accrual in the fixed snapshot: three hours of each priced device's current rate."""


def fixed_market(btc_price_usd: float = 91_580.0) -> MarketSnapshot:
    """A live BTC price 12 s old and chain data 6 min old (mempool.space), the power price
    from config (no date), the rest reference defaults."""
    static = StaticMarket.from_config(MarketConfig(), PowerConfig(price_usd_per_kwh=0.05))
    live = LiveValues(
        btc_price_usd=Figure(value=btc_price_usd, source="mempool.space", as_of=NOW - 12),
        network_difficulty=Figure(value=146.47e12, source="mempool.space", as_of=NOW - 360),
        fees_per_block_btc=Figure(value=0.0172, source="mempool.space", as_of=NOW - 360),
        block_height=Figure(value=915_000, source="mempool.space", as_of=NOW - 360),
    )
    return market_at(static, NOW, live=live)


def job_offers() -> JobOffers:
    waiting = [j for j in fixed_jobs() if j.state in (JobState.QUEUED, JobState.REQUEUED)]
    return JobOffers(
        np.array([j.rate_usd_per_gpu_hour for j in waiting]),
        np.array([float(j.min_vram_bytes) for j in waiting]),
    )


def price(snapshot: Snapshot, market: MarketSnapshot | None = None) -> Snapshot:
    """`snapshot` priced like the site prices it, with three hours accrued today."""
    market = market or fixed_market()
    inputs = FleetInputsBuilder(gpu_economics).build(snapshot)
    bare = fleet_earnings(inputs, market, offers=job_offers())
    c = bare.columns
    share = ACCRUED_S / 86_400
    accrued = AccruedToday(
        day="2026-09-21",
        timezone="UTC",
        revenue_usd=np.nan_to_num(c.revenue_usd_per_day) * share,
        power_cost_usd=np.nan_to_num(c.power_cost_usd_per_day) * share,
        covered_s=np.where(inputs.priced, ACCRUED_S, 0.0),
        # A device without a power figure accrued revenue, but no cost.
        cost_covered_s=np.where(
            inputs.priced & ~np.isnan(c.power_cost_usd_per_day), ACCRUED_S, 0.0
        ),
        persisted=True,
    )
    earnings = fleet_earnings(inputs, market, offers=job_offers(), accrued=accrued)
    return msgspec.structs.replace(snapshot, market=market, earnings=earnings)


def fixed_profit_history(store: Store, market: MarketSnapshot, priced: Snapshot) -> ProfitHistory:
    """Every point of the store's history priced under `market`, as `SitePricing` records it
    (one point per device and reading): ASICs through the real earnings formulas; GPUs from
    their priced row now, with the power cost following each point's measured power."""
    ids = store.device_ids()
    kinds = {d.device_id: d.kind for d in priced.devices}
    history = ProfitHistory(ids)
    series = [
        (store.history(d, Metric.HASHRATE_HS), store.history(d, Metric.POWER_W)[1]) for d in ids
    ]
    params = MarketParams.of(market)
    e = priced.earnings
    assert e is not None
    for step in range(HISTORY_POINTS):
        columns = blank_columns(len(ids))
        gpu_profit = np.full(len(ids), np.nan)
        for row, ((times, hashrate), power) in enumerate(series):
            if step >= len(times):
                continue
            columns["reading_at"][row] = float(times[step])
            if kinds[ids[row]] is DeviceKind.GPU:
                money = e.by_id(ids[row])
                now_w = power[-1]
                if money is not None and money.revenue_usd_per_day is not None and now_w:
                    cost = (money.power_cost_usd_per_day or 0.0) * float(power[step] / now_w)
                    gpu_profit[row] = money.revenue_usd_per_day - cost
                continue
            columns["kind"][row] = KIND_ASIC
            columns["priced"][row] = True
            columns["hashrate_hs"][row] = float(hashrate[step])
            columns["power_w"][row] = float(power[step])
        x = FleetInputs(device_ids=tuple(ids), **columns)
        profit = compute(x, params).profit_usd_per_day.copy()
        is_gpu = np.array([kinds[d] is DeviceKind.GPU for d in ids])
        profit[is_gpu] = gpu_profit[is_gpu]
        history.record(x.reading_at, profit)
    return history


def fixed_snapshot() -> Snapshot:
    return price(fixed_store().snapshot(now=NOW))


AUDIT_SEED = (
    AuditEntry(
        at=NOW - 3600,
        actor="night-shift",
        origin="tui",
        action="asic.curtail",
        target=DETAIL_DEVICE,
        reason="grid peak",
        params={},
        ok=True,
        code="ok",
        message=f"{DETAIL_DEVICE}: curtail accepted",
    ),
    AuditEntry(
        at=NOW - 1800,
        actor="night-shift",
        origin="tui",
        action="asic.wake",
        target=DETAIL_DEVICE,
        reason="",
        params={},
        ok=True,
        code="ok",
        message=f"{DETAIL_DEVICE}: wake accepted",
    ),
    AuditEntry(
        at=NOW - 600,
        actor="ha-automation",
        origin="mqtt",
        action="asic.switch_pool",
        target=DETAIL_DEVICE,
        reason="failover test",
        params={"pool": 2},
        ok=False,
        code="failed",
        message=f"{DETAIL_DEVICE}: switch_pool refused by the firmware: pool 2 is dead",
    ),
)


class FixedWorkloads:
    """The fixed queue and a step-event bus nothing publishes on (a snapshot never moves)."""

    def __init__(self) -> None:
        self.events = EventBus()
        self.fixed = fixed_jobs()

    async def jobs(self) -> list[Job]:
        return list(self.fixed)


class FixedGpus:
    def __init__(self) -> None:
        self.workloads = FixedWorkloads()


class FixedSite:
    """A site that never changes: for screenshots, where live noise would make every run differ."""

    def __init__(self, state_dir: Path) -> None:
        self.store = fixed_store()
        self.market = fixed_market()
        self._snapshot = price(self.store.snapshot(now=NOW), self.market)
        self._profit = fixed_profit_history(self.store, self.market, self._snapshot)
        self.audit = AuditLog.in_state_dir(state_dir)
        self.actions = ActionPath(self.audit, clock=lambda: NOW)
        self.events = EventHub()
        self.gpus = FixedGpus()

    async def seed_audit(self) -> None:
        for entry in AUDIT_SEED:
            await self.audit.record(entry)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.audit.close()

    async def run(self) -> None:
        await asyncio.Event().wait()

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def reprice(self) -> None:
        """Take the store's snapshot again (after a test recorded a new reading)."""
        self._snapshot = price(self.store.snapshot(now=NOW), self.market)

    def profit_history(
        self, device_id: str
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        return self._profit.history(device_id)
