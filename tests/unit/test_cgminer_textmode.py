"""The text form of requests and replies (§1.2, §1.7)."""

from __future__ import annotations

import pytest

from drivers.cgminer.errors import DecodeError
from drivers.cgminer.status import parse_status
from drivers.cgminer.textmode import encode_text_request, parse_text_reply


def test_request_bytes() -> None:
    assert encode_text_request("summary", None) == b"summary"
    assert encode_text_request("switchpool", "1") == b"switchpool|1"
    with pytest.raises(ValueError):
        encode_text_request("sum|mary", None)


def test_single_record_reply() -> None:
    text = (
        "STATUS=S,When=1731551852,Code=11,Msg=Summary,Description=cgminer 4.11.1|"
        "SUMMARY,Elapsed=247622,MHS av=44539601.86,Accepted=4057|\x00"
    )
    reply = parse_text_reply(text)
    assert parse_status(reply).code == 11
    assert reply["SUMMARY"] == [{"Elapsed": 247622, "MHS av": 44539601.86, "Accepted": 4057}]


def test_multi_record_reply_named_after_the_first_key() -> None:
    text = (
        "STATUS=S,When=1,Code=7,Msg=2 Pool(s),Description=cgminer 4.11.1|"
        "POOL=0,URL=stratum+tcp://a:3333,Status=Alive,Stratum Active=true|"
        "POOL=1,URL=stratum+tcp://b:3333,Status=Dead,Stratum Active=false|"
    )
    reply = parse_text_reply(text)
    assert [p["POOL"] for p in reply["POOLS"]] == [0, 1]
    assert reply["POOLS"][0]["Stratum Active"] is True


def test_escapes() -> None:
    text = r"STATUS=S,Code=55,Msg=Added pool 3: 'a\,b',Description=x|"
    reply = parse_text_reply(text)
    assert reply["STATUS"][0]["Msg"] == "Added pool 3: 'a,b'"


def test_text_join() -> None:
    text = (
        "CMD=summary|STATUS=S,Code=11,Msg=Summary|SUMMARY,Elapsed=5|"
        "CMD=devs|STATUS=S,Code=9,Msg=1 ASC(s)|ASC=0,Name=BTM,MHS 5s=1.0|"
    )
    reply = parse_text_reply(text)
    assert reply["summary"][0]["SUMMARY"] == [{"Elapsed": 5}]
    assert reply["devs"][0]["DEVS"][0]["Name"] == "BTM"


def test_no_status_is_an_error() -> None:
    with pytest.raises(DecodeError):
        parse_text_reply("SUMMARY,Elapsed=5|")
    with pytest.raises(DecodeError):
        parse_text_reply("")
