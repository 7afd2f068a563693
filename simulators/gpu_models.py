"""The catalogue of simulated NVIDIA GPU models: what NVML reports about each board and how it
behaves under load.

Figures are the public spec-sheet values (memory, power limits, clocks, PCIe) and typical
`nvidia-smi -q` values (slowdown/shutdown temperatures, idle draw, reserved memory). They are
approximations, not measurements: nothing here was read from real hardware (reference
nvml-and-gpu-switching.md §9). Where the real board does not report a field, the model says so
(`has_fan`, `has_ecc`, `has_memory_temp`) and the simulator answers `NVML_ERROR_NOT_SUPPORTED`,
exactly as the real library does on that board: GeForce cards have no ECC and no memory
temperature through NVML; passively cooled datacenter boards have no fan.

Catalogue keys are short ids (``"rtx4090"``); `name` is what `nvmlDeviceGetName` returns.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GpuModel:
    """One GPU board as the NVML simulator needs it."""

    key: str
    """Catalogue key: ``"rtx3090"``, ``"rtx4090"``, ``"a100-80gb"``, ``"h100"``, ``"l40s"``."""
    name: str
    """What `nvmlDeviceGetName` returns."""
    pci_device_id: int
    """`pciDeviceId` as NVML packs it: device id << 16 | vendor id (0x10DE)."""
    memory_total_bytes: int
    memory_reserved_bytes: int
    """Held by the driver and firmware (`nvmlMemory_v2_t.reserved`); v1 `used` includes it."""
    power_default_w: float
    power_min_w: float
    power_max_w: float
    idle_power_w: float
    """Board power with no process and clocks at idle."""
    full_load_power_w: float
    """What the board would draw at 100 % utilisation with no power cap (above the default
    limit on most boards, so a full load sits at the cap: `SwPowerCap`)."""
    temp_slowdown_c: float
    temp_shutdown_c: float
    temp_gpu_max_c: float
    """`NVML_TEMPERATURE_THRESHOLD_GPU_MAX`: the maximum operating temperature."""
    thermal_resistance_c_per_w: float
    """Die temperature rise over ambient per watt at the reference airflow (fan at 60 %, or
    the chassis airflow of a passive board)."""
    sm_clock_idle_mhz: float
    sm_clock_boost_mhz: float
    sm_clock_max_mhz: float
    mem_clock_idle_mhz: float
    mem_clock_max_mhz: float
    pcie_max_generation: int
    pcie_max_width: int
    has_fan: bool
    has_ecc: bool
    has_memory_temp: bool
    geforce: bool
    """Consumer board: P8 at idle, P2 under CUDA compute, PCIe link drops to Gen1 at idle."""
    architecture: str


MODELS: dict[str, GpuModel] = {
    m.key: m
    for m in (
        GpuModel(
            key="rtx3090",
            name="NVIDIA GeForce RTX 3090",
            pci_device_id=0x220410DE,
            memory_total_bytes=24576 * MIB,
            memory_reserved_bytes=290 * MIB,
            power_default_w=350.0,
            power_min_w=100.0,
            power_max_w=400.0,
            idle_power_w=22.0,
            full_load_power_w=380.0,
            temp_slowdown_c=95.0,
            temp_shutdown_c=98.0,
            temp_gpu_max_c=93.0,
            thermal_resistance_c_per_w=0.13,
            sm_clock_idle_mhz=210.0,
            sm_clock_boost_mhz=1695.0,
            sm_clock_max_mhz=2100.0,
            mem_clock_idle_mhz=405.0,
            mem_clock_max_mhz=9751.0,
            pcie_max_generation=4,
            pcie_max_width=16,
            has_fan=True,
            has_ecc=False,
            has_memory_temp=False,
            geforce=True,
            architecture="Ampere",
        ),
        GpuModel(
            key="rtx4090",
            name="NVIDIA GeForce RTX 4090",
            pci_device_id=0x268410DE,
            memory_total_bytes=24564 * MIB,
            memory_reserved_bytes=330 * MIB,
            power_default_w=450.0,
            power_min_w=150.0,
            power_max_w=600.0,
            idle_power_w=18.0,
            full_load_power_w=480.0,
            temp_slowdown_c=90.0,
            temp_shutdown_c=92.0,
            temp_gpu_max_c=88.0,
            thermal_resistance_c_per_w=0.10,
            sm_clock_idle_mhz=210.0,
            sm_clock_boost_mhz=2520.0,
            sm_clock_max_mhz=3105.0,
            mem_clock_idle_mhz=405.0,
            mem_clock_max_mhz=10501.0,
            pcie_max_generation=4,
            pcie_max_width=16,
            has_fan=True,
            has_ecc=False,
            has_memory_temp=False,
            geforce=True,
            architecture="Ada Lovelace",
        ),
        GpuModel(
            key="a100-80gb",
            name="NVIDIA A100 80GB PCIe",
            pci_device_id=0x20B510DE,
            memory_total_bytes=81920 * MIB,
            memory_reserved_bytes=530 * MIB,
            power_default_w=300.0,
            power_min_w=150.0,
            power_max_w=300.0,
            idle_power_w=45.0,
            full_load_power_w=310.0,
            temp_slowdown_c=89.0,
            temp_shutdown_c=92.0,
            temp_gpu_max_c=85.0,
            thermal_resistance_c_per_w=0.15,
            sm_clock_idle_mhz=210.0,
            sm_clock_boost_mhz=1410.0,
            sm_clock_max_mhz=1410.0,
            mem_clock_idle_mhz=1512.0,
            mem_clock_max_mhz=1512.0,
            pcie_max_generation=4,
            pcie_max_width=16,
            has_fan=False,
            has_ecc=True,
            has_memory_temp=True,
            geforce=False,
            architecture="Ampere",
        ),
        GpuModel(
            key="h100",
            name="NVIDIA H100 PCIe",
            pci_device_id=0x233110DE,
            memory_total_bytes=81559 * MIB,
            memory_reserved_bytes=580 * MIB,
            power_default_w=350.0,
            power_min_w=200.0,
            power_max_w=350.0,
            idle_power_w=50.0,
            full_load_power_w=365.0,
            temp_slowdown_c=90.0,
            temp_shutdown_c=92.0,
            temp_gpu_max_c=87.0,
            thermal_resistance_c_per_w=0.13,
            sm_clock_idle_mhz=345.0,
            sm_clock_boost_mhz=1755.0,
            sm_clock_max_mhz=1755.0,
            mem_clock_idle_mhz=1593.0,
            mem_clock_max_mhz=1593.0,
            pcie_max_generation=5,
            pcie_max_width=16,
            has_fan=False,
            has_ecc=True,
            has_memory_temp=True,
            geforce=False,
            architecture="Hopper",
        ),
        GpuModel(
            key="l40s",
            name="NVIDIA L40S",
            pci_device_id=0x26B910DE,
            memory_total_bytes=46068 * MIB,
            memory_reserved_bytes=450 * MIB,
            power_default_w=350.0,
            power_min_w=100.0,
            power_max_w=350.0,
            idle_power_w=32.0,
            full_load_power_w=365.0,
            temp_slowdown_c=92.0,
            temp_shutdown_c=95.0,
            temp_gpu_max_c=89.0,
            thermal_resistance_c_per_w=0.14,
            sm_clock_idle_mhz=210.0,
            sm_clock_boost_mhz=2520.0,
            sm_clock_max_mhz=2520.0,
            mem_clock_idle_mhz=405.0,
            mem_clock_max_mhz=9001.0,
            pcie_max_generation=4,
            pcie_max_width=16,
            has_fan=False,
            has_ecc=True,
            has_memory_temp=False,
            geforce=False,
            architecture="Ada Lovelace",
        ),
    )
}


def model(key: str) -> GpuModel:
    """The catalogue entry for `key`, or a `KeyError` that lists the known keys."""
    try:
        return MODELS[key]
    except KeyError:
        raise KeyError(
            f"unknown simulated GPU model {key!r}; known models: {', '.join(sorted(MODELS))}"
        ) from None


# Relative compute throughput, used only to order GPUs the way CUDA's default
# CUDA_DEVICE_ORDER=FASTEST_FIRST would (fastest first, ties in PCI order).
SPEED_RANK: dict[str, int] = {"h100": 5, "rtx4090": 4, "l40s": 3, "a100-80gb": 2, "rtx3090": 1}
