"""Fault-spec grammar, fleet planning, md5-crypt, the cgminer value encoder and lazy physics."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest

from simulators.asic import MODELS, PERSONAS, Fault, MinerSpec, parse_fault_spec, plan_fleet
from simulators.asic.encoding import F2, F4, F8, encode, encode_text
from simulators.asic.physics import Physics
from simulators.asic.whatsminer_crypto import decrypt, encrypt, md5_crypt


def test_parse_fault_spec_example() -> None:
    out = parse_fault_spec("hang@10%,slow_drip=0.5@3,quirk=Q3@0-4,access_denied@7", 20, seed=4)
    hangs = [i for i, fs in out.items() if Fault("hang") in fs]
    assert len(hangs) == 2
    assert Fault("slow_drip", 0.5) in out[3]
    assert all(Fault("quirk", "Q3") in out[i] for i in range(5))
    assert out[7][-1] == Fault("access_denied")
    assert parse_fault_spec("hang@10%", 20, seed=4) == parse_fault_spec("hang@10%", 20, seed=4)
    everyone = parse_fault_spec("overheat", 4)
    assert sorted(everyone) == [0, 1, 2, 3]
    assert parse_fault_spec("", 3) == {}
    assert parse_fault_spec("quirk=q17@1", 3) == {1: (Fault("quirk", "Q17"),)}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("explode@1", "unknown kind 'explode'"),
        ("hang=3", "takes no argument"),
        ("delay", "needs an argument"),
        ("delay=soon", "not a number"),
        ("quirk=Q99", "Q1-Q31"),
        ("quirk=Q33", "web-API quirk"),
        ("hang@9", "outside 0-4"),
        ("hang@3-1", "must be N, A-B or P%"),
        ("hang@0%", "must be N, A-B or P%"),
        ("hang@", "empty target"),
        ("board_fail=1.5", "integer"),
    ],
)
def test_parse_fault_spec_errors(spec: str, needle: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_fault_spec(spec, 5)
    assert needle in str(exc.value)
    assert spec.split(",")[0] in str(exc.value)
    if "unknown kind" in needle:
        assert "slow_drip" in str(exc.value)  # lists the valid kinds


def test_minerspec_validation() -> None:
    with pytest.raises(ValueError, match="unknown persona"):
        MinerSpec("bfgminer", "Antminer S21")
    with pytest.raises(ValueError, match="unknown model"):
        MinerSpec("antminer_stock", "Antminer S99")
    with pytest.raises(ValueError, match="does not run on"):
        MinerSpec("whatsminer", "Antminer S21")
    with pytest.raises(ValueError, match="loopback"):
        MinerSpec("antminer_stock", "Antminer S21", host="10.0.0.5")
    assert {
        "antminer_stock",
        "whatsminer",
        "braiins",
        "luxos",
        "avalon",
        "vnish",
        "cgminer",
    } == PERSONAS
    for name in (
        "Antminer S19j Pro",
        "Antminer S19 Pro",
        "Antminer S19 XP",
        "Antminer S21",
        "Whatsminer M50",
        "Whatsminer M60S",
        "AvalonMiner 1246",
    ):
        assert name in MODELS


def test_plan_fleet_ip_per_miner() -> None:
    specs = plan_fleet(600, base_ip="127.0.1.250", seed=3)
    hosts = [s.host for s in specs]
    assert len(set(hosts)) == 600 and all(s.port == 4028 for s in specs)
    assert hosts[:6] == [
        "127.0.1.250",
        "127.0.1.251",
        "127.0.1.252",
        "127.0.1.253",
        "127.0.1.254",
        "127.0.2.1",
    ]
    assert all(ipaddress.ip_address(h).packed[3] not in (0, 255) for h in hosts)
    kinds = Counter(s.persona for s in specs)
    assert kinds["antminer_stock"] > 0.5 * 600
    assert set(kinds) == {"antminer_stock", "whatsminer", "braiins", "luxos", "avalon", "vnish"}
    models = Counter(s.model for s in specs if s.persona == "antminer_stock")
    assert {"Antminer S19j Pro", "Antminer S21", "Antminer S19 XP"} <= set(models)
    assert plan_fleet(600, base_ip="127.0.1.250", seed=3) == specs
    assert plan_fleet(600, base_ip="127.0.1.250", seed=4) != specs


def test_plan_fleet_port_per_miner_and_faults() -> None:
    specs = plan_fleet(
        10, base_ip="127.0.0.1", port=15000, port_per_miner=True, faults="refuse@2,quirk=Q3@0-1"
    )
    assert {s.host for s in specs} == {"127.0.0.1"}
    assert [s.port for s in specs] == list(range(15000, 15010))
    assert specs[2].faults == (Fault("refuse"),)
    assert specs[0].faults == (Fault("quirk", "Q3"),)
    small = plan_fleet(3)
    assert [s.persona for s in small].count("antminer_stock") >= 1
    with pytest.raises(ValueError):
        plan_fleet(2, base_ip="192.168.1.1")
    with pytest.raises(ValueError):
        plan_fleet(10, base_ip="127.255.255.250")


def test_md5_crypt_matches_passlib() -> None:
    passlib = pytest.importorskip("passlib.hash")
    for password, salt in (
        ("admin", "BQ5hoXV9"),
        ("", "ab"),
        ("x" * 40, "jbzkfAgn"),
        ("pässwörd", "s4lt"),
    ):
        assert md5_crypt(password, salt) == passlib.md5_crypt.using(salt=salt).hash(password)
    key = bytes(range(32))
    assert decrypt(key, encrypt(key, b'{"cmd":"reboot"}')) == b'{"cmd":"reboot"}'


def test_encoder_prints_like_cgminer() -> None:
    body = {
        "STATUS": [{"STATUS": "S", "When": 1, "Code": 11, "Msg": 'a"b\\c'}],
        "SUMMARY": [
            {
                "MHS av": F2(44539601.856),
                "Diff": F8(1305083904.0),
                "Pct": F4(0.00042),
                "Ok": True,
                "None": None,
                "N": 5,
                "R": 1.5,
            }
        ],
        "id": 1,
    }
    assert encode(body) == (
        '{"STATUS":[{"STATUS":"S","When":1,"Code":11,"Msg":"a\\"b\\\\c"}],'
        '"SUMMARY":[{"MHS av":44539601.86,"Diff":1305083904.00000000,"Pct":0.0004,'
        '"Ok":true,"None":null,"N":5,"R":1.5}],"id":1}'
    )
    text = encode_text(
        {
            "STATUS": [{"STATUS": "S", "Code": 7, "Msg": "2 Pool(s)"}],
            "POOLS": [{"POOL": 0, "URL": "a,b"}, {"POOL": 1, "URL": "c|d"}],
        }
    )
    assert text == "STATUS=S,Code=7,Msg=2 Pool(s)|POOL=0,URL=a\\,b|POOL=1,URL=c\\|d|"


def test_physics_is_lazy_deterministic_and_ramps() -> None:
    model = MODELS["Antminer S19j Pro"]

    def make() -> Physics:
        return Physics(
            model,
            seed=9,
            ambient_c=25.0,
            ramp_s=10.0,
            noise=True,
            tick_s=1.0,
            uptime_s=3600.0,
            pool_difficulty=None,
            now=1000.0,
        )

    a, b = make(), make()
    sa, sb = a.sample(1500.0), b.sample(1500.0)
    assert sa == sb
    assert sa.hashrate_hs == pytest.approx(sum(bd.hashrate_hs for bd in sa.boards))
    assert sa.hashrate_hs == pytest.approx(model.nominal_hs, rel=0.05)
    assert sa.windows_hs["5s"] != sa.windows_hs["1m"]
    assert sa.power_w == pytest.approx(model.power_w, rel=0.05)
    assert sa.accepted > 0 and sa.rejected < 0.01 * sa.accepted
    a.command(1500.0, target=0.0, state="sleeping")
    mid = a.sample(1505.0)
    assert 0 < mid.hashrate_hs < sa.hashrate_hs
    low = a.sample(1600.0)
    assert low.hashrate_hs == 0 and low.state == "sleeping"
    assert low.temp_chip_max_c < sa.temp_chip_max_c
    assert low.power_w < 0.05 * model.power_w
    acc = low.accepted
    assert a.sample(1700.0).accepted == acc  # no hashing, no shares
    a.set_faults(dead_boards=frozenset(), missing_chips=0, overheat=True)
    a.command(1700.0, target=1.0, state="mining")
    hot = a.sample(2500.0)
    assert hot.temp_chip_max_c > 90 and hot.hashrate_hs == pytest.approx(
        0.7 * model.nominal_hs, rel=0.05
    )
    a.go_offline(2500.0)
    assert a.sample(2510.0).state == "rebooting"
    a.boot(2520.0)
    booted = a.sample(2521.0)
    assert booted.elapsed_s == 1 and booted.accepted == 0


def test_encoder_fast_float_path_matches_the_reference_format() -> None:
    from simulators.asic.encoding import F6, _fmt_float

    for cls in (F2, F4, F6, F8):
        for value in (0.0, -0.0, 1.005, 2.675, 123456789.123456789, -3.14159, 5e-9, 1e20):
            assert encode(cls(value)) == _fmt_float(cls(value))


def test_physics_ticks_start_at_the_miner_phase() -> None:
    model = MODELS["Antminer S19j Pro"]

    def make(phase_s: float) -> Physics:
        return Physics(
            model,
            seed=9,
            ambient_c=25.0,
            ramp_s=0.0,
            noise=True,
            tick_s=1.0,
            uptime_s=3600.0,
            pool_difficulty=None,
            now=1000.0,
            phase_s=phase_s,
        )

    plain, shifted = make(0.0), make(0.25)
    assert plain.tick_of(1000.2) == plain.tick_of(1000.9) == 1000
    # With a 0.25 s phase the tick changes at .25, not at the whole second.
    assert shifted.tick_of(1000.2) == 999 and shifted.tick_of(1000.3) == 1000
    assert shifted.sample(1000.3).tick == 1000.25
    assert shifted.sample(1000.3) is shifted.sample(1001.2)  # one tick, one sample
