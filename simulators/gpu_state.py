"""The shared state directory of a simulated GPU site: the cross-process protocol.

A simulated site's GPUs, their runtime faults, and the OS processes running on them live in one
directory. Everything that takes part reads and writes it through this module: the NVML
simulator (`simulators.nvml`, inside the console or a test), the fake workloads
(`simulators.gpu_miner`, `simulators.ai_job`: real OS processes started with
``HASHPIVOT_SIM_GPU_STATE=<dir>`` and ``CUDA_VISIBLE_DEVICES=<GPU UUID>``), and the tests and
tools that inject faults. There is no daemon: the directory *is* the simulated hardware.

Layout::

    <dir>/site.json                        the site: versions and GPUs (written once)
    <dir>/.lock                            flock(2) held by writers of versioned documents
    <dir>/site-faults.<seq>.json           site-wide faults (driver not loaded)
    <dir>/events/xid.<seq>.<uuid>.json     one XID event, append-only
    <dir>/gpus/<uuid>/faults.<seq>.json    the GPU's runtime faults
    <dir>/gpus/<uuid>/settings.<seq>.json  what NVML set on the GPU (power limit)
    <dir>/gpus/<uuid>/proc.<pid>.<seq>.json  a process's claim: memory held, utilisation driven
    <dir>/gpus/<uuid>/leak.<pid>.json      the claim of an exited process whose memory stayed
                                           held (leak fault)

Rules that make it safe without a daemon:

* Every file is immutable once it has its final name: a writer writes ``.<something>.tmp`` and
  renames it into place (atomic), then deletes the version it replaces. A document's current
  version is the one with the highest ``<seq>``. Readers therefore cache parsed files by name
  and only open names they have not seen; a listing that races a writer at worst shows two
  versions, never none (the new name exists before the old one is deleted).
* Versioned documents (faults, settings, site faults) and XID sequence numbers are written under
  an exclusive `flock` on ``.lock``, read-modify-write, so two tools setting faults at once
  never lose one. A process's own claim is written only by that process (``seq`` is its own
  counter), so it needs no lock.
* A claim names its process by PID *and* start time (``/proc/<pid>/stat`` field 22), so a
  reused PID is not mistaken for the original. A process is gone when its PID does not exist,
  is a zombie (the kernel has released its resources, the driver's context with them), or
  belongs to a newer process.
* When an observer finds the claim of a process that is gone, it frees it: the claim is
  deleted, and the process's memory is free — unless the GPU has the ``leak`` fault at that
  moment, in which case the claim is renamed to ``leak.<pid>.json``: the memory stays held with
  no PID attached (a leaked context), until `reset_gpu`. Exactly one observer wins the rename.
* Processes never withdraw their claim at exit, not even a clean exit: like the real driver,
  the simulated GPU frees a context when it sees the process gone. That is what lets the leak
  fault apply to any exit, SIGKILL included.

Faults (per GPU, `Faults`): ``lost`` (every NVML call on the GPU returns GpuIsLost),
``reset_required``, ``call_errors`` (NVML function name → NVML error name, e.g.
``{"nvmlDeviceGetFanSpeed": "NOT_SUPPORTED"}``; ``"*"`` means every call), ``hang`` (NVML
function names that block until the fault is cleared or the simulator is closed; ``"*"`` = all),
``thermal_throttle`` and ``power_brake`` (hardware slowdown reasons), ``ambient_c`` (a hot
aisle), ``leak``. XIDs are events, not state: `inject_xid`. Site faults: ``driver_not_loaded``.

This module never imports `drivers` or `console` (simulators are written from the protocol).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import threading
import time
import uuid as uuid_mod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from simulators.gpu_models import SPEED_RANK, GpuModel, model

__all__ = [
    "CUDA_ENV",
    "STATE_ENV",
    "Faults",
    "GpuSpec",
    "GpuView",
    "LeakedMemory",
    "NoCudaDevice",
    "OutOfMemory",
    "ProcessClaim",
    "Registration",
    "Settings",
    "SiteFaults",
    "SiteGpu",
    "SiteInfo",
    "StateReader",
    "XidRecord",
    "clear_faults",
    "create_site",
    "free_memory_bytes",
    "get_faults",
    "inject_xid",
    "load_site",
    "local_generation",
    "reset_gpu",
    "set_faults",
    "set_site_faults",
    "visible_gpu",
    "write_settings",
]

STATE_ENV: Final = "HASHPIVOT_SIM_GPU_STATE"
"""Environment variable naming the state directory, for the fake workload processes."""
CUDA_ENV: Final = "CUDA_VISIBLE_DEVICES"

NVML_ERROR_NAMES: Final = frozenset(
    {
        "UNINITIALIZED",
        "INVALID_ARGUMENT",
        "NOT_SUPPORTED",
        "NO_PERMISSION",
        "NOT_FOUND",
        "INSUFFICIENT_POWER",
        "DRIVER_NOT_LOADED",
        "TIMEOUT",
        "IRQ_ISSUE",
        "LIBRARY_NOT_FOUND",
        "FUNCTION_NOT_FOUND",
        "CORRUPTED_INFOROM",
        "GPU_IS_LOST",
        "RESET_REQUIRED",
        "OPERATING_SYSTEM",
        "LIB_RM_VERSION_MISMATCH",
        "MEMORY",
        "NO_DATA",
        "UNKNOWN",
    }
)
"""Error names accepted in `Faults.call_errors` (NVML's ``NVML_ERROR_<NAME>`` without prefix)."""

# ---------------------------------------------------------------------------------------------
# Documents


class SiteGpu(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU of the site, fixed for the site's life."""

    uuid: str
    index: int  # NVML index: PCI bus order
    model: str  # catalogue key (simulators.gpu_models)
    pci_bus_id: str  # "00000000:01:00.0"
    pcie_generation: int  # what the slot/riser negotiates at full speed
    pcie_width: int


class SiteInfo(msgspec.Struct, frozen=True, kw_only=True):
    version: int = 1
    created_at: float  # unix seconds
    driver_version: str
    nvml_version: str
    cuda_driver_version: int  # 12040 = CUDA 12.4
    ambient_c: float
    gpus: tuple[SiteGpu, ...]

    def gpu(self, uuid: str) -> SiteGpu:
        for g in self.gpus:
            if g.uuid == uuid:
                return g
        raise KeyError(f"no simulated GPU {uuid!r} in this site")


class Faults(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The runtime faults of one GPU. Every field defaults to "healthy"."""

    lost: bool = False
    reset_required: bool = False
    call_errors: dict[str, str] = {}
    hang: tuple[str, ...] = ()
    thermal_throttle: bool = False
    power_brake: bool = False
    ambient_c: float | None = None
    leak: bool = False


class SiteFaults(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    driver_not_loaded: bool = False


class Settings(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What was set on the GPU through NVML; like the real driver, it outlives processes."""

    power_limit_mw: int | None = None


class ProcessClaim(msgspec.Struct, frozen=True, kw_only=True):
    """A process's claim on a GPU: what it holds and how hard it drives the GPU."""

    pid: int
    start_ticks: int | None  # /proc/<pid>/stat field 22; None where /proc is unavailable
    name: str
    used_memory_bytes: int
    util_gpu_pct: float
    util_memory_pct: float
    power_intensity: float = 1.0  # share of the board's full-load draw at 100 % utilisation
    kind: str = "C"  # "C" compute, "G" graphics


class LeakedMemory(msgspec.Struct, frozen=True, kw_only=True):
    pid: int  # the process that left it behind (no longer exists)
    name: str
    used_memory_bytes: int


class XidRecord(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    uuid: str
    xid: int
    at: float  # unix seconds


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """One GPU to create in `create_site`: a model and optionally a narrower PCIe link (a
    mining rig's x1 riser)."""

    model: str
    pcie_generation: int | None = None
    pcie_width: int | None = None


@dataclass(frozen=True, slots=True)
class GpuView:
    """One GPU's state directory as read at one moment."""

    faults: Faults
    settings: Settings
    processes: tuple[ProcessClaim, ...]  # live processes only
    leaked: tuple[LeakedMemory, ...]

    @property
    def process_memory_bytes(self) -> int:
        return sum(p.used_memory_bytes for p in self.processes)

    @property
    def leaked_bytes(self) -> int:
        return sum(m.used_memory_bytes for m in self.leaked)


class NoCudaDevice(RuntimeError):
    """CUDA_VISIBLE_DEVICES names no GPU of the site (CUDA: "no CUDA-capable device")."""


class OutOfMemory(RuntimeError):
    """A claim asks for more memory than the GPU has free (CUDA: "out of memory")."""


_ENC = msgspec.json.Encoder()
_SITE_DEC = msgspec.json.Decoder(SiteInfo)
_FAULTS_DEC = msgspec.json.Decoder(Faults)
_SITE_FAULTS_DEC = msgspec.json.Decoder(SiteFaults)
_SETTINGS_DEC = msgspec.json.Decoder(Settings)
_CLAIM_DEC = msgspec.json.Decoder(ProcessClaim)
_XID_DEC = msgspec.json.Decoder(XidRecord)

_VERSIONED = re.compile(r"^(faults|settings|site-faults)\.(\d+)\.json$")
_PROC = re.compile(r"^proc\.(\d+)\.(\d+)\.json$")
_LEAK = re.compile(r"^leak\.(\d+)\.json$")
_XID = re.compile(r"^xid\.(\d+)\.(GPU-[0-9a-f-]+)\.json$")

_local_generation = 0


def local_generation() -> int:
    """Bumped by every write made through this module in this process. An in-process reader
    that caches a view compares it, so a test's `set_faults` is seen by the very next call."""
    return _local_generation


def _bump() -> None:
    global _local_generation
    _local_generation += 1


# ---------------------------------------------------------------------------------------------
# Low-level file operations


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@contextlib.contextmanager
def _site_lock(state_dir: Path) -> Iterator[None]:
    with open(state_dir / ".lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _versions(directory: Path, stem: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    with os.scandir(directory) as it:
        for entry in it:
            m = _VERSIONED.match(entry.name)
            if m and m.group(1) == stem:
                out.append((int(m.group(2)), entry.name))
    out.sort()
    return out


def _write_versioned(directory: Path, stem: str, data: bytes) -> None:
    """Write the next version of a document; the caller holds the site lock."""
    old = _versions(directory, stem)
    seq = old[-1][0] + 1 if old else 1
    _atomic_write(directory / f"{stem}.{seq:010d}.json", data)
    for _, name in old:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / name)
    _bump()


def _read_current(directory: Path, stem: str) -> bytes | None:
    for _ in range(8):
        versions = _versions(directory, stem)
        if not versions:
            return None
        try:
            return (directory / versions[-1][1]).read_bytes()
        except FileNotFoundError:
            continue  # replaced between the listing and the open: list again
    raise RuntimeError(f"{directory}: {stem} keeps changing; cannot read a stable version")


def _proc_start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    return int(fields[19])


def _process_alive(pid: int, start_ticks: int | None) -> bool:
    """True while the process exists, is not a zombie, and is the one that made the claim."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return _process_alive_portable(pid)
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return False
    return start_ticks is None or int(fields[19]) == start_ticks


def _process_alive_portable(pid: int) -> bool:
    # Only where /proc is not readable (not Linux): psutil knows zombies on every platform.
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


# ---------------------------------------------------------------------------------------------
# Creating and reading a site


def _gpu_uuid(seed: int, index: int) -> str:
    digest = hashlib.sha256(f"hashpivot-sim-gpu:{seed}:{index}".encode()).digest()
    return f"GPU-{uuid_mod.UUID(bytes=digest[:16])}"


def create_site(
    state_dir: str | os.PathLike[str],
    models: Sequence[str | GpuSpec],
    *,
    seed: int = 0,
    ambient_c: float = 25.0,
    driver_version: str = "550.127.05",
    cuda_driver_version: int = 12040,
) -> SiteInfo:
    """Create a simulated site with one GPU per entry of `models` (catalogue keys such as
    ``"rtx4090"``, or `GpuSpec`). UUIDs are derived from `seed` and the index, so a site is
    reproducible. Refuses a directory that already holds a site."""
    root = Path(state_dir)
    root.mkdir(parents=True, exist_ok=True)
    if (root / "site.json").exists():
        raise FileExistsError(f"{root} already holds a simulated GPU site (site.json)")
    gpus: list[SiteGpu] = []
    for index, entry in enumerate(models):
        spec = entry if isinstance(entry, GpuSpec) else GpuSpec(entry)
        m = model(spec.model)
        gpus.append(
            SiteGpu(
                uuid=_gpu_uuid(seed, index),
                index=index,
                model=m.key,
                # Bus numbers in slot order, as on a rig's motherboard.
                pci_bus_id=f"00000000:{index + 1:02X}:00.0",
                pcie_generation=min(
                    spec.pcie_generation or m.pcie_max_generation, m.pcie_max_generation
                ),
                pcie_width=min(spec.pcie_width or m.pcie_max_width, m.pcie_max_width),
            )
        )
    site = SiteInfo(
        created_at=time.time(),
        driver_version=driver_version,
        nvml_version=f"12.{driver_version}",
        cuda_driver_version=cuda_driver_version,
        ambient_c=ambient_c,
        gpus=tuple(gpus),
    )
    (root / "events").mkdir(exist_ok=True)
    for g in gpus:
        (root / "gpus" / g.uuid).mkdir(parents=True, exist_ok=True)
    _atomic_write(root / "site.json", _ENC.encode(site))
    _bump()
    return site


def load_site(state_dir: str | os.PathLike[str]) -> SiteInfo:
    path = Path(state_dir) / "site.json"
    try:
        return _SITE_DEC.decode(path.read_bytes())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: no simulated GPU site here (create one with simulators.gpu_state.create_site)"
        ) from None


def _gpu_dir(state_dir: str | os.PathLike[str], uuid: str) -> Path:
    d = Path(state_dir) / "gpus" / uuid
    if not d.is_dir():
        raise KeyError(f"no simulated GPU {uuid!r} in {state_dir}")
    return d


# ---------------------------------------------------------------------------------------------
# Faults, settings, events (tests and tools)


def get_faults(state_dir: str | os.PathLike[str], uuid: str) -> Faults:
    raw = _read_current(_gpu_dir(state_dir, uuid), "faults")
    return Faults() if raw is None else _FAULTS_DEC.decode(raw)


def set_faults(state_dir: str | os.PathLike[str], uuid: str, **changes: object) -> Faults:
    """Change some faults of one GPU, keeping the others: ``set_faults(d, u, lost=True)``.
    Unknown names or NVML error names raise `ValueError`. Returns the new fault set."""
    unknown = set(changes) - set(Faults.__struct_fields__)
    if unknown:
        raise ValueError(
            f"unknown GPU fault(s) {sorted(unknown)}; known: {list(Faults.__struct_fields__)}"
        )
    errors = changes.get("call_errors")
    if isinstance(errors, Mapping):
        bad = {v for v in errors.values() if v not in NVML_ERROR_NAMES}
        if bad:
            raise ValueError(f"unknown NVML error name(s) {sorted(bad)}; use e.g. NOT_SUPPORTED")
    if "hang" in changes and isinstance(changes["hang"], (list, set, frozenset)):
        changes["hang"] = tuple(sorted(changes["hang"]))
    root = Path(state_dir)
    d = _gpu_dir(root, uuid)
    with _site_lock(root):
        current = get_faults(root, uuid)
        # Validate types through a round trip, so a wrong type fails here, not in a reader.
        try:
            data = _ENC.encode(msgspec.structs.replace(current, **changes))
            merged = _FAULTS_DEC.decode(data)
        except (msgspec.ValidationError, TypeError) as exc:
            raise ValueError(f"bad GPU fault value: {exc}") from None
        _write_versioned(d, "faults", data)
    return merged


def clear_faults(state_dir: str | os.PathLike[str], uuid: str) -> None:
    root = Path(state_dir)
    d = _gpu_dir(root, uuid)
    with _site_lock(root):
        _write_versioned(d, "faults", _ENC.encode(Faults()))


def set_site_faults(state_dir: str | os.PathLike[str], *, driver_not_loaded: bool) -> None:
    root = Path(state_dir)
    with _site_lock(root):
        _write_versioned(
            root, "site-faults", _ENC.encode(SiteFaults(driver_not_loaded=driver_not_loaded))
        )


def write_settings(state_dir: str | os.PathLike[str], uuid: str, settings: Settings) -> None:
    root = Path(state_dir)
    d = _gpu_dir(root, uuid)
    with _site_lock(root):
        _write_versioned(d, "settings", _ENC.encode(settings))


def inject_xid(state_dir: str | os.PathLike[str], uuid: str, xid: int) -> int:
    """Record an XID event on one GPU (what the kernel driver logs as "NVRM: Xid"). Event sets
    registered for XID events on that GPU deliver it. Returns the event's sequence number."""
    root = Path(state_dir)
    _gpu_dir(root, uuid)
    events = root / "events"
    with _site_lock(root):
        seqs = [int(m.group(1)) for n in os.listdir(events) if (m := _XID.match(n))]
        seq = max(seqs, default=0) + 1
        rec = XidRecord(seq=seq, uuid=uuid, xid=int(xid), at=time.time())
        _atomic_write(events / f"xid.{seq:010d}.{uuid}.json", _ENC.encode(rec))
        _bump()
    return seq


def reset_gpu(state_dir: str | os.PathLike[str], uuid: str) -> int:
    """What ``nvidia-smi -r`` does: free memory left by exited processes. Refused (RuntimeError)
    while a live process holds the GPU, as the real reset is. Returns the bytes freed."""
    root = Path(state_dir)
    d = _gpu_dir(root, uuid)
    view = StateReader(root).view(uuid)
    if view.processes:
        pids = ", ".join(str(p.pid) for p in view.processes)
        raise RuntimeError(f"cannot reset {uuid}: processes still attached (PID {pids})")
    freed = 0
    with _site_lock(root):
        for name in os.listdir(d):
            if _LEAK.match(name):
                with contextlib.suppress(FileNotFoundError):
                    freed += _CLAIM_DEC.decode((d / name).read_bytes()).used_memory_bytes
                    os.unlink(d / name)
        _bump()
    return freed


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(slots=True)
class _GpuCache:
    names: dict[str, object] = field(default_factory=dict)  # immutable file name -> parsed


class StateReader:
    """Reads a site's state directory, caching every immutable file it has parsed.

    `view(uuid)` lists the GPU's directory once, opens only names it has not seen, checks each
    claiming process is still alive, and frees the claims of processes that are gone (or turns
    them into leaks under the ``leak`` fault). Not thread-safe: one reader per thread, or a lock.
    """

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.root = Path(state_dir)
        self.site = load_site(self.root)
        self._caches: dict[str, _GpuCache] = {g.uuid: _GpuCache() for g in self.site.gpus}
        self._events: dict[str, XidRecord] = {}

    def site_faults(self) -> SiteFaults:
        raw = _read_current(self.root, "site-faults")
        return SiteFaults() if raw is None else _SITE_FAULTS_DEC.decode(raw)

    def view(self, uuid: str) -> GpuView:
        cache = self._caches.get(uuid)
        if cache is None:
            raise KeyError(f"no simulated GPU {uuid!r} in {self.root}")
        d = self.root / "gpus" / uuid
        for _ in range(8):
            try:
                return self._view_once(d, cache)
            except FileNotFoundError:
                continue  # a file vanished between the listing and the open: list again
        raise RuntimeError(f"{d}: the GPU's state keeps changing; cannot read a stable view")

    def _parse(self, d: Path, name: str, cache: _GpuCache, kind: str) -> object:
        got = cache.names.get(name)
        if got is None:
            raw = (d / name).read_bytes()
            if kind == "faults":
                got = _FAULTS_DEC.decode(raw)
            elif kind == "settings":
                got = _SETTINGS_DEC.decode(raw)
            else:  # a claim, or a leak (the claim of a process that is gone, renamed)
                got = _CLAIM_DEC.decode(raw)
            cache.names[name] = got
        return got

    def _view_once(self, d: Path, cache: _GpuCache) -> GpuView:
        names = os.listdir(d)
        faults_name = settings_name = None
        faults_seq = settings_seq = -1
        claims: dict[int, list[tuple[int, str]]] = {}
        leaks: list[str] = []
        for name in names:
            if name[0] == ".":
                continue
            if m := _PROC.match(name):
                claims.setdefault(int(m.group(1)), []).append((int(m.group(2)), name))
            elif m := _VERSIONED.match(name):
                seq = int(m.group(2))
                if m.group(1) == "faults" and seq > faults_seq:
                    faults_seq, faults_name = seq, name
                elif m.group(1) == "settings" and seq > settings_seq:
                    settings_seq, settings_name = seq, name
            elif _LEAK.match(name):
                leaks.append(name)
        faults = Faults() if faults_name is None else self._parse(d, faults_name, cache, "faults")
        settings = (
            Settings()
            if settings_name is None
            else self._parse(d, settings_name, cache, "settings")
        )
        assert isinstance(faults, Faults) and isinstance(settings, Settings)
        live: list[ProcessClaim] = []
        for pid, versions in sorted(claims.items()):
            versions.sort()
            claim = self._parse(d, versions[-1][1], cache, "proc")
            assert isinstance(claim, ProcessClaim)
            if _process_alive(pid, claim.start_ticks):
                live.append(claim)
                continue
            self._free(d, claim, [n for _, n in versions], faults.leak)
            if faults.leak:
                leaks.append(f"leak.{pid}.json")
        leaked: list[LeakedMemory] = []
        for name in sorted(set(leaks)):
            with contextlib.suppress(FileNotFoundError):
                got = self._parse(d, name, cache, "leak")
                assert isinstance(got, ProcessClaim)
                leaked.append(
                    LeakedMemory(
                        pid=got.pid, name=got.name, used_memory_bytes=got.used_memory_bytes
                    )
                )
        # Forget parsed files that are gone, so the cache stays as small as the directory.
        present = set(names)
        for stale in [n for n in cache.names if n not in present]:
            del cache.names[stale]
        return GpuView(faults, settings, tuple(live), tuple(leaked))

    @staticmethod
    def _free(d: Path, claim: ProcessClaim, names: list[str], leak: bool) -> None:
        """The claiming process is gone: free its memory, or leave it held under `leak`."""
        if leak:
            # Renaming the claim itself is atomic and consumes it: of several observers exactly
            # one succeeds, and a late one cannot bring a leak back after `reset_gpu`.
            with contextlib.suppress(FileNotFoundError):
                os.rename(d / names[-1], d / f"leak.{claim.pid}.json")
            names = names[:-1]
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(d / name)

    def xid_events(self, after_seq: int) -> list[XidRecord]:
        """XID events with a sequence number above `after_seq`, oldest first."""
        out: list[XidRecord] = []
        events = self.root / "events"
        for name in os.listdir(events):
            m = _XID.match(name)
            if m is None or int(m.group(1)) <= after_seq:
                continue
            rec = self._events.get(name)
            if rec is None:
                try:
                    rec = _XID_DEC.decode((events / name).read_bytes())
                except FileNotFoundError:
                    continue
                self._events[name] = rec
            out.append(rec)
        out.sort(key=lambda r: r.seq)
        return out

    def last_xid_seq(self) -> int:
        seqs = [int(m.group(1)) for n in os.listdir(self.root / "events") if (m := _XID.match(n))]
        return max(seqs, default=0)


# ---------------------------------------------------------------------------------------------
# Processes (the fake workloads)


def visible_gpu(site: SiteInfo, env: Mapping[str, str]) -> SiteGpu:
    """The GPU a CUDA process sees as ``cuda:0`` under `env`, with CUDA's rules: the first
    entry of ``CUDA_VISIBLE_DEVICES`` is a full or prefix UUID (``GPU-…``) or an ordinal;
    ordinals follow ``CUDA_DEVICE_ORDER`` (``PCI_BUS_ID`` = NVML order; the default
    ``FASTEST_FIRST`` puts the fastest GPU first, which is why an ordinal is unsafe). Unset
    means all GPUs (cuda:0 is then the first in that order); empty or unknown means none."""
    raw = env.get(CUDA_ENV)
    if raw is not None and not raw.strip():
        raise NoCudaDevice(f"{CUDA_ENV} is empty: no CUDA-capable device is visible")
    order = list(site.gpus)
    if env.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST") != "PCI_BUS_ID":
        order.sort(key=lambda g: (-SPEED_RANK.get(g.model, 0), g.index))
    if raw is None:
        if not order:
            raise NoCudaDevice("no CUDA-capable device is detected")
        return order[0]
    first = raw.split(",")[0].strip()
    if first.startswith("GPU-"):
        matches = [g for g in site.gpus if g.uuid.startswith(first)]
        if len(matches) == 1:
            return matches[0]
        why = "matches several GPUs" if matches else "matches no GPU"
        raise NoCudaDevice(f"{CUDA_ENV}={raw!r}: {first!r} {why}")
    if first.isdigit() and int(first) < len(order):
        return order[int(first)]
    raise NoCudaDevice(f"{CUDA_ENV}={raw!r} names no CUDA-capable device")


def free_memory_bytes(state_dir: str | os.PathLike[str], uuid: str) -> int:
    """Memory a new context could still allocate on the GPU."""
    reader = StateReader(state_dir)
    m: GpuModel = model(reader.site.gpu(uuid).model)
    view = reader.view(uuid)
    used = view.process_memory_bytes + view.leaked_bytes
    return m.memory_total_bytes - m.memory_reserved_bytes - used


class Registration:
    """This process's claim on one simulated GPU (what a CUDA context is to the real driver).

    Creating it allocates `used_memory_bytes` (raising `OutOfMemory` when the GPU has not that
    much free); `update` changes what the process holds and drives. There is no "unregister":
    the GPU frees the claim when it sees the process gone (see the module docstring).
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        uuid: str,
        *,
        name: str,
        used_memory_bytes: int = 0,
        util_gpu_pct: float = 0.0,
        util_memory_pct: float = 0.0,
        power_intensity: float = 1.0,
        kind: str = "C",
        pid: int | None = None,
    ) -> None:
        self.root = Path(state_dir)
        self.uuid = uuid
        self.dir = _gpu_dir(self.root, uuid)
        self.pid = os.getpid() if pid is None else pid
        self._seq = 0
        self.claim = ProcessClaim(
            pid=self.pid,
            start_ticks=_proc_start_ticks(self.pid),
            name=name,
            used_memory_bytes=0,
            util_gpu_pct=0.0,
            util_memory_pct=0.0,
            power_intensity=power_intensity,
            kind=kind,
        )
        self.update(
            used_memory_bytes=used_memory_bytes,
            util_gpu_pct=util_gpu_pct,
            util_memory_pct=util_memory_pct,
        )

    def update(
        self,
        *,
        used_memory_bytes: int | None = None,
        util_gpu_pct: float | None = None,
        util_memory_pct: float | None = None,
        power_intensity: float | None = None,
    ) -> ProcessClaim:
        changes: dict[str, object] = {}
        if util_gpu_pct is not None:
            changes["util_gpu_pct"] = max(0.0, min(100.0, float(util_gpu_pct)))
        if util_memory_pct is not None:
            changes["util_memory_pct"] = max(0.0, min(100.0, float(util_memory_pct)))
        if power_intensity is not None:
            changes["power_intensity"] = max(0.0, float(power_intensity))
        if used_memory_bytes is None or used_memory_bytes <= self.claim.used_memory_bytes:
            if used_memory_bytes is not None:
                changes["used_memory_bytes"] = max(0, int(used_memory_bytes))
            self._write(msgspec.structs.replace(self.claim, **changes))
        else:
            # Growing: check free memory and claim it under the site lock, so two processes
            # allocating at once cannot both get the last gigabytes.
            with _site_lock(self.root):
                free = free_memory_bytes(self.root, self.uuid) + self.claim.used_memory_bytes
                if used_memory_bytes > free:
                    raise OutOfMemory(
                        f"CUDA error: out of memory (asked {used_memory_bytes >> 20} MiB, "
                        f"{max(free, 0) >> 20} MiB free on {self.uuid})"
                    )
                changes["used_memory_bytes"] = int(used_memory_bytes)
                self._write(msgspec.structs.replace(self.claim, **changes))
        return self.claim

    def _write(self, claim: ProcessClaim) -> None:
        self._seq += 1
        _atomic_write(self.dir / f"proc.{self.pid}.{self._seq:010d}.json", _ENC.encode(claim))
        if self._seq > 1:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.dir / f"proc.{self.pid}.{self._seq - 1:010d}.json")
        self.claim = claim
        _bump()
