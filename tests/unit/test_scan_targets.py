"""Scan targets: CIDR arguments are checked loudly, liberties are noted, hosts are swept once."""

from __future__ import annotations

import pytest

from console.scan.targets import HARD_MAX_HOSTS, TargetError, parse_targets


def test_a_network_and_a_single_address() -> None:
    targets = parse_targets(["127.0.72.0/29", "127.0.72.100"])
    assert targets.host_count == 6 + 1
    assert list(targets.hosts()) == [f"127.0.72.{i}" for i in (1, 2, 3, 4, 5, 6, 100)]
    assert targets.notes == ()


def test_host_bits_set_is_taken_as_the_network_with_a_note() -> None:
    targets = parse_targets(["127.0.72.7/30"])
    assert [str(n) for n in targets.networks] == ["127.0.72.4/30"]
    assert targets.notes == ("127.0.72.7/30 has host bits set; scanning 127.0.72.4/30",)


def test_a_network_inside_another_is_swept_once_and_said() -> None:
    targets = parse_targets(["127.0.72.0/28", "127.0.72.0/24", "127.0.72.0/24"])
    assert [str(n) for n in targets.networks] == ["127.0.72.0/24"]
    assert targets.host_count == 254
    assert len(targets.notes) == 2
    assert "127.0.72.0/28 is inside 127.0.72.0/24" in targets.notes[0]
    assert len(set(targets.hosts())) == len(list(targets.hosts())) == 254


def test_the_network_address_of_a_bigger_network_is_not_lost() -> None:
    # 127.0.72.0 is not a host of the /24, so the /32 naming it must stay.
    targets = parse_targets(["127.0.72.0/24", "127.0.72.0/32"])
    assert targets.host_count == 255
    assert "127.0.72.0" in set(targets.hosts())


def test_ipv6_loopback() -> None:
    assert list(parse_targets(["::1"]).hosts()) == ["::1"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("10.0.0.0/33", ["'10.0.0.0/33'", "/33 is out of range for IPv4 (0-32)", "fix:"]),
        ("10.0.0.0/x", ["'10.0.0.0/x'", "prefix 'x' is not a number", "fix:"]),
        ("10.0.300.0/24", ["'10.0.300.0/24'", "not an IPv4 or IPv6 address", "fix:"]),
        ("rack-7", ["'rack-7'", "not an IPv4 or IPv6 address or network", "fix:"]),
        ("", ["empty", "fix:"]),
        ("224.0.0.0/24", ["multicast", "fix:"]),
        ("0.0.0.0", ["unspecified", "fix:"]),
    ],
)
def test_bad_targets_name_the_argument_and_the_fix(text: str, words: list[str]) -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets([text])
    for word in words:
        assert word in str(caught.value)


def test_large_ranges_need_force() -> None:
    with pytest.raises(TargetError, match=r"65,534 addresses.*--force"):
        parse_targets(["10.9.0.0/16"])
    assert parse_targets(["10.9.0.0/16"], force=True).host_count == 65_534
    assert parse_targets(["10.9.0.0/20"]).host_count == 4094  # the default limit is a /20


def test_some_ranges_are_too_large_even_with_force() -> None:
    with pytest.raises(TargetError, match="split the range"):
        parse_targets(["10.0.0.0/8"], force=True)
    assert HARD_MAX_HOSTS == 1 << 20


def test_private_and_shared_ranges_are_fine_public_ones_need_force() -> None:
    # Parsing only: nothing is probed in a unit test.
    for text in ("10.1.2.0/24", "172.16.5.0/24", "192.168.1.0/24", "100.64.1.0/24", "fd00::/120"):
        parse_targets([text])
    with pytest.raises(TargetError, match=r"public .*--force"):
        parse_targets(["203.0.113.0/24", "8.8.8.0/24"])
    assert parse_targets(["8.8.8.0/24"], force=True).host_count == 254
