"""Control commands change the simulated machine: curtail/sleep ramps down, wake ramps up, pool
writes change the pool table with cgminer's exact codes, reboots close the port and come back
with Elapsed reset, and Whatsminer's encrypted token flow works against an independent client.

Durations are shortened (`ramp_s`, `reboot_s`, `cache_s`); tests poll for states and never assert
wall-clock timings.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from passlib.hash import md5_crypt  # test oracle only (a pyasic dependency)

from simulators.asic import MinerSpec, SimulatedMiner

MODEL_OF = {
    "antminer_stock": "Antminer S19j Pro",
    "whatsminer": "Whatsminer M50",
    "cgminer": "Antminer S19j Pro",
    "braiins": "Antminer S19j Pro",
    "avalon": "AvalonMiner 1246",
    "luxos": "Antminer S19j Pro",
}


async def send(miner: SimulatedMiner, payload: dict[str, object] | bytes) -> bytes:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    reader, writer = await asyncio.open_connection(miner.host, miner.port)
    writer.write(data)
    await writer.drain()
    out = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return out


async def cmd(miner: SimulatedMiner, command: str, parameter: str | None = None) -> dict:
    payload: dict[str, object] = {"command": command}
    if parameter is not None:
        payload["parameter"] = parameter
    return json.loads((await send(miner, payload)).rstrip(b"\x00"))


def status(body: dict) -> tuple[str, int, str]:
    st = body["STATUS"]
    st = st[0] if isinstance(st, list) else body
    return st["STATUS"], st["Code"], st["Msg"]


async def until(pred: Callable[[], bool], limit: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not pred():
        assert loop.time() < end, "condition never became true"
        await asyncio.sleep(0.02)


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., object]]:
    miners: list[SimulatedMiner] = []

    async def _make(persona: str, **kw: object) -> SimulatedMiner:
        opts: dict[str, object] = {"ramp_s": 0.3, "reboot_s": 0.3, "cache_s": 0.02, "noise": False}
        opts.update(kw)
        m = SimulatedMiner(MinerSpec(persona, MODEL_OF[persona], port=0, seed=5, **opts))  # type: ignore[arg-type]
        await m.start()
        miners.append(m)
        return m

    yield _make
    for m in miners:
        await m.stop()


async def test_luxos_sessions_and_curtail(make) -> None:
    m = await make("luxos")
    assert (await cmd(m, "session"))["SESSION"][0]["SessionID"] == ""
    denied = await cmd(m, "curtail", "nosuch,sleep")
    assert status(denied)[:2] == ("E", 45)
    sid = (await cmd(m, "logon"))["SESSION"][0]["SessionID"]
    assert len(sid) == 8 and sid.isalnum()
    assert status(await cmd(m, "logon"))[0] == "E"  # one session at a time
    assert (await cmd(m, "session"))["SESSION"][0]["SessionID"] == sid
    nominal = m.truth.nominal_hashrate_hs
    full_power = m.truth.power_w
    assert status(await cmd(m, "curtail", f"{sid},sleep"))[0] == "S"
    assert m.truth.state == "curtailed"
    await until(lambda: m.truth.hashrate_hs == 0.0)
    assert m.truth.power_w < 0.05 * full_power
    ghs = (await cmd(m, "summary"))["SUMMARY"][0]["GHS 5s"]
    assert ghs == 0.0
    assert status(await cmd(m, "curtail", f"{sid},wakeup"))[0] == "S"
    await until(lambda: m.truth.hashrate_hs == pytest.approx(nominal))
    assert m.truth.state == "mining"
    assert status(await cmd(m, "profileset", f"{sid},450MHz"))[0] == "S"
    await until(lambda: m.truth.hashrate_hs == pytest.approx(nominal * 450 / 525))
    assert (await cmd(m, "config"))["CONFIG"][0]["Profile"] == "450MHz"
    assert status(await cmd(m, "switchpool", f"{sid},2"))[1] == 27
    assert m.truth.active_pool == 2
    assert status(await cmd(m, "logoff", sid))[0] == "S"
    assert status(await cmd(m, "switchpool", f"{sid},0"))[:2] == ("E", 45)


async def test_braiins_pause_resume(make) -> None:
    m = await make("braiins")
    assert status(await cmd(m, "pause"))[0] == "S"
    assert m.truth.state == "sleeping"
    await until(lambda: m.truth.hashrate_hs == 0.0)
    assert (await cmd(m, "summary"))["SUMMARY"][0]["MHS 1m"] == 0.0
    assert status(await cmd(m, "pause"))[0] == "I"
    assert status(await cmd(m, "resume"))[0] == "S"
    await until(lambda: m.truth.hashrate_hs > 0.99 * m.truth.nominal_hashrate_hs)


async def test_ramp_is_gradual(make) -> None:
    m = await make("braiins", ramp_s=1.0)
    await cmd(m, "pause")
    await until(lambda: 0 < m.truth.hashrate_hs < 0.95 * m.truth.nominal_hashrate_hs)
    await until(lambda: m.truth.hashrate_hs == 0.0)


async def test_avalon_ascset(make) -> None:
    m = await make("avalon")
    assert status(await cmd(m, "ascset", "0,help"))[:2] == ("I", 118)
    assert status(await cmd(m, "ascset", "0,softoff,1:1700000000")) == ("S", 119, "ASC 0 set OK")
    await until(lambda: m.truth.hashrate_hs == 0.0)
    assert status(await cmd(m, "ascset", "0,softon,1:1700000000"))[1] == 119
    await until(lambda: m.truth.hashrate_hs > 0.99 * m.truth.nominal_hashrate_hs)
    assert status(await cmd(m, "ascset", "0,worklevel,set,0"))[1] == 119
    await until(lambda: m.truth.hashrate_hs == pytest.approx(0.7 * m.truth.nominal_hashrate_hs))
    assert "WORKLEVEL[0]" in (await cmd(m, "estats"))["STATS"][0]["MM ID0"]
    assert status(await cmd(m, "ascset", "3,softoff"))[1] == 107
    assert status(await cmd(m, "ascset", "0"))[1] == 116
    assert status(await cmd(m, "ascset", "0,bogus"))[:2] == ("E", 120)


async def test_cgminer_pool_writes(make) -> None:
    m = await make("cgminer")
    assert status(await cmd(m, "switchpool")) == ("E", 25, "Missing pool id parameter")
    assert status(await cmd(m, "switchpool", "7")) == (
        "E",
        26,
        "Invalid pool id 7 - range is 0 - 2",
    )
    st = status(await cmd(m, "switchpool", "1"))
    assert st == ("S", 27, "Switching to pool 1:'stratum+tcp://btc-backup.pool.example:443'")
    pools = (await cmd(m, "pools"))["POOLS"]
    assert [p["Stratum Active"] for p in pools] == [False, True, False]
    assert status(await cmd(m, "enablepool", "0"))[:2] == ("I", 49)
    assert status(await cmd(m, "removepool", "1"))[:2] == ("E", 67)
    assert status(await cmd(m, "disablepool", "0"))[:2] == ("S", 48)
    assert status(await cmd(m, "disablepool", "0"))[:2] == ("I", 50)
    assert status(await cmd(m, "disablepool", "2"))[:2] == ("S", 48)
    assert status(await cmd(m, "disablepool", "1"))[:2] == ("E", 51)
    assert (await cmd(m, "pools"))["POOLS"][0]["Status"] == "Disabled"
    assert status(await cmd(m, "addpool", "stratum+tcp://new.example:3333,w,x")) == (
        "S",
        55,
        "Added pool 3: 'stratum+tcp://new.example:3333'",
    )
    assert status(await cmd(m, "addpool", "nourl"))[:2] == ("E", 53)
    assert status(await cmd(m, "addpool"))[:2] == ("E", 52)
    assert status(await cmd(m, "removepool", "0"))[:2] == ("S", 68)
    pools = (await cmd(m, "pools"))["POOLS"]
    assert len(pools) == 3 and pools[-1]["URL"] == "stratum+tcp://new.example:3333"
    assert sum(p["Accepted"] for p in pools) <= m.truth.accepted


async def test_restart_closes_port_and_comes_back_with_elapsed_reset(make) -> None:
    m = await make("cgminer", reboot_s=0.4)
    before = (await cmd(m, "summary"))["SUMMARY"][0]["Elapsed"]
    assert before > 3600
    raw = await send(m, {"command": "restart"})
    assert raw == b'{"STATUS":"RESTART","id":1}\x00'
    assert m.truth.state == "rebooting"
    with pytest.raises(ConnectionRefusedError):
        await send(m, {"command": "summary"})
    await until(lambda: m.listening)
    after = (await cmd(m, "summary"))["SUMMARY"][0]
    assert after["Elapsed"] < 5 and after["Accepted"] < 5
    assert m.truth.state == "mining"
    await until(lambda: m.truth.hashrate_hs > 0.99 * m.truth.nominal_hashrate_hs)


async def test_antminer_stock_refuses_writes(make) -> None:
    m = await make("antminer_stock")
    for command in ("restart", "switchpool", "reboot"):
        body = await cmd(m, command, "1")
        assert status(body)[:2] in (("E", 45), ("E", 14))
    assert m.truth.state == "mining" and m.truth.active_pool == 0


def _oracle_token(password: str, msg: dict) -> tuple[str, bytes]:
    pw_md5 = md5_crypt.using(salt=msg["salt"]).hash(password).split("$")[3]
    sign = md5_crypt.using(salt=msg["newsalt"]).hash(pw_md5 + msg["time"]).split("$")[3]
    return sign, hashlib.sha256(pw_md5.encode()).digest()


def _encrypt(key: bytes, obj: dict) -> bytes:
    plain = json.dumps(obj).encode()
    plain += b"\0" * (-len(plain) % 16)
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    data = base64.b64encode(enc.update(plain) + enc.finalize()).decode()
    return json.dumps({"enc": 1, "data": data}).encode()


async def test_whatsminer_token_flow(make) -> None:
    m = await make("whatsminer")
    raw = await send(m, {"command": "power_off", "respbefore": "true"})
    assert json.loads(raw)["Code"] == 45 and json.loads(raw)["Msg"] == "permission denied"
    tok = json.loads(await send(m, {"command": "get_token"}))
    assert (tok["STATUS"], tok["Code"]) == ("S", 134)
    assert set(tok["Msg"]) == {"time", "salt", "newsalt"} and len(tok["Msg"]["time"]) == 4
    sign, key = _oracle_token("admin", tok["Msg"])
    raw = await send(m, _encrypt(key, {"cmd": "power_off", "respbefore": "true", "token": sign}))
    env = json.loads(raw)
    dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    reply = json.loads((dec.update(base64.b64decode(env["enc"])) + dec.finalize()).rstrip(b"\0"))
    assert (reply["STATUS"], reply["Code"], reply["Msg"]) == ("S", 131, "API command OK")
    assert m.truth.state == "sleeping"
    await until(lambda: m.truth.hashrate_hs == 0.0)
    assert json.loads(await send(m, {"command": "status"}))["Msg"]["btmineroff"] == "true"
    bad = await send(m, _encrypt(key, {"cmd": "power_on", "token": "wrongtoken"}))
    assert json.loads(bad)["Code"] == 135
    _, wrong_key = _oracle_token("not-admin", tok["Msg"])
    assert (
        json.loads(await send(m, _encrypt(wrong_key, {"cmd": "power_on", "token": sign})))["Code"]
        == 135
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_whatsminer_privileged_via_pyasic_client(make) -> None:
    pytest.importorskip("pyasic")
    from pyasic.rpc.btminer import BTMinerRPCAPI

    m = await make("whatsminer")
    client = BTMinerRPCAPI("127.0.0.1", port=m.port)
    client.pwd = "admin"
    res = await client.adjust_power_limit(3000)
    assert res["Code"] == 131
    summary = (await cmd(m, "summary"))["SUMMARY"][0]
    assert summary["Power Limit"] == 3000
    await until(lambda: m.truth.power_w < 3100)
    res = await client.update_pools(
        "stratum+tcp://a.example:3333",
        "w1",
        "x",
        "stratum+tcp://b.example:3333",
        "w2",
        "x",
        "stratum+tcp://c.example:3333",
        "w3",
        "x",
    )
    assert res["Code"] == 131
    pools = (await cmd(m, "pools"))["POOLS"]
    assert next(p["URL"] for p in pools) == "stratum+tcp://a.example:3333"
    assert (await client.power_off())["Code"] == 131
    await until(lambda: m.truth.state == "sleeping")
    assert (await client.power_on())["Code"] == 131
    await until(lambda: m.truth.state == "mining")
    await client.reboot()
    await until(lambda: not m.listening, 2)
    await until(lambda: m.listening)
