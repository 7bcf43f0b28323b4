"""The telemetry recorder: a background sampler thread, run-phase markers, RUN_DIR/telemetry.csv, and the
per-point summary (energy per token, power, throttling) that goes into points.jsonl.

Samples come from sources (NVML per GPU, the CPU process) at `rate_hz` on a fixed schedule. Every marker
change (a sweep point starts, a warmup call, a timed repetition, the memory call, the gap between) also
takes one sample on the spot, tagged with the new marker. So each timed repetition is bracketed by two
samples taken right at its edges, and its energy is the counter delta between them, not an
interpolation between periodic samples. Markers are set outside the timed region (before the clock
starts, after it stops), so the extra samples cost the measurement nothing.
"""

from __future__ import annotations

import csv
import threading
import time
from dataclasses import dataclass

from dgbench.stats import summarize
from dgbench.telemetry.energy import integrate_power

COLUMNS = ("t_s", "source", "device", "point_id", "phase", "rep", "power_w", "energy_j", "gpu_util_pct",
           "mem_util_pct", "mem_used_bytes", "sm_clock_mhz", "mem_clock_mhz", "temp_c", "throttle",
           "cpu_util_pct", "rss_bytes")
PHASES = ("warmup", "rep", "memory", "empty")
# With only CPU sources the periodic rate is capped: CPU utilisation and RSS change slowly, RAPL energy per
# repetition comes from the boundary samples (taken at every marker, whatever the rate), and each periodic
# sample takes the GIL from the measured thread, which on a small CPU machine is the sampler's whole cost
# (benchmarks/telemetry_overhead.py). GPU sources keep the requested rate: NVML power is what they integrate.
CPU_ONLY_MAX_RATE_HZ = 2.0
TELEMETRY_FILE = "telemetry.csv"


@dataclass
class Boundary:
    """One marker change: when, what started, and the energy reading of every device at that moment."""

    t_s: float
    point_id: str
    phase: str
    rep: int | None
    energy_j: dict            # (source, device) -> joules or None


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else repr(value)
    return str(value)


def csv_row(row: dict) -> list[str]:
    """One sample as the cells of a telemetry.csv line (COLUMNS order)."""
    return [_cell(row.get(c)) for c in COLUMNS]


class TelemetryRecorder:
    """Context manager: `with TelemetryRecorder(sources, path, rate_hz) as rec: rec.mark(...)`."""

    def __init__(self, sources: list, csv_path=None, rate_hz: float = 10.0, clock=time.monotonic):
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        self.sources = sources
        self.requested_rate_hz = rate_hz
        cpu_only = bool(sources) and all(getattr(s, "name", None) == "cpu" for s in sources)
        self.rate_hz = min(rate_hz, CPU_ONLY_MAX_RATE_HZ) if cpu_only else rate_hz
        self.clock = clock
        self.csv_path = csv_path
        self.rows: list[dict] = []
        self.boundaries: list[Boundary] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._marker = ("", "empty", None)
        self._thread: threading.Thread | None = None
        self._fh = None
        self._writer = None
        # CPU seconds the sampling thread itself used (time.thread_time inside it): the sampler's cost
        # counted directly, where an on/off throughput comparison on a noisy machine resolves only ~±2%.
        self.sampler_cpu_s = 0.0

    # ---- lifecycle

    def __enter__(self) -> "TelemetryRecorder":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.t0 = self.clock()
        if self.csv_path is not None:
            # Append: a resumed run keeps the rows of its earlier sessions (t_s restarts at 0 with them).
            new = not _exists(self.csv_path)
            self._fh = open(self.csv_path, "a", newline="", encoding="utf-8")
            self._writer = csv.writer(self._fh)
            if new:
                self._writer.writerow(COLUMNS)
        self._sample(periodic=False)
        self._thread = threading.Thread(target=self._run, name="dgbench-telemetry", daemon=True)
        self._thread.start()

    def stop(self, close_sources: bool = True) -> None:
        """Stop sampling; `close_sources=False` keeps NVML open for another recorder (benchmarks)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.mark("", "empty")
        if close_sources:
            for source in self.sources:
                source.close()
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _run(self) -> None:
        cpu_start = time.thread_time()
        try:
            self._sample_until_stopped()
        finally:
            self.sampler_cpu_s += time.thread_time() - cpu_start

    def _sample_until_stopped(self) -> None:
        period = 1.0 / self.rate_hz
        next_t = self.clock() + period
        # A fixed schedule (next_t += period), not sleep(period) after each sample, so the rate does not
        # drift by the sampling time itself; a late tick is skipped rather than bunched.
        while not self._stop.wait(max(0.0, next_t - self.clock())):
            self._sample(periodic=True)
            next_t += period
            now = self.clock()
            if next_t < now:
                next_t = now + period

    # ---- sampling and markers

    def _sample(self, periodic: bool) -> dict:
        with self._lock:
            t = self.clock() - self.t0
            point_id, phase, rep = self._marker
            energies = {}
            for source in self.sources:
                for reading in source.read():
                    row = {"t_s": t, "source": source.name, "point_id": point_id, "phase": phase, "rep": rep,
                           "periodic": periodic, **reading}
                    self.rows.append(row)
                    energies[(source.name, row["device"])] = row.get("energy_j")
                    if self._writer is not None:
                        self._writer.writerow(csv_row(row))
            return {"t_s": t, "energy_j": energies}

    def mark(self, point_id: str, phase: str, rep: int | None = None) -> None:
        """Switch the marker and take one sample right now, tagged with it."""
        if phase not in PHASES:
            raise ValueError(f"phase {phase!r}: one of {PHASES}")
        with self._lock:
            self._marker = (point_id, phase, rep)
        taken = self._sample(periodic=False)
        self.boundaries.append(Boundary(taken["t_s"], point_id, phase, rep, taken["energy_j"]))

    def marker_for(self, point_id: str):
        """A `mark(phase, rep=None)` callable bound to one sweep point (what measure.repeat calls)."""
        return lambda phase, rep=None: self.mark(point_id, phase, rep)

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()

    def take_rows(self) -> list[dict]:
        """The rows sampled since the last call, forgetting them and the markers: a long-lived worker (a Ray
        actor, harness/executors/ray_worker.py) ships each point's rows with it and its memory stays flat."""
        with self._lock:
            rows, self.rows = self.rows, []
            self.boundaries = self.boundaries[-1:]   # the open marker: the next point's window starts after it
        return rows

    # ---- per-point summary

    def rep_windows(self, point_id: str) -> list[tuple[Boundary, Boundary]]:
        """(start, end) boundaries of every timed repetition of a point: a rep ends where the next marker starts."""
        out = []
        for b, nxt in zip(self.boundaries, self.boundaries[1:]):
            if b.point_id == point_id and b.phase == "rep":
                out.append((b, nxt))
        return out

    def point_summary(self, point_id: str, source: str, device: str, useful_tokens: float | None) -> dict:
        """The `telemetry` block of a point record (see README: Telemetry)."""
        rows = [r for r in self.rows if r["point_id"] == point_id and r["source"] == source
                and r["device"] == device]
        rep_rows = [r for r in rows if r["phase"] == "rep"]
        windows = self.rep_windows(point_id)
        energy, method = None, None
        key = (source, device)
        if windows and all(a.energy_j.get(key) is not None and b.energy_j.get(key) is not None for a, b in windows):
            energy = sum(b.energy_j[key] - a.energy_j[key] for a, b in windows)
            method = "rapl" if source == "cpu" else "energy-counter"
        elif windows and source != "cpu":
            # No energy counter on this GPU: integrate power over each repetition (labelled as such).
            parts = []
            for a, b in windows:
                inside = [r for r in self.rows if r["source"] == source and r["device"] == device
                          and a.t_s <= r["t_s"] <= b.t_s]
                parts.append(integrate_power([r["t_s"] for r in inside], [r.get("power_w") for r in inside]))
            if parts and all(p is not None for p in parts):
                energy, method = sum(parts), "power-integration"
        reasons = sorted({x for r in rows if r.get("throttle") for x in r["throttle"].split(";")})
        powers = [r["power_w"] for r in rep_rows if r.get("power_w") is not None]
        return {
            "source": source,
            "device": device,
            "n_samples": len(rep_rows),
            "rate_hz": self.rate_hz,
            "energy_j": energy,
            "energy_per_token_j": energy / useful_tokens if energy is not None and useful_tokens else None,
            "energy_method": method,
            "power_w": summarize(powers) if powers else None,
            "throttled": bool(reasons),
            "throttle_reasons": reasons,
        }


def _exists(path) -> bool:
    import os

    return os.path.exists(path)


def open_sources(device: str) -> tuple[list, str, str]:
    """Sources for a run on `device`, and the (source, device) pair whose rows describe that device.

    NVML is sampled whenever it loads (all GPUs, even on a CPU run: the report can show them), the CPU
    always. A CUDA run is summarised from its GPU's NVML rows, a CPU run from the cpu rows."""
    from dgbench.telemetry.cpu import CpuSource
    from dgbench.telemetry.nvml import NvmlSource, NvmlUnavailable, nvml_index

    sources: list = []
    try:
        sources.append(NvmlSource())
    except NvmlUnavailable:
        pass
    sources.append(CpuSource())
    index = nvml_index(device)
    if index is not None and any(s.name == "nvml" for s in sources):
        return sources, "nvml", index
    return sources, "cpu", "cpu"
