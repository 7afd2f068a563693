"""The simulated GPU site's state directory: creation, faults, process claims with real OS
processes (exit, SIGKILL, zombie, leak), CUDA_VISIBLE_DEVICES resolution."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from simulators import gpu_state
from simulators.gpu_models import model

GIB = 1 << 30


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, gpu_state.SiteInfo]:
    d = tmp_path / "site"
    return d, gpu_state.create_site(d, ["rtx3090", "rtx4090", "h100"])


def _child_claim(d: Path, uuid: str, mem: int, *, then: str = "exit") -> subprocess.Popen[bytes]:
    """A real process that registers on the GPU, says so, then exits or waits."""
    code = (
        "import sys, time\n"
        "from simulators import gpu_state\n"
        f"gpu_state.Registration({str(d)!r}, {uuid!r}, name='child', used_memory_bytes={mem},"
        " util_gpu_pct=50)\n"
        "print('registered', flush=True)\n" + ("" if then == "exit" else "time.sleep(60)\n")
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == b"registered"
    return p


def test_create_site_is_reproducible_and_refuses_to_overwrite(tmp_path: Path) -> None:
    a = gpu_state.create_site(tmp_path / "a", ["rtx3090", "h100"], seed=7)
    b = gpu_state.create_site(tmp_path / "b", ["rtx3090", "h100"], seed=7)
    assert [g.uuid for g in a.gpus] == [g.uuid for g in b.gpus]
    assert all(g.uuid.startswith("GPU-") and len(g.uuid) == 40 for g in a.gpus)
    assert [g.pci_bus_id for g in a.gpus] == ["00000000:01:00.0", "00000000:02:00.0"]
    assert gpu_state.load_site(tmp_path / "a") == a
    with pytest.raises(FileExistsError):
        gpu_state.create_site(tmp_path / "a", ["rtx3090"])
    with pytest.raises(KeyError, match="known models"):
        gpu_state.create_site(tmp_path / "c", ["rtx5090"])


def test_riser_narrows_the_pcie_link(tmp_path: Path) -> None:
    s = gpu_state.create_site(
        tmp_path / "r", [gpu_state.GpuSpec("rtx3090", pcie_width=1, pcie_generation=3)]
    )
    assert (s.gpus[0].pcie_width, s.gpus[0].pcie_generation) == (1, 3)


def test_faults_merge_validate_and_clear(site: tuple[Path, gpu_state.SiteInfo]) -> None:
    d, s = site
    u = s.gpus[0].uuid
    gpu_state.set_faults(d, u, lost=True)
    f = gpu_state.set_faults(d, u, call_errors={"nvmlDeviceGetFanSpeed": "NOT_SUPPORTED"})
    assert f.lost and f.call_errors == {"nvmlDeviceGetFanSpeed": "NOT_SUPPORTED"}
    assert gpu_state.get_faults(d, u) == f
    with pytest.raises(ValueError, match="unknown GPU fault"):
        gpu_state.set_faults(d, u, on_fire=True)
    with pytest.raises(ValueError, match="unknown NVML error"):
        gpu_state.set_faults(d, u, call_errors={"x": "BROKEN"})
    with pytest.raises(ValueError, match="bad GPU fault value"):
        gpu_state.set_faults(d, u, lost="yes")
    gpu_state.clear_faults(d, u)
    assert gpu_state.get_faults(d, u) == gpu_state.Faults()
    # Only the current version of the document is left on disk.
    assert len([n for n in os.listdir(d / "gpus" / u) if n.startswith("faults.")]) == 1


def test_a_live_process_holds_memory_until_it_exits(site: tuple[Path, gpu_state.SiteInfo]) -> None:
    d, s = site
    u = s.gpus[1].uuid
    reader = gpu_state.StateReader(d)
    child = _child_claim(d, u, 2 * GIB, then="wait")
    try:
        view = reader.view(u)
        assert [(p.pid, p.used_memory_bytes, p.util_gpu_pct) for p in view.processes] == [
            (child.pid, 2 * GIB, 50.0)
        ]
        assert reader.view(s.gpus[0].uuid).processes == ()
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait()
    view = reader.view(u)
    assert view.processes == () and view.leaked == ()
    assert not [n for n in os.listdir(d / "gpus" / u) if n.startswith("proc.")]


def test_a_zombie_holds_nothing(site: tuple[Path, gpu_state.SiteInfo]) -> None:
    """A killed child its parent has not reaped yet is a zombie: its context is already gone."""
    d, s = site
    u = s.gpus[0].uuid
    child = _child_claim(d, u, GIB, then="wait")
    os.kill(child.pid, signal.SIGKILL)
    while True:  # until the kernel has turned it into a zombie (we do not reap it yet)
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
    assert gpu_state.StateReader(d).view(u).processes == ()
    child.wait()


def test_leak_fault_keeps_the_memory_of_an_exited_process(
    site: tuple[Path, gpu_state.SiteInfo],
) -> None:
    d, s = site
    u = s.gpus[2].uuid
    gpu_state.set_faults(d, u, leak=True)
    child = _child_claim(d, u, 3 * GIB, then="wait")
    child.kill()
    child.wait()
    reader = gpu_state.StateReader(d)
    view = reader.view(u)
    assert view.processes == ()
    assert [(m.pid, m.used_memory_bytes) for m in view.leaked] == [(child.pid, 3 * GIB)]
    # A second observer agrees (the claim was consumed once), and clearing the fault later
    # does not give the memory back: only a reset does.
    gpu_state.clear_faults(d, u)
    assert gpu_state.StateReader(d).view(u).leaked_bytes == 3 * GIB
    assert gpu_state.reset_gpu(d, u) == 3 * GIB
    assert reader.view(u).leaked == ()


def test_reset_is_refused_while_a_process_is_attached(
    site: tuple[Path, gpu_state.SiteInfo],
) -> None:
    d, s = site
    u = s.gpus[0].uuid
    gpu_state.Registration(d, u, name="me", used_memory_bytes=GIB)
    with pytest.raises(RuntimeError, match=f"PID {os.getpid()}"):
        gpu_state.reset_gpu(d, u)


def test_allocation_beyond_free_memory_is_out_of_memory(
    site: tuple[Path, gpu_state.SiteInfo],
) -> None:
    d, s = site
    u = s.gpus[0].uuid
    m = model("rtx3090")
    free = m.memory_total_bytes - m.memory_reserved_bytes
    reg = gpu_state.Registration(d, u, name="big", used_memory_bytes=free - GIB)
    assert gpu_state.free_memory_bytes(d, u) == GIB
    with pytest.raises(gpu_state.OutOfMemory, match="out of memory"):
        reg.update(used_memory_bytes=free + 1)
    reg.update(used_memory_bytes=free)  # exactly everything is fine
    assert gpu_state.free_memory_bytes(d, u) == 0


def test_claim_updates_replace_the_previous_version(site: tuple[Path, gpu_state.SiteInfo]) -> None:
    d, s = site
    u = s.gpus[0].uuid
    reg = gpu_state.Registration(d, u, name="me", used_memory_bytes=GIB)
    reader = gpu_state.StateReader(d)
    for i in range(2, 6):
        reg.update(used_memory_bytes=i * GIB, util_gpu_pct=10 * i)
        (p,) = reader.view(u).processes
        assert (p.used_memory_bytes, p.util_gpu_pct) == (i * GIB, 10.0 * i)
    assert len([n for n in os.listdir(d / "gpus" / u) if n.startswith("proc.")]) == 1


def test_xid_events_are_ordered(site: tuple[Path, gpu_state.SiteInfo]) -> None:
    d, s = site
    seqs = [gpu_state.inject_xid(d, g.uuid, x) for g, x in zip(s.gpus, (13, 79, 48), strict=True)]
    reader = gpu_state.StateReader(d)
    assert [(e.seq, e.xid) for e in reader.xid_events(0)] == list(
        zip(seqs, (13, 79, 48), strict=True)
    )
    assert [e.xid for e in reader.xid_events(seqs[0])] == [79, 48]
    assert reader.last_xid_seq() == seqs[-1]


@pytest.mark.parametrize(
    ("env", "want"),
    [
        ({}, 2),  # unset: all visible, cuda:0 = fastest (H100)
        ({"CUDA_VISIBLE_DEVICES": "0"}, 2),  # FASTEST_FIRST by default: the index trap
        ({"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, 0),
        ({"CUDA_VISIBLE_DEVICES": "2,0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, 2),
        ({"CUDA_VISIBLE_DEVICES": "@uuid1"}, 1),
        ({"CUDA_VISIBLE_DEVICES": "@prefix1"}, 1),
    ],
)
def test_visible_gpu_follows_cuda_rules(
    site: tuple[Path, gpu_state.SiteInfo], env: dict[str, str], want: int
) -> None:
    _, s = site
    env = {
        k: v.replace("@uuid1", s.gpus[1].uuid).replace("@prefix1", s.gpus[1].uuid[:12])
        for k, v in env.items()
    }
    assert gpu_state.visible_gpu(s, env).index == want


@pytest.mark.parametrize("value", ["", "7", "GPU-00000000", "MIG-1234"])
def test_visible_gpu_none(site: tuple[Path, gpu_state.SiteInfo], value: str) -> None:
    with pytest.raises(gpu_state.NoCudaDevice):
        gpu_state.visible_gpu(site[1], {"CUDA_VISIBLE_DEVICES": value})
