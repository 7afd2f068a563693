"""The CGMiner client over real loopback sockets, against a tiny canned-bytes server.

The server here is deliberately dumb: each connection gets one scripted behaviour (exact bytes,
NUL or not, close or not, drip, reset, hang), so framing and error paths are tested byte for
byte, independently of the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.cgminer import (
    AccessDenied,
    CgminerMiner,
    ConnectFailed,
    EmptyReply,
    Firmware,
    InvalidCommand,
    MinerState,
    ProxyConnectFailed,
    Reply,
    ReplyInterrupted,
    ReplyTooLarge,
    RequestTimeout,
    command,
    multi,
    request,
    transport,
)

FIXTURES = Path(__file__).parent.parent / "unit" / "cgminer_fixtures"
HOST = "127.0.0.1"

Behaviour = Callable[[bytes, asyncio.Transport], None]


def summary_bytes(code: int = 11) -> bytes:
    return (
        b'{"STATUS":[{"STATUS":"S","When":1,"Code":%d,"Msg":"Summary",'
        b'"Description":"cgminer 4.11.1"}],'
        b'"SUMMARY":[{"Elapsed":5,"MHS av":44539601.86}],"id":1}' % code
    )


SUMMARY = summary_bytes()


class _Connection(asyncio.Protocol):
    def __init__(self, server: CannedServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections += 1
        if self.server.on_connect is not None:
            self.server.on_connect(transport)

    def data_received(self, data: bytes) -> None:
        if self.answered or self.transport is None:
            return
        self.answered = True
        self.server.requests.append(data)
        self.server.behaviour(data, self.transport)

    def eof_received(self) -> bool:
        self.server.half_closes += 1
        return True


class CannedServer:
    """Loopback server; `behaviour(request_bytes, transport)` answers each connection."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.on_connect: Callable[[asyncio.Transport], None] | None = None
        self.requests: list[bytes] = []
        self.connections = 0
        self.half_closes = 0
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> CannedServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    @property
    def commands(self) -> list[str]:
        return [json.loads(r)["command"] for r in self.requests]


@pytest.fixture
async def canned() -> AsyncIterator[Callable[[Behaviour], Awaitable[CannedServer]]]:
    servers: list[CannedServer] = []

    async def make(behaviour: Behaviour) -> CannedServer:
        server = await CannedServer(behaviour).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


def send(payload: bytes, *, close: bool = True) -> Behaviour:
    def behaviour(_request: bytes, transport: asyncio.Transport) -> None:
        transport.write(payload)
        if close:
            transport.close()

    return behaviour


def reset_socket(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def dispatch(replies: dict[str, bytes | Behaviour]) -> Behaviour:
    """Answer by JSON command name; a missing name gets E 14."""

    def behaviour(request_bytes: bytes, transport: asyncio.Transport) -> None:
        name = json.loads(request_bytes)["command"]
        answer = replies.get(name)
        if answer is None:
            answer = (
                b'{"STATUS":[{"STATUS":"E","When":1,"Code":14,"Msg":"Invalid command"}],"id":1}\x00'
            )
        if callable(answer):
            answer(request_bytes, transport)
            return
        transport.write(answer)
        transport.close()

    return behaviour


# --- request framing ---------------------------------------------------------------------------


async def test_request_bytes_are_exact_json_without_newline_nul_or_half_close(canned: Any) -> None:
    server = await canned(send(SUMMARY + b"\x00"))
    reply = await request(HOST, server.port, "summary")
    await request(HOST, server.port, "switchpool", 0)
    assert server.requests == [
        b'{"command":"summary"}',
        b'{"command":"switchpool","parameter":"0"}',  # pool 0 sent as the string "0"
    ]
    assert server.half_closes == 0
    assert reply.ok and reply.data["SUMMARY"][0]["MHS av"] == 44539601.86
    assert reply.repairs == ()  # the frame's NUL is framing, not a repair


async def test_text_form_request_and_reply(canned: Any) -> None:
    text = (
        b"STATUS=S,When=1,Code=11,Msg=Summary,Description=cgminer 4.11.1|"
        b"SUMMARY,Elapsed=5,MHS av=44539601.86|\x00"
    )
    server = await canned(send(text))
    reply = await request(HOST, server.port, "summary", text=True)
    await request(HOST, server.port, "switchpool", 1, text=True)
    assert server.requests == [b"summary", b"switchpool|1"]
    assert reply.status.code == 11
    assert reply.data["SUMMARY"] == [{"Elapsed": 5, "MHS av": 44539601.86}]


# --- framing: NUL, EOF, never-closing servers --------------------------------------------------


async def test_nul_then_no_close_completes_at_the_nul(canned: Any) -> None:
    server = await canned(send(SUMMARY + b"\x00", close=False))
    started = time.monotonic()
    reply = await request(HOST, server.port, "summary", timeout_s=5.0)
    assert time.monotonic() - started < 1.0
    assert reply.ok


async def test_eof_without_nul(canned: Any) -> None:
    server = await canned(send(SUMMARY))
    assert (await request(HOST, server.port, "summary")).ok


async def test_no_nul_no_close_but_complete_json(canned: Any) -> None:
    server = await canned(send(SUMMARY, close=False))
    started = time.monotonic()
    reply = await request(HOST, server.port, "summary", timeout_s=5.0)
    assert time.monotonic() - started < 1.0
    assert reply.ok


async def test_bytes_after_the_nul_are_ignored(canned: Any) -> None:
    server = await canned(send(SUMMARY + b"\x00garbage"))
    assert (await request(HOST, server.port, "summary")).ok


async def test_empty_reply(canned: Any) -> None:
    server = await canned(send(b""))
    with pytest.raises(EmptyReply):
        await request(HOST, server.port, "summary")


async def test_q19_socket_connect_failed_text(canned: Any) -> None:
    server = await canned(send(b"Socket connect failed: Connection refused\n"))
    with pytest.raises(ProxyConnectFailed):
        await request(HOST, server.port, "summary")


# --- deadlines ---------------------------------------------------------------------------------


async def test_hang_times_out_in_the_read_phase(canned: Any) -> None:
    server = await canned(lambda _r, _t: None)
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as caught:
        await request(HOST, server.port, "summary", timeout_s=0.3)
    assert 0.25 < time.monotonic() - started < 1.0
    assert caught.value.phase == "read"
    assert caught.value.bytes_received == 0


async def test_partial_reply_then_hang_reports_bytes_received(canned: Any) -> None:
    server = await canned(send(SUMMARY[:40], close=False))
    with pytest.raises(RequestTimeout) as caught:
        await request(HOST, server.port, "summary", timeout_s=0.3)
    assert caught.value.bytes_received == 40


async def test_deadline_covers_the_connect_phase(canned: Any) -> None:
    server = await canned(send(SUMMARY))
    with pytest.raises(RequestTimeout) as caught:
        await request(HOST, server.port, "summary", timeout_s=0.0)
    assert caught.value.phase == "connect"


@contextlib.contextmanager
def connects_never_complete() -> Iterator[int]:
    """A loopback port where a new connection never completes, as behind a firewall that drops
    SYNs: a listener whose accept queue is full (one connection never accepted) drops them."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind((HOST, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect((HOST, port))  # takes the one place in the accept queue
        yield port


async def test_deadline_interrupts_a_connect_that_never_completes() -> None:
    with connects_never_complete() as port:
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as caught:
            await request(HOST, port, "summary", timeout_s=0.2)
    assert 0.15 < time.monotonic() - started < 1.0
    assert caught.value.phase == "connect"
    assert caught.value.bytes_received == 0
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # no cancellation left behind


async def test_a_callers_cancellation_during_connect_is_not_a_timeout() -> None:
    with connects_never_complete() as port:
        task = asyncio.create_task(request(HOST, port, "summary", timeout_s=5.0))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.fixture(params=["epoll", "poll"])
def readiness(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The transport's readiness source: epoll (Linux), and poll() as on BSD and macOS, where a
    closed socket stays registered until the ticker notices."""
    if request.param == "poll":
        monkeypatch.setattr(transport, "_new_readiness", select.poll)
    monkeypatch.setattr(transport, "_ticker", None)  # a fresh ticker with that source
    yield request.param
    monkeypatch.setattr(transport, "_ticker", None)


async def test_sockets_given_up_on_do_not_confuse_later_requests(
    canned: Any, readiness: str
) -> None:
    hang = await canned(lambda _r, _t: None)
    served = await canned(send(SUMMARY + b"\x00"))
    nul_less = await canned(send(SUMMARY, close=False))
    dripping = await canned(drip(SUMMARY + b"\x00", 0.005))
    for _round in range(3):
        # Callers that go away while their sockets wait: closed, their numbers free for reuse.
        abandoned = [asyncio.create_task(request(HOST, hang.port, "summary")) for _ in range(20)]
        await asyncio.sleep(0.03)
        for task in abandoned:
            task.cancel()
        await asyncio.gather(*abandoned, return_exceptions=True)
        ports = [served.port, nul_less.port, dripping.port] * 10
        replies = await asyncio.gather(*(request(HOST, p, "summary") for p in ports))
        assert all(reply.ok for reply in replies)
    with pytest.raises(RequestTimeout):
        await request(HOST, hang.port, "summary", timeout_s=0.1)


async def test_host_names_are_resolved(canned: Any) -> None:
    server = await canned(send(SUMMARY + b"\x00"))
    assert (await request("localhost", server.port, "summary")).ok


async def test_an_unresolvable_host_name_is_a_transport_failure_within_the_deadline() -> None:
    started = time.monotonic()
    # Refused by the resolver at once, or (no resolver answering) the deadline: never a hang.
    with pytest.raises((ConnectFailed, RequestTimeout)):
        await request("no-such-miner.invalid", 4028, "summary", timeout_s=0.5)
    assert time.monotonic() - started < 2.0


def drip(payload: bytes, interval_s: float, chunk: int = 16) -> Behaviour:
    def behaviour(_request: bytes, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()

        def step(rest: bytes) -> None:
            if transport.is_closing():
                return
            transport.write(rest[:chunk])
            if rest[chunk:]:
                loop.call_later(interval_s, step, rest[chunk:])
            else:
                transport.close()

        step(payload)

    return behaviour


async def test_slow_drip_within_the_deadline(canned: Any) -> None:
    server = await canned(drip(SUMMARY + b"\x00", 0.01))
    assert (await request(HOST, server.port, "summary", timeout_s=3.0)).ok


async def test_slow_drip_past_the_deadline(canned: Any) -> None:
    server = await canned(drip(SUMMARY + b"\x00", 0.1))
    with pytest.raises(RequestTimeout) as caught:
        await request(HOST, server.port, "summary", timeout_s=0.35)
    assert caught.value.phase == "read"
    assert 0 < caught.value.bytes_received < len(SUMMARY)


# --- size cap and connection failures ----------------------------------------------------------


async def test_reply_larger_than_one_mib_is_aborted(canned: Any) -> None:
    huge = b'{"STATUS":[{"STATUS":"S"}],"DATA":"' + b"x" * (2 << 20)
    server = await canned(send(huge, close=False))
    with pytest.raises(ReplyTooLarge) as caught:
        await request(HOST, server.port, "summary", timeout_s=5.0)
    assert caught.value.limit_bytes == 1 << 20


async def test_reset_mid_reply(canned: Any) -> None:
    def behaviour(_request: bytes, transport: asyncio.Transport) -> None:
        transport.write(SUMMARY[:50])
        asyncio.get_running_loop().call_later(0.05, reset_socket, transport)

    server = await canned(behaviour)
    with pytest.raises(ReplyInterrupted) as caught:
        await request(HOST, server.port, "summary")
    assert caught.value.bytes_received == 50


async def test_reset_before_any_byte_is_a_connect_failure(canned: Any) -> None:
    server = await canned(lambda _r, transport: reset_socket(transport))
    with pytest.raises(ConnectFailed):
        await request(HOST, server.port, "summary")


async def test_refused_port() -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectFailed) as caught:
        await request(HOST, port, "summary")
    assert str(port) in str(caught.value)


# --- status handling ---------------------------------------------------------------------------


async def test_command_raises_access_denied_on_45(canned: Any) -> None:
    denied = (
        b'{"STATUS":[{"STATUS":"E","When":1,"Code":45,'
        b'"Msg":"Access denied to \'devdetails\' command",'
        b'"Description":"cgminer 1.0.0"}],"id":1}\x00'
    )
    server = await canned(send(denied))
    with pytest.raises(AccessDenied) as caught:
        await command(HOST, server.port, "devdetails")
    assert caught.value.code == 45
    reply = await request(HOST, server.port, "devdetails")  # request() returns, not raises
    assert not reply.ok


# --- joins -------------------------------------------------------------------------------------


def section(name: str, code: int, extra: str) -> str:
    return f'[{{"STATUS":[{{"STATUS":"S","When":1,"Code":{code},"Msg":"{name}"}}],{extra},"id":1}}]'


JOIN = (
    '{"summary":'
    + section("Summary", 11, '"SUMMARY":[{"Elapsed":5,"GHS 5s":"100.0"}]')
    + ',"devdetails":[{"STATUS":[{"STATUS":"E","When":1,"Code":45,'
    '"Msg":"Access denied to \'devdetails\' command"}],"id":1}]'
    + ',"pools":'
    + section("1 Pool(s)", 7, '"POOLS":[{"POOL":0,"URL":"stratum+tcp://p:3333"}]')
    + ',"id":1}'
).encode() + b"\x00"


async def test_join_one_connection_and_per_section_errors(canned: Any) -> None:
    server = await canned(send(JOIN))
    result = await multi(HOST, server.port, ["summary", "devdetails", "pools"])
    assert server.commands == ["summary+devdetails+pools"]
    assert result.joined and result.join_error is None
    summary = result.replies["summary"]
    assert isinstance(summary, Reply) and summary.data["SUMMARY"][0]["GHS 5s"] == "100.0"
    assert isinstance(result.replies["devdetails"], AccessDenied)  # not raised for the join
    assert isinstance(result.replies["pools"], Reply)


async def test_join_plan_sends_the_same_bytes_as_the_command_list(canned: Any) -> None:
    from drivers.cgminer.client import plan_join

    plan = plan_join(["summary", "", "devdetails", "summary", "pools"])
    assert plan.wanted == ("summary", "devdetails", "pools")
    assert plan.payload == b'{"command":"summary+devdetails+pools"}'
    server = await canned(send(JOIN))
    result = await multi(HOST, server.port, plan)
    assert server.commands == ["summary+devdetails+pools"]
    assert result.joined and set(result.replies) == {"summary", "devdetails", "pools"}
    assert isinstance(result.replies["devdetails"], AccessDenied)


async def test_join_with_object_sections(canned: Any) -> None:
    joined = (
        b'{"summary":{"STATUS":[{"STATUS":"S","Code":11}],"SUMMARY":[{"Elapsed":5}],"id":1},'
        b'"pools":{"STATUS":[{"STATUS":"S","Code":7}],"POOLS":[],"id":1},"id":1}\x00'
    )
    server = await canned(send(joined))
    result = await multi(HOST, server.port, ["summary", "pools"])
    assert result.joined
    assert isinstance(result.replies["summary"], Reply)


async def test_join_refused_falls_back_to_concurrent_single_commands(canned: Any) -> None:
    server = await canned(
        dispatch(
            {
                "summary": SUMMARY + b"\x00",
                "pools": b'{"STATUS":[{"STATUS":"S","Code":7,"Msg":"1"}],"POOLS":[],"id":1}',
            }
        )
    )
    result = await multi(HOST, server.port, ["summary", "pools", "summary", ""])
    assert server.commands[0] == "summary+pools"  # duplicates and empty names dropped
    assert sorted(server.commands[1:]) == ["pools", "summary"]
    assert not result.joined
    assert isinstance(result.join_error, InvalidCommand)
    assert all(isinstance(r, Reply) for r in result.replies.values())


async def test_broken_join_json_falls_back(canned: Any) -> None:
    server = await canned(
        dispatch(
            {
                "summary+pools": b'{"summary":[{"STATUS":\x00',
                "summary": SUMMARY + b"\x00",
                "pools": b'{"STATUS":[{"STATUS":"S","Code":7}],"POOLS":[],"id":1}',
            }
        )
    )
    result = await multi(HOST, server.port, ["summary", "pools"])
    assert not result.joined and result.join_error is not None
    assert isinstance(result.replies["pools"], Reply)


async def test_transport_failure_of_the_join_is_raised_not_retried(canned: Any) -> None:
    server = await canned(lambda _r, _t: None)
    with pytest.raises(RequestTimeout):
        await multi(HOST, server.port, ["summary", "pools"], timeout_s=0.2)
    assert server.connections == 1


async def test_split_mode_returns_per_command_errors(canned: Any) -> None:
    server = await canned(dispatch({"summary": SUMMARY + b"\x00"}))
    result = await multi(HOST, server.port, ["summary", "estats"], join=False)
    assert sorted(server.commands) == ["estats", "summary"]
    assert isinstance(result.replies["estats"], InvalidCommand)


# --- the miner object remembers that joins fail ------------------------------------------------


def fixture_bytes(name: str) -> dict[str, bytes]:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return {command: json.dumps(reply).encode() + b"\x00" for command, reply in data.items()}


async def test_miner_remembers_that_joins_fail(canned: Any) -> None:
    server = await canned(dispatch(dict(fixture_bytes("antminer_s19jpro"))))
    miner = CgminerMiner(HOST, server.port, timeout_s=2.0)
    first = await miner.read()
    assert first.firmware is Firmware.ANTMINER_STOCK
    assert first.model == "Antminer S19j Pro"
    assert first.state is MinerState.MINING
    assert miner.joins_supported is False
    before = len(server.requests)
    second = await miner.read()
    assert second.hashrate_5s_hs == first.hashrate_5s_hs
    assert sorted(server.commands[before:]) == ["pools", "stats", "summary"]  # no join retried


async def test_miner_detects_again_after_the_device_was_down(canned: Any) -> None:
    replies = dict(fixture_bytes("antminer_s19jpro"))
    server = await canned(dispatch(replies))
    miner = CgminerMiner(HOST, server.port, timeout_s=0.3)
    await miner.read()
    server.behaviour = lambda _r, _t: None  # hung
    with pytest.raises(RequestTimeout):
        await miner.read()
    server.behaviour = dispatch(replies)
    before = len(server.requests)
    await miner.read()
    assert server.commands[before] == "version"
