"""The physical state of one simulated miner, advanced lazily from a monotonic clock.

Nothing here runs on a timer: a miner's state is integrated forward only when someone looks at it
(a request arrives, a test reads `truth`), so an idle fleet of ten thousand miners costs no CPU.
Time is quantised to ticks of `cache_s`; everything read within one tick is the same sample, which
is what lets replies be cached and lets a test compare a client's reading with `truth` exactly.

Model, per miner:
* a commanded hashing fraction (1 mining, 0 sleeping; a power limit gives something between) that
  the actual fraction follows linearly over `ramp_s`;
* boards with fixed seeded weights, so board hashrates always sum to the total; a failed board or
  missing chips take their share away; overheating throttles;
* hashrate windows with deterministic noise (the 5 s window noisiest), the average since boot being
  the true integral (so it lags a ramp);
* temperatures relaxing towards ambient + load-dependent rise with a thermal time constant, fans
  following chip temperature, power proportional to hashrate (nameplate W at nominal);
* share counters derived from the integrated hash count: Accepted grows at H / (diff · 2^32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulators.asic.models import ModelSpec

TWO32 = 4294967296.0
THERMAL_TAU_S = 40.0
"""Thermal time constant of a hashboard (heatsink + airflow), seconds."""

_MASK = (1 << 64) - 1


def unit_noise(seed: int, channel: int, k: int) -> float:
    """Deterministic noise in [-1, 1) for (seed, channel, bucket k): a splitmix64 hash."""
    z = (seed * 0x9E3779B97F4A7C15 + channel * 0xBF58476D1CE4E5B9 + k * 0x94D049BB133111EB) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z ^= z >> 31
    return (z / 2.0**63) - 1.0


# Noise amplitude (fraction of the rate) and bucket length (s) per hashrate window.
WINDOWS: dict[str, tuple[float, float]] = {
    "5s": (0.015, 5.0),
    "1m": (0.006, 60.0),
    "5m": (0.003, 300.0),
    "15m": (0.002, 900.0),
    "30m": (0.0015, 1800.0),
}


@dataclass(frozen=True, slots=True)
class BoardSample:
    """One hashboard at one tick."""

    index: int
    hashrate_hs: float
    """5 s window."""
    hashrate_1m_hs: float
    nominal_hashrate_hs: float
    chips_found: int
    chips_expected: int
    temp_inlet_c: float
    temp_outlet_c: float
    temp_chip_c: float
    freq_mhz: float
    hardware_errors: int
    alive: bool


@dataclass(frozen=True, slots=True)
class PhysicsSample:
    """The whole machine at one tick (the `truth` minus configuration such as pools)."""

    tick: float
    state: str
    elapsed_s: int
    hashrate_hs: float
    windows_hs: dict[str, float]
    hashrate_avg_hs: float
    nominal_hashrate_hs: float
    power_w: float
    boards: tuple[BoardSample, ...]
    fans_rpm: tuple[int, ...]
    total_hashes: float
    diff1_work: float
    accepted: int
    rejected: int
    stale: int
    hardware_errors: int
    best_share: int
    pool_difficulty: float
    last_share_age_s: float
    ambient_c: float

    @property
    def temp_chip_max_c(self) -> float:
        return max((b.temp_chip_c for b in self.boards), default=self.ambient_c)

    @property
    def temp_board_max_c(self) -> float:
        return max((b.temp_outlet_c for b in self.boards), default=self.ambient_c)


class Physics:
    """Lazily integrated physical state of one miner (see the module docstring)."""

    def __init__(
        self,
        model: ModelSpec,
        *,
        seed: int,
        ambient_c: float,
        ramp_s: float,
        noise: bool,
        tick_s: float,
        uptime_s: float,
        pool_difficulty: float | None,
        now: float,
        phase_s: float = 0.0,
    ) -> None:
        self.model = model
        self.seed = seed
        self.ambient_c = ambient_c
        self.ramp_s = max(0.0, ramp_s)
        self.noise = noise
        self.tick_s = tick_s if tick_s > 0 else 1e-3
        # Where this miner's ticks start within a tick: real miners are not synchronised, and a
        # fleet whose ticks all fall on the same instant would re-render every cached reply in
        # one burst (a latency spike for every client) instead of spreading the work.
        self.phase_s = phase_s % self.tick_s
        # Per-miner constants, fixed by the seed.
        weights = [1.0 + 0.015 * unit_noise(seed, 1, b) for b in range(model.boards)]
        total_w = sum(weights)
        self.board_weights = [w / total_w for w in weights]
        self.board_temp_offset = [2.0 * unit_noise(seed, 2, b) for b in range(model.boards)]
        self.fan_bias = [1.0 + 0.02 * unit_noise(seed, 3, f) for f in range(model.fans)]
        self.power_bias = 1.0 + 0.01 * (1.0 + unit_noise(seed, 4, 0))  # 0..2 % above nameplate
        self.reject_frac = 0.001 + 0.002 * (1.0 + unit_noise(seed, 5, 0))
        self.stale_frac = 0.0002 + 0.0002 * (1.0 + unit_noise(seed, 6, 0))
        # Bad nonces: tens to hundreds a day on a healthy machine.
        self.hw_frac = 5e-8 * (1.5 + unit_noise(seed, 7, 0))
        if pool_difficulty is None:
            # A vardiff that lands near one share every three seconds, rounded to a power of two.
            pool_difficulty = 2.0 ** round(math.log2(model.nominal_hs / TWO32 * 3.0))
        self.pool_difficulty = pool_difficulty
        # Faults that change physics.
        self.dead_boards: frozenset[int] = frozenset()
        self.missing_chips = 0
        self.overheat = False
        # Integrated state.
        t = self._quantise(now)
        self._t = t
        self._boot_t = t - uptime_s
        self._hashes = self.capacity_hs() * uptime_s * (1.0 - 0.002)
        self._factor = 1.0
        self._target = 1.0
        self.state = "mining"
        self.offline = False
        self._temps = [self._temp_targets(b, 1.0) for b in range(model.boards)]
        self._cached: PhysicsSample | None = None

    # ---- time -------------------------------------------------------------------------------

    def _quantise(self, now: float) -> float:
        phase = self.phase_s
        return math.floor((now - phase) / self.tick_s) * self.tick_s + phase

    def tick_of(self, now: float) -> int:
        """The number of the tick `now` falls in (the reply cache's key; same phase as physics)."""
        return math.floor((now - self.phase_s) / self.tick_s)

    # ---- capacity and targets ---------------------------------------------------------------

    def board_capacity_hs(self, b: int) -> float:
        """What board `b` hashes at full commanded load, given faults."""
        if b in self.dead_boards:
            return 0.0
        cap = self.model.nominal_hs * self.board_weights[b]
        if b == 0 and self.missing_chips:
            expected = self.model.chips_per_board
            cap *= max(0, expected - self.missing_chips) / expected
        if self.overheat:
            cap *= 0.7  # thermal throttling
        return cap

    def capacity_hs(self) -> float:
        return sum(self.board_capacity_hs(b) for b in range(self.model.boards))

    def _ambient_eff(self) -> float:
        # An overheating miner behaves as if its intake were 30 °C hotter (blocked airflow).
        return self.ambient_c + (30.0 if self.overheat else 0.0)

    def _temp_targets(self, b: int, load: float) -> tuple[float, float, float]:
        amb = self._ambient_eff()
        if b in self.dead_boards:
            load = 0.0
        off = self.board_temp_offset[b]
        inlet = amb + (20.0 + off) * load
        outlet = amb + (37.0 + off) * load
        chip = amb + (45.0 + off) * load
        return inlet, outlet, chip

    # ---- integration ------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        t1 = self._quantise(now)
        dt = t1 - self._t
        if dt <= 0:
            return
        f0, tgt = self._factor, self._target
        if self.offline:
            f1, area = 0.0, 0.0
        elif self.ramp_s <= 0 or f0 == tgt:
            f1, area = tgt, tgt * dt
        else:
            need = abs(tgt - f0) * self.ramp_s
            if dt >= need:
                f1, area = tgt, need * (f0 + tgt) / 2 + (dt - need) * tgt
            else:
                f1 = f0 + math.copysign(dt / self.ramp_s, tgt - f0)
                area = dt * (f0 + f1) / 2
        self._hashes += self.capacity_hs() * area
        self._factor = f1
        load = area / dt
        k = 1.0 - math.exp(-dt / THERMAL_TAU_S)
        temps = []
        for b, (ti, to, tc) in enumerate(self._temps):
            gi, go, gc = self._temp_targets(b, load)
            temps.append((ti + (gi - ti) * k, to + (go - to) * k, tc + (gc - tc) * k))
        self._temps = temps
        self._t = t1
        self._cached = None

    # ---- control ----------------------------------------------------------------------------

    def command(self, now: float, *, target: float, state: str) -> None:
        """Set the commanded hashing fraction (ramped over `ramp_s`) and the commanded state."""
        self.advance(now)
        self._target = max(0.0, min(1.5, target))  # overclock profiles exceed 1
        self.state = state
        self._cached = None

    def go_offline(self, now: float) -> None:
        """Controller rebooting: nothing hashes, the API is down."""
        self.advance(now)
        self.offline = True
        self.state = "rebooting"
        self._cached = None

    def boot(self, now: float, *, target: float = 1.0, state: str = "mining") -> None:
        """Controller back up: counters and Elapsed start from zero, hashrate warms up."""
        self.advance(now)
        self.offline = False
        self._boot_t = self._t
        self._hashes = 0.0
        self._factor = 0.0
        self._target = target
        self.state = state
        self._cached = None

    def set_faults(
        self, *, dead_boards: frozenset[int], missing_chips: int, overheat: bool
    ) -> None:
        self.dead_boards = frozenset(b for b in dead_boards if 0 <= b < self.model.boards)
        self.missing_chips = max(0, min(missing_chips, self.model.chips_per_board))
        self.overheat = overheat
        self._cached = None

    @property
    def target(self) -> float:
        return self._target

    # ---- sampling ---------------------------------------------------------------------------

    def sample(self, now: float) -> PhysicsSample:
        self.advance(now)
        cached = self._cached
        if cached is not None and cached.tick == self._t:
            return cached
        s = self._build()
        self._cached = s
        return s

    def _noise(self, window: str, channel: int, elapsed: float) -> float:
        if not self.noise:
            return 0.0
        amp, bucket = WINDOWS[window]
        return amp * unit_noise(self.seed, 100 + channel, int(elapsed // bucket))

    def _build(self) -> PhysicsSample:
        m = self.model
        elapsed = max(0.0, self._t - self._boot_t)
        f = 0.0 if self.offline else self._factor
        boards: list[BoardSample] = []
        windows = dict.fromkeys(WINDOWS, 0.0)
        diff1 = self._hashes / TWO32
        hw_total = int(diff1 * self.hw_frac)
        for b in range(m.boards):
            rate = self.board_capacity_hs(b) * f
            per_window = {
                w: rate * (1.0 + self._noise(w, b * 8 + i, elapsed)) for i, w in enumerate(WINDOWS)
            }
            for w, v in per_window.items():
                windows[w] += v
            dead = b in self.dead_boards
            chips = 0 if dead else m.chips_per_board - (self.missing_chips if b == 0 else 0)
            ti, to, tc = self._temps[b]
            boards.append(
                BoardSample(
                    index=b,
                    hashrate_hs=per_window["5s"],
                    hashrate_1m_hs=per_window["1m"],
                    nominal_hashrate_hs=m.nominal_hs * self.board_weights[b],
                    chips_found=chips,
                    chips_expected=m.chips_per_board,
                    temp_inlet_c=ti,
                    temp_outlet_c=to,
                    temp_chip_c=tc,
                    freq_mhz=0.0 if dead else m.freq_mhz * (0.9 if self.overheat else 1.0),
                    hardware_errors=0 if dead else int(hw_total * self.board_weights[b]),
                    alive=not dead,
                )
            )
        rate_now = self.capacity_hs() * f
        chip_max = max((bd.temp_chip_c for bd in boards), default=self.ambient_c)
        duty = 0.25 + 0.75 * min(1.0, max(0.0, (chip_max - 40.0) / 40.0))
        if self.overheat:
            duty = 1.0
        fans = tuple(
            0 if self.offline else int(m.fan_max_rpm * duty * bias) for bias in self.fan_bias
        )
        idle_w = 12.0 + 0.004 * m.power_w * duty  # controller + fans
        power = 0.0 if self.offline else m.power_w * self.power_bias * rate_now / m.nominal_hs
        power = power + (0.0 if self.offline else idle_w)
        shares = int(diff1 / self.pool_difficulty)
        rejected = int(shares * self.reject_frac)
        stale = int(shares * self.stale_frac)
        share_rate = rate_now / (self.pool_difficulty * TWO32)
        age = ((elapsed * share_rate) % 1.0) / share_rate if share_rate > 0 else elapsed
        return PhysicsSample(
            tick=self._t,
            state=self._state_name(),
            elapsed_s=int(elapsed),
            hashrate_hs=windows["5s"],
            windows_hs=windows,
            hashrate_avg_hs=self._hashes / elapsed if elapsed > 0 else 0.0,
            nominal_hashrate_hs=m.nominal_hs,
            power_w=power,
            boards=tuple(boards),
            fans_rpm=fans,
            total_hashes=self._hashes,
            diff1_work=diff1,
            accepted=shares - rejected - stale,
            rejected=rejected,
            stale=stale,
            hardware_errors=hw_total,
            best_share=int(diff1 * (0.6 + 0.3 * (1.0 + unit_noise(self.seed, 8, 0)))),
            pool_difficulty=self.pool_difficulty,
            last_share_age_s=age,
            ambient_c=self.ambient_c,
        )

    def _state_name(self) -> str:
        if self.offline:
            return "rebooting"
        if self.state == "mining" and len(self.dead_boards) >= self.model.boards:
            return "error"
        return self.state
