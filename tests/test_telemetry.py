"""Telemetry: the sampler against a fake NVML at the module boundary (CI has no GPU), counters that wrap
and reset, RAPL from a sysfs tree on disk, and the CPU fallback for real in a short `dgbench run`."""

from __future__ import annotations

import csv
import json
import time
from types import SimpleNamespace

import pytest

from dgbench.telemetry.cpu import CpuSource, RaplReader
from dgbench.telemetry.energy import CumulativeCounter, integrate_power
from dgbench.telemetry.nvml import NvmlSource
from dgbench.telemetry.recorder import COLUMNS, TelemetryRecorder


class FakeNvml:
    """The pynvml functions the sampler calls, over fake GPUs whose power is constant, so the energy the
    counter accumulates over any window is known: power x duration."""

    NVML_FI_DEV_POWER_INSTANT = 186
    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    class NVMLError(Exception):
        pass

    def __init__(self, gpus: list[dict]):
        self.gpus = gpus
        self.t0 = time.monotonic()
        self.shutdown = False

    def _gpu(self, h, field):
        g = self.gpus[h]
        if field in g.get("lacks", ()):
            raise self.NVMLError("Not Supported")
        return g

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetFieldValues(self, h, ids):
        g = self._gpu(h, "power_instant")
        return [SimpleNamespace(nvmlReturn=0, value=SimpleNamespace(uiVal=int(g["power_w"] * 1000)))]

    def nvmlDeviceGetPowerUsage(self, h):
        return int(self._gpu(h, "power_avg")["power_w"] * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        g = self._gpu(h, "energy")
        t = time.monotonic() - self.t0
        reset_at = g.get("reset_at")
        if reset_at is not None and t >= reset_at:   # a driver reload: the counter restarts from 0
            return int(1000 * g["power_w"] * (t - reset_at))
        return int(g.get("offset_mj", 0) + 1000 * g["power_w"] * t)

    def nvmlDeviceGetUtilizationRates(self, h):
        self._gpu(h, "util")
        return SimpleNamespace(gpu=97, memory=40)

    def nvmlDeviceGetMemoryInfo(self, h):
        self._gpu(h, "memory")
        return SimpleNamespace(used=12 * 2**30)

    def nvmlDeviceGetClockInfo(self, h, which):
        self._gpu(h, "clocks")
        return 1980 if which == self.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetTemperature(self, h, sensor):
        self._gpu(h, "temp")
        return 61

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return self._gpu(h, "reasons").get("reasons", 0)

    def nvmlShutdown(self):
        self.shutdown = True


def _run_reps(rec: TelemetryRecorder, point: str, n: int, dur: float, gap: float = 0.05) -> None:
    mark = rec.marker_for(point)
    mark("warmup", 0)
    time.sleep(gap)
    for i in range(n):
        mark("rep", i)
        time.sleep(dur)
    mark("empty")
    time.sleep(gap)
    rec.mark("", "empty")


def _rows(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [dict(zip(header, r)) for r in reader]


def test_rate_markers_energy_counter_and_csv(tmp_path):
    fake = FakeNvml([{"power_w": 250.0, "reasons": 0x1 | 0x4},           # idle bit ignored, power cap kept
                     {"power_w": 80.0, "offset_mj": 5e9}])
    path = tmp_path / "telemetry.csv"
    with TelemetryRecorder([NvmlSource(fake)], path, rate_hz=40.0) as rec:
        _run_reps(rec, "p1", n=3, dur=0.15)
        time.sleep(0.3)
    assert fake.shutdown

    # Rate: periodic samples per device close to rate x duration, evenly spaced.
    periodic = [r for r in rec.rows if r["periodic"] and r["device"] == "0"]
    duration = rec.rows[-1]["t_s"] - rec.rows[0]["t_s"]
    assert 0.6 * 40 * duration <= len(periodic) <= 40 * duration + 2
    gaps = sorted(b["t_s"] - a["t_s"] for a, b in zip(periodic, periodic[1:]))
    assert 0.015 <= gaps[len(gaps) // 2] <= 0.035

    # Alignment: every row carries the marker that was active when it was taken; marks sample on the spot.
    for row in rec.rows:
        active = [b for b in rec.boundaries if b.t_s <= row["t_s"]]
        if active:
            b = active[-1]
            assert (row["point_id"], row["phase"], row["rep"]) == (b.point_id, b.phase, b.rep)
    assert [(b.phase, b.rep) for b in rec.boundaries if b.point_id == "p1"] == \
        [("warmup", 0), ("rep", 0), ("rep", 1), ("rep", 2), ("empty", None)]

    # Energy per repetition from the counter delta between the marks around it.
    windows = rec.rep_windows("p1")
    assert len(windows) == 3 and all(0.14 <= b.t_s - a.t_s <= 0.4 for a, b in windows)
    summary = rec.point_summary("p1", "nvml", "0", useful_tokens=300)
    expected = 250.0 * sum(b.t_s - a.t_s for a, b in windows)
    assert summary["energy_method"] == "energy-counter"
    assert summary["energy_j"] == pytest.approx(expected, rel=0.03)
    assert summary["energy_per_token_j"] == pytest.approx(summary["energy_j"] / 300)
    assert summary["power_w"]["median"] == 250.0 and summary["n_samples"] >= 3
    assert summary["throttled"] and summary["throttle_reasons"] == ["sw_power_cap"]
    other = rec.point_summary("p1", "nvml", "1", useful_tokens=300)
    assert not other["throttled"] and other["energy_j"] == pytest.approx(80.0 * expected / 250.0, rel=0.03)

    # The CSV is the contract the report reads: its columns, one row per sample per device.
    header, rows = _rows(path)
    assert tuple(header) == COLUMNS
    assert len(rows) == len(rec.rows)
    rep_rows = [r for r in rows if r["point_id"] == "p1" and r["phase"] == "rep"]
    assert {r["rep"] for r in rep_rows} == {"0", "1", "2"}
    assert all(r["source"] == "nvml" and r["sm_clock_mhz"] == "1980" and r["cpu_util_pct"] == "" for r in rows)
    energies = [float(r["energy_j"]) for r in rows if r["device"] == "1"]
    assert energies[0] == 0.0 and energies == sorted(energies)   # cumulative since run start, not the raw 5e6 J


def test_counter_reset_and_wrap(tmp_path):
    # NVML: a counter that drops to 0 mid-repetition (driver reload) keeps the total going up.
    fake = FakeNvml([{"power_w": 100.0, "reset_at": 0.25}])
    with TelemetryRecorder([NvmlSource(fake)], None, rate_hz=50.0) as rec:
        _run_reps(rec, "p", n=2, dur=0.2)
    energies = [r["energy_j"] for r in rec.rows]
    assert energies == sorted(energies)
    s = rec.point_summary("p", "nvml", "0", useful_tokens=10)
    # The reset loses at most the energy between the last sample before it and the reset itself.
    assert 100.0 * 0.4 * 0.75 <= s["energy_j"] <= 100.0 * 0.4 * 1.1

    c = CumulativeCounter(scale=1e-6, wrap_at=1_000_000)
    assert [c.update(x) for x in (900_000, 950_000, 50_000, 60_000)] == pytest.approx([0, 0.05, 0.15, 0.16])
    assert c.wraps == 1
    c = CumulativeCounter(scale=1e-3)
    assert [c.update(x) for x in (5000, 6000, 500, 1500)] == pytest.approx([0, 1.0, 1.5, 2.5])
    assert c.resets == 1

    # RAPL from a real sysfs-shaped tree: package domains summed, subdomains skipped, wrap handled.
    for dom, start in (("intel-rapl:0", 990_000), ("intel-rapl:1", 10_000), ("intel-rapl:0:0", 0)):
        d = tmp_path / dom
        d.mkdir()
        (d / "max_energy_range_uj").write_text("1000000\n")
        (d / "energy_uj").write_text(f"{start}\n")
    reader = RaplReader(str(tmp_path))
    assert len(reader.domains) == 2
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("20000\n")     # wrapped: +30,000 µJ
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("30000\n")     # +20,000 µJ
    assert reader.energy_j() == pytest.approx(0.05)
    source = CpuSource(rapl_root=str(tmp_path))
    first = source.read(now=100.0)[0]
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("80000\n")     # +50,000 µJ in 0.5 s
    second = source.read(now=100.5)[0]
    assert first["power_w"] is None and second["power_w"] == pytest.approx(0.1)
    assert second["rss_bytes"] > 0 and second["device"] == "cpu"


def test_device_lacking_fields_integrates_power(tmp_path):
    fake = FakeNvml([{"power_w": 300.0, "lacks": {"power_instant", "energy", "temp", "reasons"}},
                     {"power_w": 50.0, "lacks": {"power_instant", "power_avg", "energy", "util", "clocks"}}])
    source = NvmlSource(fake)
    assert source.describe()["0"]["power"] == "average_1s" and not source.describe()["0"]["energy_counter"]
    path = tmp_path / "t.csv"
    with TelemetryRecorder([source], path, rate_hz=50.0) as rec:
        _run_reps(rec, "q", n=2, dur=0.2)
    s0 = rec.point_summary("q", "nvml", "0", useful_tokens=20)
    windows = rec.rep_windows("q")
    assert s0["energy_method"] == "power-integration"
    assert s0["energy_j"] == pytest.approx(300.0 * sum(b.t_s - a.t_s for a, b in windows), rel=0.05)
    s1 = rec.point_summary("q", "nvml", "1", useful_tokens=20)
    assert s1["energy_j"] is None and s1["energy_method"] is None and s1["power_w"] is None
    _, rows = _rows(path)
    dev0 = [r for r in rows if r["device"] == "0"]
    dev1 = [r for r in rows if r["device"] == "1"]
    assert all(r["temp_c"] == "" and r["energy_j"] == "" and r["throttle"] == "" for r in dev0)
    assert all(r["power_w"] == "300" and r["gpu_util_pct"] == "97" for r in dev0)
    assert all(r["power_w"] == "" and r["sm_clock_mhz"] == "" and r["temp_c"] == "61" for r in dev1)
    assert integrate_power([0, 1], [None, 5.0]) is None


def test_cpu_fallback_in_a_real_run(tmp_path, monkeypatch):
    """A short real `dgbench run` on this CPU writes telemetry.csv with cpu rows aligned to its phases, a
    telemetry block per point, and a roofline block from this CPU's measured profile."""
    from dgbench.cli import main
    from dgbench.harness.point import start_telemetry

    monkeypatch.setenv("DGBENCH_CACHE_DIR", str(tmp_path / "cache"))
    suite = tmp_path / "s.yaml"
    suite.write_text("name: t7\nscenario: latency\ndecoders:\n"
                     "  - {name: ar, model: gemma4-tiny, engine: hf-autoregressive}\n"
                     "sweep: {batch_size: [1], gen_length: [8], prompt_length: [8]}\n"
                     "measure: {warmup: 1, min_repetitions: 2, max_repetitions: 3, min_time_s: 0.0}\n"
                     "telemetry: {rate_hz: 20}\n")
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "res"), "--device", "cpu"]) == 0
    run_dir = next((tmp_path / "res").iterdir())
    header, rows = _rows(run_dir / "telemetry.csv")
    assert tuple(header) == COLUMNS
    cpu = [r for r in rows if r["source"] == "cpu"]
    assert cpu and all(r["device"] == "cpu" and int(r["rss_bytes"]) > 0 for r in cpu)
    point = json.loads((run_dir / "points.jsonl").read_text().splitlines()[0])
    mine = [r for r in cpu if r["point_id"] == point["point_id"]]
    assert {"warmup", "rep", "memory", "empty"} <= {r["phase"] for r in mine}
    assert {r["rep"] for r in mine if r["phase"] == "rep"} == {str(i) for i in range(len(point["reps"]["e2e_s"]))}
    tele = point["telemetry"]
    assert tele["source"] == "cpu" and tele["n_samples"] >= len(point["reps"]["e2e_s"]) and not tele["throttled"]
    # RAPL is root-only on most machines: energy is either measured from it or honestly absent.
    assert (tele["energy_method"], tele["energy_j"] is None) in (("rapl", False), (None, True))
    roof = point["roofline"]
    assert roof["profile_kind"] == "measured" and roof["flops_per_call"] > 0 and roof["predicted_s"] > 0
    # The ratio itself depends on the machine's load at that moment, so it is checked for consistency, not
    # for a value (benchmarks and the README report the measured ratios of a quiet run).
    measured = point["summary"]["e2e_s"]["median"]
    assert roof["predicted_over_measured"] == pytest.approx(roof["predicted_s"] / measured, rel=1e-6)
    assert roof["predicted_s"] >= roof["floor_s"] > 0
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["telemetry"]["file"] == "telemetry.csv" and meta["roofline_profile"]["profile_kind"] == "measured"
    assert start_telemetry({"telemetry": {"enabled": False}}, "cpu", run_dir) == (None, None)


def test_emulate_memory_and_profile_flags_fail_in_one_line(tmp_path, capsys):
    from dgbench.cli import main

    suite = tmp_path / "s.yaml"
    suite.write_text("name: t7\ndecoders:\n  - {name: ar, model: gemma4-tiny, engine: hf-autoregressive}\n")
    out = str(tmp_path / "res")
    assert main(["run", "--suite", str(suite), "--out", out, "--device", "cpu", "--emulate-memory", "rtx-4090"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs a CUDA device" in err
    assert main(["run", "--suite", str(suite), "--out", out, "--device", "cpu", "--profile", "h100-sxn"]) == 2
    assert "did you mean 'h100-sxm'" in capsys.readouterr().err
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_cpu_utilisation_is_bounded_and_skips_too_short_intervals(tmp_path):
    """CPU time comes in 10 ms ticks: a read right after another must not turn one tick into 1000s of %."""
    import os
    import time

    source = CpuSource(rapl_root=str(tmp_path))
    first = source.read()[0]
    assert first["cpu_util_pct"] is None          # nothing since construction: too short to say
    t_end = time.monotonic() + 0.3
    while time.monotonic() < t_end:               # keep one thread busy
        sum(i * i for i in range(1000))
    busy = source.read()[0]["cpu_util_pct"]
    assert busy is not None and 0.0 < busy <= 100.0 * os.cpu_count() + 10.0
    assert source.read()[0]["cpu_util_pct"] is None   # immediately again: empty cell, not a spike


def test_cpu_only_sampling_is_capped_and_gpu_sampling_is_not(tmp_path):
    """With only the CPU source the periodic rate is capped (the sampler's cost is GIL time taken from the
    measured thread); boundary samples still bracket every repetition. With NVML the rate is as asked."""
    from dgbench.telemetry.cpu import CpuSource
    from dgbench.telemetry.recorder import CPU_ONLY_MAX_RATE_HZ

    rec = TelemetryRecorder([CpuSource()], None, rate_hz=50.0)
    assert rec.rate_hz == CPU_ONLY_MAX_RATE_HZ and rec.requested_rate_hz == 50.0
    with rec:
        _run_reps(rec, "c", n=2, dur=0.05)
    assert len(rec.rep_windows("c")) == 2
    assert all(r["rss_bytes"] > 0 and r["device"] == "cpu" for r in rec.rows)
    assert TelemetryRecorder([CpuSource()], None, rate_hz=1.0).rate_hz == 1.0
    fake = FakeNvml([{"power_w": 100.0}])
    assert TelemetryRecorder([NvmlSource(fake), CpuSource()], None, rate_hz=50.0).rate_hz == 50.0


def test_the_sampling_threads_own_cpu_time_is_counted(tmp_path):
    """The sampler's cost counted directly: CPU seconds of its thread, above zero and far below the wall
    time it sampled (a busy-looping or runaway sampler would show here, where a throughput A/B cannot)."""
    import time

    from dgbench.telemetry.cpu import CpuSource

    rec = TelemetryRecorder([CpuSource()], None, rate_hz=2.0)
    t0 = time.perf_counter()
    with rec:
        time.sleep(1.2)                       # two periodic samples at 2 Hz
    wall = time.perf_counter() - t0
    assert len([r for r in rec.rows]) >= 3
    assert 0 < rec.sampler_cpu_s < 0.2 * wall
