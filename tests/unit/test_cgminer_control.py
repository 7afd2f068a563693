"""Control building blocks: md5-crypt, the Whatsminer token/AES envelope, capabilities."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from drivers.cgminer import ACTIONS, CgminerMiner, ControlNotPermitted, capabilities
from drivers.cgminer.control import escape_field, pool_index
from drivers.cgminer.controls.avalon import work_level
from drivers.cgminer.controls.whatsminer_auth import (
    Token,
    decrypt_reply,
    derive_token,
    encrypt_command,
)
from drivers.cgminer.dialects import DIALECTS
from drivers.cgminer.md5crypt import md5_crypt, md5_crypt_hash
from drivers.cgminer.models import lookup
from drivers.cgminer.reading import Firmware

# Known md5-crypt values (glibc crypt(3) / passlib agree on these).
VECTORS = [
    ("admin", "BQ5hoXV9", "$1$BQ5hoXV9$RxmaDUO33TS7O26yeMHZ81"),
    ("", "abc", "$1$abc$Or2rbeUYTvt12aiVzMuS/."),
    ("a" * 40, "xyz12345", "$1$xyz12345$DBTYjIYfiwpmL47MV1jlZ0"),
    ("pässword", "Zz", "$1$Zz$ievlC31E/dNKXQtdCm1bE0"),
]


@pytest.mark.parametrize(("password", "salt", "expected"), VECTORS)
def test_md5_crypt_vectors(password: str, salt: str, expected: str) -> None:
    assert md5_crypt(password, salt) == expected
    assert md5_crypt_hash(password, salt) == expected.rsplit("$", 1)[1]


def test_md5_crypt_salt_is_cut_at_eight_and_at_dollar() -> None:
    assert md5_crypt("admin", "BQ5hoXV9EXTRA") == md5_crypt("admin", "BQ5hoXV9")
    assert md5_crypt("admin", "abc$def") == md5_crypt("admin", "abc")


def test_whatsminer_envelope_round_trip() -> None:
    sign, key = derive_token("admin", "BQ5hoXV9", "4120", "3FfXfhoS")
    token = Token(sign, key, 0.0)
    request = json.loads(encrypt_command(token, {"cmd": "power_off", "respbefore": "true"}))
    assert request["enc"] == 1
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    plain = decryptor.update(base64.b64decode(request["data"])) + decryptor.finalize()
    assert len(plain) % 16 == 0
    command = json.loads(plain.rstrip(b"\x00"))
    assert command == {"cmd": "power_off", "respbefore": "true", "token": sign}

    reply = b'{"STATUS":"S","When":1,"Code":131,"Msg":"API command OK","Description":""}'
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    sealed = encryptor.update(reply + b"\x00" * (-len(reply) % 16)) + encryptor.finalize()
    assert decrypt_reply(token, base64.b64encode(sealed).decode())["Code"] == 131


def test_token_derivation_matches_the_documented_flow() -> None:
    passwd_md5 = md5_crypt_hash("admin", "BQ5hoXV9")
    sign, _key = derive_token("admin", "BQ5hoXV9", "4120", "3FfXfhoS")
    assert sign == md5_crypt_hash(passwd_md5 + "4120", "3FfXfhoS")


@pytest.mark.parametrize(
    ("firmware", "expected"),
    [
        (Firmware.ANTMINER_STOCK, frozenset()),
        (Firmware.VNISH, frozenset()),
        (Firmware.LUXOS, ACTIONS),
        (
            Firmware.BRAIINS,
            {"curtail", "wake", "switch_pool", "enable_pool", "disable_pool", "add_pool"},
        ),
        (Firmware.WHATSMINER, {"reboot", "restart", "curtail", "wake", "set_power_target"}),
        (Firmware.AVALON, ACTIONS),
        (Firmware.CGMINER, {"restart", "switch_pool", "enable_pool", "disable_pool", "add_pool"}),
    ],
)
def test_capabilities(firmware: Firmware, expected: frozenset[str]) -> None:
    assert capabilities(firmware) == expected
    assert capabilities(DIALECTS[firmware]) == expected
    assert capabilities(firmware) <= ACTIONS


def test_pool_index_is_sent_as_a_string_even_for_zero() -> None:
    assert pool_index(0) == "0"
    for bad in (-1, True, 1.5, "1"):
        with pytest.raises(ValueError):
            pool_index(bad)  # type: ignore[arg-type]


def test_addpool_fields_are_escaped() -> None:
    assert escape_field("stratum+tcp://a,b:3333") == "stratum+tcp://a\\,b:3333"
    assert escape_field("x\\y") == "x\\\\y"


def test_avalon_work_level_from_nameplate() -> None:
    spec = lookup("AvalonMiner 1246")
    assert spec is not None
    assert work_level(2000, spec) == 0
    assert work_level(3000, spec) == 1
    assert work_level(3420, spec) == 2
    assert work_level(4000, spec) == 2


async def test_control_refused_before_any_io_when_not_privileged() -> None:
    # Port 9 on loopback is never contacted: the refusal happens first.
    miner = CgminerMiner("127.0.0.1", 9, firmware=Firmware.LUXOS)
    for call in (
        miner.curtail(),
        miner.reboot(),
        miner.switch_pool(0),
        miner.set_power_target(3000),
    ):
        with pytest.raises(ControlNotPermitted) as caught:
            await call
        assert isinstance(caught.value, PermissionError)
    assert miner.capabilities() == ACTIONS
