"""What a report reads: one run directory (run.json, points.jsonl, samples.jsonl, telemetry.csv) as a RunView.

Every optional input may be absent (an older run, a CPU machine, a run killed early): the view then holds
an empty list plus the sentence a report prints instead of the missing section. Imports no torch.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dgbench.errors import ResultsError
from dgbench.results import RunStore, hardware_keys, point_fingerprint_key

TELEMETRY_FILE = "telemetry.csv"
# Columns of telemetry.csv that hold numbers (the others are text: source, device, point_id, phase, throttle).
TELEMETRY_NUMERIC = ("t_s", "rep", "power_w", "energy_j", "gpu_util_pct", "mem_util_pct", "mem_used_bytes",
                     "sm_clock_mhz", "mem_clock_mhz", "temp_c", "cpu_util_pct", "rss_bytes")
# Sweep axes in the order a reader expects them; engine knobs swept by a suite follow in name order.
CORE_AXES = ("batch_size", "gen_length", "prompt_length")


def _number(text: str):
    if text is None or text == "":
        return None  # the CSV writes n/a as an empty cell
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def read_telemetry(path: Path) -> list[dict]:
    """Rows of telemetry.csv with numbers parsed (empty cells become None)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f), 2):
            if row.get("t_s") in (None, ""):
                raise ResultsError(f"{path}:{i}: row without t_s; the telemetry file is corrupted")
            for col in TELEMETRY_NUMERIC:
                if col in row:
                    row[col] = _number(row[col])
            rows.append(row)
    return rows


@dataclass
class RunView:
    path: Path
    meta: dict
    points: list[dict]
    samples: list[dict] = field(default_factory=list)
    telemetry: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def ok(self) -> list[dict]:
        return [p for p in self.points if p.get("status") == "ok"]

    @property
    def failed(self) -> list[dict]:
        return [p for p in self.points if p.get("status") != "ok"]

    @property
    def suite_name(self) -> str:
        return str(self.meta.get("suite_name") or (self.meta.get("suite") or {}).get("name") or "?")

    @property
    def scenario(self) -> str:
        return str((self.meta.get("suite") or {}).get("scenario") or "?")

    @property
    def created(self) -> str:
        return str(self.meta.get("created_utc") or "")

    @property
    def hardware(self) -> dict:
        return self.meta.get("hardware") or {}

    @property
    def machine(self) -> str:
        """The hardware fingerprint in one line: what every figure is stamped with."""
        hw = self.hardware
        keys = self.meta.get("hardware_keys") or []
        if len(keys) > 1:
            return f"mixed hardware, rows per machine: {'; '.join(keys)}"
        if hw.get("gpu_name"):
            parts = [f"{hw['gpu_name']}", f"{hw.get('gpu_memory_bytes', 0) / 2**30:.0f} GiB" if hw.get(
                "gpu_memory_bytes") else "", f"CUDA {hw['cuda_version']}" if hw.get("cuda_version") else "",
                f"driver {hw['driver_version']}" if hw.get("driver_version") else ""]
        else:
            parts = [str(hw.get("cpu_model") or "unknown CPU"),
                     f"{hw['cpu_cores_logical']} logical cores" if hw.get("cpu_cores_logical") else "",
                     f"{hw.get('torch_threads')} torch threads" if hw.get("torch_threads") else ""]
        return ", ".join(p for p in parts if p) + f" ({hw.get('device', '?')})"

    @property
    def commit(self) -> str:
        return str(self.meta.get("git_commit") or "")[:10]

    def stamp(self) -> str:
        """Footer of every figure: which machine, suite and commit the numbers come from."""
        return f"{self.machine} | suite {self.suite_name} | {self.created} | commit {self.commit or '?'}"

    def telemetry_note(self) -> str | None:
        """Why there is no power/clock timeline, or None when there is one."""
        if not (self.path / TELEMETRY_FILE).is_file():
            return (f"No {TELEMETRY_FILE} in this run directory: the run was made without telemetry (or by a "
                    "dgbench version that did not record it), so there is no power, utilisation or clock timeline.")
        if not self.telemetry:
            return f"{TELEMETRY_FILE} has no rows: the run ended before the first telemetry sample."
        if not any(r.get("source") == "nvml" for r in self.telemetry):
            return ("CPU run without NVML: power, GPU utilisation, clocks, temperature and throttling are not "
                    "available; the timeline shows CPU utilisation and process memory only.")
        return None


def load_view(path: str | Path) -> RunView:
    path = Path(path)
    if not path.is_dir():
        raise ResultsError(f"{path}: no such run directory; pass a folder written by `dgbench run` "
                           "(it holds run.json and points.jsonl)")
    store = RunStore(path)
    meta = store.read_meta()
    points = store.read_points()
    # samples.jsonl may hold a failed-then-resumed point twice: keep the latest record per (point, item).
    samples = list({(s.get("point_id"), s.get("item_id"), s.get("index")): s for s in store.read_samples()}.values())
    telemetry_path = path / TELEMETRY_FILE
    telemetry = read_telemetry(telemetry_path) if telemetry_path.is_file() else []
    return RunView(path, meta, split_by_hardware(points, meta), samples, telemetry)


def split_by_hardware(points: list[dict], meta: dict) -> list[dict]:
    """On a run measured on more than one kind of hardware (a mixed Ray cluster, merged shards), each
    decoder becomes one row per hardware ("diffusion @ NVIDIA H100 ..."): every table, figure and median
    grouped by decoder then keeps machines apart instead of pooling them."""
    if len(hardware_keys(points, meta.get("hardware"))) < 2:
        return points
    return [{**p, "decoder": f"{p.get('decoder', '?')} @ {point_fingerprint_key(p, meta.get('hardware'))}"}
            for p in points]


# ------------------------------------------------------------------ what a sweep varies

def axis_value(point: dict, axis: str):
    return (point.get("params") or {}).get(axis)


def varied_axes(points: list[dict]) -> list[str]:
    """Params with more than one value among these points (task excluded: tasks get their own plane)."""
    names = {k for p in points for k in (p.get("params") or {}) if k != "task"}
    ordered = [a for a in CORE_AXES if a in names] + sorted(names - set(CORE_AXES))
    return [a for a in ordered if len({repr(axis_value(p, a)) for p in points}) > 1]


def modal_slice(points: list[dict], axes: list[str]) -> dict:
    """For each axis, the value most points share (ties: the smallest): where the other axes are held
    when a figure sweeps one of them. One line per decoder keeps a 1,000-point sweep readable."""
    out = {}
    for axis in axes:
        counts = Counter(repr(axis_value(p, axis)) for p in points)
        values = {repr(axis_value(p, axis)): axis_value(p, axis) for p in points}
        best = max(counts.values())
        candidates = [values[k] for k, c in counts.items() if c == best]
        out[axis] = sorted(candidates, key=lambda v: (v is None, v if isinstance(v, (int, float)) else str(v)))[0]
    return out


def decoders(points: list[dict]) -> list[str]:
    return list(dict.fromkeys(p["decoder"] for p in points))


def point_task(point: dict):
    return point.get("task") or axis_value(point, "task")


def params_label(point: dict, skip: tuple = ()) -> str:
    params = point.get("params") or {}
    short = {"batch_size": "batch", "gen_length": "gen", "prompt_length": "prompt"}
    return " ".join(f"{short.get(k, k)}={v}" for k, v in params.items() if k not in skip)


def point_label(point: dict) -> str:
    return f"{point.get('decoder', '?')} {params_label(point)}".strip()


def reference_points(points: list[dict]) -> dict[str, dict]:
    """One ok point per decoder, at the configuration most decoders share: the roofline and the
    projected-throughput figures show one marker per decoder, and this says which one."""
    ok = [p for p in points if p.get("status") == "ok"]
    key = lambda p: repr(sorted((p.get("params") or {}).items()))  # noqa: E731
    counts = Counter(key(p) for p in ok)
    out: dict[str, dict] = {}
    for p in sorted(ok, key=lambda p: -counts[key(p)]):
        out.setdefault(p["decoder"], p)
    return {d: out[d] for d in decoders(ok) if d in out}


def summary_of(point: dict, metric: str) -> dict | None:
    s = (point.get("summary") or {}).get(metric)
    return s if s and s.get("n") else None


def headline(view: RunView) -> dict:
    """The numbers a publish index shows per report: best median committed tok/s per decoder, and
    accuracy per (decoder, task) on quality runs."""
    best: dict[str, float] = {}
    for p in view.ok:
        s = summary_of(p, "committed_tok_s")
        if s and (p["decoder"] not in best or s["median"] > best[p["decoder"]]):
            best[p["decoder"]] = s["median"]
    accuracy = [{"decoder": p["decoder"], "task": point_task(p), "accuracy": p["quality"].get("accuracy"),
                 "n": p["quality"].get("n")} for p in view.ok if p.get("quality")]
    return {"best_committed_tok_s": best, "accuracy": accuracy,
            "points_ok": len(view.ok), "points_failed": len(view.failed)}
