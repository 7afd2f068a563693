"""Each simulated firmware answers the standard reads with its own fields, units and framing.

Raw asyncio sockets only (never the hashpivot driver): the bytes on the wire are the subject.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from simulators.asic import MinerSpec, SimulatedMiner
from tests.asic_personas import MODEL_OF

NUL = {
    "antminer_stock": True,
    "vnish": True,
    "luxos": True,
    "braiins": True,
    "whatsminer": False,
    "avalon": False,
    "cgminer": True,
}


async def rpc(miner: SimulatedMiner, payload: bytes | str | dict[str, object]) -> bytes:
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    reader, writer = await asyncio.open_connection(miner.host, miner.port)
    writer.write(payload)  # no newline, no NUL, no half-close: like pyasic
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def parse(data: bytes) -> dict:
    return json.loads(data.rstrip(b"\x00"))


@pytest.fixture(params=sorted(MODEL_OF))
async def any_miner(request: pytest.FixtureRequest) -> AsyncIterator[SimulatedMiner]:
    persona = request.param
    m = SimulatedMiner(MinerSpec(persona, MODEL_OF[persona], port=0, seed=7, noise=False))
    await m.start()
    yield m
    await m.stop()


async def make(persona: str, **kw: object) -> SimulatedMiner:
    m = SimulatedMiner(MinerSpec(persona, MODEL_OF[persona], port=0, seed=7, **kw))  # type: ignore[arg-type]
    await m.start()
    return m


async def test_framing_and_status(any_miner: SimulatedMiner) -> None:
    persona = any_miner.spec.persona
    raw = await rpc(any_miner, {"command": "summary"})
    assert raw.endswith(b"\x00") == NUL[persona]
    assert raw.rstrip(b"\x00").endswith(b"}")
    body = parse(raw)
    st = body["STATUS"][0]
    assert st["STATUS"] == "S" and st["Code"] == 11 and st["Msg"] == "Summary"
    assert abs(st["When"] - __import__("time").time()) < 5
    assert body["id"] == 1
    assert len(body["SUMMARY"]) == 1


async def test_summary_units_match_truth(any_miner: SimulatedMiner) -> None:
    persona = any_miner.spec.persona
    rec = parse(await rpc(any_miner, {"command": "summary"}))["SUMMARY"][0]
    truth = any_miner.truth
    if persona in ("antminer_stock", "vnish", "luxos"):
        assert rec["GHS 5s"] == pytest.approx(truth.hashrate_hs / 1e9, rel=1e-6)
        assert "MHS av" not in rec
    else:
        assert rec["MHS 1m"] == pytest.approx(truth.hashrate_1m_hs / 1e6, rel=1e-6)
        assert rec["MHS av"] == pytest.approx(truth.hashrate_avg_hs / 1e6, rel=1e-3)
    assert rec["Accepted"] == truth.accepted
    assert rec["Difficulty Accepted"] == pytest.approx(truth.accepted * truth.pool_difficulty)
    assert rec["Elapsed"] == truth.uptime_s


async def test_json_with_and_without_spaces_and_text_mode(any_miner: SimulatedMiner) -> None:
    a = parse(await rpc(any_miner, b'{"command": "pools"}'))
    b = parse(await rpc(any_miner, b'{"command":"pools","parameter":0}'))
    # Share counters may tick between the two reads (the reply cache expires every second);
    # the layout and the pools' identities must not differ.
    static = ("POOL", "URL", "User", "Priority")
    assert [sorted(p) for p in a["POOLS"]] == [sorted(p) for p in b["POOLS"]]
    assert [[p.get(k) for k in static] for p in a["POOLS"]] == [
        [p.get(k) for k in static] for p in b["POOLS"]
    ]
    text = await rpc(any_miner, b"pools")
    assert text.startswith(b"STATUS=S,When=")
    assert b"|POOL=" in text and b"URL=stratum+tcp://btc.pool.example:3333" in text


async def test_version_per_persona(any_miner: SimulatedMiner) -> None:
    persona = any_miner.spec.persona
    body = parse(await rpc(any_miner, {"command": "version"}))
    if persona == "whatsminer":
        assert body == {
            "STATUS": "E",
            "When": body["When"],
            "Code": 14,
            "Msg": "invalid cmd",
            "Description": "whatsminer v1.4.0",
        }
        return
    v = body["VERSION"][0]
    st = body["STATUS"][0]
    assert st["Code"] == 22
    expected_key = {
        "antminer_stock": "BMMiner",
        "vnish": "CGMiner",
        "luxos": "LUXminer",
        "braiins": "BOSer",
        "avalon": "PROD",
        "cgminer": "CGMiner",
    }[persona]
    assert expected_key in v
    if persona == "antminer_stock":
        assert v == {
            "BMMiner": "1.0.0",
            "API": "3.1",
            "Miner": "uart_trans.1.3",
            "CompileTime": "Mon Dec 26 17:10:01 CST 2022",
            "Type": "Antminer S19j Pro",
        }
        assert st["Msg"] == "CGMiner versions" and st["Description"] == "cgminer 1.0.0"
    if persona == "vnish":
        assert v["Type"] == "Antminer S19 XP (Vnish 1.2.0-rc1)"
        assert st["Description"] == "cgminer 4.11.1"
    if persona == "braiins":
        assert st["Msg"] == "BOSer versions"
    if persona == "luxos":
        assert st["Msg"] == "LUXminer versions" and v["Type"] == "Antminer S19j Pro"
    if persona == "avalon":
        assert v["PROD"] == "AvalonMiner 1246-83" and v["MODEL"] == "1246-83"


async def test_joins_are_arrays_of_complete_replies(any_miner: SimulatedMiner) -> None:
    body = parse(await rpc(any_miner, {"command": "summary+pools+summary++devs"}))
    assert list(body) == ["summary", "pools", "devs", "id"]
    for key in ("summary", "pools", "devs"):
        assert isinstance(body[key], list) and len(body[key]) == 1
        assert body[key][0]["id"] == 1
        assert body[key][0]["STATUS"][0]["STATUS"] == "S"


async def test_join_denies_writes_and_reports_unknown(any_miner: SimulatedMiner) -> None:
    body = parse(await rpc(any_miner, {"command": "summary+switchpool+nosuch"}))
    st = body["switchpool"][0]["STATUS"][0]
    assert (st["STATUS"], st["Code"]) == ("E", 45)
    assert st["Msg"] == "Access denied to 'switchpool' command"
    unknown = body["nosuch"][0]
    # Whatsminer answers unknown names flat (Q25); everyone else with a STATUS list.
    st = unknown if isinstance(unknown["STATUS"], str) else unknown["STATUS"][0]
    assert st["Code"] == 14


async def test_parser_errors(any_miner: SimulatedMiner) -> None:
    bad = parse(await rpc(any_miner, b'{"command": "summ'))
    missing = parse(await rpc(any_miner, b'{"parameter": "0"}'))
    nonstr = parse(await rpc(any_miner, b'{"command": 5}'))

    def code(b: dict) -> int:
        return b["Code"] if isinstance(b["STATUS"], str) else b["STATUS"][0]["Code"]

    assert code(bad) == 23
    assert code(missing) == 24
    assert code(nonstr) == 14


async def test_unknown_command_description_rules() -> None:
    cg = await make("cgminer")
    am = await make("antminer_stock")
    wm = await make("whatsminer")
    try:
        st = parse(await rpc(cg, {"command": "nosuch"}))["STATUS"][0]
        assert st == {"STATUS": "E", "When": st["When"], "Code": 14, "Msg": "Invalid command"}
        st = parse(await rpc(am, {"command": "nosuch"}))["STATUS"][0]
        assert st["Description"] == "cgminer 1.0.0"  # bmminer keeps it
        raw = await rpc(wm, {"command": "nosuch"})
        assert raw == (
            b'{"STATUS":"E","When":'
            + raw[21:31]
            + b',"Code":14,"Msg":"invalid cmd","Description":"whatsminer v1.4.0"}'
        )
    finally:
        for m in (cg, am, wm):
            await m.stop()


async def test_antminer_stock_group_a_access() -> None:
    m = await make("antminer_stock")
    try:
        for cmd in ("stats", "pools", "devs", "summary", "version"):
            assert parse(await rpc(m, {"command": cmd}))["STATUS"][0]["STATUS"] == "S"
        for cmd in ("devdetails", "config", "estats", "coin", "check", "switchpool", "restart"):
            st = parse(await rpc(m, {"command": cmd, "parameter": "0"}))["STATUS"][0]
            assert (st["STATUS"], st["Code"]) == ("E", 45)
            assert st["Msg"] == f"Access denied to '{cmd}' command"
    finally:
        await m.stop()


async def test_antminer_stock_shapes() -> None:
    m = await make("antminer_stock", noise=False)
    try:
        raw = await rpc(m, {"command": "stats"})
        stats = parse(raw)["STATS"]
        assert stats[0] == {
            "BMMiner": "1.0.0",
            "Miner": "uart_trans.1.3",
            "CompileTime": "Mon Dec 26 17:10:01 CST 2022",
            "Type": "Antminer S19j Pro",
        }
        soc = stats[1]
        assert soc["STATS"] == 0 and soc["ID"] == "BTM_SOC0"
        assert soc["rate_unit"] == "GH" and soc["total_rateideal"] == 104000.0
        assert isinstance(soc["chain_rate1"], str) and soc["chain_rate4"] == ""
        assert soc["chain_acn1"] == 126 and soc["chain_acn4"] == 0
        assert soc["temp_pcb4"] == "0-0-0-0" and len(soc["temp_chip1"].split("-")) == 4
        assert soc["fan_num"] == 4 and soc["fan1"] > 0
        total = sum(float(soc[f"chain_rate{i}"]) for i in (1, 2, 3))
        assert total == pytest.approx(m.truth.hashrate_hs / 1e9, rel=1e-5)
        devs = parse(await rpc(m, {"command": "devs"}))["DEVS"]
        assert len(devs) == 1 and devs[0]["Name"] == "BTM_SOC" and "Tenperature" in devs[0]
        pools = parse(await rpc(m, {"command": "pools"}))["POOLS"]
        assert "Pool Stale%%" in pools[0] and pools[0]["Diff"].endswith("K")
        assert pools[0]["Last Share Time"].count(":") == 2
        assert [p["Stratum Active"] for p in pools] == [True, False, False]
        new = parse(await rpc(m, b'{"command": "stats", "new_api": true}'))
        assert new["STATUS"]["STATUS"] == "S" and new["STATUS"]["Msg"] == "stats"
        assert "id" not in new
        chains = new["STATS"][0]["chain"]
        assert [c["asic_num"] for c in chains] == [126, 126, 126]
        assert sum(c["rate_real"] for c in chains) == pytest.approx(
            m.truth.hashrate_hs / 1e9, rel=1e-5
        )
    finally:
        await m.stop()


async def test_whatsminer_shapes() -> None:
    m = await make("whatsminer", noise=False)
    try:
        dd = parse(await rpc(m, {"command": "devdetails"}))["DEVDETAILS"]
        assert dd[0] == {
            "DEVDETAILS": 0,
            "Name": "SM",
            "ID": 0,
            "Driver": "bitmicro",
            "Kernel": "",
            "Model": "M50VH50",
        }
        raw = await rpc(m, {"command": "summary"})
        assert not raw.endswith(b"\x00")
        assert b'"Firmware Version":"\'20230803.11.REL\'"' in raw
        rec = parse(raw)["SUMMARY"][0]
        for key in (
            "Power",
            "Power Limit",
            "Factory GHS",
            "Fan Speed In",
            "Fan Speed Out",
            "Env Temp",
            "Chip Temp Avg",
            "HS RT",
            "MAC",
        ):
            assert key in rec
        assert rec["Power"] == round(m.truth.power_w)
        devs = parse(await rpc(m, {"command": "devs"}))["DEVS"]
        assert len(devs) == 3
        assert sum(d["MHS 1m"] for d in devs) == pytest.approx(rec["MHS 1m"], rel=1e-6)
        pools = parse(await rpc(m, {"command": "pools"}))["POOLS"]
        assert [p["POOL"] for p in pools] == [1, 2, 3]
        assert isinstance(pools[0]["Last Share Time"], int)
        ver = parse(await rpc(m, {"command": "get_version"}))
        assert ver["STATUS"] == "S" and ver["Code"] == 131
        assert ver["Msg"]["fw_ver"] == "20230803.11.REL"
        for cmd in ("get_miner_info", "get_psu", "get_error_code", "status"):
            body = parse(await rpc(m, {"command": cmd}))
            assert body["STATUS"] == "S" and body["Code"] == 131 and isinstance(body["Msg"], dict)
        stats = parse(await rpc(m, {"command": "stats"}))
        assert (stats["STATUS"], stats["Code"], stats["Msg"]) == ("E", 14, "invalid cmd")
    finally:
        await m.stop()


async def test_braiins_luxos_avalon_vnish_extras() -> None:
    bos = await make("braiins", noise=False)
    lux = await make("luxos", noise=False)
    ava = await make("avalon", noise=False)
    vn = await make("vnish", noise=False)
    try:
        dd = parse(await rpc(bos, {"command": "devdetails"}))["DEVDETAILS"]
        assert dd[0]["Model"] == "Bitmain Antminer S19j Pro" and dd[0]["Chips"] == 126
        tuner = parse(await rpc(bos, {"command": "tunerstatus"}))["TUNERSTATUS"][0]
        assert tuner["ApproximateMinerPowerConsumption"] == round(bos.truth.power_w)
        assert len(parse(await rpc(bos, {"command": "fans"}))["FANS"]) == 4
        assert len(parse(await rpc(bos, {"command": "temps"}))["TEMPS"]) == 3

        power = parse(await rpc(lux, {"command": "power"}))
        assert power["STATUS"][0]["Code"] == 311
        assert power["POWER"][0]["Watts"] == round(lux.truth.power_w)
        assert parse(await rpc(lux, {"command": "summary"}))["SUMMARY"][0]["GHS 5s"] > 1000
        assert parse(await rpc(lux, {"command": "stats"}))["STATS"][1]["ID"] == "BTM_SOC0"
        assert len(parse(await rpc(lux, {"command": "profiles"}))["PROFILES"]) == 25
        cfg = parse(await rpc(lux, {"command": "config"}))["CONFIG"][0]
        assert cfg["Profile"] == "default" and cfg["NameplateTHS"] == 104

        summ = parse(await rpc(ava, {"command": "summary"}))["SUMMARY"][0]
        assert summ["MHS 5s"] == 0.0 and summ["MHS av"] > 1e7  # Q27
        est = parse(await rpc(ava, {"command": "estats"}))["STATS"]
        assert len(est) == 1
        mm = est[0]["MM ID0"]
        for token in (
            "GHSspd[",
            "GHSmm[",
            "GHSavg[",
            "MGHS[",
            "Temp[",
            "TMax[",
            "TAvg[",
            "Fan1[",
            "PS[",
            "WALLPOWER[",
            "Elapsed[",
            "PVT_T0[",
        ):
            assert token in mm
        ps = mm.split("PS[")[1].split("]")[0].split()
        assert int(ps[-1]) == round(ava.truth.power_w)
        stats = parse(await rpc(ava, {"command": "stats"}))["STATS"]
        assert [s["ID"] for s in stats] == ["AVA100", "POOL0", "POOL1", "POOL2"]
        dd = parse(await rpc(ava, {"command": "devdetails"}))["DEVDETAILS"][0]
        assert dd["Name"] == "AVALON" and dd["Driver"] == "avalon"

        vs = parse(await rpc(vn, {"command": "stats"}))["STATS"]
        assert vs[0]["Cgminer"] == "4.11.1"
        assert "chain_consumption1" in vs[1] and vs[1]["chain_state1"] == "mining"
        assert parse(await rpc(vn, {"command": "summary"}))["SUMMARY"][0]["Fee Percent"] > 0
        vp = parse(await rpc(vn, {"command": "pools"}))["POOLS"]
        assert vp[-1]["URL"] == "DevFee"
    finally:
        for m in (bos, lux, ava, vn):
            await m.stop()


async def test_cgminer_full_command_set() -> None:
    m = await make("cgminer")
    try:
        for cmd, code in (
            ("config", 33),
            ("devdetails", 69),
            ("coin", 78),
            ("asccount", 104),
            ("lcd", 125),
            ("estats", 70),
            ("edevs", 9),
            ("notify", 60),
        ):
            st = parse(await rpc(m, {"command": cmd}))["STATUS"][0]
            assert (st["STATUS"], st["Code"]) == ("S", code), cmd
        st = parse(await rpc(m, {"command": "privileged"}))["STATUS"][0]
        assert (st["STATUS"], st["Code"], st["Msg"]) == ("S", 46, "Privileged access OK")
        chk = parse(await rpc(m, {"command": "check", "parameter": "summary"}))["CHECK"][0]
        assert chk == {"Exists": "Y", "Access": "Y"}
        st = parse(await rpc(m, {"command": "check"}))["STATUS"][0]
        assert st["Code"] == 71
    finally:
        await m.stop()
