"""Timestamps inside a generate call that stay honest on GPU.

On CPU a mark is perf_counter(). On CUDA a mark records a CUDA event on the current stream, which does
not synchronize; all events are resolved after the call, once, with the device synchronized. So
per-step and per-token timestamps cost almost nothing and measure when the GPU reached that point,
not when Python queued it.

Beside the wall clock, start/stop read the process's CPU time (time.process_time: user + system of all its
threads). On a shared CPU machine wall time swings with the neighbours' load, while the CPU time a call
spends is the work it did; the gate uses it (metric cpu_s_per_tok) to see a slowdown of the code itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Clock:
    device: str = "cpu"
    _start: object = None
    _end: object = None
    _marks: list = field(default_factory=list)
    _cpu: tuple = (0.0, 0.0)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def _now(self):
        if self.is_cuda:
            import torch

            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def synchronize(self) -> None:
        if self.is_cuda:
            import torch

            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self.synchronize()
        self._marks = []
        self._cpu = (time.process_time(), 0.0)
        self._start = self._now()

    def mark(self, label: str) -> None:
        self._marks.append((label, self._now()))

    def stop(self) -> None:
        self._end = self._now()
        self.synchronize()
        self._cpu = (self._cpu[0], time.process_time())

    @property
    def cpu_s(self) -> float:
        """CPU seconds (all threads of this process) between start and stop."""
        return max(0.0, self._cpu[1] - self._cpu[0])

    def _since_start(self, t) -> float:
        if self.is_cuda:
            return self._start.elapsed_time(t) / 1000.0
        return t - self._start

    @property
    def elapsed(self) -> float:
        return self._since_start(self._end)

    def times(self, label: str) -> list[float]:
        """Seconds since start of every mark with this label, in order."""
        return [self._since_start(t) for lab, t in self._marks if lab == label]
