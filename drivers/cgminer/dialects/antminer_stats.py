"""The Antminer `stats` layouts, shared by stock bmminer, Vnish and LuxOS (§4.1, §4.4, §4.6).

Classic layout: `STATS[0]` = `{BMMiner|Cgminer, Miner, CompileTime, Type}`, `STATS[1]` = the
`BTM_SOC0` device record with per-slot extras `chain_acn<i>`, `chain_rate<i>` (GH/s, often a
string, `""` when absent), `temp_chip<i>`/`temp_pcb<i>` (`"62-62-74-74"`, zeros = no sensor),
`temp2_<i>`/`temp<i>` on older builds, `chain_hw<i>`, `freq<i>`/`freq_avg<i>`, `fan1..8`,
`total_rateideal` + `rate_unit`, and on Vnish `chain_rateideal<i>`, `chain_consumption<i>`,
`chain_state<i>`, `state`. Slots are 1–4 on X19/X21 and 6–8 (S9 era) or 1–16 elsewhere.

`new_api` layout (the `stats.cgi` document): `STATS[0]` holds `rate_5s`, `rate_avg`,
`rate_ideal`, `rate_unit`, `fan` (list) and `chain` (list of `{index, rate_real, asic_num,
temp_pcb[], temp_chip[], hw, freq_avg, sn}`). Accepted too, in case a firmware answers with it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from drivers.cgminer.coerce import sensor_mean, sensor_values
from drivers.cgminer.dialects.base import GH_S, MH_S, TH_S, ParseContext
from drivers.cgminer.models import ModelSpec
from drivers.cgminer.reading import BoardReading

_UNITS = {"H": 1.0, "KH": 1e3, "MH": MH_S, "GH": GH_S, "TH": TH_S, "PH": 1e15}


def unit_factor(rate_unit: Any, default: float = GH_S) -> float:
    """`"GH"`, `"GH/s"`, `"TH"` ... → H/s factor."""
    if not isinstance(rate_unit, str):
        return default
    # Every poll of every Antminer asks about the same one or two spellings: remember them.
    found = _UNIT_MEMO.get(rate_unit)
    if found is None:
        key = rate_unit.strip().upper().removesuffix("/S").removesuffix("S").strip()
        found = _UNITS.get(key)
        if len(_UNIT_MEMO) < 64:
            _UNIT_MEMO[rate_unit] = found
    return default if found is None else found


_UNIT_MEMO: dict[str, float | None] = {}


class _Slot(NamedTuple):
    """Pre-built key names for one chain slot (built once, not per reading)."""

    number: int
    acn: str
    rate: str
    rate_ideal: str
    hw: str
    temp_chip: str
    temp_pcb: str
    temp_chip_max: str
    temp_pcb_max: str
    freq_avg: str
    freq: str
    consumption: str
    state: str


_SLOTS = tuple(
    _Slot(
        i,
        f"chain_acn{i}",
        f"chain_rate{i}",
        f"chain_rateideal{i}",
        f"chain_hw{i}",
        f"temp_chip{i}",
        f"temp_pcb{i}",
        f"temp2_{i}",
        f"temp{i}",
        f"freq_avg{i}",
        f"freq{i}",
        f"chain_consumption{i}",
        f"chain_state{i}",
    )
    for i in range(1, 17)
)
# (slot, chips-found key, rate key): the presence test runs over all 16 slots on every poll, and
# plain tuple unpacking is cheaper than NamedTuple attribute access.
_SLOT_PRESENCE = tuple((slot, slot.acn, slot.rate) for slot in _SLOTS)
_FAN_KEYS = tuple(f"fan{i}" for i in range(1, 9))
_DEVICE_MARKERS = ("total_rateideal", "chain_acn1", "chain_rate1", "fan1", "miner_count")


def _has_device_marker(record: dict[str, Any]) -> bool:
    # `_DEVICE_MARKERS` spelled out: no generator frame on every stats record of every poll.
    return (
        "total_rateideal" in record
        or "chain_acn1" in record
        or "chain_rate1" in record
        or "fan1" in record
        or "miner_count" in record
    )


class AntminerStats:
    """What the `stats` reply says, in SI units."""

    __slots__ = (
        "boards",
        "device",
        "fans_rpm",
        "model_type",
        "nominal_hs",
        "power_w",
        "state_text",
        "uptime_s",
    )

    def __init__(self) -> None:
        self.device: dict[str, Any] | None = None
        self.model_type: str | None = None  # STATS[0]["Type"], e.g. "Antminer S19 XP (Vnish 1.2.0)"
        self.boards: list[BoardReading] = []
        self.fans_rpm: tuple[int, ...] = ()
        self.nominal_hs: float | None = None
        self.uptime_s: float | None = None
        self.power_w: float | None = None  # Vnish chain_consumption sum
        self.state_text: str | None = None  # Vnish `state`


def parse_stats(
    stats_records: list[dict[str, Any]], ctx: ParseContext, spec: ModelSpec | None
) -> AntminerStats:
    """Parse either layout; missing pieces are None plus a warning, never an exception."""
    result = AntminerStats()
    for record in stats_records:
        if result.model_type is None:
            model_type = record.get("Type") or record.get("type")
            if isinstance(model_type, str):
                result.model_type = model_type.strip()
        if result.device is None and ("chain" in record and isinstance(record["chain"], list)):
            _parse_new_api(record, result, ctx)
            result.device = record
        elif result.device is None and _has_device_marker(record):
            _parse_classic(record, result, ctx, spec)
            result.device = record
    if result.device is None and stats_records:
        ctx.warn("stats: no device record with chain data")
    return result


def _parse_classic(
    device: dict[str, Any], result: AntminerStats, ctx: ParseContext, spec: ModelSpec | None
) -> None:
    where = "stats"
    num = ctx.num
    rate_factor = unit_factor(device.get("rate_unit"))
    ideal = num(device, "total_rateideal", where)
    result.nominal_hs = None if ideal is None or ideal <= 0 else ideal * rate_factor
    result.uptime_s = num(device, "Elapsed", where)
    state = device.get("state")
    result.state_text = state.strip() if isinstance(state, str) else None

    fans = []
    for key in _FAN_KEYS:
        if key in device:
            rpm = num(device, key, where)
            if rpm is not None and rpm > 0:
                fans.append(int(rpm))
    result.fans_rpm = tuple(fans)

    # (slot, chips found, GH/s) for every slot the firmware lists, read once.
    present = [
        (slot, num(device, acn_key, where), num(device, rate_key, where))
        for slot, acn_key, rate_key in _SLOT_PRESENCE
        if acn_key in device or rate_key in device
    ]
    populated = [entry for entry in present if (entry[1] or 0) > 0 or (entry[2] or 0) > 0]
    wanted = ctx.integer(device, "miner_count", where) or (spec.boards if spec else None)
    chosen = populated
    if wanted is not None and len(populated) < wanted:
        # Dead chains show acn 0 and rate "": keep them, in slot order, up to the chain count.
        extra = [entry for entry in present if entry not in populated][: wanted - len(populated)]
        chosen = sorted(populated + extra, key=lambda entry: entry[0].number)

    frequency_all = num(device, "frequency", where)
    chips_expected = spec.chips_per_board if spec is not None else None
    power_total = 0.0
    power_seen = False
    boards = []
    get = device.get
    for index, (slot, acn, rate) in enumerate(chosen):
        # Vnish-only keys are absent on stock: test before reading (this loop runs every poll).
        rate_ideal = num(device, slot.rate_ideal, where) if slot.rate_ideal in device else None
        # Older builds only have per-chain maxima (temp2_<i> chip, temp<i> PCB); newer ones have
        # the sensor groups, where "0-0-0-0" means "no sensor" and must not fall back.
        chip_key = slot.temp_chip if slot.temp_chip in device else slot.temp_chip_max
        pcb_key = slot.temp_pcb if slot.temp_pcb in device else slot.temp_pcb_max
        frequency = num(device, slot.freq_avg, where) if slot.freq_avg in device else None
        if not frequency:
            frequency = num(device, slot.freq, where)
        hardware_errors = get(slot.hw)
        if type(hardware_errors) is not int:  # plain ints (the rule) skip the tolerant reader
            hardware_errors = ctx.integer(device, slot.hw, where)
        boards.append(
            BoardReading(
                index=index,
                hashrate_hs=None if rate is None else rate * GH_S,
                nominal_hashrate_hs=None if not rate_ideal else rate_ideal * GH_S,
                temp_board_c=sensor_mean(get(pcb_key)),
                temp_chip_c=sensor_mean(get(chip_key)),
                chips_found=None if acn is None else int(acn),
                chips_expected=chips_expected,
                hardware_errors=hardware_errors,
                frequency_mhz=frequency if frequency else frequency_all or None,
            )
        )
        if slot.consumption in device:
            consumption = num(device, slot.consumption, where)
            if consumption is not None:
                power_total += consumption
                power_seen = True
    result.boards = boards
    result.power_w = power_total if power_seen else None


def _parse_new_api(device: dict[str, Any], result: AntminerStats, ctx: ParseContext) -> None:
    where = "stats"
    num = ctx.num
    rate_factor = unit_factor(device.get("rate_unit"))
    ideal = num(device, "rate_ideal", where)
    result.nominal_hs = None if ideal is None or ideal <= 0 else ideal * rate_factor
    result.uptime_s = num(device, "elapsed", where)
    fans = device.get("fan")
    if isinstance(fans, list):
        result.fans_rpm = tuple(int(rpm) for rpm in sensor_values(fans))
    boards = []
    for position, chain in enumerate(device["chain"]):
        if not isinstance(chain, dict):
            ctx.warn("stats: malformed chain entry")
            continue
        rate = num(chain, "rate_real", where)
        rate_ideal = num(chain, "rate_ideal", where)
        index = ctx.integer(chain, "index", where)
        serial = chain.get("sn")
        boards.append(
            BoardReading(
                index=position if index is None else index,
                hashrate_hs=None if rate is None else rate * rate_factor,
                nominal_hashrate_hs=None if not rate_ideal else rate_ideal * rate_factor,
                temp_board_c=sensor_mean(chain.get("temp_pcb")),
                temp_chip_c=sensor_mean(chain.get("temp_chip")),
                chips_found=ctx.integer(chain, "asic_num", where),
                hardware_errors=ctx.integer(chain, "hw", where),
                frequency_mhz=num(chain, "freq_avg", where),
                serial=serial.strip() if isinstance(serial, str) and serial.strip() else None,
            )
        )
    result.boards = boards
