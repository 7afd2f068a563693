"""Dialect parsers on realistic replies (fixtures from §4, §6.6 and §7 of the protocol reference).

Each fixture file holds one complete single-command reply per command, as the firmware sends it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from drivers.cgminer.client import Reply
from drivers.cgminer.dialects import DIALECTS, ParseContext, classify
from drivers.cgminer.dialects.base import Identity
from drivers.cgminer.dialects.common import finalise
from drivers.cgminer.errors import CgminerError, DecodeError, InvalidCommand
from drivers.cgminer.reading import AsicReading, Firmware, MinerState
from drivers.cgminer.status import error_for, parse_status

FIXTURES = Path(__file__).parent / "cgminer_fixtures"
TH = 1e12


def load(name: str) -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def replies_of(raw: dict[str, dict[str, Any]]) -> dict[str, Reply | CgminerError]:
    out: dict[str, Reply | CgminerError] = {}
    for command, data in raw.items():
        status = parse_status(data)
        out[command] = Reply(command, data, status) if status.ok else error_for(command, status)
    return out


def read(raw: dict[str, dict[str, Any]], *, drop: tuple[str, ...] = ()) -> AsicReading:
    """Detect, identify and parse exactly as the miner object does, minus the sockets."""
    replies = replies_of(raw)
    version = replies.get("version")
    firmware = classify(version, replies.get("devdetails"), replies.get("stats"))
    assert firmware is not None
    dialect = DIALECTS[firmware]
    identity = dialect.identify(version if isinstance(version, Reply) else None, replies)
    poll = {c: replies[c] for c in dialect.poll_commands if c in replies and c not in drop}
    for extra in dialect.idle_commands:
        if extra in replies:
            poll[extra] = replies[extra]
    ctx = ParseContext()
    draft = dialect.parse(identity, poll, ctx)
    return finalise(identity, draft, ctx)


# --- Antminer stock ----------------------------------------------------------------------------


def test_antminer_stock_s19jpro() -> None:
    reading = read(load("antminer_s19jpro"))
    assert reading.firmware is Firmware.ANTMINER_STOCK
    assert reading.make == "Antminer"
    assert reading.model == "Antminer S19j Pro"
    assert reading.firmware_version == "Mon Dec 26 17:10:01 CST 2022"
    assert reading.hashrate_5s_hs == pytest.approx(103950.12e9)  # "GHS 5s" string, GH/s
    assert reading.hashrate_avg_hs == pytest.approx(103870.40e9)
    assert reading.nominal_hashrate_hs == pytest.approx(104 * TH)  # total_rateideal + "GH"
    assert len(reading.boards) == 3  # slot 4 is the absent "0-0-0-0" chain
    board = reading.boards[0]
    assert board.hashrate_hs == pytest.approx(34650.04e9)
    assert board.chips_found == 126 and board.chips_expected == 126
    assert board.temp_chip_c == pytest.approx(68.0)  # mean of 62-62-74-74
    assert board.temp_board_c == pytest.approx(63.0)
    assert board.hardware_errors == 200
    assert board.frequency_mhz == 525
    assert reading.fans_rpm == (5880, 5880, 5040, 5040)
    assert reading.power_estimated is True  # stock summary has no power field
    assert reading.power_w == pytest.approx(3068 * 103950.12 / 104000)
    assert reading.efficiency_j_per_th == pytest.approx(29.5, rel=1e-3)
    assert (reading.accepted, reading.rejected, reading.stale) == (2307, 6, 1)
    assert reading.hardware_errors == 562
    assert reading.uptime_s == 50474
    assert reading.state is MinerState.MINING
    assert [p.index for p in reading.pools] == [0, 1, 2]
    assert reading.pools[0].active and not reading.pools[1].active
    assert reading.pools[0].user == "site1.s19jpro001"
    assert reading.pools[2].status == "Dead"
    assert reading.warnings == ()
    assert reading.temp_max_c == pytest.approx(69.0)


def test_antminer_dead_chain_is_kept_as_an_errored_board() -> None:
    raw = load("antminer_s19jpro")
    device = raw["stats"]["STATS"][1]
    device.update(
        {"chain_acn2": 0, "chain_rate2": "", "temp_chip2": "0-0-0-0", "temp_pcb2": "0-0-0-0"}
    )
    reading = read(raw)
    assert len(reading.boards) == 3
    assert reading.boards[1].chips_found == 0
    assert reading.boards[1].hashrate_hs is None  # "" = not reported, never 0
    assert reading.boards[1].temp_chip_c is None
    assert reading.state is MinerState.MINING


def test_antminer_all_chains_dead_is_an_error_state() -> None:
    raw = load("antminer_s19jpro")
    device = raw["stats"]["STATS"][1]
    for slot in (1, 2, 3):
        device.update({f"chain_acn{slot}": 0, f"chain_rate{slot}": ""})
    raw["summary"]["SUMMARY"][0].update({"GHS 5s": "0.00", "GHS av": 0.0})
    assert read(raw).state is MinerState.ERROR


def test_antminer_malformed_field_costs_only_that_field() -> None:
    raw = load("antminer_s19jpro")
    raw["summary"]["SUMMARY"][0]["GHS 5s"] = "n/a"
    raw["stats"]["STATS"][1]["fan2"] = "broken"
    reading = read(raw)
    # The unreadable summary window is replaced by the boards' current total (Q27 rule).
    assert reading.hashrate_5s_hs == pytest.approx((34650.04 + 34600.08 + 34700.00) * 1e9)
    assert reading.hashrate_avg_hs == pytest.approx(103870.40e9)
    assert reading.fans_rpm == (5880, 5040, 5040)
    assert any("'GHS 5s' is not a number" in w for w in reading.warnings)
    assert any("'fan2'" in w for w in reading.warnings)


def test_antminer_missing_stats_is_a_warning_not_a_failure() -> None:
    reading = read(load("antminer_s19jpro"), drop=("stats",))
    assert reading.boards == ()
    assert reading.hashrate_5s_hs == pytest.approx(103950.12e9)
    assert reading.nominal_hashrate_hs == pytest.approx(104 * TH)  # from the nameplate table
    assert any(w.startswith("stats") for w in reading.warnings) or reading.warnings == ()


def test_summary_refused_raises_naming_the_command() -> None:
    raw = load("antminer_s19jpro")
    raw["summary"] = {
        "STATUS": [{"STATUS": "E", "When": 1, "Code": 14, "Msg": "Invalid command"}],
        "id": 1,
    }
    with pytest.raises(InvalidCommand, match="summary"):
        read(raw)


def test_summary_without_section_is_a_decode_error() -> None:
    raw = load("antminer_s19jpro")
    raw["summary"] = {"STATUS": [{"STATUS": "S", "Code": 11, "Msg": "Summary"}], "id": 1}
    with pytest.raises(DecodeError, match="summary"):
        read(raw)


def test_q14_q15_numbers_as_strings_and_typos() -> None:
    raw = load("antminer_s19jpro")
    summary = raw["summary"]["SUMMARY"][0]
    for key in ("Accepted", "Rejected", "Elapsed", "Hardware Errors"):
        summary[key] = str(summary[key])
    summary["GHS av"] = ""
    reading = read(raw)
    assert reading.accepted == 2307
    assert reading.uptime_s == 50474
    assert reading.hashrate_avg_hs is None  # "" means absent
    assert reading.pools[0].stale == 1  # "Pool Stale%%" typo does not disturb the counts


def test_q29_hashrate_in_the_wrong_unit_is_corrected_with_a_warning() -> None:
    raw = load("antminer_s19jpro")
    summary = raw["summary"]["SUMMARY"][0]
    summary["GHS 5s"] = "103950120.00"  # MH/s numbers in a GH/s field
    summary["GHS av"] = 103870400.0
    device = raw["stats"]["STATS"][1]
    for slot in (1, 2, 3):
        device[f"chain_rate{slot}"] = "34650040.00"
    reading = read(raw)
    assert reading.hashrate_5s_hs == pytest.approx(103950.12e9)
    assert reading.boards[0].hashrate_hs == pytest.approx(34650.04e9)
    assert any("Q29" in w for w in reading.warnings)


def test_q27_zero_short_window_with_busy_boards_uses_the_boards() -> None:
    raw = load("antminer_s19jpro")
    raw["summary"]["SUMMARY"][0]["GHS 5s"] = "0.00"
    reading = read(raw)
    assert reading.hashrate_5s_hs == pytest.approx((34650.04 + 34600.08 + 34700.00) * 1e9)
    assert reading.state is MinerState.MINING


def test_q29_without_a_nominal_uses_the_physical_ceiling() -> None:
    raw = load("cgminer_generic")
    summary = raw["summary"]["SUMMARY"][0]
    summary["MHS 5s"] = 44612001020.0  # GH/s numbers... times 1000 again: 44.6 PH/s
    summary["MHS av"] = 44539601860.0
    for dev in raw["devs"]["DEVS"]:
        dev["MHS 5s"] = dev["MHS 5s"] * 1000
    reading = read(raw)
    assert reading.hashrate_5s_hs == pytest.approx(44612001.02e6)
    assert any("Q29" in w for w in reading.warnings)


def test_q29_does_not_touch_a_warming_up_miner() -> None:
    raw = load("antminer_s19jpro")
    summary = raw["summary"]["SUMMARY"][0]
    summary["GHS 5s"] = "2000.00"  # 2 % of nominal: plausible while starting
    summary["GHS av"] = 150.0
    reading = read(raw)
    assert reading.hashrate_5s_hs == pytest.approx(2000e9)
    assert not any("Q29" in w for w in reading.warnings)


def test_new_api_stats_layout() -> None:
    raw = load("antminer_s19jpro")
    raw["stats"] = {
        "STATUS": {"STATUS": "S", "when": 1703024668, "Msg": "stats", "api_version": "1.0.0"},
        "INFO": {"miner_version": "uart_trans.1.3", "type": "Antminer S19j Pro"},
        "STATS": [
            {
                "elapsed": 17065,
                "rate_5s": 103956.23,
                "rate_avg": 103523.8,
                "rate_ideal": 104000.0,
                "rate_unit": "GH/s",
                "chain_num": 3,
                "fan_num": 4,
                "fan": [3270, 3420, 3510, 3510],
                "chain": [
                    {
                        "index": i,
                        "freq_avg": 525,
                        "rate_ideal": 34666.0,
                        "rate_real": 34600.5,
                        "asic_num": 126,
                        "temp_pcb": [27, 27, 58, 58],
                        "temp_chip": [32, 32, 63, 63],
                        "hw": 4,
                        "sn": f"YNAHYR5BCJCBG0NM{i}",
                    }
                    for i in range(3)
                ],
            }
        ],
    }
    reading = read(raw)
    assert reading.fans_rpm == (3270, 3420, 3510, 3510)
    assert reading.boards[2].serial == "YNAHYR5BCJCBG0NM2"
    assert reading.boards[0].temp_chip_c == pytest.approx(47.5)
    assert reading.boards[0].hashrate_hs == pytest.approx(34600.5e9)


# --- Vnish -------------------------------------------------------------------------------------


def test_vnish_s19xp() -> None:
    reading = read(load("vnish_s19xp"))
    assert reading.firmware is Firmware.VNISH
    assert reading.model == "Antminer S19 XP"
    assert reading.firmware_version == "1.2.0-rc1"
    assert reading.power_w == 1003 + 1001 + 1010  # chain_consumption, reported
    assert reading.power_estimated is False
    assert reading.boards[0].nominal_hashrate_hs == pytest.approx(46666e9)
    assert reading.boards[0].temp_board_c == pytest.approx(63.5)  # "52-75" min-max
    assert reading.boards[0].chips_expected == 110
    assert [p.url for p in reading.pools] == ["stratum+tcp://btc.example-pool.com:3333", "DevFee"]
    assert reading.state is MinerState.MINING


def test_vnish_stopped_state() -> None:
    raw = load("vnish_s19xp")
    raw["stats"]["STATS"][1]["state"] = "stopped"
    assert read(raw).state is MinerState.SLEEPING


# --- LuxOS -------------------------------------------------------------------------------------


def test_luxos_s19kpro() -> None:
    reading = read(load("luxos_s19kpro"))
    assert reading.firmware is Firmware.LUXOS
    assert reading.model == "Antminer S19k Pro"
    assert reading.firmware_version == "2025.4.8.220305-57b389c7"
    assert reading.hashrate_5s_hs == pytest.approx(119800.5e9)
    assert reading.power_w == 2745  # POWER[0].Watts
    assert reading.power_estimated is False
    assert reading.efficiency_j_per_th == pytest.approx(2745 / 119.8005)
    assert reading.boards[1].chips_found == 77
    assert reading.state is MinerState.MINING


def test_luxos_curtailed() -> None:
    raw = load("luxos_s19kpro")
    raw["config"]["CONFIG"][0]["CurtailMode"] = "sleep"
    raw["summary"]["SUMMARY"][0].update({"GHS 5s": 0.0})
    assert read(raw).state is MinerState.CURTAILED


def test_luxos_nameplate_from_config_when_stats_lacks_it() -> None:
    raw = load("luxos_s19kpro")
    del raw["stats"]["STATS"][1]["total_rateideal"]
    assert read(raw).nominal_hashrate_hs == pytest.approx(120 * TH)


def test_q30_suffixed_integers() -> None:
    raw = load("luxos_s19kpro")
    raw["power"]["POWER"][0]["Watts"] = "2745 W"
    raw["stats"]["STATS"][1]["frequency"] = "485 MHz"
    reading = read(raw)
    assert reading.power_w == 2745
    assert reading.boards[0].frequency_mhz == 485


# --- Braiins -----------------------------------------------------------------------------------


def test_braiins_s19jpro() -> None:
    reading = read(load("braiins_s19jpro"))
    assert reading.firmware is Firmware.BRAIINS
    assert reading.model == "Antminer S19j Pro"
    assert reading.firmware_version == "boser-buildroot 0.1.0-75912fc7"
    assert reading.hashrate_5s_hs == pytest.approx(100210512.3e6)  # MH/s
    assert reading.nominal_hashrate_hs == pytest.approx(3 * 34666666e6)
    assert reading.power_w == 2950  # tunerstatus
    assert reading.fans_rpm == (4560, 4620, 4500, 4580)
    assert [b.chips_found for b in reading.boards] == [126, 126, 125]  # devdetails Chips
    assert reading.boards[0].temp_chip_c == 75.5
    assert reading.boards[2].temp_board_c == 59.5
    assert reading.state is MinerState.MINING


def test_braiins_paused_is_sleeping() -> None:
    raw = load("braiins_s19jpro")
    raw["summary"]["SUMMARY"][0].update({"MHS 5s": 0.0, "MHS 1m": 0.0})
    for dev in raw["devs"]["DEVS"]:
        dev.update({"MHS 5s": 0.0, "MHS 1m": 0.0})
    assert read(raw).state is MinerState.SLEEPING


def test_q24_braiins_devdetails_denied_is_not_available_not_a_failure() -> None:
    raw = load("braiins_s19jpro")
    raw["devdetails"] = {
        "STATUS": [
            {"STATUS": "E", "When": 1, "Code": 45, "Msg": "Access denied to 'devdetails' command"}
        ],
        "id": 1,
    }
    reading = read(raw)
    assert reading.model is None
    assert reading.hashrate_5s_hs == pytest.approx(100210512.3e6)
    assert any("devdetails not available" in w for w in reading.warnings)


# --- Whatsminer --------------------------------------------------------------------------------


def test_whatsminer_m50() -> None:
    reading = read(load("whatsminer_m50"))
    assert reading.firmware is Firmware.WHATSMINER
    assert reading.make == "Whatsminer"
    assert reading.model == "Whatsminer M50VH50"
    assert reading.firmware_version == "20230803.11.REL"
    assert reading.hashrate_5s_hs == pytest.approx(118650000.12e6)
    assert reading.nominal_hashrate_hs == pytest.approx(117582e9)  # Factory GHS
    assert reading.power_w == 3306
    assert reading.power_estimated is False
    assert reading.fans_rpm == (4440, 4530)
    assert [b.chips_found for b in reading.boards] == [105, 105, 104]
    assert reading.boards[0].chips_expected == 105
    assert reading.boards[0].serial == "HEM1A5ABC0001"
    assert reading.boards[0].temp_chip_c == 77.0
    assert [p.index for p in reading.pools] == [1, 2]  # Q23: numbered from 1
    assert reading.pools[0].active
    assert reading.state is MinerState.MINING


def test_whatsminer_power_minus_one_is_none() -> None:
    raw = load("whatsminer_m50")
    raw["summary"]["SUMMARY"][0]["Power"] = -1
    reading = read(raw)
    assert reading.power_estimated is True  # falls back to the nameplate estimate


def test_whatsminer_powered_off_is_sleeping() -> None:
    raw = load("whatsminer_m50")
    raw["summary"]["SUMMARY"][0].update({"MHS 5s": 0.0, "MHS 1m": 0.0})
    raw["status"]["Msg"]["btmineroff"] = "true"
    assert read(raw).state is MinerState.SLEEPING


def test_q16_quoted_firmware_version_without_get_version() -> None:
    raw = load("whatsminer_m50")
    raw["get_version"] = {"STATUS": "E", "When": 1, "Code": 14, "Msg": "invalid cmd"}
    assert read(raw).firmware_version == "20230803.11.REL"


# --- Avalon ------------------------------------------------------------------------------------


def test_avalon_1246() -> None:
    reading = read(load("avalon_1246"))
    assert reading.firmware is Firmware.AVALON
    assert reading.make == "Avalon"
    assert reading.model == "AvalonMiner 1246"
    # Q27: MHS 5s is 0.00 while the miner hashes; the 1 m window is used.
    assert reading.hashrate_5s_hs == pytest.approx(81072680e6)
    assert reading.hashrate_avg_hs == pytest.approx(79656630e6)
    assert reading.nominal_hashrate_hs == pytest.approx(83923.04e9)  # GHSmm
    assert [round(b.hashrate_hs or 0) for b in reading.boards] == [
        round(26907.01e9),
        round(26025.06e9),
        round(26724.56e9),
    ]
    assert [b.temp_chip_c for b in reading.boards] == [66, 65, 64]
    assert reading.fans_rpm == (5344, 5392, 5349, 5309)
    assert reading.power_w == 3504  # PS[...] last field (no WALLPOWER on this build)
    assert reading.power_estimated is False
    assert reading.hardware_errors == 2735
    assert reading.state is MinerState.MINING


def test_avalon_wallpower_and_soft_off() -> None:
    raw = load("avalon_1246")
    stats = raw["estats"]["STATS"][0]
    stats["MM ID0"] += " WALLPOWER[3150] SYSTEMSTATU[Work: In Idle, Hash Board: 3]"
    reading = read(raw)
    assert reading.power_w == 3150
    assert reading.state is MinerState.SLEEPING


def test_avalon_quoted_inf_counts_as_non_finite() -> None:
    raw = load("avalon_1246")
    raw["summary"]["SUMMARY"][0]["MHS 1m"] = "inf"
    reading = read(raw)
    assert "non_finite_number" in reading.repairs
    # 1 m unusable, 5 s says 0.00 (Q27): the boards' MGHS total stands in.
    assert reading.hashrate_5s_hs == pytest.approx((26907.01 + 26025.06 + 26724.56) * 1e9)


def test_avalon_chips_counted_from_per_chip_temperatures_in_hbinfo() -> None:
    raw = load("avalon_1246")
    stats = raw["estats"]["STATS"][0]
    # Newer firmware: the per-chip lists live in HBinfo; adjacent zeros, stray spacing.
    for board in range(3):
        stats["MM ID0"] = stats["MM ID0"].replace(f"PVT_T{board}[", f"OLD_T{board}[")
    stats["HBinfo"] = "PVT_T0[0 0 63 0 70] PVT_T1[ 62  0\t65 ] PVT_T2[61 67 64 62 0]"
    reading = read(raw)
    assert [(b.chips_found, b.chips_expected) for b in reading.boards] == [(2, 5), (2, 3), (4, 5)]


def test_avalon_stats_instead_of_estats() -> None:
    raw = load("avalon_1246")
    raw["stats"] = copy.deepcopy(raw.pop("estats"))
    replies = replies_of(raw)
    dialect = DIALECTS[Firmware.AVALON]
    identity = dialect.identify(replies["version"], replies)  # type: ignore[arg-type]
    ctx = ParseContext()
    poll = {c: replies[c] for c in ("summary", "stats", "pools")}
    reading = finalise(identity, dialect.parse(identity, poll, ctx), ctx)
    assert len(reading.boards) == 3


# --- plain cgminer -----------------------------------------------------------------------------


def test_plain_cgminer() -> None:
    reading = read(load("cgminer_generic"))
    assert reading.firmware is Firmware.CGMINER
    assert reading.model is None
    assert reading.firmware_version == "4.11.1"
    assert reading.hashrate_5s_hs == pytest.approx(44612001.02e6)
    assert reading.nominal_hashrate_hs is None
    assert reading.power_w is None and reading.power_estimated is False
    assert reading.boards[0].temp_board_c == 55.25
    assert reading.state is MinerState.MINING


def test_unknown_model_gives_no_invented_values() -> None:
    identity = Identity(firmware=Firmware.CGMINER, make="cgminer")
    reading = read(load("cgminer_generic"))
    assert reading.efficiency_j_per_th is None
    assert identity.model is None
