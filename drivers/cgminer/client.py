"""The asyncio client for the CGMiner-family API on TCP 4028: one request per connection.

Wire rules (protocol reference §1): open a connection, write one request — JSON
`{"command":"CMD","parameter":"P"}` or text `CMD|P` — with no newline, no NUL and no half-close,
then read until the first NUL byte or EOF, whichever comes first. Many firmwares send the NUL and
then close; stopping at the NUL means a server that never closes (Q21) still completes. A hard
deadline (default 5 s) covers connect + read, so one hung miner never stalls a poll cycle, and
replies are capped at 1 MiB.

Performance matters (thousands of readings per second on one core): the socket work is done by
`transport.py` (bare non-blocking sockets stepped on a shared 10 ms tick, no transport or
protocol objects, no readiness events), and requests without a parameter are encoded once and
cached.

Public API:

* `fetch(host, port, payload)` → raw reply bytes (framing only);
* `request(host, port, command, parameter)` → `Reply` (decoded, status parsed, never raised);
* `command(...)` → `Reply`, raising `CommandError` (or a subclass) when STATUS is E/F;
* `multi(host, port, commands)` → `MultiReply`: one `+`-join, falling back to one connection per
  command (concurrently) on any error of the join except transport-level ones;
* `plan_join(commands, records_read)` → `JoinPlan`: a poll's join built once, decoded into the
  shape of what its caller reads; `join_replies(plan, decoded)` splits a join's reply.
"""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypedDict

import msgspec

from drivers.cgminer.decoder import Decoded, decode
from drivers.cgminer.errors import (
    TRANSPORT_ERRORS,
    CgminerError,
    DecodeError,
    ReplyInterrupted,
)
from drivers.cgminer.status import Status, error_for, parse_status
from drivers.cgminer.textmode import encode_text_request, parse_text_reply
from drivers.cgminer.transport import exchange

DEFAULT_PORT = 4028
DEFAULT_TIMEOUT_S = 5.0
MAX_REPLY_BYTES = 1 << 20  # 1 MiB: a full Antminer stats reply is ~4 KiB, Avalon estats ~20 KiB


class Reply(msgspec.Struct, frozen=True, gc=False):
    """One command's reply: the decoded object, its status and the decoder repairs it needed.

    `gc=False`: decoded JSON cannot refer back to the reply, so it can never be in a cycle; the
    collector need not track one more object per command of every poll.
    """

    command: str
    data: dict[str, Any]
    status: Status
    repairs: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status.ok

    def raise_for_status(self) -> Reply:
        """Return self if the status is S/I, else raise the matching `CommandError`."""
        if not self.status.ok:
            raise error_for(self.command, self.status)
        return self


class MultiReply(msgspec.Struct, frozen=True):
    """The result of `multi`: one entry per command, a `Reply` or the error for that command.

    `joined` is True when one `+`-join answered; `join_error` is why the join was abandoned for
    single commands (None if it was not tried or worked). Callers remember per device whether
    joins work, so they do not waste a round-trip on every poll.
    """

    replies: dict[str, Reply | CgminerError]
    joined: bool
    join_error: CgminerError | None = None

    @property
    def repairs(self) -> tuple[str, ...]:
        """Decoder repairs across all replies, in first-seen order, without duplicates."""
        if self.joined:
            # One decoded reply: every section carries the same repairs tuple.
            for reply in self.replies.values():
                if type(reply) is Reply:
                    return reply.repairs
            return ()
        seen: dict[str, None] = {}
        for reply in self.replies.values():
            if isinstance(reply, Reply):
                for name in reply.repairs:
                    seen[name] = None
        return tuple(seen)


async def fetch(
    host: str,
    port: int,
    payload: bytes,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_reply_bytes: int = MAX_REPLY_BYTES,
) -> bytes:
    """Send `payload` on a fresh connection and return the reply bytes (without the NUL).

    Raises `ConnectFailed`, `RequestTimeout`, `ReplyTooLarge` or `ReplyInterrupted`.
    """
    outcome = await exchange(
        host, port, payload, timeout_s=timeout_s, max_reply_bytes=max_reply_bytes
    )
    if outcome.interrupted is not None:
        raise ReplyInterrupted(
            host, port, len(outcome.body), str(outcome.interrupted), head=outcome.body
        )
    return outcome.body


# --- requests -----------------------------------------------------------------------------------

_REQUEST_CACHE: dict[str, bytes] = {}
_REQUEST_CACHE_MAX = 512
_json_encode = msgspec.json.encode


def encode_request(command: str, parameter: str | int | None = None) -> bytes:
    """The JSON request bytes; the parameter is always sent as a string (`"0"` for pool 0)."""
    if parameter is None:
        cached = _REQUEST_CACHE.get(command)
        if cached is None:
            cached = _json_encode({"command": command})
            if len(_REQUEST_CACHE) < _REQUEST_CACHE_MAX:
                _REQUEST_CACHE[command] = cached
        return cached
    return _json_encode({"command": command, "parameter": str(parameter)})


def _decode_text(body: bytes) -> tuple[dict[str, Any], tuple[str, ...]]:
    try:
        text = body.decode("utf-8")
        repairs: tuple[str, ...] = ()
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        repairs = ("invalid_utf8",)
    if text.lstrip().startswith("{"):  # some firmwares answer JSON whatever the request form
        decoded = decode(body)
        return decoded.obj, decoded.repairs
    return parse_text_reply(text), repairs


def _to_reply(command: str, data: dict[str, Any], repairs: tuple[str, ...]) -> Reply:
    try:
        status = parse_status(data)
    except DecodeError as exc:
        raise DecodeError(f"{command}: {exc}") from None
    return Reply(command, data, status, repairs)


async def request(
    host: str,
    port: int,
    name: str,
    parameter: str | int | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    text: bool = False,
    max_reply_bytes: int = MAX_REPLY_BYTES,
) -> Reply:
    """Send one command and return its decoded `Reply` (a failed STATUS is returned, not raised).

    `text=True` uses the text form `cmd|param` and parses the `|`-separated reply into the same
    dict shape as the JSON form.
    """
    if text:
        payload = encode_text_request(name, None if parameter is None else str(parameter))
    else:
        payload = encode_request(name, parameter)
    body, interrupted = await exchange(
        host, port, payload, timeout_s=timeout_s, max_reply_bytes=max_reply_bytes
    )
    try:
        if text:
            data, repairs = _decode_text(body)
        else:
            data, repairs = decode(body)
    except DecodeError as exc:
        if interrupted is not None:
            raise ReplyInterrupted(host, port, len(body), str(interrupted), head=body) from exc
        raise
    return _to_reply(name, data, repairs)


async def command(
    host: str,
    port: int,
    name: str,
    parameter: str | int | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    text: bool = False,
) -> Reply:
    """Like `request`, but raise `CommandError` (`AccessDenied`, `InvalidCommand`) on E/F."""
    reply = await request(host, port, name, parameter, timeout_s=timeout_s, text=text)
    return reply.raise_for_status()


# --- joins --------------------------------------------------------------------------------------


RecordsRead = Mapping[tuple[str, str], tuple[str, ...]]
"""(command, section) → the keys read from each record of that section of its reply."""

# What is read of a reply besides its sections: its status (`parse_status`, flat form included)
# and, for a join answered with one plain reply, the same at the top level (`join_replies`).
_REPLY_KEYS = ("STATUS", "status", "Code", "Msg", "Description", "When", "id")


class JoinPlan(NamedTuple):
    """The commands of one poll, de-duplicated, with the join's name and request bytes built once.

    A poller asks the same set on every poll; building `"+".join(...)` and encoding the request
    each time is pure waste, so callers that poll (`CgminerMiner`) keep a plan. `typed`, when
    the caller said which record keys it reads, decodes a reply of the usual shape without the
    rest (see `plan_join`).
    """

    wanted: tuple[str, ...]
    joined_name: str
    payload: bytes
    typed: Callable[[bytes], Any] | None = None


def plan_join(commands: Iterable[str], records_read: RecordsRead | None = None) -> JoinPlan:
    """A `JoinPlan` for `commands` (empty names and repeats dropped, order kept).

    `records_read`: the keys the caller reads from the records of some sections (the pools'
    ~9 of ~33 per pool, say). A join is then decoded into that shape first, and what no one
    reads is skipped by the JSON decoder instead of being built and freed on every poll
    (pools alone: 24–43 % of a join's keys and values, by firmware; BENCHMARKS.md). A reply
    of another shape is decoded in full, so nothing read is ever lost.
    """
    wanted = tuple(dict.fromkeys(name for name in commands if name))
    joined_name = "+".join(wanted)
    typed = None
    if records_read and len(wanted) > 1:
        reads = tuple(sorted((c, s, tuple(keys)) for (c, s), keys in records_read.items()))
        typed = _typed_join_decoder(wanted, reads)
    return JoinPlan(wanted, joined_name, encode_request(joined_name), typed)


# The shapes are built at run time, from what the dialects read: typing's TypedDict and list
# through untyped names, since a type checker only follows shapes spelled out in the source.
_typed_dict: Any = TypedDict


def _one_or_list(kind: Any) -> Any:
    """`list[kind] | kind`: a reply's section is a list of records, or one record (§1)."""
    return types.GenericAlias(list, (kind,)) | kind


@functools.cache
def _typed_join_decoder(
    wanted: tuple[str, ...], reads: tuple[tuple[str, str, tuple[str, ...]], ...]
) -> Callable[[bytes], Any] | None:
    """A decoder of a join of `wanted` that keeps only the keys `reads` names in those records
    (one per command set and reads, shared by every miner that polls it)."""
    replies: dict[str, Any] = {}
    for command, section, keys in reads:
        if command not in wanted:
            continue
        record = _typed_dict(f"{command}_{section}_record", dict.fromkeys(keys, Any), total=False)
        fields: dict[str, Any] = dict.fromkeys(_REPLY_KEYS, Any)
        fields[section] = _one_or_list(record)
        replies[command] = _typed_dict(f"{command}_reply", fields, total=False)
    if not replies:
        return None
    top: dict[str, Any] = dict.fromkeys(_REPLY_KEYS, Any)
    for command in wanted:
        reply = replies.get(command)
        top[command] = Any if reply is None else _one_or_list(reply)  # a one-reply list (§1)
    return msgspec.json.Decoder(_typed_dict("join", top, total=False)).decode


async def multi(
    host: str,
    port: int,
    commands: Iterable[str] | JoinPlan,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    join: bool = True,
) -> MultiReply:
    """Run several read commands, as one `+`-join when possible.

    Each section of a join reply is an array holding one complete reply (object sections are
    tolerated too). Any error of the join — a plain error reply, a missing section, broken
    JSON, an empty reply — makes it fall back to one connection per command, run concurrently;
    transport-level errors (refused, timeout, reset) are raised instead, because a dead miner
    stays dead on the second try. Per-command failures (say code 45 in one section) are
    returned in that command's entry, never raised for the whole set.

    `commands` may be a `JoinPlan` (see `plan_join`) to skip rebuilding the request each time.
    """
    plan = commands if isinstance(commands, JoinPlan) else plan_join(commands)
    wanted = plan.wanted
    join_error: CgminerError | None = None
    if join and len(wanted) > 1:
        try:
            replies = await _joined(host, port, plan, timeout_s)
        except TRANSPORT_ERRORS:
            raise
        except CgminerError as exc:
            join_error = exc
        else:
            return MultiReply(replies, True, None)
    return MultiReply(await _split(host, port, wanted, timeout_s), False, join_error)


async def _joined(
    host: str, port: int, plan: JoinPlan, timeout_s: float
) -> dict[str, Reply | CgminerError]:
    body, interrupted = await exchange(
        host, port, plan.payload, timeout_s=timeout_s, max_reply_bytes=MAX_REPLY_BYTES
    )
    try:
        decoded = decode(body, plan.typed)
    except DecodeError as exc:
        if interrupted is not None:
            raise ReplyInterrupted(host, port, len(body), str(interrupted), head=body) from exc
        raise
    return join_replies(plan, decoded)


def join_replies(plan: JoinPlan, decoded: Decoded) -> dict[str, Reply | CgminerError]:
    """One `Reply` (or the error) per command of `plan`, from its join's decoded reply.

    Raises `DecodeError` (or a `CommandError`) when the join as a whole is unusable.
    """
    joined_name = plan.joined_name
    obj, repairs = decoded
    if "STATUS" in obj or "status" in obj:
        # A plain single reply: the firmware rejected the join as a whole (Q22).
        status = parse_status(obj)
        if not status.ok:
            raise error_for(joined_name, status)
        raise DecodeError(f"{joined_name}: join answered with a single reply")
    replies: dict[str, Reply | CgminerError] = {}
    for name in plan.wanted:
        section = obj.get(name)
        if type(section) is list and section and type(section[0]) is dict:
            section = section[0]
        elif type(section) is not dict:
            raise DecodeError(f"{joined_name}: join reply has no usable {name!r} section")
        try:
            status = parse_status(section)
        except DecodeError as exc:
            replies[name] = DecodeError(f"{name}: {exc}")
            continue
        replies[name] = (
            Reply(name, section, status, repairs) if status.ok else error_for(name, status)
        )
    return replies


async def _split(
    host: str, port: int, wanted: tuple[str, ...], timeout_s: float
) -> dict[str, Reply | CgminerError]:
    if len(wanted) == 1:
        outcomes: list[Reply | BaseException] = []
        try:
            outcomes.append(await request(host, port, wanted[0], timeout_s=timeout_s))
        except CgminerError as exc:
            outcomes.append(exc)
    else:
        outcomes = await asyncio.gather(
            *(request(host, port, name, timeout_s=timeout_s) for name in wanted),
            return_exceptions=True,
        )
    replies: dict[str, Reply | CgminerError] = {}
    transport_failures: list[CgminerError] = []
    for name, outcome in zip(wanted, outcomes, strict=True):
        if isinstance(outcome, Reply):
            replies[name] = outcome if outcome.status.ok else error_for(name, outcome.status)
        elif isinstance(outcome, CgminerError):
            replies[name] = outcome
            if isinstance(outcome, TRANSPORT_ERRORS):
                transport_failures.append(outcome)
        else:  # a bug or a cancellation, not a device problem: do not swallow it
            raise outcome
    if transport_failures and len(transport_failures) == len(wanted):
        raise transport_failures[0]
    return replies
