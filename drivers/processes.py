"""OS processes the console runs for a GPU (a miner, an AI job): launch, watch, stop, re-attach.

Responsibilities:

* `ProcessRunner.launch` starts a process from an argv list (never a shell string) with extra
  environment (`CUDA_VISIBLE_DEVICES=<GPU UUID>`, ...), its stdout and stderr appended to a log
  file, in a session and process group of its own: a `kill -9` of the console, or a SIGINT
  meant for the console's terminal, never reaches the workload, so a restarted console can
  re-attach to it.
* `ProcessRunner.attach` re-attaches by PID after a restart. The PID alone proves nothing (the
  kernel recycles them), so the stored identity (create time + command line, read with psutil)
  must match, and from then on the process is addressed through a pidfd, which names that one
  process for its whole life: a signal can never hit a stranger that got the PID later.
* `ManagedProcess.stop` escalates through a configurable signal sequence (SIGINT, wait, SIGTERM,
  wait, SIGKILL) and reports which step ended it and, when known, the exit status.
* Liveness without zombies: processes we started are reaped with `Popen.poll`; for re-attached
  ones (children of init now) the pidfd says when they exit. The exit status of a re-attached
  process is unknowable (only its parent could read it): it is reported as unknown, never guessed.

Blocking work (fork/exec, psutil's /proc reads) runs on the runner's single-thread executor
under a deadline; signals and `waitpid(WNOHANG)` are plain non-blocking syscalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import psutil

T = TypeVar("T")

POLL_INTERVAL_S = 0.05
"""How often a wait re-checks whether the process ended. Stops last seconds; 50 ms is cheap."""

IDENTITY_TRIES = 400
IDENTITY_RETRY_S = 0.005
"""Up to 2 s for a new process's command line to appear (it takes microseconds unloaded)."""

CREATE_TIME_TOLERANCE_S = 0.01
"""psutil derives create_time from boot time + start ticks (10 ms); equal within one tick."""


class ProcessIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """What makes a process *this* process across a console restart: a PID is reused by the
    kernel, a PID with the same start time and command line is not."""

    pid: int
    create_time: float  # unix seconds, as psutil reports it
    cmdline: tuple[str, ...]  # as the OS reports it after exec (an interpreter may lead)


class StopStep(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a stop: send `signal` (a name such as "SIGINT"), then wait up to `wait_s`."""

    signal: str
    wait_s: float


MINER_STOP: tuple[StopStep, ...] = (
    StopStep(signal="SIGINT", wait_s=15.0),
    StopStep(signal="SIGTERM", wait_s=5.0),
    StopStep(signal="SIGKILL", wait_s=5.0),
)
"""The reference sequence for a GPU miner (nvml-and-gpu-switching.md §6, HiveOS's 15 s)."""


class ExitStatus(msgspec.Struct, frozen=True, kw_only=True):
    """How a process ended. `known` is False for a re-attached process: its exit status went to
    its new parent (init), so `code` and `signal` are None and mean "unknown", not "clean"."""

    known: bool
    code: int | None = None  # exit code when it exited normally
    signal: str | None = None  # the signal that killed it, e.g. "SIGKILL"

    def describe(self) -> str:
        if not self.known:
            return "exit status unknown (re-attached after a console restart)"
        if self.signal is not None:
            return f"killed by {self.signal}"
        return f"exit code {self.code}"


class StopOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a stop did. `stopped` False means the process outlived the last step (stuck in the
    kernel, e.g. uninterruptible sleep on a wedged GPU)."""

    pid: int
    stopped: bool
    ended_by: str | None  # the signal of the step after which it was gone; None if not stopped
    step_index: int | None  # index into the steps; -1 if it had already exited
    exit: ExitStatus | None  # None while it is still running
    elapsed_s: float
    signals_sent: tuple[str, ...] = ()

    def describe(self) -> str:
        if not self.stopped:
            sent = ", ".join(self.signals_sent) or "nothing"
            return f"PID {self.pid} still running after {sent} ({self.elapsed_s:.1f} s)"
        if self.step_index == -1:
            return f"PID {self.pid} had already exited ({_exit_text(self.exit)})"
        return f"PID {self.pid} ended after {self.ended_by} ({_exit_text(self.exit)})"


def _exit_text(status: ExitStatus | None) -> str:
    return status.describe() if status is not None else "still running"


class LaunchSpec(msgspec.Struct, frozen=True, kw_only=True):
    argv: tuple[str, ...]
    env: dict[str, str] = msgspec.field(default_factory=dict)  # added to the console's own
    log_path: str  # stdout and stderr are appended here
    cwd: str | None = None


class ProcessError(RuntimeError):
    """A process could not be launched or inspected; the message says what to fix."""


def signal_number(name: str) -> signal.Signals:
    """`"SIGINT"` → `signal.SIGINT`; a clear error for a name this OS does not have."""
    try:
        return signal.Signals[name.upper()]
    except KeyError:
        raise ProcessError(
            f"unknown signal {name!r}; use a name such as SIGINT or SIGTERM"
        ) from None


def _status_from_returncode(returncode: int) -> ExitStatus:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return ExitStatus(known=True, signal=name)
    return ExitStatus(known=True, code=returncode)


def _read_identity(pid: int) -> ProcessIdentity | None:
    """The identity of the live, non-zombie process `pid`, or None. Blocking (/proc)."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return ProcessIdentity(
                pid=pid, create_time=proc.create_time(), cmdline=tuple(proc.cmdline())
            )
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _identity_after_exec(popen: subprocess.Popen[bytes]) -> ProcessIdentity:
    """The new process's identity as it will read from now on. `Popen` returns once exec has
    passed the point of no return, but the kernel sets up the new command line a moment later
    (an empty /proc/<pid>/cmdline in between), so wait for it. Blocking."""
    for _ in range(IDENTITY_TRIES):
        identity = _read_identity(popen.pid)
        if identity is None or popen.poll() is not None:
            break
        if identity.cmdline:
            return identity
        time.sleep(IDENTITY_RETRY_S)
    # It exited already (or never showed a command line): a record that can never be
    # re-attached (create time 0), which is right for a process that is gone.
    args = popen.args if isinstance(popen.args, list) else [str(popen.args)]
    return ProcessIdentity(pid=popen.pid, create_time=0.0, cmdline=tuple(map(str, args)))


def same_process(stored: ProcessIdentity, live: ProcessIdentity | None) -> bool:
    return (
        live is not None
        and live.pid == stored.pid
        and abs(live.create_time - stored.create_time) <= CREATE_TIME_TOLERANCE_S
        and live.cmdline == stored.cmdline
    )


class ProcessRunner:
    """Launches and re-attaches processes; owns the executor for their blocking calls."""

    def __init__(self, *, call_timeout_s: float = 10.0) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hashpivot-proc")
        self.call_timeout_s = call_timeout_s

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run a blocking function on the executor under the deadline."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.call_timeout_s):
            return await loop.run_in_executor(self._executor, fn, *args)

    async def launch(self, spec: LaunchSpec) -> ManagedProcess:
        popen, identity = await self.call(self._launch_blocking, spec)
        return ManagedProcess(self, identity, popen=popen, log_path=Path(spec.log_path))

    @staticmethod
    def _launch_blocking(spec: LaunchSpec) -> tuple[subprocess.Popen[bytes], ProcessIdentity]:
        if not spec.argv:
            raise ProcessError("empty command: give the program and its arguments as a list")
        log_path = Path(spec.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(spec.env)
        with open(log_path, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"=== hashpivot {stamp}: starting {list(spec.argv)!r}\n".encode())
            log.flush()
            try:
                # Popen returns only after exec succeeded (or raises its error), so the
                # command line read below is the program's, not a copy of ours mid-fork.
                popen = subprocess.Popen(
                    list(spec.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=spec.cwd,
                    start_new_session=True,  # own session and group: survives the console
                    close_fds=True,
                )
            except FileNotFoundError as exc:
                raise ProcessError(
                    f"cannot start {spec.argv[0]!r}: no such program (check the path)"
                ) from exc
            except PermissionError as exc:
                raise ProcessError(
                    f"cannot start {spec.argv[0]!r}: permission denied (is it executable?)"
                ) from exc
            except OSError as exc:
                raise ProcessError(f"cannot start {spec.argv[0]!r}: {exc}") from exc
        identity = _identity_after_exec(popen)
        return popen, identity

    async def attach(self, identity: ProcessIdentity) -> ManagedProcess | None:
        """The process `identity` names, if it still runs; None if it is gone or the PID now
        belongs to another process."""
        pidfd = await self.call(self._attach_blocking, identity)
        if pidfd is None:
            return None
        return ManagedProcess(self, identity, pidfd=pidfd)

    @staticmethod
    def _attach_blocking(identity: ProcessIdentity) -> int | None:
        try:
            pidfd = os.pidfd_open(identity.pid)
        except (ProcessLookupError, OSError):
            return None
        # The pidfd is taken *before* the identity check: if the check passes, the pidfd is
        # bound to the process that passed it, whatever happens to the PID afterwards.
        if not same_process(identity, _read_identity(identity.pid)):
            os.close(pidfd)
            return None
        return pidfd

    async def identity_of(self, pid: int) -> ProcessIdentity | None:
        result: ProcessIdentity | None = await self.call(_read_identity, pid)
        return result

    async def descendants(self, pid: int) -> frozenset[int]:
        """`pid` and every process below it (a launcher such as torchrun may spawn the process
        that actually opens the GPU)."""
        result: frozenset[int] = await self.call(_descendants_blocking, pid)
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _descendants_blocking(pid: int) -> frozenset[int]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return frozenset({pid})
    return frozenset({pid, *(c.pid for c in children)})


class ManagedProcess:
    """One workload process: either launched by us (`popen` set: we reap it and know its exit
    status) or re-attached after a restart (`pidfd` set: exit status unknown)."""

    def __init__(
        self,
        runner: ProcessRunner,
        identity: ProcessIdentity,
        *,
        popen: subprocess.Popen[bytes] | None = None,
        pidfd: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        self._runner = runner
        self.identity = identity
        self._popen = popen
        self._pidfd = pidfd
        self.log_path = log_path
        self._exit: ExitStatus | None = None

    @property
    def pid(self) -> int:
        return self.identity.pid

    @property
    def reattached(self) -> bool:
        return self._popen is None

    def poll(self) -> ExitStatus | None:
        """None while it runs; how it ended once it has. Non-blocking; reaps our children."""
        if self._exit is not None:
            return self._exit
        if self._popen is not None:
            returncode = self._popen.poll()
            if returncode is not None:
                self._exit = _status_from_returncode(returncode)
        elif self._pidfd is not None:
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)
            if poller.poll(0):  # a pidfd turns readable when its process exits
                self._exit = ExitStatus(known=False)
                self._close_pidfd()
        else:  # pragma: no cover - every constructor path sets one of the two
            self._exit = ExitStatus(known=False)
        return self._exit

    def alive(self) -> bool:
        return self.poll() is None

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None

    def send(self, sig: signal.Signals, *, group: bool = True) -> bool:
        """Send `sig` to the process (and, with `group`, to its whole process group: a miner's
        or a training launcher's helpers must get it too). False if it had already ended."""
        if self.poll() is not None:
            return False
        try:
            if group and self._leads_group():
                os.killpg(self.pid, sig)
            elif self._popen is not None:
                self._popen.send_signal(sig)
            elif self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
        except ProcessLookupError:
            return False
        return True

    def _leads_group(self) -> bool:
        # Launched with start_new_session, so pgid == pid unless the process changed it. The
        # pidfd (or the unreaped child) keeps the PID from being reused while we ask.
        try:
            return os.getpgid(self.pid) == self.pid
        except ProcessLookupError:
            return False

    async def wait(self, timeout_s: float | None = None) -> ExitStatus | None:
        """Wait until it exits (None if `timeout_s` passed first). Never blocks the loop."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            status = self.poll()
            if status is not None:
                return status
            if deadline is not None and loop.time() >= deadline:
                return None
            delay = POLL_INTERVAL_S
            if deadline is not None:
                delay = max(0.0, min(delay, deadline - loop.time()))
            await asyncio.sleep(delay)

    async def stop(self, steps: Sequence[StopStep], *, group: bool = True) -> StopOutcome:
        """Escalate through `steps` until the process is gone; see `StopOutcome`."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent: list[str] = []
        status = self.poll()
        if status is not None:
            return StopOutcome(
                pid=self.pid,
                stopped=True,
                ended_by=None,
                step_index=-1,
                exit=status,
                elapsed_s=0.0,
            )
        for index, step in enumerate(steps):
            sig = signal_number(step.signal)
            if self.send(sig, group=group):
                sent.append(sig.name)
            status = await self.wait(step.wait_s)
            if status is not None:
                return StopOutcome(
                    pid=self.pid,
                    stopped=True,
                    ended_by=sig.name,
                    step_index=index,
                    exit=status,
                    elapsed_s=loop.time() - started,
                    signals_sent=tuple(sent),
                )
        return StopOutcome(
            pid=self.pid,
            stopped=False,
            ended_by=None,
            step_index=None,
            exit=None,
            elapsed_s=loop.time() - started,
            signals_sent=tuple(sent),
        )

    def release(self) -> None:
        """Forget the process without stopping it (the console shuts down, the workload keeps
        running and will be re-attached). Our child is not reaped here: when the console exits
        init adopts and reaps it."""
        self._close_pidfd()


def env_for_gpu(gpu_uuid: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment that pins a workload to one GPU by UUID, in NVML's (PCI) order
    (nvml-and-gpu-switching.md §7.1: never an index, the CUDA ordinal is not NVML's)."""
    env = {"CUDA_VISIBLE_DEVICES": gpu_uuid, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    if extra:
        env.update(extra)
    return env
