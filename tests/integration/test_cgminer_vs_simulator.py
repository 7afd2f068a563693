"""The CGMiner driver against the bundled simulators, over real loopback sockets.

The simulators were written independently from the same protocol reference, so agreement here
means something: every persona is read and compared with the simulator's physical truth, every
RPC quirk (Q1–Q31) and fault is read through the driver, and control actions make the round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from drivers.cgminer import (
    ACTIONS,
    AccessDenied,
    AsicReading,
    CgminerError,
    CgminerMiner,
    ConnectFailed,
    ControlNotPermitted,
    ControlUnsupported,
    EmptyReply,
    Firmware,
    InvalidCommand,
    MinerState,
    NonJsonReply,
    ProxyConnectFailed,
    ReplyInterrupted,
    RequestTimeout,
    TruncatedReply,
    command,
    request,
)
from simulators.asic import Fault, MinerSpec, SimulatedMiner
from tests.asic_personas import MODEL_OF

FIRMWARE_OF = {
    "antminer_stock": Firmware.ANTMINER_STOCK,
    "vnish": Firmware.VNISH,
    "luxos": Firmware.LUXOS,
    "braiins": Firmware.BRAIINS,
    "whatsminer": Firmware.WHATSMINER,
    "avalon": Firmware.AVALON,
    "cgminer": Firmware.CGMINER,
}
# Personas whose firmware reports its power draw (the others are estimated or unknown).
REPORTS_POWER = {"vnish", "luxos", "braiins", "whatsminer", "avalon"}
# Personas whose RPC reports chips per board.
REPORTS_CHIPS = {"antminer_stock", "vnish", "luxos", "braiins", "whatsminer", "avalon"}

Start = Callable[..., Awaitable[SimulatedMiner]]


@pytest.fixture
async def sim() -> AsyncIterator[Start]:
    started: list[SimulatedMiner] = []

    async def start(persona: str, *faults: Fault, **spec: Any) -> SimulatedMiner:
        options: dict[str, Any] = {"seed": 3, "noise": False}
        options.update(spec)
        miner = SimulatedMiner(
            MinerSpec(persona=persona, model=MODEL_OF[persona], port=0, faults=faults, **options)
        )
        await miner.start()
        started.append(miner)
        return miner

    yield start
    for miner in started:
        await miner.stop()


def driver(sim_miner: SimulatedMiner, **options: Any) -> CgminerMiner:
    options.setdefault("timeout_s", 2.0)
    return CgminerMiner(sim_miner.host, sim_miner.port, **options)


async def read(sim_miner: SimulatedMiner, **options: Any) -> AsicReading:
    return await driver(sim_miner, **options).read()


def close(value: float | None, truth: float, rel: float = 0.03) -> bool:
    return value is not None and value == pytest.approx(truth, rel=rel)


# --- every dialect against the truth -----------------------------------------------------------


@pytest.mark.parametrize("persona", sorted(MODEL_OF))
async def test_reading_matches_the_simulated_truth(sim: Start, persona: str) -> None:
    # One cached sample for the whole test: on a loaded machine the read and the truth could
    # otherwise straddle a sample boundary and see different share counters or uptime.
    simulated = await sim(persona, cache_s=600.0)
    reading = await read(simulated)
    truth = simulated.truth

    assert reading.firmware is FIRMWARE_OF[persona]
    if persona == "cgminer":
        assert reading.model is None  # plain cgminer does not know its hardware
    else:
        assert reading.model is not None
        assert truth.model.split()[-1] in reading.model  # "S19j Pro", "M50", "1246"
    assert reading.firmware_version
    assert close(reading.hashrate_5s_hs, truth.hashrate_hs)
    assert close(reading.hashrate_avg_hs, truth.hashrate_avg_hs)
    if persona != "cgminer":
        assert close(reading.nominal_hashrate_hs, truth.nominal_hashrate_hs, rel=0.1)

    assert len(reading.boards) == len(truth.boards)
    for board, true_board in zip(reading.boards, truth.boards, strict=True):
        assert close(board.hashrate_hs, true_board.hashrate_hs)
        if persona in REPORTS_CHIPS:
            assert board.chips_found == true_board.chips_found
            assert board.chips_expected == true_board.chips_expected
    if persona != "cgminer":
        assert reading.fans_rpm == truth.fans_rpm

    if persona in REPORTS_POWER:
        assert reading.power_estimated is False
        assert close(reading.power_w, truth.power_w)
    elif persona == "antminer_stock":
        assert reading.power_estimated is True
        assert close(reading.power_w, truth.power_w, rel=0.1)  # nameplate estimate
    else:
        assert reading.power_w is None and reading.power_estimated is False

    truth_urls = [pool.url for pool in truth.pools]
    assert [pool.url for pool in reading.pools][: len(truth_urls)] == truth_urls
    active = [pool for pool in reading.pools if pool.active]
    assert len(active) == 1 and active[0].url == truth.pools[truth.active_pool].url
    assert (reading.accepted, reading.rejected, reading.stale) == (
        truth.accepted,
        truth.rejected,
        truth.stale,
    )
    assert reading.uptime_s == truth.uptime_s
    assert reading.state is MinerState.MINING
    assert reading.repairs == ()
    assert reading.warnings == ()


async def test_configured_model_stands_in_when_the_firmware_names_none(sim: Start) -> None:
    # Plain CGMiner does not know its hardware: the operator's `model` gives the nameplate
    # (power estimate, nominal hashrate), and every reading says where the model came from.
    simulated = await sim("cgminer", cache_s=600.0)
    reading = await read(simulated, model_hint="Antminer S21")
    truth = simulated.truth
    assert reading.model == "Antminer S21"
    assert reading.power_estimated is True
    assert close(reading.power_w, truth.power_w, rel=0.1)
    assert close(reading.nominal_hashrate_hs, truth.nominal_hashrate_hs, rel=0.1)
    assert reading.warnings == ("firmware reports no model: 'Antminer S21' is the configured one",)

    # A firmware that names its model keeps its own: the hint is never a second opinion.
    luxos = await read(await sim("luxos"), model_hint="Antminer S21")
    assert luxos.model is not None and "S19j Pro" in luxos.model
    assert luxos.warnings == ()


async def test_whatsminer_pools_keep_the_firmware_numbering(sim: Start) -> None:
    reading = await read(await sim("whatsminer"))
    assert [pool.index for pool in reading.pools] == [1, 2, 3]  # Q23


async def test_joins_are_used_and_remembered(sim: Start) -> None:
    simulated = await sim("antminer_stock")
    miner = driver(simulated)
    await miner.read()
    assert miner.joins_supported is True
    assert simulated.last_commands[-1] == "summary+stats+pools"


# --- every RPC quirk the simulator can emit ----------------------------------------------------

# quirk -> (persona, repair the reading must record or None)
READ_QUIRKS: dict[str, tuple[str, str | None]] = {
    "Q1": ("avalon", None),  # the NUL ends the frame: framing, not a repair
    "Q2": ("antminer_stock", None),
    "Q3": ("antminer_stock", "missing_comma_between_objects"),
    "Q4": ("antminer_stock", "leading_comma_in_array"),
    "Q5": ("whatsminer", "trailing_comma"),
    "Q6": ("whatsminer", None),  # newlines between tokens are valid JSON
    "Q7": ("whatsminer", "missing_comma_after_string"),
    "Q8": ("avalon", "non_finite_number"),
    "Q9": ("avalon", "leading_comma_reply"),
    "Q12": ("cgminer", None),
    "Q13": ("antminer_stock", None),
    "Q14": ("antminer_stock", None),
    "Q15": ("cgminer", None),
    "Q16": ("whatsminer", None),
    "Q17": ("whatsminer", "invalid_utf8"),
    "Q21": ("antminer_stock", None),
    "Q22": ("luxos", None),
    "Q23": ("cgminer", None),
    "Q24": ("braiins", None),
    "Q25": ("antminer_stock", None),
    "Q26": ("cgminer", None),
    "Q27": ("avalon", None),
    "Q28": ("avalon", None),
    "Q29": ("antminer_stock", None),
    "Q30": ("whatsminer", None),
    "Q31": ("vnish", None),
}


@pytest.mark.parametrize("quirk", sorted(READ_QUIRKS, key=lambda q: int(q[1:])))
async def test_quirk_is_survived(sim: Start, quirk: str) -> None:
    persona, repair = READ_QUIRKS[quirk]
    simulated = await sim(persona, Fault("quirk", quirk))
    miner = driver(simulated)
    reading = await miner.read()
    truth = simulated.truth
    assert reading.firmware is FIRMWARE_OF[persona]
    assert close(reading.hashrate_5s_hs, truth.hashrate_hs)
    if repair is None:
        assert reading.repairs == ()
    else:
        assert repair in reading.repairs
    if quirk == "Q16":
        assert reading.firmware_version == "20230803.11.REL"  # quotes stripped
    if quirk == "Q22":
        assert miner.joins_supported is False
        assert len(reading.boards) == 3
    if quirk == "Q23":
        assert [pool.index for pool in reading.pools] == [1, 2, 3]
    if quirk == "Q24":
        assert reading.model is None
        assert any("devdetails not available" in w for w in reading.warnings)
    if quirk == "Q29":
        assert any("Q29" in w for w in reading.warnings)
        assert close(reading.boards[0].hashrate_hs, truth.boards[0].hashrate_hs)


async def test_q10_truncated_reply_is_a_clear_error(sim: Start) -> None:
    with pytest.raises(TruncatedReply, match="bytes arrived"):
        await read(await sim("whatsminer", Fault("quirk", "Q10")))


async def test_q11_error_code_list_printed_like_a_dict(sim: Start) -> None:
    simulated = await sim("whatsminer", Fault("quirk", "Q11"))
    reply = await request(simulated.host, simulated.port, "get_error_code")
    assert "error_code_dict_list" in reply.repairs
    assert reply.ok
    assert isinstance(reply.data["Msg"]["error_code"], dict)


async def test_q18_empty_reply_is_a_clear_error(sim: Start) -> None:
    # The simulator closes at accept; whether the unread request turns that into a reset is up
    # to the kernel, so either clear error is right.
    with pytest.raises((EmptyReply, ConnectFailed)):
        await read(await sim("antminer_stock", Fault("quirk", "Q18")))


async def test_q19_socket_connect_failed(sim: Start) -> None:
    with pytest.raises(ProxyConnectFailed):
        await read(await sim("antminer_stock", Fault("quirk", "Q19")))


async def test_q20_reset_mid_reply(sim: Start) -> None:
    with pytest.raises(ReplyInterrupted):
        await read(await sim("antminer_stock", Fault("quirk", "Q20")))


@pytest.mark.parametrize("persona", ["whatsminer", "cgminer"])
async def test_q25_q26_unknown_command(sim: Start, persona: str) -> None:
    quirk = Fault("quirk", "Q26")
    simulated = await sim(persona, quirk)
    with pytest.raises(InvalidCommand) as caught:
        await command(simulated.host, simulated.port, "bogus")
    assert caught.value.code == 14


async def test_q27_on_a_gh_firmware_uses_the_boards(sim: Start) -> None:
    simulated = await sim("antminer_stock", Fault("quirk", "Q27"))
    reading = await read(simulated)
    assert close(reading.hashrate_5s_hs, simulated.truth.hashrate_hs)
    assert reading.state is MinerState.MINING


async def test_q31_plain_cgminer_without_version(sim: Start) -> None:
    reading = await read(await sim("cgminer", Fault("quirk", "Q31")))
    assert reading.firmware is Firmware.CGMINER


# --- faults ------------------------------------------------------------------------------------


async def test_hang_times_out(sim: Start) -> None:
    with pytest.raises(RequestTimeout) as caught:
        await read(await sim("antminer_stock", Fault("hang")), timeout_s=0.3)
    assert caught.value.phase == "read"


async def test_slow_drip_and_delay_within_the_deadline(sim: Start) -> None:
    assert (await read(await sim("luxos", Fault("slow_drip", 0.002)), timeout_s=5.0)).hashrate_5s_hs
    assert (await read(await sim("braiins", Fault("delay", 0.2)), timeout_s=2.0)).hashrate_5s_hs


async def test_refused(sim: Start) -> None:
    with pytest.raises(ConnectFailed):
        await read(await sim("antminer_stock", Fault("refuse")))


@pytest.mark.parametrize("persona", ["antminer_stock", "whatsminer"])
async def test_server_that_never_closes(sim: Start, persona: str) -> None:
    # With a NUL (stock) the NUL ends the reply; without (Whatsminer) the complete JSON does.
    reading = await read(await sim(persona, Fault("no_close")), timeout_s=2.0)
    assert reading.state is MinerState.MINING


async def test_access_denied_everywhere_is_a_permission_error(sim: Start) -> None:
    with pytest.raises(AccessDenied):
        await read(await sim("cgminer", Fault("access_denied")))


async def test_socket_text_and_garbage(sim: Start) -> None:
    with pytest.raises(ProxyConnectFailed):
        await read(await sim("whatsminer", Fault("socket_text")))
    with pytest.raises(NonJsonReply):
        await read(await sim("whatsminer", Fault("malformed")))


async def test_trailing_whitespace_is_recorded(sim: Start) -> None:
    reading = await read(await sim("antminer_stock", Fault("trailing_space")))
    assert reading.repairs == ("trailing_whitespace",)


async def test_joins_unsupported_fall_back_and_are_remembered(sim: Start) -> None:
    simulated = await sim("whatsminer", Fault("joins_unsupported"))
    miner = driver(simulated)
    await miner.read()
    before = simulated.requests
    reading = await miner.read()
    assert miner.joins_supported is False
    assert simulated.requests - before == 3  # summary, devs, pools: no join attempted
    assert reading.state is MinerState.MINING


async def test_dead_board_and_missing_chips(sim: Start) -> None:
    simulated = await sim("antminer_stock", Fault("board_fail", 1), Fault("chip_fail", 5))
    reading = await read(simulated)
    assert reading.boards[1].chips_found == 0
    assert not reading.boards[1].hashrate_hs
    assert reading.boards[0].chips_found == 126 - 5
    assert reading.boards[0].chips_expected == 126
    assert reading.state is MinerState.MINING


async def test_all_boards_dead_is_an_error_state(sim: Start) -> None:
    faults = [Fault("board_fail", board) for board in range(3)]
    reading = await read(await sim("whatsminer", *faults))
    assert reading.state is MinerState.ERROR


async def test_flapping_device_alternates_between_readings_and_errors(sim: Start) -> None:
    simulated = await sim("cgminer", Fault("flapping", 0.15))
    miner = driver(simulated, timeout_s=0.5)
    outcomes: set[str] = set()
    deadline = asyncio.get_running_loop().time() + 1.5
    while asyncio.get_running_loop().time() < deadline and len(outcomes) < 2:
        try:
            await miner.read()
            outcomes.add("reading")
        except CgminerError:
            outcomes.add("error")
        await asyncio.sleep(0.05)
    assert outcomes == {"reading", "error"}


# --- control round trips -----------------------------------------------------------------------


async def controlled(
    sim: Start, persona: str, **options: Any
) -> tuple[SimulatedMiner, CgminerMiner]:
    simulated = await sim(persona, ramp_s=0.1, reboot_s=0.3, cache_s=0.05)
    options.setdefault("privileged", True)
    return simulated, driver(simulated, **options)


async def settle() -> None:
    await asyncio.sleep(0.3)  # the ramp down/up and a physics tick


@pytest.mark.parametrize(
    ("persona", "state"),
    [
        ("luxos", MinerState.CURTAILED),
        ("braiins", MinerState.SLEEPING),
        ("whatsminer", MinerState.SLEEPING),
        ("avalon", MinerState.SLEEPING),
    ],
)
async def test_curtail_and_wake(sim: Start, persona: str, state: MinerState) -> None:
    simulated, miner = await controlled(sim, persona, password="admin")
    assert (await miner.read()).state is MinerState.MINING
    result = await miner.curtail()
    assert result.ok and result.action == "curtail"
    await settle()
    reading = await miner.read()
    assert reading.state is state
    assert simulated.truth.state == state.value
    assert not reading.hashrate_5s_hs
    result = await miner.wake()
    assert result.ok
    await settle()
    reading = await miner.read()
    assert reading.state is MinerState.MINING
    assert close(reading.hashrate_5s_hs, simulated.truth.hashrate_hs)


@pytest.mark.parametrize("persona", ["luxos", "braiins", "avalon", "cgminer"])
async def test_switch_pool(sim: Start, persona: str) -> None:
    simulated, miner = await controlled(sim, persona)
    result = await miner.switch_pool(1)
    assert result.ok, result
    assert simulated.truth.active_pool == 1
    reading = await miner.read()
    assert [pool.index for pool in reading.pools if pool.active] == [1]
    result = await miner.switch_pool(0)  # pool 0 goes out as "0", not as a missing parameter
    assert result.ok and simulated.truth.active_pool == 0


async def test_switch_to_a_missing_pool_is_a_failed_result_not_an_exception(sim: Start) -> None:
    _simulated, miner = await controlled(sim, "cgminer")
    result = await miner.switch_pool(9)
    assert not result.ok
    assert result.code == 26


async def test_add_pool(sim: Start) -> None:
    simulated, miner = await controlled(sim, "cgminer")
    result = await miner.add_pool("stratum+tcp://new.pool.example:3333", "site1.w1", "x")
    assert result.ok, result
    assert simulated.truth.pools[-1].url == "stratum+tcp://new.pool.example:3333"


@pytest.mark.parametrize("persona", ["luxos", "whatsminer", "avalon"])
async def test_reboot_and_come_back(sim: Start, persona: str) -> None:
    simulated, miner = await controlled(sim, persona, password="admin")
    await miner.read()
    result = await miner.reboot()
    assert result.ok
    await asyncio.sleep(0.05)
    assert not simulated.truth.listening
    await asyncio.sleep(0.6)
    reading = await miner.read()
    assert reading.firmware is FIRMWARE_OF[persona]


@pytest.mark.parametrize("persona", ["luxos", "whatsminer", "avalon"])
async def test_set_power_target(sim: Start, persona: str) -> None:
    _simulated, miner = await controlled(sim, persona, password="admin")
    result = await miner.set_power_target(2800)
    assert result.ok, result


async def test_whatsminer_wrong_password_is_a_failed_result(sim: Start) -> None:
    _simulated, miner = await controlled(sim, "whatsminer", password="not-the-password")
    result = await miner.curtail()
    assert not result.ok
    assert result.code == 135


async def test_whatsminer_without_password_is_not_permitted(sim: Start) -> None:
    _simulated, miner = await controlled(sim, "whatsminer")
    with pytest.raises(ControlNotPermitted):
        await miner.curtail()


@pytest.mark.parametrize("persona", ["antminer_stock", "vnish"])
async def test_read_only_firmware_controls_are_unsupported(sim: Start, persona: str) -> None:
    _simulated, miner = await controlled(sim, persona)
    with pytest.raises(ControlUnsupported, match="not implemented"):
        await miner.curtail()
    assert miner.capabilities() == frozenset()


async def test_not_privileged_refuses_without_touching_the_device(sim: Start) -> None:
    simulated, miner = await controlled(sim, "luxos", privileged=False)
    with pytest.raises(ControlNotPermitted):
        await miner.curtail()
    assert simulated.requests == 0
    assert miner.capabilities() == frozenset()  # not detected yet
    await miner.read()
    assert miner.capabilities() == ACTIONS
