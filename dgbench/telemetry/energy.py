"""Energy counters that only go up: wrap-around and resets handled, and power integration as the fallback.

Hardware energy counters are raw running totals: NVML's total-energy counter (mJ since the driver
loaded, 64-bit, so it resets on a driver reload rather than wrapping) and RAPL's energy_uj (µJ, wraps at
max_energy_range_uj, often every few minutes under load). Telemetry wants joules since the run started,
monotonic, so each raw reading goes through a CumulativeCounter.
"""

from __future__ import annotations

from collections.abc import Sequence


class CumulativeCounter:
    """Turns raw counter readings into a monotonic total since the first reading.

    `wrap_at`: the counter's range (RAPL's max_energy_range_uj + 1 semantics: a reading below the
    previous one means the counter went past its maximum and restarted at 0). Without it (NVML), a
    reading below the previous one means the counter was reset (driver reload): the new reading is the
    energy since the reset, so it is added as is. Either way the total never goes down.
    """

    def __init__(self, scale: float = 1.0, wrap_at: float | None = None):
        self.scale = scale          # raw units -> joules (NVML mJ: 1e-3, RAPL µJ: 1e-6)
        self.wrap_at = wrap_at
        self.last: float | None = None
        self.total_raw = 0.0
        self.wraps = 0
        self.resets = 0

    def update(self, raw: float) -> float:
        """Feed one raw reading; return joules since the first reading."""
        if self.last is not None:
            if raw >= self.last:
                self.total_raw += raw - self.last
            elif self.wrap_at is not None:
                self.total_raw += raw + self.wrap_at - self.last
                self.wraps += 1
            else:
                self.total_raw += raw
                self.resets += 1
        self.last = raw
        return self.total_raw * self.scale


def integrate_power(times_s: Sequence[float], power_w: Sequence[float | None]) -> float | None:
    """Joules over a window by the trapezoid rule, skipping samples without a power reading.

    Only the fallback: on GPUs whose driver offers no energy counter, and then the result is labelled
    "power-integration" (a 1 s averaged power reading integrated at 10 Hz smears short phases)."""
    pts = [(t, p) for t, p in zip(times_s, power_w) if p is not None]
    if len(pts) < 2:
        return None
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(pts, pts[1:]))
