"""Run a suite: expand the sweep, measure point by point, store each point as soon as it is done.

A failing point (out of memory, an exception) is recorded with its error and the sweep goes on.
Ctrl-C stops after marking the run interrupted; everything already stored stays, and
`dgbench run --resume RUN_DIR` measures only what is missing.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from dgbench.errors import ConfigError
from dgbench.harness.sweep import Point, expand
from dgbench.metadata import run_metadata, suite_hash
from dgbench.models.cache import ModelCache, free_memory
from dgbench.scenarios import MeasureContext, for_point
from dgbench.results import RunStore, default_run_dir, utc_stamp
from dgbench.telemetry.recorder import TELEMETRY_FILE


@dataclass
class RunOutcome:
    run_dir: Path
    points: list[dict] = field(default_factory=list)
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False


def _error_record(exc: BaseException) -> dict:
    import torch

    text = str(exc).lower()
    oom = isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in text \
        or "can't allocate memory" in text  # the CPU allocator's wording
    kind = "out_of_memory" if oom else type(exc).__name__
    return {"kind": kind, "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            "traceback": traceback.format_exc(limit=8)}


def decoder_weights(suite: dict) -> str:
    """What the decoders' weights are: one kind ("synthetic", "embedded") when they share it, else per model."""
    from dgbench.models.registry import SPECS

    kinds = {d["model"]: SPECS[d["model"]].weights if d["model"] in SPECS else "?" for d in suite["decoders"]}
    if len(set(kinds.values())) == 1:
        return next(iter(kinds.values()))
    return ", ".join(f"{model}: {kind}" for model, kind in kinds.items())


def run_suite(suite: dict, *, device: str, out_root: Path, out_dir: Path | None = None,
              resume: Path | None = None, progress=None, profile: str | None = None,
              emulate_memory: str | None = None) -> RunOutcome:
    """Measure every point of `suite`; `progress(point, index, total, state)` reports to the UI.

    `profile` names the hardware profile the roofline uses (default: detected); `emulate_memory` caps
    CUDA memory to a profile's capacity before anything loads."""
    from dgbench.hardware.detect import fingerprint, resolve_dtype
    from dgbench.hardware.profiles import match_profile
    from dgbench.models.registry import get

    points = expand(suite)
    if profile:
        from dgbench.hardware.profiles import get_profile

        get_profile(profile)  # an unknown name fails here, before anything is created or loaded
    fp = fingerprint(device)
    emulated = apply_memory_cap(device, emulate_memory) if emulate_memory else None
    if resume is not None:
        store = RunStore(resume)
        meta = store.read_meta()
        if meta["config_hash"] != suite_hash(suite):
            raise ConfigError(f"{resume}: the suite differs from the one this run started with "
                              f"(config hash {meta['config_hash']} vs {suite_hash(suite)}); resume with the same "
                              "suite and --set options, or start a new run")
        from dgbench.hardware.detect import fingerprint_key

        if fingerprint_key(meta["hardware"]) != fingerprint_key(fp):
            raise ConfigError(f"{resume}: started on {fingerprint_key(meta['hardware'])!r}, this machine is "
                              f"{fingerprint_key(fp)!r}; a run mixes no hardware, start a new run here")
        done = store.finished_point_ids()
        meta["status"] = "running"
        meta.setdefault("resumed_utc", []).append(utc_stamp())
        store.write_meta(meta)
    else:
        store = RunStore(out_dir or default_run_dir(out_root, suite["name"]))
        if store.run_file.exists():
            raise ConfigError(f"{store.path}: already holds a run; use --resume {store.path} or another --out")
        meta = run_metadata(suite, device, suite["seed"], fp, profile or match_profile(fp), "running",
                            decoder_weights(suite))
        meta["hardware_profile_source"] = "--profile" if profile else "detected"
        if emulated:
            meta["emulated_memory"] = emulated
        store.create(meta)
        done = set()

    outcome = RunOutcome(store.path)
    cache = ModelCache()
    roof = RooflineContext(meta.get("hardware_profile"), device)
    telemetry = _start_telemetry(suite, device, store.path)
    sigint = _SigintLatch()
    try:
        for i, point in enumerate(points):
            sigint.check()
            if point.point_id in done:
                outcome.skipped += 1
                if progress:
                    progress(point, i, len(points), "skipped")
                continue
            if progress:
                progress(point, i, len(points), "start")
            scenario = for_point(point)
            recorder, src = telemetry
            mark = recorder.marker_for(point.point_id) if recorder else None
            if mark:
                mark(scenario.telemetry_window)
            on_rep = (lambda n, point=point, i=i, unit=scenario.progress_unit:
                      progress(point, i, len(points), f"{unit} {n}")) if progress else None
            ctx = MeasureContext(device, suite["measure"], suite["seed"], on_rep, store.append_sample, mark)
            record = _measure(point, scenario, ctx, cache, resolve_dtype(point.dtype, device), get(point.model))
            if recorder:
                recorder.mark("", "empty")
                recorder.flush()
                record["telemetry"] = _point_telemetry(recorder, src, record)
            roof.annotate(record, get(point.model))
            store.append_point(record)
            outcome.failed += record["status"] != "ok"
            if progress:
                progress(point, i, len(points), record["status"])
        meta["status"] = "completed" if outcome.failed == 0 else "completed_with_failures"
    except KeyboardInterrupt:
        outcome.interrupted = True
        meta["status"] = "interrupted"
    finally:
        sigint.restore()
        if telemetry[0]:
            telemetry[0].stop()
            meta["telemetry"] = {"file": TELEMETRY_FILE, "rate_hz": telemetry[0].rate_hz,
                                 "sources": {s.name: s.describe() for s in telemetry[0].sources}}
        if roof.profile is not None:
            meta["roofline_profile"] = {k: roof.profile.get(k) for k in
                                        ("name", "profile_kind", "peak_flops", "memory_bandwidth_bytes_s",
                                         "measurements", "floors", "gemm_roofs", "file")}
        meta["finished_utc"] = utc_stamp()
        store.write_meta(meta)
        store.close()
    outcome.points = store.read_points()
    return outcome


class _SigintLatch:
    """Ctrl-C raises KeyboardInterrupt as usual and is also remembered, and the sweep checks before every
    point. Python drops a KeyboardInterrupt that lands inside a finalizer or a C callback ("Exception
    ignored in ..."), and a run would then measure every remaining point instead of stopping."""

    def __init__(self):
        import signal
        import threading

        self.hit = threading.Event()
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame):
        self.hit.set()
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.hit.is_set():
            raise KeyboardInterrupt

    def restore(self) -> None:
        if self.previous is not None:
            import signal

            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def _measure(point: Point, scenario, ctx: MeasureContext, cache: ModelCache, dtype: str, spec) -> dict:
    from dgbench.backends import ENGINES

    started = time.time()
    device = ctx.device
    record = {"point_id": point.point_id, "decoder": point.decoder, "model": point.model, "engine": point.engine,
              "paradigm": spec.paradigm, "dtype": dtype, "device": device, "params": point.params,
              "knobs": point.knobs, "weights": spec.weights, "started_utc": utc_stamp()}
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


# ---------------------------------------------------------------- telemetry, roofline, memory cap

def _start_telemetry(suite: dict, device: str, run_dir: Path):
    """(recorder, (source, device) of this run's device), or (None, None) when the suite turns it off."""
    settings = suite.get("telemetry") or {}
    if not settings.get("enabled", True):
        return None, None
    from dgbench.telemetry.recorder import TelemetryRecorder, open_sources

    sources, source, dev = open_sources(device)
    recorder = TelemetryRecorder(sources, run_dir / TELEMETRY_FILE, rate_hz=settings.get("rate_hz", 10.0))
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


def apply_memory_cap(device: str, profile_name: str) -> dict:
    """Cap this process's CUDA memory to a profile's capacity (torch.cuda.set_per_process_memory_fraction),
    so "does it fit on a 24 GB card" is answered by running it. Weights, caches and activations all count;
    the CUDA context itself (a few hundred MB outside the allocator) does not."""
    from dgbench.hardware.profiles import get_profile

    prof = get_profile(profile_name)
    if not device.startswith("cuda"):
        raise ConfigError(f"--emulate-memory {profile_name}: needs a CUDA device (it caps torch's CUDA allocator); "
                          f"this run is on {device}. Use --device cuda, or `dgbench fit` to estimate on a CPU")
    if not prof.get("memory_bytes"):
        raise ConfigError(f"--emulate-memory {profile_name}: the profile has no memory_bytes; pick one from "
                          "`dgbench list profiles` that has a capacity")
    import torch

    total = torch.cuda.get_device_properties(device).total_memory
    cap = int(prof["memory_bytes"])
    if cap > total:
        raise ConfigError(f"--emulate-memory {profile_name}: {cap / 2**30:.1f} GiB is more than this GPU's "
                          f"{total / 2**30:.1f} GiB; emulation can only shrink memory")
    fraction = cap / total
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    return {"profile": profile_name, "cap_bytes": cap, "device_total_bytes": int(total), "fraction": fraction}
