"""CGMiner-family ASIC driver: async client, tolerant decoder, firmware dialects and control.

Typical use (what the poller does)::

    miner = CgminerMiner("10.0.0.21")           # port 4028, 5 s deadline, read-only
    reading = await miner.read()                # AsicReading, units normalised (H/s, W, °C)

Lower level: `command` / `request` / `multi` (one request per connection, joins with split
fallback), `decode` (the repairing JSON decoder), `parse_status`. Writes: `CgminerMiner(...,
privileged=True)` then `curtail()`, `wake()`, `switch_pool(i)`, ... each returning a
`ControlResult`; `capabilities(firmware)` says which actions a family supports.
"""

from __future__ import annotations

from drivers.cgminer.client import (
    DEFAULT_PORT,
    DEFAULT_TIMEOUT_S,
    MAX_REPLY_BYTES,
    MultiReply,
    Reply,
    command,
    encode_request,
    fetch,
    multi,
    request,
)
from drivers.cgminer.control import ACTIONS, ControlResult
from drivers.cgminer.controls import capabilities
from drivers.cgminer.decoder import Decoded, decode
from drivers.cgminer.dialects.detect import classify
from drivers.cgminer.errors import (
    AccessDenied,
    CgminerError,
    CommandError,
    ConnectFailed,
    ControlNotPermitted,
    ControlUnsupported,
    DecodeError,
    DetectionFailed,
    EmptyReply,
    InvalidCommand,
    NonJsonReply,
    ProxyConnectFailed,
    ReplyInterrupted,
    ReplyTooLarge,
    RequestTimeout,
    TruncatedReply,
)
from drivers.cgminer.miner import CgminerMiner
from drivers.cgminer.reading import AsicReading, BoardReading, Firmware, MinerState, PoolReading
from drivers.cgminer.status import Status, parse_status

__all__ = [
    "ACTIONS",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT_S",
    "MAX_REPLY_BYTES",
    "AccessDenied",
    "AsicReading",
    "BoardReading",
    "CgminerError",
    "CgminerMiner",
    "CommandError",
    "ConnectFailed",
    "ControlNotPermitted",
    "ControlResult",
    "ControlUnsupported",
    "DecodeError",
    "Decoded",
    "DetectionFailed",
    "EmptyReply",
    "Firmware",
    "InvalidCommand",
    "MinerState",
    "MultiReply",
    "NonJsonReply",
    "PoolReading",
    "ProxyConnectFailed",
    "Reply",
    "ReplyInterrupted",
    "ReplyTooLarge",
    "RequestTimeout",
    "Status",
    "TruncatedReply",
    "capabilities",
    "classify",
    "command",
    "decode",
    "encode_request",
    "fetch",
    "multi",
    "parse_status",
    "request",
]
