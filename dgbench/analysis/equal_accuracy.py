"""Speed at equal accuracy: the fastest diffusion operating point that is not worse than the AR reference,
and AUP (accuracy under parallelism) of each decoder's accuracy-vs-tokens-per-forward curve.

Non-inferiority (paired, per task): diffusion operating point D is non-inferior to the AR reference R when
the lower bound of the 95% interval of acc(D) - acc(R) on the items both scored (adjusted Wald, Agresti &
Min 2005) lies above -margin. The margin is absolute (default 5 percentage points) or, as MLPerf counts a
result only at >= 99% of the reference accuracy, relative: margin = (1 - 0.99) x acc(R). Default 5 pp:
with no discordant item the lower bound is still about -2 / (n + 2), so tighter margins need more items. The AR reference
is the most accurate AR point on the task (ties: the faster); speed is median committed tok/s over the
same calls, and the speedup is against that reference's median.

AUP as hao-ai-lab define it (d3LLM, Qian et al. 2026; their aup_utils.get_aup): for one decoder's points
(rho_i = mean tokens per forward, y_i = accuracy in %) sorted by rho, y_min = y_1 - 5 (points below it are
dropped), W(y) = min(exp(-alpha (1 - y / y_max)), 1) with alpha = 3 and y_max the best accuracy of any
decoder on the task, and
    AUP = rho_1 y_1 + sum_{i=2..m} (rho_i - rho_{i-1}) (y_i W(y_i) + y_{i-1} W(y_{i-1})) / 2.
An AR decoder (one token per forward) scores 1 x its accuracy.
"""

from __future__ import annotations

import math

from dgbench.analysis.paired import paired_difference, paired_items
from dgbench.analysis.points import accuracy_of, is_ar, is_diffusion, mean_of, median_of, ok_points, op_label, task_of

# Absolute, 5 percentage points: with zero discordant items the 95% lower bound is about -2 / (n + 2)
# (adjusted Wald), so a 2 pp margin needs over 100 items to be met at all; quality runs are often 50.
DEFAULT_MARGIN = 0.05
MLPERF_FRACTION = 0.99          # relative option: at least 99% of the reference accuracy
AUP_ALPHA = 3.0
AUP_Y_MIN_OFFSET = 5.0          # percentage points below the first (lowest-TPF) point's accuracy


def margin_for(reference_accuracy: float, margin: float, kind: str) -> float:
    """The tolerated accuracy loss (a fraction) for an absolute or MLPerf-style relative margin."""
    if kind == "relative":
        return (1.0 - margin) * reference_accuracy
    return margin


def quality_points(points: list[dict]) -> dict[str, list[dict]]:
    """Per task, the measured points that carry an accuracy and per-item correctness."""
    out: dict[str, list[dict]] = {}
    for p in ok_points(points):
        if p.get("quality") and p.get("correct") is not None:
            out.setdefault(str(task_of(p)), []).append(p)
    return out


def accuracy_reference(points: list[dict]) -> dict | None:
    ar = [p for p in points if is_ar(p) and accuracy_of(p) is not None]
    if not ar:
        return None
    return max(ar, key=lambda p: (accuracy_of(p), _speed(p)))


def _speed(p: dict) -> float:
    v = median_of(p, "committed_tok_s")
    return -math.inf if math.isnan(v) else v


def non_inferiority(points: list[dict], margin: float = DEFAULT_MARGIN, kind: str = "absolute") -> list[dict]:
    """Per task: every diffusion point's paired test and the fastest non-inferior one (or None)."""
    results = []
    for task, group in quality_points(points).items():
        ref = accuracy_reference(group)
        if ref is None:
            continue
        tol = margin_for(accuracy_of(ref), margin, kind)
        tested = []
        for d in (p for p in group if is_diffusion(p)):
            xs, ys = paired_items(d, ref)
            if not xs:
                continue
            diff = paired_difference(xs, ys)
            speed, ref_speed = _speed(d), _speed(ref)
            tested.append({"point": op_label(d), "point_id": d.get("point_id"), "diff": diff,
                           "non_inferior": diff["low"] > -tol, "tok_s": speed,
                           "speedup": speed / ref_speed if ref_speed > 0 and speed > -math.inf else math.nan})
        best = max((t for t in tested if t["non_inferior"]), key=lambda t: t["tok_s"], default=None)
        results.append({"task": task, "reference": op_label(ref), "reference_accuracy": accuracy_of(ref),
                        "reference_tok_s": _speed(ref), "margin": margin, "margin_kind": kind, "tolerance": tol,
                        "tested": tested, "best": best})
    return results


def non_inferiority_line(r: dict) -> str:
    rule = (f"margin {100 * r['tolerance']:.1f} pp" if r["margin_kind"] == "absolute" else
            f">= {100 * r['margin']:.0f}% of the reference accuracy (margin {100 * r['tolerance']:.1f} pp)")
    head = (f"{r['task']}: equal accuracy vs {r['reference']} ({100 * r['reference_accuracy']:.1f}%), "
            f"paired non-inferiority, {rule}, 95% interval: ")
    b = r["best"]
    if b is None:
        closest = max(r["tested"], key=lambda t: t["diff"]["low"], default=None)
        why = (f"; closest {closest['point']}: diff {100 * closest['diff']['diff']:+.1f} pp, lower bound "
               f"{100 * closest['diff']['low']:+.1f} pp, n={closest['diff']['n']}" if closest else "")
        return head + f"none within margin ({len(r['tested'])} diffusion point(s) tested{why})"
    d = b["diff"]
    return head + (f"fastest non-inferior diffusion point {b['point']}: {100 * d['candidate_accuracy']:.1f}% "
                   f"(diff {100 * d['diff']:+.1f} pp [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}], n={d['n']}), "
                   f"{b['tok_s']:.3g} tok/s = {b['speedup']:.2f}x the reference")


def _weight(y: float, y_max: float, alpha: float) -> float:
    if y_max <= 0:
        return 1.0
    return min(math.exp(-alpha * (1.0 - y / y_max)), 1.0)


def aup_points(rho: list[float], y: list[float], y_min_offset: float = AUP_Y_MIN_OFFSET) -> list[tuple]:
    """The (rho, y) pairs AUP integrates: sorted by rho, those at least y_1 - offset (y_1: the lowest rho's)."""
    pairs = sorted((r, a) for r, a in zip(rho, y) if r is not None and a is not None and r > 0 and not math.isnan(r))
    if not pairs:
        return []
    y_min = pairs[0][1] - y_min_offset
    return [(r, a) for r, a in pairs if a >= y_min]


def aup(rho: list[float], y: list[float], y_max: float, alpha: float = AUP_ALPHA,
        y_min_offset: float = AUP_Y_MIN_OFFSET) -> float:
    """hao-ai-lab's AUP over (tokens per forward, accuracy %) pairs; see the module docstring."""
    kept = aup_points(rho, y, y_min_offset)
    if not kept:
        return math.nan
    total = kept[0][0] * kept[0][1]
    for (r0, a0), (r1, a1) in zip(kept, kept[1:]):
        total += (r1 - r0) * (a1 * _weight(a1, y_max, alpha) + a0 * _weight(a0, y_max, alpha)) / 2
    return total


def aup_table(points: list[dict]) -> list[dict]:
    """Per task and decoder: its curve (operating points by TPF) and AUP."""
    out = []
    for task, group in quality_points(points).items():
        y_max = max(100 * accuracy_of(p) for p in group)
        by_decoder: dict[str, list[dict]] = {}
        for p in group:
            by_decoder.setdefault(p["decoder"], []).append(p)
        for decoder, ps in by_decoder.items():
            curve = sorted(({"point": op_label(p), "tpf": mean_of(p, "tokens_per_forward"),
                             "accuracy_pct": 100 * accuracy_of(p), "tok_s": median_of(p, "committed_tok_s"),
                             "n": (p.get("quality") or {}).get("n")} for p in ps),
                           key=lambda c: (math.isnan(c["tpf"]), c["tpf"]))
            rho, y = [c["tpf"] for c in curve], [c["accuracy_pct"] for c in curve]
            out.append({"task": task, "decoder": decoder, "curve": curve, "aup": aup(rho, y, y_max), "y_max": y_max,
                        "alpha": AUP_ALPHA, "y_min_offset": AUP_Y_MIN_OFFSET,
                        "points_used": len(aup_points(rho, y))})
    return out


def aup_line(r: dict) -> str:
    pts = ", ".join(f"{c['point']}: mean TPF {c['tpf']:.3g}, {c['accuracy_pct']:.1f}%" for c in r["curve"])
    return (f"{r['task']} AUP {r['decoder']}: {r['aup']:.3g} (alpha={r['alpha']:g}, y_max={r['y_max']:.1f}%, "
            f"y_min = y_1 - {r['y_min_offset']:g} pp) from {r['points_used']} of {len(r['curve'])} point(s) "
            f"[{pts}]")


DEFINITIONS = [
    ("speed at equal accuracy", "tok/s, x",
     "the fastest diffusion operating point whose accuracy is not worse than the AR reference's (its most "
     "accurate AR point on the task) by more than the margin: lower bound of the 95% adjusted-Wald interval of "
     "the paired accuracy difference > -margin; margin absolute (default 5 pp) or MLPerf-style relative "
     "(>= 99% of the reference accuracy: margin = 0.01 x reference accuracy); its speedup = its median "
     "committed tok/s / the reference's"),
    ("AUP (accuracy under parallelism)", "TPF x %",
     "hao-ai-lab (d3LLM, Qian et al. 2026): points (rho_i = mean tokens per forward, y_i = accuracy %) sorted "
     "by rho; drop points below y_1 - 5; W(y) = min(exp(-3 (1 - y / y_max)), 1), y_max = best accuracy of any "
     "decoder on the task; AUP = rho_1 y_1 + sum_i (rho_i - rho_(i-1)) (y_i W(y_i) + y_(i-1) W(y_(i-1))) / 2; "
     "an AR decoder scores 1 x its accuracy"),
]
