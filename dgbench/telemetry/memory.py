"""Peak memory of one call above the level before it.

CUDA: torch's allocator peak (exact, free to read). CPU: process RSS sampled every `interval_s` in a
thread; the sampled peak can miss a spike shorter than the interval, which is why the runner measures
memory in one extra, untimed call rather than during the timed repetitions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class MemoryReading:
    peak_bytes: int      # above the level before the call: what the call itself needed
    total_bytes: int     # absolute peak during the call: weights, caches, runtime included
    method: str


class PeakMemory:
    def __init__(self, device: str = "cpu", interval_s: float = 0.002):
        self.device = device
        self.interval_s = interval_s
        self.reading: MemoryReading | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            import psutil

            self._proc = psutil.Process()
            self._base = self._proc.memory_info().rss
            self._peak = self._base
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            total = torch.cuda.max_memory_allocated(self.device)
            self.reading = MemoryReading(max(0, int(total - self._base)), int(total), "cuda_max_memory_allocated")
        else:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self.reading = MemoryReading(max(0, int(self._peak - self._base)), int(self._peak), "cpu_rss_sampled")
