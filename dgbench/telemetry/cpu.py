"""CPU telemetry: this process's CPU utilisation and RSS (psutil), and package energy from RAPL.

RAPL (Intel, and AMD Zen through the same powercap interface) counts package energy in µJ in
/sys/class/powercap/intel-rapl:N/energy_uj and wraps at max_energy_range_uj. It is readable only where
the kernel exposes it and permissions allow (often root only since 2020, CVE-2020-8694); elsewhere the
energy and power cells stay empty. RAPL measures the whole package, not this process: on a shared
machine the figure includes everyone else's work, which the point record says ("rapl").
"""

from __future__ import annotations

import glob
import os

from dgbench.telemetry.energy import CumulativeCounter

RAPL_ROOT = "/sys/class/powercap"


class RaplReader:
    """Sum of the package domains (intel-rapl:N, not the :N:M subdomains, which the package includes)."""

    def __init__(self, root: str = RAPL_ROOT):
        self.domains = []
        for path in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))):
            if os.path.basename(path).count(":") != 1:
                continue
            try:
                with open(os.path.join(path, "max_energy_range_uj")) as f:
                    wrap = float(f.read())
                energy_file = os.path.join(path, "energy_uj")
                counter = CumulativeCounter(scale=1e-6, wrap_at=wrap)
                counter.update(self._raw(energy_file))
                self.domains.append((energy_file, counter))
            except (OSError, ValueError):  # not readable (permissions) or not a RAPL domain
                continue

    @staticmethod
    def _raw(path: str) -> float:
        with open(path) as f:
            return float(f.read())

    @property
    def available(self) -> bool:
        return bool(self.domains)

    def energy_j(self) -> float | None:
        """Joules since this reader was created, all packages together."""
        if not self.domains:
            return None
        total = 0.0
        for path, counter in self.domains:
            try:
                total += counter.update(self._raw(path))
            except (OSError, ValueError):
                return None
        return total


MIN_CPU_INTERVAL_S = 0.05


class CpuSource:
    """One row per sample with device "cpu"."""

    name = "cpu"

    def __init__(self, rapl_root: str = RAPL_ROOT):
        import psutil

        self.proc = psutil.Process()
        self.rapl = RaplReader(rapl_root)
        self._last: tuple[float, float] | None = None
        self._last_cpu = self._cpu_seconds()

    def read(self, now: float | None = None) -> list[dict]:
        import time

        now = time.monotonic() if now is None else now
        energy = self.rapl.energy_j()
        power = None
        if energy is not None:
            # Power between two samples from the energy counter (RAPL has no power reading of its own).
            if self._last is not None and now > self._last[0]:
                power = (energy - self._last[1]) / (now - self._last[0])
            self._last = (now, energy)
        with self.proc.oneshot():
            cpu_s, rss = self._cpu_seconds(), self.proc.memory_info().rss
        # CPU% over the interval since the last reading (>100 with several threads busy). The kernel counts
        # CPU time in clock ticks (10 ms), so over a very short interval (a marker read right after a timer
        # read) one tick would show as thousands of percent: below MIN_CPU_INTERVAL_S the cell stays empty
        # and the interval keeps growing until the next read.
        cpu = None
        (wall0, cpu0), (wall, cpu_now) = self._last_cpu, cpu_s
        if wall - wall0 >= MIN_CPU_INTERVAL_S:
            cpu = 100.0 * (cpu_now - cpu0) / (wall - wall0)
            self._last_cpu = cpu_s
        return [{"device": "cpu", "power_w": power, "energy_j": energy, "cpu_util_pct": cpu, "rss_bytes": rss}]

    def _cpu_seconds(self) -> tuple[float, float]:
        import time

        t = self.proc.cpu_times()
        return time.monotonic(), t.user + t.system

    def describe(self) -> dict:
        return {"cpu": {"energy_counter": "rapl" if self.rapl.available else None}}

    def close(self) -> None:
        pass
