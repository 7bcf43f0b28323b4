"""The headline: each diffusion operating point against the AR reference at the same matched point.

speedup = median committed tok/s of the diffusion point / that of the AR reference, where the AR reference
is the fastest AR operating point (highest median committed tok/s; speculative rows included) measured at
the same batch, prompt length, generation length and task, so the speedup is never taken against a weak
baseline. The 95% interval is a percentile bootstrap over the per-repetition values (each side resampled on
its own, seeded: dgbench.stats.bootstrap_ratio_of_medians). e2e and TTFT/TTFC latency ratios are
diffusion / AR (below 1: diffusion answers sooner). When both points scored the same task items, the
accuracy difference (diffusion - AR) on the paired items sits beside them (dgbench.analysis.paired).
"""

from __future__ import annotations

import math

from dgbench.analysis.paired import paired_difference, paired_items
from dgbench.analysis.points import (is_ar, is_diffusion, match_key, match_label, median_of, ok_points, op_label,
                                     reps)
from dgbench.stats import bootstrap_ratio_of_medians

N_BOOT = 2000
LEVEL = 0.95
REFERENCE_RULE = "fastest AR (highest median committed tok/s at this point; speculative rows included)"


def ar_reference(points: list[dict]) -> dict | None:
    """The fastest AR point among these (matched) points, or None when none was measured."""
    ar = [p for p in points if is_ar(p) and reps(p, "committed_tok_s")]
    return max(ar, key=lambda p: median_of(p, "committed_tok_s")) if ar else None


def _ratio(baseline: list[float], candidate: list[float], seed: int) -> dict | None:
    if not baseline or not candidate:
        return None
    r, lo, hi = bootstrap_ratio_of_medians(baseline, candidate, seed, n_boot=N_BOOT, level=LEVEL)
    if math.isnan(r):
        return None
    return {"ratio": r, "low": lo, "high": hi, "n_candidate": len(candidate), "n_reference": len(baseline)}


def pairs(points: list[dict], seed: int = 0) -> list[dict]:
    """One record per (diffusion operating point, matched point) with its AR reference."""
    ok = ok_points(points)
    groups: dict[tuple, list[dict]] = {}
    for p in ok:
        groups.setdefault(match_key(p), []).append(p)
    out = []
    for key, group in groups.items():
        ref = ar_reference(group)
        if ref is None:
            continue
        for k, d in enumerate(p for p in group if is_diffusion(p)):
            speed = _ratio(reps(ref, "committed_tok_s"), reps(d, "committed_tok_s"), seed + k)
            if speed is None:
                continue
            record = {"diffusion": op_label(d), "diffusion_point_id": d.get("point_id"),
                      "reference": op_label(ref), "reference_point_id": ref.get("point_id"),
                      "reference_rule": REFERENCE_RULE, "match": dict(key), "match_label": match_label(key),
                      "speedup": speed, "level": LEVEL, "n_boot": N_BOOT, "bootstrap_seed": seed + k,
                      "e2e_ratio": _ratio(reps(ref, "e2e_s"), reps(d, "e2e_s"), seed + k),
                      "ttft_ratio": _ratio(reps(ref, "ttft_s"), reps(d, "ttft_s"), seed + k),
                      "diffusion_tok_s": median_of(d, "committed_tok_s"),
                      "reference_tok_s": median_of(ref, "committed_tok_s")}
            if d.get("correct") is not None and ref.get("correct") is not None:
                xs, ys = paired_items(d, ref)
                if xs:
                    record["accuracy_diff"] = paired_difference(xs, ys)
            out.append(record)
    return out


def _x(r: dict | None) -> str:
    if not r:
        return "-"
    return f"{_g(r['ratio'])}x [{_g(r['low'])}\u2013{_g(r['high'])}]"


def _g(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"


def _pp(v: float) -> str:
    return f"{100 * v:+.1f}"


def pair_line(rec: dict) -> str:
    """'diffusion vs ar (fastest AR): 1.23x [1.10–1.35] committed tok/s ...' - the console and report line."""
    s = rec["speedup"]
    line = (f"{rec['diffusion']} vs {rec['reference']} (fastest AR): {_x(s)} committed tok/s "
            f"({_g(rec['diffusion_tok_s'])} vs {_g(rec['reference_tok_s'])} tok/s, n={s['n_candidate']}/"
            f"{s['n_reference']}) at {rec['match_label']}")
    if rec.get("e2e_ratio"):
        line += f"; e2e latency {_x(rec['e2e_ratio'])} of AR"
    if rec.get("ttft_ratio"):
        line += f"; TTFC/TTFT {_x(rec['ttft_ratio'])}"
    acc = rec.get("accuracy_diff")
    if acc and acc["n"]:
        line += (f"; accuracy {_pp(acc['diff'])} pp [{_pp(acc['low'])}, {_pp(acc['high'])}] "
                 f"on {acc['n']} paired items")
    return line


def headline_lines(points: list[dict], seed: int = 0) -> list[str]:
    return [pair_line(r) for r in pairs(points, seed)]


def why_no_pairs(points: list[dict]) -> str | None:
    """The sentence shown when a run has no headline pair, or None when it has one."""
    ok = ok_points(points)
    if not any(is_diffusion(p) for p in ok):
        return "No measured diffusion point: no diffusion vs AR comparison."
    if not any(is_ar(p) for p in ok):
        return "No measured AR point: no diffusion vs AR comparison (add an autoregressive decoder to the suite)."
    if not pairs(points):
        return ("Diffusion and AR points were measured at different batch / prompt / generation lengths / tasks: "
                "no matched pair to compare.")
    return None


DEFINITIONS = [
    ("speedup (diffusion vs AR)", "x",
     "median committed tok/s of the diffusion operating point / median committed tok/s of the AR reference at "
     "the same batch, prompt length, generation length and task; AR reference = " + REFERENCE_RULE + "; 95% "
     f"percentile-bootstrap interval over the per-repetition values, {N_BOOT} resamples, seeded by the run seed; "
     "n = repetitions (or items) diffusion/AR"),
    ("e2e latency ratio", "x",
     "median end-to-end time of the diffusion point / that of the AR reference, same bootstrap (below 1: "
     "diffusion finishes sooner)"),
    ("TTFC/TTFT ratio", "x",
     "median time to the first committed canvas (diffusion) / median time to the first token (AR reference), "
     "same bootstrap"),
    ("accuracy difference", "pp",
     "accuracy(diffusion) - accuracy(AR reference) on the items both scored, 95% adjusted-Wald interval for "
     "paired proportions (Agresti & Min 2005: 0.5 added to each cell of the 2x2 table)"),
]
