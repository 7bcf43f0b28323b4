"""`dgbench fit` before loading: a model that cannot fit the device is refused up front, with the estimate,
instead of being discovered as an out-of-memory error after minutes of reading weights.

The estimate is dgbench.models.memory.estimate (what `dgbench fit` prints) for one sequence of
FIT_CONTEXT tokens at the run's dtype; for a checkpoint whose architecture has no parameter formula it
falls back to the size of its weight files scaled to the dtype (+ the same reserve). Free memory is
torch.cuda.mem_get_info on a GPU and psutil's available RAM on a CPU. DGBENCH_SKIP_FIT=1 skips the check
(for a device whose allocator the numbers do not describe, e.g. unified memory).
"""

from __future__ import annotations

import os
from pathlib import Path

from dgbench.errors import ConfigError

FIT_CONTEXT = 512
_FORMATS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
_STORED = {"F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1}


def _checkpoint_bytes(spec, dtype: str) -> int | None:
    if not spec.checkpoint or spec.weights == "synthetic":
        return None
    root = Path(spec.checkpoint)
    files = list(root.glob("*.safetensors")) + list(root.glob("*.bin"))
    if not files:
        return None
    stored = 4 if '"dtype": "float32"' in (root / "config.json").read_text() else 2
    per = {"float32": 4, "bfloat16": 2, "float16": 2}.get(dtype, 4)
    return int(sum(f.stat().st_size for f in files) * per / stored)


def needed_bytes(spec, dtype: str) -> tuple[int, str]:
    """(bytes, how they were estimated)."""
    from dgbench.models.memory import estimate

    try:
        est = estimate(spec, batch=1, context=FIT_CONTEXT, dtype=_FORMATS.get(dtype, "fp32"))
        return est.peak, f"dgbench fit estimate (batch 1, context {FIT_CONTEXT}, {dtype})"
    except Exception:   # an architecture without a formula (remote code): its files on disk
        on_disk = _checkpoint_bytes(spec, dtype)
        if on_disk is None:
            return 0, "no estimate"
        return on_disk, f"weight files in {spec.checkpoint} at {dtype}"


def free_bytes(device: str) -> tuple[int, str]:
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free), f"free on {device}"
    import psutil

    return int(psutil.virtual_memory().available), "available RAM"


def check_fits(spec, device: str, dtype: str) -> None:
    """ConfigError (one line, the estimate and the capacity) when `spec` cannot fit `device`."""
    if os.environ.get("DGBENCH_SKIP_FIT") == "1":
        return
    from dgbench.models.memory import human_bytes

    needed, how = needed_bytes(spec, dtype)
    if needed == 0:
        return
    free, where = free_bytes(device)
    if needed > free:
        raise ConfigError(f"model {spec.name!r} does not fit {device}: needs {human_bytes(needed)} ({how}), "
                          f"{human_bytes(free)} {where}; pick a smaller dtype or device_map: auto over more GPUs, "
                          f"see `dgbench fit {spec.name if '/' not in spec.name else 'MODEL'} --profile ...` "
                          "(DGBENCH_SKIP_FIT=1 loads anyway)")
