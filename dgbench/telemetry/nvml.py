"""GPU telemetry from NVML (nvidia-ml-py), one row per visible GPU per sample.

Power: the instantaneous reading (field NVML_FI_DEV_POWER_INSTANT) where the driver offers it, because
nvmlDeviceGetPowerUsage is a 1 s moving average on recent GPUs (Ampere and later) and smears short
phases; otherwise the averaged reading. Energy: nvmlDeviceGetTotalEnergyConsumption (mJ since the
driver loaded), the basis of energy per token. A field a device lacks (consumer cards without the energy
counter, a driver without the instant field) is probed once and then left empty, never a crash.

`nvml` is the pynvml module; tests pass a fake with the same functions (CI has no GPU).
"""

from __future__ import annotations

import os

from dgbench.telemetry.energy import CumulativeCounter

# Clock-event reasons that mean the GPU slowed down because of power or heat (the ones that make a
# measurement unrepresentative). Idle, application clocks, sync boost and display clocks are not
# throttling in this sense and are left out of the `throttle` column.
THROTTLE_REASONS = {
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sw_thermal": 0x20,
    "hw_thermal": 0x40,
    "hw_power_brake": 0x80,
}

NVML_FIELDS = ("power_w", "energy_j", "gpu_util_pct", "mem_util_pct", "mem_used_bytes", "sm_clock_mhz",
               "mem_clock_mhz", "temp_c", "throttle")


class NvmlUnavailable(RuntimeError):
    pass


def load_nvml():
    """pynvml initialised, or NvmlUnavailable with the reason (no driver on a CPU machine)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError
        raise NvmlUnavailable(f"NVML unavailable: {exc}") from None


class _Device:
    """One GPU: its handle, which readers work on it, and its energy counter."""

    def __init__(self, nvml, index: int):
        self.nvml = nvml
        self.index = index
        self.label = str(index)
        self.handle = nvml.nvmlDeviceGetHandleByIndex(index)
        self.energy = CumulativeCounter(scale=1e-3)         # mJ -> J, resets handled (64-bit: no wrap)
        readers = {
            "power_instant": self._power_instant,
            "power_avg": lambda: nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0,
            "energy_raw": lambda: float(nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)),
            "util": lambda: nvml.nvmlDeviceGetUtilizationRates(self.handle),
            "mem_used_bytes": lambda: int(nvml.nvmlDeviceGetMemoryInfo(self.handle).used),
            "sm_clock_mhz": lambda: nvml.nvmlDeviceGetClockInfo(self.handle, nvml.NVML_CLOCK_SM),
            "mem_clock_mhz": lambda: nvml.nvmlDeviceGetClockInfo(self.handle, nvml.NVML_CLOCK_MEM),
            "temp_c": lambda: nvml.nvmlDeviceGetTemperature(self.handle, nvml.NVML_TEMPERATURE_GPU),
            "reasons": self._reasons,
        }
        # Probe each reader once: what fails now (not supported on this device) is skipped for the run.
        self.readers = {}
        for name, fn in readers.items():
            try:
                fn()
                self.readers[name] = fn
            except Exception:  # NVMLError_NotSupported and relatives: the cell stays empty
                pass
        if "power_instant" in self.readers:
            self.readers.pop("power_avg", None)
        self.power_method = ("instant" if "power_instant" in self.readers else
                             "average_1s" if "power_avg" in self.readers else None)

    def _power_instant(self) -> float:
        nvml = self.nvml
        value = nvml.nvmlDeviceGetFieldValues(self.handle, [nvml.NVML_FI_DEV_POWER_INSTANT])[0]
        if value.nvmlReturn != 0:
            raise nvml.NVMLError(value.nvmlReturn)
        return value.value.uiVal / 1000.0                   # mW -> W

    def _reasons(self) -> int:
        nvml = self.nvml
        getter = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            nvml.nvmlDeviceGetCurrentClocksThrottleReasons   # the older name, same bits
        return int(getter(self.handle))

    def _read(self, name: str):
        fn = self.readers.get(name)
        if fn is None:
            return None
        try:
            return fn()
        except Exception:  # a transient error on one field costs that cell, not the sample
            return None

    def sample(self) -> dict:
        row: dict = {"device": self.label}
        row["power_w"] = self._read("power_instant") if "power_instant" in self.readers else self._read("power_avg")
        raw = self._read("energy_raw")
        row["energy_j"] = self.energy.update(raw) if raw is not None else None
        util = self._read("util")
        row["gpu_util_pct"] = util.gpu if util is not None else None
        row["mem_util_pct"] = util.memory if util is not None else None
        for name in ("mem_used_bytes", "sm_clock_mhz", "mem_clock_mhz", "temp_c"):
            row[name] = self._read(name)
        bits = self._read("reasons")
        row["throttle"] = (";".join(n for n, b in THROTTLE_REASONS.items() if bits & b) if bits is not None
                           else None)
        return row


class NvmlSource:
    """Samples every GPU NVML sees."""

    name = "nvml"

    def __init__(self, nvml=None):
        self.nvml = nvml if nvml is not None else load_nvml()
        self.devices = [_Device(self.nvml, i) for i in range(self.nvml.nvmlDeviceGetCount())]

    def read(self) -> list[dict]:
        return [d.sample() for d in self.devices]

    def describe(self) -> dict:
        return {d.label: {"power": d.power_method, "energy_counter": "energy_raw" in d.readers,
                          "fields": sorted(d.readers)} for d in self.devices}

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            pass


def nvml_index(device: str) -> str | None:
    """The NVML index (as the `device` column writes it) of a torch device 'cuda:N', or None on CPU.

    torch numbers GPUs after CUDA_VISIBLE_DEVICES (and, by default, fastest first); NVML numbers all of
    them in PCI order. A list of integer ids in CUDA_VISIBLE_DEVICES is honoured; UUIDs are not (the
    index is then taken as is, and may be wrong on a mixed machine)."""
    if not device.startswith("cuda"):
        return None
    n = int(device.split(":")[1]) if ":" in device else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        if n < len(ids) and ids[n].isdigit():
            return ids[n]
    return str(n)
