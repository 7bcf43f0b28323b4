"""Run a suite: expand the sweep, measure point by point, store each point as soon as it is done.

A failing point (out of memory, an exception) is recorded with its error and the sweep goes on.
Ctrl-C stops after marking the run interrupted; everything already stored stays, and
`dgbench run --resume RUN_DIR` measures only what is missing.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import dgbench
from dgbench.errors import ConfigError
from dgbench.harness.suite import suite_hash
from dgbench.harness.sweep import Point, expand
from dgbench.results import RunStore, default_run_dir, utc_stamp


@dataclass
class RunOutcome:
    run_dir: Path
    points: list[dict] = field(default_factory=list)
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(dgbench.__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "dgbench": dgbench.__version__}


class ModelCache:
    """Keeps the last loaded model. Points are ordered decoder by decoder, so one slot loads each model
    once while never holding two large models at the same time."""

    def __init__(self):
        self.key = None
        self.model = None

    def get(self, spec, device: str, dtype: str):
        key = (spec.name, device, dtype)
        if key != self.key:
            self.model = None
            _free(device)
            from dgbench.models.synthetic import build_synthetic

            self.model = build_synthetic(spec, device=device, dtype=dtype)
            self.key = key
        return self.model


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _error_record(exc: BaseException) -> dict:
    import torch

    text = str(exc).lower()
    oom = isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in text \
        or "can't allocate memory" in text  # the CPU allocator's wording
    kind = "out_of_memory" if oom else type(exc).__name__
    return {"kind": kind, "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            "traceback": traceback.format_exc(limit=8)}


def run_metadata(suite: dict, device: str, seed: int, fp: dict, profile: str | None, status: str) -> dict:
    return {
        "suite": suite, "suite_name": suite["name"], "config_hash": suite_hash(suite), "seed": seed,
        "git_commit": git_commit(), "versions": versions(), "hardware": fp, "hardware_profile": profile,
        "weights": "synthetic", "created_utc": utc_stamp(), "status": status,
        "command": " ".join(sys.argv),
    }


def run_suite(suite: dict, *, device: str, out_root: Path, out_dir: Path | None = None,
              resume: Path | None = None, progress=None) -> RunOutcome:
    """Measure every point of `suite`; `progress(point, index, total, state)` reports to the UI."""
    from dgbench.hardware.detect import fingerprint, resolve_dtype
    from dgbench.hardware.profiles import match_profile
    from dgbench.models.registry import get

    points = expand(suite)
    fp = fingerprint(device)
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
        meta = run_metadata(suite, device, suite["seed"], fp, match_profile(fp), "running")
        store.create(meta)
        done = set()

    outcome = RunOutcome(store.path)
    cache = ModelCache()
    try:
        for i, point in enumerate(points):
            if point.point_id in done:
                outcome.skipped += 1
                if progress:
                    progress(point, i, len(points), "skipped")
                continue
            if progress:
                progress(point, i, len(points), "start")
            unit = "item" if point.task is not None else "rep"
            record = _measure(point, device, suite, cache, resolve_dtype(point.dtype, device), get(point.model),
                              fp, lambda n: progress(point, i, len(points), f"{unit} {n}") if progress else None,
                              on_sample=store.append_sample)
            store.append_point(record)
            outcome.failed += record["status"] != "ok"
            if progress:
                progress(point, i, len(points), record["status"])
        meta["status"] = "completed" if outcome.failed == 0 else "completed_with_failures"
    except KeyboardInterrupt:
        outcome.interrupted = True
        meta["status"] = "interrupted"
    finally:
        meta["finished_utc"] = utc_stamp()
        store.write_meta(meta)
        store.close()
    outcome.points = store.read_points()
    return outcome


def _measure(point: Point, device: str, suite: dict, cache: ModelCache, dtype: str, spec, fp: dict,
             on_rep, on_sample=None) -> dict:
    from dgbench.backends import ENGINES
    from dgbench.harness.quality import run_quality_point
    from dgbench.harness.scenario import run_point

    started = time.time()
    record = {"point_id": point.point_id, "decoder": point.decoder, "model": point.model, "engine": point.engine,
              "paradigm": spec.paradigm, "dtype": dtype, "device": device, "params": point.params,
              "knobs": point.knobs, "weights": spec.weights, "started_utc": utc_stamp()}
    try:
        model = cache.get(spec, device, dtype)
        decoder = ENGINES[point.engine].factory(model, spec, point.knobs)
        if point.task is not None:
            result = run_quality_point(decoder, point, spec, device, suite["measure"], suite["seed"], on_rep,
                                       on_sample)
        else:
            result = run_point(decoder, point, spec.text_config["vocab_size"], spec.special_tokens.values(),
                               device, suite["measure"], suite["seed"], on_rep)
        record.update(status="ok", **result)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a failed point is data, not a crash: record it and go on
        record.update(status="failed", error=_error_record(exc))
        _free(device)
    record["wall_s"] = round(time.time() - started, 3)
    return record
