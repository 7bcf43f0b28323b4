"""Run a suite: expand the sweep, measure point by point, store each point as soon as it is done.

A failing point (out of memory, an exception) is recorded with its error and the sweep goes on.
Ctrl-C stops after marking the run interrupted; everything already stored stays, and
`dgbench run --resume RUN_DIR` measures only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dgbench.boundary import Terminated
from dgbench.errors import ConfigError
from dgbench.harness.sweep import Point, expand
from dgbench.metadata import run_metadata, suite_hash
from dgbench.harness.point import RooflineContext, measure_point, start_telemetry
from dgbench.models.cache import ModelCache
from dgbench.results import RunStore, new_run_dir, utc_stamp
from dgbench.scenarios import for_point
from dgbench.telemetry.recorder import TELEMETRY_FILE


@dataclass
class RunOutcome:
    run_dir: Path
    points: list[dict] = field(default_factory=list)
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False
    stopped_by: str = ""  # "SIGINT" or "SIGTERM" when interrupted


def decoder_weights(suite: dict) -> str:
    """What the decoders' weights are: one kind ("synthetic", "embedded", "checkpoint") when they share it,
    else per model."""
    from dgbench.models.registry import get
    from dgbench.scenarios.base import point_model

    if not suite.get("decoders"):
        return "served"   # a scenario that loads no model (serve): whatever the endpoints serve
    kinds = {d["model"]: get(point_model(d)).weights for d in suite["decoders"]}
    if len(set(kinds.values())) == 1:
        return next(iter(kinds.values()))
    return ", ".join(f"{model}: {kind}" for model, kind in kinds.items())


def decoder_provenance(suite: dict) -> list[dict]:
    """Per decoder: where its weights and tokenizer come from (run.json `decoders` and the run header)."""
    from dgbench.models.registry import get
    from dgbench.scenarios.base import point_model

    out = []
    for d in suite.get("decoders") or []:   # none for a scenario that loads no model (serve)
        spec = get(point_model(d))
        out.append({"decoder": d["name"], "model": d["model"], "spec": spec.name, "engine": d["engine"],
                    "paradigm": spec.paradigm, "weights": spec.weights, "checkpoint": spec.checkpoint,
                    "revision": spec.revision, "trust_remote_code": bool(spec.trust_remote_code),
                    "device_map": spec.device_map, "tokenizer": spec.tokenizer or "byte codec",
                    "chat": spec.chat, "special_tokens": dict(spec.special_tokens)})
    return out


def header_lines(suite: dict) -> list[str]:
    """What the run header says about each decoder's weights, before anything loads."""
    lines = list(suite.get("weights_notes") or [])
    for p in decoder_provenance(suite):
        where = f" from {p['checkpoint']}" if p["checkpoint"] else ""
        rev = f" @ {p['revision']}" if p["revision"] else ""
        lines.append(f"decoder {p['decoder']}: {p['model']} ({p['paradigm']}, {p['engine']}), weights {p['weights']}"
                     f"{where}{rev}, tokenizer {p['tokenizer']}, trust_remote_code: "
                     f"{str(p['trust_remote_code']).lower()}")
    return lines


def _check_fit_first(suite: dict, points, device: str) -> None:
    """dgbench fit for every model before anything is created or loaded (dgbench/models/fitcheck.py)."""
    from dgbench.hardware.detect import resolve_dtype
    from dgbench.models.fitcheck import check_fits
    from dgbench.models.registry import get

    loaded = [p for p in points if getattr(p, "dtype", None) is not None]   # serve points load no model
    for model, dtype in dict.fromkeys((p.model, resolve_dtype(p.dtype, device)) for p in loaded):
        check_fits(get(model), device, dtype)


def run_suite(suite: dict, *, device: str, out_root: Path, out_dir: Path | None = None,
              resume: Path | None = None, progress=None, profile: str | None = None,
              emulate_memory: str | None = None, executor: dict | None = None,
              shard: tuple[int, int] | None = None) -> RunOutcome:
    """Measure every point of `suite`; `progress(point, index, total, state)` reports to the UI.

    `profile` names the hardware profile the roofline uses (default: detected); `emulate_memory` caps
    CUDA memory to a profile's capacity before anything loads. `executor` (harness/executors) says where
    points run, this process by default; `shard` (I, N) measures only shard I of N (harness/shard.py)."""
    from dgbench.hardware.detect import fingerprint
    from dgbench.hardware.profiles import match_profile
    from dgbench.harness.executors import executor_settings

    executor = executor or executor_settings(suite)
    on_ray = executor["kind"] == "ray"
    points = expand(suite)
    _check_fit_first(suite, points, device)
    if profile:
        from dgbench.hardware.profiles import get_profile

        get_profile(profile)  # an unknown name fails here, before anything is created or loaded
    fp = fingerprint(device)
    emulated = apply_memory_cap(device, emulate_memory) if emulate_memory else None
    if resume is not None:
        store = RunStore(resume)
        store.read_meta()  # a run directory at all, before anything is written into it
        store.lock()       # a second resume of this directory stops here, naming our pid
        meta = store.read_meta()
        if not isinstance(meta.get("hardware"), dict) or "config_hash" not in meta:
            store.unlock()
            raise ConfigError(f"{store.run_file}: lacks 'hardware' or 'config_hash', so it cannot be resumed; "
                              "start a new run")
        if meta["config_hash"] != suite_hash(suite):
            store.unlock()
            raise ConfigError(f"{resume}: the suite differs from the one this run started with "
                              f"(config hash {meta['config_hash']} vs {suite_hash(suite)}); resume with the same "
                              "suite and --set options, or start a new run")
        from dgbench.results import fingerprint_key

        shard = _resumed_shard(resume, meta, shard)
        # The points of a Ray run or a merge carry the hardware that measured each (their placement); a
        # local run is measured here, on the hardware its run.json names.
        placed = on_ray or (meta.get("executor") or {}).get("kind") == "ray" or "merged_from" in meta
        if not placed and fingerprint_key(meta["hardware"]) != fingerprint_key(fp):
            store.unlock()
            raise ConfigError(f"{resume}: started on {fingerprint_key(meta['hardware'])!r}, this machine is "
                              f"{fingerprint_key(fp)!r}; a run mixes no hardware, start a new run here")
        done = store.finished_point_ids()
        meta["status"] = "running"
        meta.setdefault("resumed_utc", []).append(utc_stamp())
        store.write_meta(meta)
    else:
        store = RunStore(out_dir or new_run_dir(out_root, suite["name"]))
        meta = run_metadata(suite, device, suite["seed"], fp, profile or match_profile(fp), "running",
                            decoder_weights(suite))
        meta["hardware_profile_source"] = "--profile" if profile else "detected"
        meta["decoders"] = decoder_provenance(suite)
        if emulated:
            meta["emulated_memory"] = emulated
        if shard is not None:
            meta["shard"] = {"index": shard[0], "count": shard[1]}
        store.create(meta)
        done = set()
    if shard is not None:
        from dgbench.harness.shard import select_shard

        points = select_shard(points, shard[0], shard[1], suite["measure"])
        meta["shard"]["point_ids"] = [p.point_id for p in points]   # what `dgbench merge` checks coverage with
    meta["executor"] = {k: v for k, v in executor.items()} if on_ray else {"kind": "local"}

    outcome = RunOutcome(store.path)
    sigint = _SignalLatch()
    try:
        if on_ray:
            from dgbench.harness.executors.ray_pool import run_on_ray

            run_on_ray(points, done, suite, executor, store, meta, outcome, progress, profile, sigint.check)
        else:
            _run_local(points, done, suite, device, store, meta, outcome, progress, sigint.check)
        meta["status"] = "completed" if outcome.failed == 0 else "completed_with_failures"
    except (KeyboardInterrupt, Terminated) as stop:
        # SIGINT and SIGTERM end a run the same way: status interrupted, finished points kept;
        # the CLI exits 130 for SIGINT, 143 (128 + 15) for SIGTERM.
        outcome.interrupted = True
        outcome.stopped_by = "SIGTERM" if isinstance(stop, Terminated) else "SIGINT"
        meta["status"] = "interrupted"
    finally:
        # A second Ctrl-C or a SIGTERM while the run is being closed must not cut the final run.json
        # write short: from here signals are only remembered.
        sigint.defer()
        meta["finished_utc"] = utc_stamp()
        try:
            store.write_meta(meta)
        finally:
            store.close()
            sigint.restore()
    outcome.points = store.read_points()
    return outcome


def _run_local(points: list[Point], done: set, suite: dict, device: str, store: RunStore, meta: dict,
               outcome: RunOutcome, progress, check_interrupt) -> None:
    """The local executor: every point in this process, one after the other, in sweep order."""
    cache = ModelCache()
    roof = RooflineContext(meta.get("hardware_profile"), device)
    telemetry = start_telemetry(suite, device, store.path)
    try:
        for i, point in enumerate(points):
            check_interrupt()
            if point.point_id in done:
                outcome.skipped += 1
                if progress:
                    progress(point, i, len(points), "skipped")
                continue
            if progress:
                progress(point, i, len(points), "start")
            unit = for_point(point).progress_unit
            record = measure_point(point, device, suite, cache, telemetry, roof,
                                   lambda n: progress(point, i, len(points), f"{unit} {n}") if progress else None,
                                   on_sample=store.append_sample, on_request=store.append_request)
            store.append_point(record)
            outcome.failed += record["status"] != "ok"
            if progress:
                progress(point, i, len(points), record["status"])
    finally:
        if telemetry[0]:
            telemetry[0].stop()
            meta["telemetry"] = {"file": TELEMETRY_FILE, "rate_hz": telemetry[0].rate_hz,
                                 "sources": {s.name: s.describe() for s in telemetry[0].sources}}
        if roof.profile is not None:
            meta["roofline_profile"] = {k: roof.profile.get(k) for k in
                                        ("name", "profile_kind", "peak_flops", "memory_bandwidth_bytes_s",
                                         "measurements", "floors", "gemm_roofs", "file")}


def _resumed_shard(resume: Path, meta: dict, asked: tuple[int, int] | None) -> tuple[int, int] | None:
    """A resumed shard run stays the shard it was; --shard may repeat it but not change it."""
    had = meta.get("shard")
    had = (had["index"], had["count"]) if had else None
    if asked is not None and asked != had:
        was = f"shard {had[0]}/{had[1]}" if had else "not a shard"
        raise ConfigError(f"{resume}: this run is {was}, not --shard {asked[0]}/{asked[1]}; resume it without "
                          "--shard, or start a new run")
    return had


class _SignalLatch:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt and SIGTERM raises Terminated, and either is also
    remembered, and the sweep checks before every point. Python drops an exception raised inside a
    finalizer or a C callback ("Exception ignored in ..."), and a run would then measure every
    remaining point instead of stopping."""

    def __init__(self):
        import signal
        import threading

        self.hit: str = ""
        self.deferred = False
        self.previous: dict = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        import signal

        self.hit = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
        if not self.deferred:
            self.check()

    def defer(self) -> None:
        self.deferred = True

    def check(self) -> None:
        if self.hit == "SIGTERM":
            raise Terminated()
        if self.hit:
            raise KeyboardInterrupt

    def restore(self) -> None:
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


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
