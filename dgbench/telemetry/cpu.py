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


_STATM = "/proc/self/statm"


def _rss_reader():
    """A function returning this process's resident set in bytes: one read of /proc/self/statm (its
    second field, in pages) where Linux has it, about a tenth of psutil's memory_info; psutil elsewhere."""
    try:
        with open(_STATM) as f:
            int(f.read().split()[1])
        page = os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import psutil

        proc = psutil.Process()
        return lambda: proc.memory_info().rss

    def rss() -> int:
        with open(_STATM) as f:
            return int(f.read().split()[1]) * page
    return rss


class CpuSource:
    """One row per sample with device "cpu". Reads are the cheapest the OS offers (os.times for CPU time,
    /proc/self/statm for RSS): the sampler runs beside the measured thread and shares its GIL."""

    name = "cpu"

    def __init__(self, rapl_root: str = RAPL_ROOT):
        self._rss = _rss_reader()
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
        cpu_s, rss = self._cpu_seconds(), self._rss()
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

        t = os.times()                       # this process's user and system CPU seconds (not children's)
        return time.monotonic(), t.user + t.system

    def describe(self) -> dict:
        return {"cpu": {"energy_counter": "rapl" if self.rapl.available else None}}

    def close(self) -> None:
        pass
