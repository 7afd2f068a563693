"""The tolerant decoder: one test per wire quirk, with the bytes firmwares really send.

Quirk numbers refer to cgminer-protocol.md §5.
"""

from __future__ import annotations

import random

import pytest

from drivers.cgminer.decoder import decode
from drivers.cgminer.errors import (
    DecodeError,
    EmptyReply,
    NonJsonReply,
    ProxyConnectFailed,
    TruncatedReply,
)

STATUS_11 = (
    b'{"STATUS":[{"STATUS":"S","When":1755615295,"Code":11,"Msg":"Summary",'
    b'"Description":"cgminer 4.11.1"}]'
)
SUMMARY = STATUS_11 + b',"SUMMARY":[{"Elapsed":50474,"MHS av":44539601.86,"Accepted":4057}],"id":1}'


def test_valid_reply_takes_the_fast_path_without_repairs() -> None:
    decoded = decode(SUMMARY)
    assert decoded.repairs == ()
    assert decoded.obj["SUMMARY"][0]["MHS av"] == 44539601.86


def test_q1_trailing_nul_is_stripped() -> None:
    decoded = decode(SUMMARY + b"\x00")
    assert decoded.repairs == ("trailing_nul",)
    assert decoded.obj["id"] == 1


def test_q2_no_nul_is_accepted_as_is() -> None:
    assert decode(SUMMARY).repairs == ()


def test_trailing_whitespace_before_the_nul() -> None:
    decoded = decode(SUMMARY + b" \r\n\x00")
    assert decoded.repairs == ("trailing_nul", "trailing_whitespace")


def test_q3_missing_comma_between_stats_objects() -> None:
    raw = (
        b'{"STATUS":[{"STATUS":"S","When":1,"Code":70,"Msg":"CGMiner stats",'
        b'"Description":"cgminer 1.0.0"}],"STATS":[{"BMMiner":"1.0.0","Miner":"uart_trans.1.3",'
        b'"CompileTime":"Mon Dec 26 17:10:01 CST 2022","Type":"Antminer S9"}{"STATS":0,'
        b'"ID":"BC50","Elapsed":5,"chain_rate6":"4550.12"}],"id":1}\x00'
    )
    decoded = decode(raw)
    assert "missing_comma_between_objects" in decoded.repairs
    assert decoded.obj["STATS"][1]["ID"] == "BC50"


def test_q4_leading_comma_in_array() -> None:
    raw = STATUS_11 + b',"SUMMARY":[,{"Elapsed":5,"GHS 5s":"14046.04"}],"id":1}\x00'
    decoded = decode(raw)
    assert decoded.repairs == ("trailing_nul", "leading_comma_in_array")
    assert decoded.obj["SUMMARY"] == [{"Elapsed": 5, "GHS 5s": "14046.04"}]


def test_q5_trailing_comma_in_object_and_array() -> None:
    raw = STATUS_11 + b',"SUMMARY":[{"Elapsed":5,"MHS av":118500000.00,},],"id":1}'
    decoded = decode(raw)
    assert decoded.repairs == ("trailing_comma",)
    assert decoded.obj["SUMMARY"][0]["MHS av"] == 118500000.0


def test_q6_raw_newline_inside_a_string() -> None:
    raw = STATUS_11 + b',"SUMMARY":[{"Firmware Version":"20230803.\n11.REL","Elapsed":5}],"id":1}'
    decoded = decode(raw)
    assert decoded.repairs == ("raw_newlines",)
    assert decoded.obj["SUMMARY"][0]["Firmware Version"] == "20230803.11.REL"


def test_q6_newlines_between_tokens_need_no_repair() -> None:
    assert decode(SUMMARY.replace(b"],", b"],\n")).repairs == ()


def test_q7_missing_comma_after_a_string_value() -> None:
    raw = STATUS_11 + b',"SUMMARY":[{"Power Mode":"Normal""temp0":72.50,"Elapsed":5}],"id":1}'
    decoded = decode(raw)
    assert decoded.repairs == ("missing_comma_after_string",)
    assert decoded.obj["SUMMARY"][0] == {"Power Mode": "Normal", "temp0": 72.5, "Elapsed": 5}


def test_q7_after_an_empty_string_value() -> None:
    raw = STATUS_11 + b',"SUMMARY":[{"Power Mode":"""temp0":72.50}],"id":1}'
    decoded = decode(raw)
    assert decoded.obj["SUMMARY"][0] == {"Power Mode": "", "temp0": 72.5}


def test_q8_bare_inf_and_nan_become_none_not_zero() -> None:
    raw = (
        STATUS_11 + b',"SUMMARY":[{"MHS 5s":inf,"Work Utility":-inf,"Device Hardware%":nan,'
        b'"DH":NaN,"Elapsed":5}],"id":1}'
    )
    decoded = decode(raw)
    assert decoded.repairs == ("non_finite_number",)
    record = decoded.obj["SUMMARY"][0]
    assert record["MHS 5s"] is None
    assert record["Work Utility"] is None
    assert record["Device Hardware%"] is None
    assert record["DH"] is None
    assert record["Elapsed"] == 5


def test_q8_words_containing_inf_are_left_alone() -> None:
    raw = STATUS_11 + b',"SUMMARY":[{"info":"nan-free inf text","x":inf}],"id":1}'
    decoded = decode(raw)
    assert decoded.obj["SUMMARY"][0]["info"] == "nan-free inf text"


def test_q9_reply_starting_with_a_comma() -> None:
    raw = b',"STATUS":[{"STATUS":"S","When":1,"Code":11,"Msg":"Summary"}],"id":1}'
    decoded = decode(raw)
    assert decoded.repairs == ("leading_comma_reply",)
    assert decoded.obj["STATUS"][0]["Code"] == 11


def test_q10_truncated_reply_is_a_clear_error() -> None:
    raw = SUMMARY[:60]
    with pytest.raises(TruncatedReply) as caught:
        decode(raw)
    assert caught.value.bytes_received == 60
    assert "60 bytes" in str(caught.value)
    assert "truncated" in str(caught.value)


def test_q10_truncated_inside_a_string() -> None:
    with pytest.raises(TruncatedReply, match="inside a string"):
        decode(SUMMARY[:45])


def test_q11_error_code_list_printed_like_a_dict() -> None:
    raw = (
        b'{"STATUS":"S","When":1761064196,"Code":131,"Msg":{"error_code":'
        b'["110":"2024-06-15 09:15:00","352":"2024-06-16 10:00:00"]},"Description":""}'
    )
    decoded = decode(raw)
    assert decoded.repairs == ("error_code_dict_list",)
    assert decoded.obj["Msg"]["error_code"] == {
        "110": "2024-06-15 09:15:00",
        "352": "2024-06-16 10:00:00",
    }


def test_q11_well_formed_error_code_list_untouched() -> None:
    raw = (
        b'{"STATUS":"S","When":1,"Code":131,"Msg":{"error_code":[{"110":"2024-06-15 09:15:00"}]},'
        b'"Description":""}'
    )
    decoded = decode(raw)
    assert decoded.repairs == ()
    assert decoded.obj["Msg"]["error_code"] == [{"110": "2024-06-15 09:15:00"}]


def test_q17_invalid_utf8_is_replaced() -> None:
    raw = (
        b'{"STATUS":[{"STATUS":"S","When":1,"Code":7,"Msg":"1 Pool(s)"}],"POOLS":[{"POOL":0,'
        b'"URL":"stratum+tcp://pool:3333","User":"\xaasite1.m50"}],"id":1}'
    )
    decoded = decode(raw)
    assert decoded.repairs == ("invalid_utf8",)
    assert decoded.obj["POOLS"][0]["User"] == "\ufffdsite1.m50"


def test_q17_with_another_repair() -> None:
    raw = STATUS_11 + b',"SUMMARY":[{"User":"\xaa","Elapsed":5,}],"id":1}'
    assert decode(raw).repairs == ("invalid_utf8", "trailing_comma")


@pytest.mark.parametrize("raw", [b"", b"\x00", b" \r\n", b"\x00\x00"])
def test_q18_empty_reply(raw: bytes) -> None:
    with pytest.raises(EmptyReply):
        decode(raw)


def test_q19_socket_connect_failed_text() -> None:
    with pytest.raises(ProxyConnectFailed) as caught:
        decode(b"Socket connect failed: Connection refused\n")
    assert "Socket connect failed" in caught.value.text


def test_other_plain_text_is_a_non_json_error() -> None:
    with pytest.raises(NonJsonReply) as caught:
        decode(b"\x15STATUS=?garbage<<not json>>}{]] \x07\x7f")
    assert not isinstance(caught.value, ProxyConnectFailed)


def test_html_error_page() -> None:
    with pytest.raises(NonJsonReply):
        decode(b"<html><body>404 Not Found</body></html>")


def test_json_that_is_not_an_object() -> None:
    with pytest.raises(DecodeError, match="not an object"):
        decode(b"[1,2,3]")


def test_malformed_json_names_the_position() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(STATUS_11 + b',"SUMMARY":[{"Elapsed":5 "x":1}],"id":1}')
    assert "near" in str(caught.value)
    assert not isinstance(caught.value, TruncatedReply)


def test_typical_btminer_reply_with_several_quirks() -> None:
    raw = (
        b'{"STATUS":[{"STATUS":"S","When":1761064196,"Code":11,"Msg":"Summary",'
        b'"Description":"cgminer 4.9.2"}],"SUMMARY":[{"Elapsed":172800,\n"MHS av":118500000.00,'
        b'"Firmware Version":"\'20230803.11.REL\'",}],"id":1}'
    )
    decoded = decode(raw)
    assert set(decoded.repairs) == {"raw_newlines", "trailing_comma"}
    assert decoded.obj["SUMMARY"][0]["Firmware Version"] == "'20230803.11.REL'"


# --- property-ish: corruption never escapes as anything but DecodeError -------------------------

_JOIN = (
    b'{"summary":[' + SUMMARY + b'],"pools":[{"STATUS":[{"STATUS":"S","When":1,"Code":7,'
    b'"Msg":"1 Pool(s)"}],"POOLS":[{"POOL":0,"URL":"stratum+tcp://p:3333","User":"w",'
    b'"Status":"Alive","Stratum Active":true,"Diff":"524K"}],"id":1}],"id":1}\x00'
)


def _corrupt(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        action = rng.choice(("truncate", "flip", "insert", "delete", "dup"))
        if not data:
            break
        at = rng.randrange(len(data))
        if action == "truncate":
            del data[at:]
        elif action == "flip":
            data[at] = rng.randrange(256)
        elif action == "insert":
            data[at:at] = bytes(rng.choice(b'{}[],:"\x00\n\xaainfnan ') for _ in range(3))
        elif action == "delete":
            del data[at : at + rng.randint(1, 8)]
        else:
            data[at:at] = data[at : at + rng.randint(1, 30)]
    return bytes(data)


@pytest.mark.parametrize("seed", range(8))
def test_random_corruption_raises_only_decode_error(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        raw = _corrupt(rng, _JOIN if rng.random() < 0.5 else SUMMARY)
        try:
            decoded = decode(raw)
        except DecodeError:
            continue
        assert isinstance(decoded.obj, dict)
        assert all(isinstance(name, str) for name in decoded.repairs)


def test_every_truncation_point_is_a_decode_error() -> None:
    for cut in range(len(_JOIN) - 2):
        with pytest.raises(DecodeError):
            decode(_JOIN[:cut])
