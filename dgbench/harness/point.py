"""One sweep point, measured end to end: its telemetry window, the scenario's measurement, the telemetry
summary and the roofline annotation. What every executor runs for a point: the local loop (harness/runner.py)
and a Ray worker (harness/executors/ray_worker.py). A failing point (out of memory, an exception) becomes a
record with its error, never a crash.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from dgbench.harness.sweep import Point
from dgbench.models.cache import ModelCache, free_memory
from dgbench.results import utc_stamp
from dgbench.scenarios import MeasureContext, for_point
from dgbench.telemetry.recorder import TELEMETRY_FILE


def measure_point(point: Point, device: str, suite: dict, cache: ModelCache, telemetry, roof,
                  on_rep=None, on_sample=None, on_request=None) -> dict:
    """One point, end to end: its telemetry window, the scenario's measurement, the telemetry summary and the
    roofline. What the local loop and a Ray worker (harness/executors/ray_worker.py) both run."""
    from dgbench.hardware.detect import resolve_dtype
    from dgbench.models.registry import get

    scenario = for_point(point)
    recorder, src = telemetry
    mark = recorder.marker_for(point.point_id) if recorder else None
    if mark:
        mark(scenario.telemetry_window)
    ctx = MeasureContext(device, suite.get("measure"), suite["seed"], on_rep, on_sample, mark, suite=suite,
                         on_request=on_request)
    if not scenario.loads_model:    # serve: the endpoint decodes; no model, no roofline
        record = _measure_without_model(point, scenario, ctx)
    else:
        record = _measure(point, scenario, ctx, cache, resolve_dtype(point.dtype, device), get(point.model))
    if recorder:
        recorder.mark("", "empty")
        recorder.flush()
        record["telemetry"] = _point_telemetry(recorder, src, record)
    if scenario.loads_model:
        roof.annotate(record, get(point.model))
    return record


def point_header(point: Point, spec, dtype: str, device: str) -> dict:
    """The fields every point record starts with, measured or not."""
    return {"point_id": point.point_id, "decoder": point.decoder, "model": point.model, "engine": point.engine,
            "paradigm": spec.paradigm, "dtype": dtype, "device": device, "params": point.params,
            "knobs": point.knobs, "weights": spec.weights, "started_utc": utc_stamp()}


def _measure(point: Point, scenario, ctx: MeasureContext, cache: ModelCache, dtype: str, spec) -> dict:
    from dgbench.backends import ENGINES

    started = time.time()
    device = ctx.device
    record = point_header(point, spec, dtype, device)
    try:
        model = cache.get(spec, device, dtype)
        decoder = ENGINES[point.engine].factory(model, spec, point.knobs)
        record.update(status="ok", **scenario.measure(decoder, point, spec, ctx))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a failed point is data, not a crash: record it and go on
        record.update(status="failed", error=_error_record(exc))
        free_memory(device)
    record["wall_s"] = round(time.time() - started, 3)
    return record


def _measure_without_model(point, scenario, ctx: MeasureContext) -> dict:
    """A point of a scenario that loads nothing (serve: load against an endpoint); a failure is a failed point."""
    started = time.time()
    record = {"point_id": point.point_id, "decoder": point.decoder, "model": point.model, "engine": point.engine,
              "params": point.params, "knobs": {}, "weights": "served", "started_utc": utc_stamp()}
    try:
        record.update(scenario.measure(None, point, None, ctx))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a broken point is data, not a crash
        record.update(status="failed", error=_error_record(exc))
    record["wall_s"] = round(time.time() - started, 3)
    return record


def start_telemetry(suite: dict, device: str, run_dir: Path | None):
    """(recorder, (source, device) of this run's device), or (None, None) when the suite turns it off.
    Without `run_dir` the rows stay in memory (a Ray worker sends them to the driver with each point)."""
    settings = suite.get("telemetry") or {}
    if not settings.get("enabled", True):
        return None, None
    from dgbench.telemetry.recorder import TelemetryRecorder, open_sources

    sources, source, dev = open_sources(device)
    recorder = TelemetryRecorder(sources, run_dir / TELEMETRY_FILE if run_dir else None, rate_hz=settings.get("rate_hz", 10.0))
    recorder.start()
    return recorder, (source, dev)


def _point_telemetry(recorder, src, record: dict) -> dict:
    useful = None
    reps = record.get("reps") or {}
    if reps.get("useful_tokens"):
        useful = sum(x for x in reps["useful_tokens"] if x is not None)   # the timed reps the energy covers
    return recorder.point_summary(record["point_id"], src[0], src[1], useful)


class RooflineContext:
    """Resolves the run's profile once (a published one, or this CPU's measured one) and annotates points."""

    def __init__(self, profile_name: str | None, device: str):
        self.profile_name = profile_name
        self.device = device
        self.profile = None
        self.profiles = None

    def _resolve(self) -> None:
        from dgbench.hardware.profiles import load_profiles

        self.profiles = load_profiles()
        prof = self.profiles.get(self.profile_name) if self.profile_name else None
        if prof is not None and (prof.get("peak_flops") or {}) and prof.get("memory_bandwidth_bytes_s"):
            self.profile = {**prof, "profile_kind": "published"}
        elif self.device == "cpu":
            # A CPU without a profile of its own (or the generic placeholder): measure this one.
            from dgbench.hardware.measure import measured_profile

            self.profile = dict(measured_profile("cpu"))   # a copy: this run's floors go into run.json only
        else:
            self.profile = {"name": self.profile_name, "profile_kind": "published", "peak_flops": {},
                            "memory_bandwidth_bytes_s": None}

    def annotate(self, record: dict, spec) -> None:
        if record.get("status") != "ok" or record.get("params", {}).get("task"):
            return
        if self.profile is None:
            self._resolve()
        from dgbench.hardware.roofline import evaluate_point

        floor, roof = 0.0, None
        if self.profile.get("profile_kind") == "measured" and self.device == "cpu" and record["dtype"] == "float32":
            from dgbench.hardware.measure import floor_for, gemm_roof_for

            floor, roof = floor_for(self.profile, spec, self.device), gemm_roof_for(self.profile, spec, self.device)
        record["roofline"] = evaluate_point(record, spec, self.profile, self.profiles, floor, roof)


def _error_record(exc: BaseException) -> dict:
    import torch

    text = str(exc).lower()
    oom = isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in text \
        or "can't allocate memory" in text  # the CPU allocator's wording
    kind = "out_of_memory" if oom else type(exc).__name__
    return {"kind": kind, "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            "traceback": traceback.format_exc(limit=8)}
