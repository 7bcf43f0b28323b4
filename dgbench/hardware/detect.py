"""Device resolution and the hardware fingerprint written into every run.json.

The fingerprint is what the gate compares before it compares any number: results from different
machines are never silently mixed.
"""

from __future__ import annotations

import os
import platform
import re

from dgbench.errors import ConfigError
from dgbench.results import fingerprint_key  # noqa: F401  (re-exported; the key belongs to results)


def resolve_device(requested: str) -> str:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> a concrete torch device string, or a one-line error."""
    import torch

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", requested):
        raise ConfigError(f"--device {requested!r}: use auto, cpu, cuda or cuda:N")
    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {requested}: no CUDA device is visible to torch "
                              f"(torch {torch.__version__}); use --device cpu")
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return f"cuda:{index}"
    return "cpu"


def resolve_dtype(requested: str, device: str) -> str:
    if requested != "auto":
        return requested
    return "bfloat16" if device.startswith("cuda") else "float32"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":  # "Apple M3 Max": what the Apple profiles match
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                 timeout=5)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def _nvml_info(index: int) -> dict:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            return {"driver_version": pynvml.nvmlSystemGetDriverVersion(),
                    "gpu_power_limit_w": pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000.0}
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVML absent (CPU machine) or a field the driver lacks: the fingerprint omits it
        return {}


def fingerprint(device: str) -> dict:
    import psutil
    import torch

    info = {
        "device": device,
        "cpu_model": cpu_model(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    if device.startswith("cuda"):
        index = int(device.split(":")[1])
        props = torch.cuda.get_device_properties(index)
        info.update({"gpu_name": props.name, "gpu_memory_bytes": props.total_memory,
                     "cuda_version": torch.version.cuda, "gpu_count": torch.cuda.device_count()})
        info.update(_nvml_info(index))
    return info
