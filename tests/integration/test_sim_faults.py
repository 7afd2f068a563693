"""Every fault and wire quirk produces exactly the bytes (or connection behaviour) it describes.

Each test reads a clean reply, switches one fault on, reads again and compares byte for byte. The
miner's clock is pinned (`cache_s` of an hour, `When` patched) so both reads see the same state.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable

import pytest

from simulators.asic import Fault, MinerSpec, SimulatedMiner
from simulators.asic.quirks import GARBAGE, SOCKET_TEXT

MODEL_OF = {
    "antminer_stock": "Antminer S19j Pro",
    "whatsminer": "Whatsminer M50",
    "cgminer": "Antminer S19j Pro",
    "braiins": "Antminer S19j Pro",
    "avalon": "AvalonMiner 1246",
}
WHEN = 1_755_615_295


async def rpc(miner: SimulatedMiner, cmd: str, timeout: float = 5.0, **extra: object) -> bytes:
    reader, writer = await asyncio.open_connection(miner.host, miner.port)
    writer.write(json.dumps({"command": cmd, **extra}).encode())
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


@pytest.fixture
async def factory() -> AsyncIterator[Callable[..., object]]:
    miners: list[SimulatedMiner] = []

    async def make(persona: str = "cgminer", **kw: object) -> SimulatedMiner:
        spec = MinerSpec(
            persona, MODEL_OF[persona], port=0, seed=1, noise=False, cache_s=3600.0, **kw
        )  # type: ignore[arg-type]
        m = SimulatedMiner(spec)
        m.when = lambda: WHEN  # type: ignore[method-assign]
        await m.start()
        miners.append(m)
        return m

    yield make
    for m in miners:
        await m.stop()


async def clean_and_faulty(
    m: SimulatedMiner, cmd: str, *faults: Fault, **extra: object
) -> tuple[bytes, bytes]:
    clean = await rpc(m, cmd, **extra)
    m.set_faults(*faults)
    await m.settle()
    faulty = await rpc(m, cmd, **extra)
    return clean, faulty


def q(n: int) -> Fault:
    return Fault("quirk", f"Q{n}")


async def test_q1_forces_nul_and_q2_removes_it(factory) -> None:
    wm = await factory("whatsminer")
    clean, faulty = await clean_and_faulty(wm, "summary", q(1))
    assert not clean.endswith(b"\x00") and faulty == clean + b"\x00"
    cg = await factory()
    clean, faulty = await clean_and_faulty(cg, "summary", q(2))
    assert faulty + b"\x00" == clean


async def test_q3_missing_comma_between_stats_objects(factory) -> None:
    m = await factory("antminer_stock")
    clean, faulty = await clean_and_faulty(m, "stats", q(3))
    assert b'"Type":"Antminer S19j Pro"},{"STATS":0,' in clean
    assert faulty == clean.replace(
        b'"Type":"Antminer S19j Pro"},{"STATS":0,', b'"Type":"Antminer S19j Pro"}{"STATS":0,'
    )


async def test_q4_leading_comma(factory) -> None:
    m = await factory()
    clean, faulty = await clean_and_faulty(m, "summary", q(4))
    assert faulty == clean.replace(b'"SUMMARY":[{', b'"SUMMARY":[,{')


async def test_q5_trailing_comma(factory) -> None:
    m = await factory()
    clean, faulty = await clean_and_faulty(m, "summary", q(5))
    assert faulty == clean.replace(b"}]", b",}]")
    assert b',}],"SUMMARY"' in faulty


async def test_q6_raw_newlines(factory) -> None:
    m = await factory()
    clean, faulty = await clean_and_faulty(m, "pools", q(6))
    assert b"\n" in faulty and faulty.replace(b"\n", b"") == clean


async def test_q7_missing_comma_before_temp0(factory) -> None:
    m = await factory("whatsminer")
    _clean, faulty = await clean_and_faulty(m, "devs", q(7))
    assert b'"Name":"SM""temp0":' in faulty
    repaired = faulty.replace(b'""temp0', b'","temp0')
    assert json.loads(repaired)["DEVS"][0]["temp0"] > 0


async def test_q8_bare_inf_and_nan(factory) -> None:
    m = await factory("avalon")
    _clean, faulty = await clean_and_faulty(m, "summary", q(8))
    assert b'"Utility":inf,' in faulty and b'"Device Hardware%":nan,' in faulty
    assert re.sub(rb'"Utility":inf', b'"Utility":0', faulty) != faulty


async def test_q9_reply_starts_with_comma(factory) -> None:
    m = await factory()
    clean, faulty = await clean_and_faulty(m, "version", q(9))
    assert faulty == b"," + clean[1:]
    assert faulty.startswith(b',"STATUS":[')


async def test_q10_truncated(factory) -> None:
    m = await factory()
    clean, faulty = await clean_and_faulty(m, "stats", Fault("truncate"))
    body = clean.rstrip(b"\x00")
    assert faulty == body[: len(body) // 2]
    _, faulty2 = await clean_and_faulty(m, "stats", q(10))
    assert faulty2 == faulty


async def test_q11_error_code_list_like_a_dict(factory) -> None:
    m = await factory("whatsminer")
    clean, faulty = await clean_and_faulty(m, "get_error_code", q(11), Fault("board_fail", 1))
    assert b'"Msg":{"error_code":[]}' in clean
    assert re.search(rb'"error_code":\["531":"[0-9-]+ [0-9:]+"\]', faulty)


async def test_q12_flat_status(factory) -> None:
    m = await factory()
    _, faulty = await clean_and_faulty(m, "summary", q(12))
    body = json.loads(faulty.rstrip(b"\x00"))
    assert body["STATUS"] == "S" and body["Code"] == 11 and "SUMMARY" in body
    assert faulty.startswith(b'{"STATUS":"S","When":1755615295,"Code":11,"Msg":"Summary"')


async def test_q13_status_object(factory) -> None:
    m = await factory()
    _, faulty = await clean_and_faulty(m, "summary", q(13))
    assert faulty.startswith(
        b'{"STATUS":{"STATUS":"S","when":1755615295,"Msg":"summary","api_version":"1.0.0"},'
        b'"SUMMARY":[{'
    )
    assert b'"id":1' not in faulty


async def test_q14_numbers_as_strings(factory) -> None:
    m = await factory()
    clean, faulty = await clean_and_faulty(m, "summary", q(14))
    rec = json.loads(clean.rstrip(b"\x00"))["SUMMARY"][0]
    assert f'"Accepted":"{rec["Accepted"]}"'.encode() in faulty
    assert b'"When":1755615295' in faulty  # STATUS stays numeric


async def test_q15_typos(factory) -> None:
    m = await factory()
    clean, faulty = await clean_and_faulty(m, "devs", q(15))
    assert faulty == clean.replace(b'"Temperature":', b'"Tenperature":')
    clean, faulty = await clean_and_faulty(m, "pools", q(15))
    assert faulty == clean.replace(b'"Pool Stale%":', b'"Pool Stale%%":')


async def test_q16_single_quotes_inside_values(factory) -> None:
    m = await factory("antminer_stock")
    clean, faulty = await clean_and_faulty(m, "version", q(16))
    assert faulty == clean.replace(
        b'"CompileTime":"Mon Dec 26 17:10:01 CST 2022"',
        b'"CompileTime":"\'Mon Dec 26 17:10:01 CST 2022\'"',
    ).replace(b'"Miner":"uart_trans.1.3"', b'"Miner":"\'uart_trans.1.3\'"').replace(
        b'"BMMiner":"1.0.0"', b'"BMMiner":"\'1.0.0\'"'
    )


async def test_q17_invalid_utf8(factory) -> None:
    m = await factory()
    clean, faulty = await clean_and_faulty(m, "pools", Fault("invalid_utf8"))
    assert faulty == clean.replace(b'"User":"', b'"User":"\xaa', 1)
    with pytest.raises(UnicodeDecodeError):
        faulty.decode("utf-8")


async def test_q18_empty_and_q19_socket_text(factory) -> None:
    m = await factory()
    _, faulty = await clean_and_faulty(m, "summary", Fault("empty"))
    assert faulty == b""
    _, faulty = await clean_and_faulty(m, "summary", q(18))
    assert faulty == b""
    _, faulty = await clean_and_faulty(m, "summary", Fault("socket_text"))
    assert faulty == SOCKET_TEXT == b"Socket connect failed: Connection refused\n"
    _, faulty = await clean_and_faulty(m, "summary", q(19))
    assert faulty == SOCKET_TEXT


async def test_q20_reset_mid_reply(factory) -> None:
    m = await factory()
    clean = await rpc(m, "stats")
    m.set_faults(Fault("reset"))
    reader, writer = await asyncio.open_connection(m.host, m.port)
    writer.write(b'{"command":"stats"}')
    got = b""
    with pytest.raises(ConnectionResetError):
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            got += chunk
    writer.close()
    assert got == clean[: len(clean) // 2][: len(got)]


async def test_q21_no_close_and_hang(factory) -> None:
    m = await factory()
    clean = await rpc(m, "summary")
    m.set_faults(Fault("no_close"))
    reader, writer = await asyncio.open_connection(m.host, m.port)
    writer.write(b'{"command":"summary"}')
    got = b""
    while len(got) < len(clean):
        got += await asyncio.wait_for(reader.read(65536), 5)
    assert got == clean
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.2)  # never closed
    writer.close()
    m.set_faults(Fault("hang"))
    with pytest.raises(TimeoutError):
        await rpc(m, "summary", timeout=0.2)
    assert m.requests >= 3


async def test_slow_drip_and_delay_deliver_the_whole_reply(factory) -> None:
    m = await factory()
    clean, dripped = await clean_and_faulty(m, "version", Fault("slow_drip", 0.005))
    assert dripped == clean
    m.set_faults(Fault("delay", 0.1))
    assert await rpc(m, "version") == clean


async def test_q22_joins_unsupported(factory) -> None:
    m = await factory("antminer_stock")
    _, faulty = await clean_and_faulty(m, "summary+pools", Fault("joins_unsupported"))
    st = json.loads(faulty.rstrip(b"\x00"))["STATUS"][0]
    assert (st["STATUS"], st["Code"]) == ("E", 14)
    assert json.loads((await rpc(m, "summary")).rstrip(b"\x00"))["STATUS"][0]["Code"] == 11


async def test_q23_pools_from_one(factory) -> None:
    m = await factory()
    _, faulty = await clean_and_faulty(m, "pools", q(23))
    assert [p["POOL"] for p in json.loads(faulty.rstrip(b"\x00"))["POOLS"]] == [1, 2, 3]


async def test_q24_devdetails_denied(factory) -> None:
    m = await factory("braiins")
    _, faulty = await clean_and_faulty(m, "devdetails", q(24))
    st = json.loads(faulty.rstrip(b"\x00"))["STATUS"][0]
    assert st["Code"] == 45 and st["Msg"] == "Access denied to 'devdetails' command"


async def test_q25_flat_invalid_cmd_and_q26_no_description(factory) -> None:
    m = await factory()
    _, faulty = await clean_and_faulty(m, "nosuch", q(25))
    assert faulty == (
        b'{"STATUS":"E","When":1755615295,"Code":14,"Msg":"invalid cmd",'
        b'"Description":"cgminer 4.11.1"}\x00'
    )
    am = await factory("antminer_stock")
    clean, faulty = await clean_and_faulty(am, "nosuch", q(26))
    assert faulty == clean.replace(b',"Description":"cgminer 1.0.0"', b"")
    assert b"Description" not in faulty


async def test_q27_q28_q29_hashrate_misreports(factory) -> None:
    m = await factory("antminer_stock")
    truth = m.truth.hashrate_hs

    async def ghs5s() -> float:
        return json.loads((await rpc(m, "summary")).rstrip(b"\x00"))["SUMMARY"][0]["GHS 5s"]

    assert await ghs5s() == pytest.approx(truth / 1e9)
    m.set_faults(q(27))
    assert await ghs5s() == 0.0
    m.set_faults(q(28))
    assert await ghs5s() == pytest.approx(0.35 * truth / 1e9, rel=1e-6)
    m.set_faults(Fault("wrong_units"))
    assert await ghs5s() == pytest.approx(truth / 1e6, rel=1e-6)  # MH/s numbers in a GH field
    m.set_faults(q(29))
    assert await ghs5s() == pytest.approx(truth / 1e6, rel=1e-6)


async def test_q30_unit_suffixed_integers(factory) -> None:
    m = await factory("whatsminer")
    clean, faulty = await clean_and_faulty(m, "summary", q(30))
    power = json.loads(clean)["SUMMARY"][0]["Power"]
    assert f'"Power":"{power} W"'.encode() in faulty
    assert b'"Power Limit":"3500 W"' in faulty


async def test_q31_no_reply_to_version(factory) -> None:
    m = await factory("antminer_stock")
    _, faulty = await clean_and_faulty(m, "version", q(31))
    assert faulty == b""
    assert (await rpc(m, "summary")).startswith(b'{"STATUS":[{"STATUS":"S"')


async def test_malformed_access_denied_trailing_space(factory) -> None:
    m = await factory()
    clean, faulty = await clean_and_faulty(m, "summary", Fault("malformed"))
    assert faulty == GARBAGE
    m.set_faults(Fault("access_denied"))
    st = json.loads((await rpc(m, "summary")).rstrip(b"\x00"))["STATUS"][0]
    assert (st["Code"], st["Msg"]) == (45, "Access denied to 'summary' command")
    m.set_faults(Fault("trailing_space"))
    assert await rpc(m, "summary") == clean[:-1] + b" \r\n\x00"


async def test_refuse_and_recover(factory) -> None:
    m = await factory()
    assert await rpc(m, "version")
    m.set_faults(Fault("refuse"))
    with pytest.raises(ConnectionRefusedError):
        await rpc(m, "version")
    assert not m.truth.listening
    m.clear_faults()
    await m.settle()
    assert await rpc(m, "version")


async def test_flapping_alternates(factory) -> None:
    m = await factory()
    m.set_faults(Fault("flapping", 0.1))
    seen: set[str] = set()
    for _ in range(100):
        try:
            await rpc(m, "version", timeout=1)
            seen.add("up")
        except ConnectionRefusedError:
            seen.add("down")
        if seen == {"up", "down"}:
            break
        await asyncio.sleep(0.02)
    assert seen == {"up", "down"}


async def test_board_and_chip_failures(factory) -> None:
    m = await factory("antminer_stock")
    m.set_faults(Fault("board_fail", 1), Fault("chip_fail", 6))
    soc = json.loads((await rpc(m, "stats")).rstrip(b"\x00"))["STATS"][1]
    assert soc["chain_acn1"] == 120 and soc["chain_acn2"] == 0 and soc["chain_acn3"] == 126
    assert soc["chain_rate2"] == "0.00" and soc["temp_pcb2"] == "0-0-0-0"
    assert soc["chain_acs1"].count("x") == 6
    truth = m.truth
    assert truth.boards[1].hashrate_hs == 0 and truth.boards[1].chips_found == 0
    assert truth.boards[0].chips_found == 120
    assert truth.hashrate_hs == pytest.approx(sum(b.hashrate_hs for b in truth.boards))
    assert truth.hashrate_hs < 0.67 * truth.nominal_hashrate_hs


async def test_overheat_throttles(factory) -> None:
    m = await factory()
    before = m.truth.hashrate_hs
    m.set_faults(Fault("overheat"))
    assert m.truth.hashrate_hs == pytest.approx(0.7 * before)
    assert all(f > 0 for f in m.truth.fans_rpm)
