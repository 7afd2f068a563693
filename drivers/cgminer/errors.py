"""The error hierarchy of the CGMiner driver.

Everything the driver raises on purpose derives from `CgminerError`, so a poller can isolate one
device with a single `except CgminerError`. The subclasses say *what kind* of failure it was,
because the right reaction differs: a refused connection means "dead or restarting" (back off),
a decode error means "the firmware sends broken JSON" (report it), an access-denied reply means
"alive, but this command is not allowed" (not a dead device).

    CgminerError
    ├── ConnectFailed          refused / unreachable / reset before any byte arrived
    ├── RequestTimeout         the per-request deadline expired (phase: connect or read)
    ├── ReplyInterrupted       the connection was reset after part of a reply arrived
    ├── ReplyTooLarge          more than the reply cap (1 MiB) arrived
    ├── DecodeError            the reply could not be turned into a JSON object
    │   ├── EmptyReply         the server closed without sending anything (Q18)
    │   ├── TruncatedReply     the JSON stops in the middle (Q10)
    │   └── NonJsonReply       plain text instead of JSON
    │       └── ProxyConnectFailed   "Socket connect failed: ..." from a proxy (Q19)
    ├── CommandError           STATUS E/F: the device answered but refused or failed
    │   ├── AccessDenied       code 45 / permission denied (a permission result, not a dead device)
    │   └── InvalidCommand     code 14 / "invalid cmd"
    ├── DetectionFailed        no firmware family could be recognised
    ├── ControlNotPermitted    a write was refused locally: the device is not marked privileged
    └── ControlUnsupported     the firmware has no way to perform that action
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from drivers.cgminer.status import Status


class CgminerError(Exception):
    """Base class of every error the CGMiner driver raises on purpose."""


class ConnectFailed(CgminerError):
    """The TCP connection could not be made, or was reset before any byte of the reply arrived."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"connect to {host}:{port} failed: {reason}")
        self.host = host
        self.port = port
        self.reason = reason


class RequestTimeout(CgminerError):
    """The per-request deadline (connect + read) expired.

    `phase` says where it stalled: `"connect"` (no TCP connection yet) or `"read"` (connected,
    the reply did not complete); `bytes_received` helps tell a hung server from a slow drip.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        phase: Literal["connect", "read"],
        timeout_s: float,
        bytes_received: int,
    ) -> None:
        super().__init__(
            f"{host}:{port}: no complete reply within {timeout_s:g} s "
            f"(phase: {phase}, {bytes_received} bytes received)"
        )
        self.host = host
        self.port = port
        self.phase = phase
        self.timeout_s = timeout_s
        self.bytes_received = bytes_received


class ReplyInterrupted(CgminerError):
    """The connection was reset after part of the reply had arrived (and it was not complete).

    `head` keeps the start of what did arrive (at most `HEAD_BYTES`): a service that is not a
    miner often says who it is before it hangs up (`SSH-2.0-...`), and discovery shows it.
    """

    HEAD_BYTES = 256

    def __init__(
        self, host: str, port: int, bytes_received: int, reason: str, *, head: bytes = b""
    ) -> None:
        super().__init__(
            f"{host}:{port}: connection lost after {bytes_received} bytes of the reply: {reason}"
        )
        self.host = host
        self.port = port
        self.bytes_received = bytes_received
        self.head = head[: self.HEAD_BYTES]


class ReplyTooLarge(CgminerError):
    """The reply exceeded the size cap; the connection was aborted."""

    def __init__(self, host: str, port: int, limit_bytes: int) -> None:
        super().__init__(f"{host}:{port}: reply larger than {limit_bytes} bytes, aborted")
        self.host = host
        self.port = port
        self.limit_bytes = limit_bytes


class DecodeError(CgminerError):
    """The reply bytes could not be turned into a JSON object, even after the tolerant repairs."""

    def __init__(self, message: str, *, bytes_received: int | None = None) -> None:
        super().__init__(message)
        self.bytes_received = bytes_received


class EmptyReply(DecodeError):
    """The server sent nothing at all (Q18: typically `--api-allow` excludes this client)."""

    def __init__(self) -> None:
        super().__init__(
            "empty reply: the server closed without sending anything "
            "(is this client allowed by the miner's api-allow?)",
            bytes_received=0,
        )


class TruncatedReply(DecodeError):
    """The JSON stops in the middle (Q10); refusing to guess the rest."""

    def __init__(self, bytes_received: int, detail: str) -> None:
        super().__init__(
            f"reply truncated: {bytes_received} bytes arrived, the JSON is incomplete ({detail})",
            bytes_received=bytes_received,
        )


class NonJsonReply(DecodeError):
    """Plain text where JSON was expected; `text` holds (the start of) what arrived."""

    def __init__(self, text: str, *, bytes_received: int | None = None) -> None:
        shown = text if len(text) <= 120 else text[:117] + "..."
        super().__init__(f"reply is plain text, not JSON: {shown!r}", bytes_received=bytes_received)
        self.text = text


class ProxyConnectFailed(NonJsonReply):
    """`Socket connect failed: ...` (Q19): a proxy in front of the miner could not reach it.

    Transport-level in meaning, although it arrives as bytes: the miner is unreachable.
    """


class CommandError(CgminerError):
    """The device answered with STATUS `E` or `F` for `command`."""

    def __init__(self, command: str, status: Status) -> None:
        text = f"{command}: {status.letter} {status.code} {status.msg!r}"
        if status.description:
            text += f" ({status.description})"
        super().__init__(text)
        self.command = command
        self.status = status

    @property
    def code(self) -> int | None:
        return self.status.code

    @property
    def msg(self) -> str:
        return self.status.msg

    @property
    def description(self) -> str:
        return self.status.description


class AccessDenied(CommandError):
    """Code 45 (`Access denied to 'X' command`) or Whatsminer's permission denied.

    The device is alive; this client is simply not allowed that command (API groups, §1.8).
    """


class InvalidCommand(CommandError):
    """Code 14 (`Invalid command`) or Whatsminer's flat `"Msg":"invalid cmd"` (Q25)."""


class DetectionFailed(CgminerError):
    """No firmware family could be recognised from `version` / `devdetails` / `stats`."""


class ControlNotPermitted(CgminerError, PermissionError):
    """A control action was refused locally: privileged writes are off for this device."""


class ControlUnsupported(CgminerError):
    """The firmware offers no way to perform the requested control action."""


# Errors that mean "the device (or the path to it) is down", as opposed to "it answered badly".
# A join that fails with one of these is not retried as single commands: a dead miner is dead.
TRANSPORT_ERRORS: tuple[type[CgminerError], ...] = (
    ConnectFailed,
    RequestTimeout,
    ReplyInterrupted,
    ProxyConnectFailed,
)
