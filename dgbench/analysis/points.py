"""Operating points: what a point is labelled by, and which points are measured at the same place.

An operating point is one decoder at one setting of the knobs the suite swept (threshold, steps, canvas,
seed). Two points are *matched* when they share batch size, prompt length, generation length and task:
only matched points are compared, so a speedup never sets 64 generated tokens against 256.
"""

from __future__ import annotations

import math

from dgbench.stats import percentile

# Axes that place a point (matched between decoders); every other param is a knob of one operating point.
MATCH_AXES = ("batch_size", "prompt_length", "gen_length", "task")
# Params that name repeats of one operating point over seeds, not a different setting.
SEED_PARAM = "seed"


def is_diffusion(point: dict) -> bool:
    return point.get("paradigm") == "diffusion"


def is_ar(point: dict) -> bool:
    return point.get("paradigm") == "autoregressive"


def ok_points(points: list[dict]) -> list[dict]:
    return [p for p in points if p.get("status") == "ok"]


def task_of(point: dict):
    return point.get("task") or (point.get("params") or {}).get("task")


def knob_values(point: dict, with_seed: bool = True) -> dict:
    """The swept knobs of this point (params beyond the match axes), in the order the suite lists them."""
    params = point.get("params") or {}
    return {k: v for k, v in params.items()
            if k not in MATCH_AXES and (with_seed or k != SEED_PARAM)}


def op_label(point: dict, with_seed: bool = True) -> str:
    """'diffusion threshold=0.7' - the label every table, legend, McNemar row and sample uses."""
    knobs = knob_values(point, with_seed)
    return " ".join([str(point.get("decoder", "?"))] + [f"{k}={_fmt_value(v)}" for k, v in knobs.items()])


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def match_key(point: dict) -> tuple:
    params = point.get("params") or {}
    return tuple((a, task_of(point) if a == "task" else params.get(a)) for a in MATCH_AXES
                 if (task_of(point) if a == "task" else params.get(a)) is not None)


def match_label(key: tuple) -> str:
    short = {"batch_size": "batch", "prompt_length": "prompt", "gen_length": "gen"}
    return " ".join(f"{short.get(a, a)}={v}" for a, v in key)


def reps(point: dict, metric: str) -> list[float]:
    """The per-repetition (or per-item, in a quality run) values of one metric, missing ones dropped."""
    values = (point.get("reps") or {}).get(metric) or []
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def median_of(point: dict, metric: str) -> float:
    xs = reps(point, metric)
    if xs:
        return percentile(xs, 50)
    s = (point.get("summary") or {}).get(metric) or {}
    return float(s["median"]) if s.get("n") else math.nan


def mean_of(point: dict, metric: str) -> float:
    xs = reps(point, metric)
    return sum(xs) / len(xs) if xs else math.nan


def accuracy_of(point: dict) -> float | None:
    q = point.get("quality") or {}
    return q.get("accuracy")
