"""Crossover batch: where the AR reference's tok/s per device overtakes the diffusion decoder's.

Diffusion decodes many positions per forward, which pays most at batch 1, where a GPU is bandwidth-bound;
as the batch grows, AR's one-token steps fill the device too and the advantage shrinks. For each diffusion
operating point and each place (prompt length, generation length, task) swept over batch size:
r(b) = median tok/s of the AR reference at batch b / median tok/s of the diffusion point at b, the AR
reference being the fastest AR point at that batch. The crossover is the first b where log r goes from
below 0 to at least 0, interpolated linearly in (log2 b, log r). Its 95% interval is a percentile bootstrap:
every median resampled from its repetitions (seeded), the crossover recomputed; the share of resamples
that cross at all is reported beside it.
Per-user throughput = committed tok/s / batch: the useful tokens of one sequence over the call's e2e, the
InferenceMAX "tok/s per user" axis, shown against tok/s per device.
"""

from __future__ import annotations

import math
import random

from dgbench.analysis.headline import ar_reference
from dgbench.analysis.points import is_diffusion, match_label, median_of, ok_points, op_label, reps, task_of
from dgbench.stats import median, percentile

N_BOOT = 1000


def _place(p: dict) -> tuple:
    params = p.get("params") or {}
    return tuple((k, v) for k, v in (("prompt_length", params.get("prompt_length")),
                                     ("gen_length", params.get("gen_length")), ("task", task_of(p)))
                 if v is not None)


def crossing(batches: list[int], ratios: list[float], upward: bool = True) -> float | None:
    """First interpolated batch where ratio (AR / diffusion) reaches 1 from below (upward: AR overtakes) or
    falls below 1 from at least 1 (not upward: diffusion overtakes); None when it never does."""
    logs = [math.log(r) if r and r > 0 else math.nan for r in ratios]
    for (b0, l0), (b1, l1) in zip(zip(batches, logs), zip(batches[1:], logs[1:])):
        if math.isnan(l0) or math.isnan(l1):
            continue
        if (l0 < 0 <= l1) if upward else (l0 >= 0 > l1):
            x0, x1 = math.log2(b0), math.log2(b1)
            return 2 ** (x0 + (x1 - x0) * (-l0) / (l1 - l0))
    return None


def _series(points: list[dict]) -> dict[tuple, dict]:
    """(place, diffusion label) -> {batch: (diffusion point, AR reference point)}."""
    ok = ok_points(points)
    by_place_batch: dict[tuple, dict[int, list[dict]]] = {}
    for p in ok:
        b = (p.get("params") or {}).get("batch_size")
        if b is not None:
            by_place_batch.setdefault(_place(p), {}).setdefault(int(b), []).append(p)
    out: dict[tuple, dict] = {}
    for place, batches in by_place_batch.items():
        if len(batches) < 2:
            continue
        for b, group in batches.items():
            ref = ar_reference(group)
            if ref is None:
                continue
            for d in (p for p in group if is_diffusion(p) and reps(p, "committed_tok_s")):
                out.setdefault((place, op_label(d)), {})[b] = (d, ref)
    return {k: v for k, v in out.items() if len(v) >= 2}


def crossovers(points: list[dict], seed: int = 0) -> list[dict]:
    results = []
    for (place, label), series in _series(points).items():
        batches = sorted(series)
        ratios = [median_of(series[b][1], "committed_tok_s") / median_of(series[b][0], "committed_tok_s")
                  for b in batches]
        point = crossing(batches, ratios)
        # Where AR never overtakes, diffusion may overtake AR instead (AR ahead at small batch): said so.
        upward = point is not None or crossing(batches, ratios, upward=False) is None
        point = point if upward else crossing(batches, ratios, upward=False)
        rng = random.Random(seed)
        boots = []
        for _ in range(N_BOOT):
            rs = []
            for b in batches:
                d, ref = series[b]
                dx, rx = reps(d, "committed_tok_s"), reps(ref, "committed_tok_s")
                dm = median(rng.choices(dx, k=len(dx)))
                rs.append(median(rng.choices(rx, k=len(rx))) / dm if dm > 0 else math.nan)
            boots.append(crossing(batches, rs, upward))
        crossed = [c for c in boots if c is not None]
        results.append({
            "place": dict(place), "diffusion": label, "batches": batches, "ratios": ratios,
            "references": [op_label(series[b][1]) for b in batches],
            "crossover_batch": point, "direction": "ar_overtakes" if upward else "diffusion_overtakes",
            "low": percentile(crossed, 2.5) if crossed else None,
            "high": percentile(crossed, 97.5) if crossed else None,
            "share_crossing": len(crossed) / N_BOOT, "n_boot": N_BOOT,
            "ar_ahead_everywhere": all(r >= 1 for r in ratios)})
    return results


def crossover_line(r: dict) -> str:
    where = match_label(tuple(r["place"].items()))
    swept = f"batch {r['batches'][0]}..{r['batches'][-1]}"
    if r["crossover_batch"] is not None:
        iv = (f"[{r['low']:.3g}\u2013{r['high']:.3g}]" if r["low"] is not None else "[-]")
        who = ("AR overtakes" if r.get("direction", "ar_overtakes") == "ar_overtakes" else
               "no AR crossover; the diffusion point overtakes AR")
        return (f"crossover {r['diffusion']} vs fastest AR at {where}: {who} at batch {r['crossover_batch']:.3g} "
                f"{iv} (95% bootstrap; {100 * r['share_crossing']:.0f}% of resamples cross in {swept})")
    if r["ar_ahead_everywhere"]:
        return f"crossover {r['diffusion']} vs fastest AR at {where}: AR is ahead at every swept batch ({swept})"
    return f"crossover {r['diffusion']} vs fastest AR at {where}: no crossover in the swept range ({swept})"


def per_user_rows(points: list[dict]) -> list[dict]:
    """tok/s per device and per user (sequence) for every measured point with a batch size."""
    rows = []
    for p in ok_points(points):
        b = (p.get("params") or {}).get("batch_size")
        dev = median_of(p, "committed_tok_s")
        if b and not math.isnan(dev):
            rows.append({"label": op_label(p), "decoder": p.get("decoder"), "place": _place(p), "batch": int(b),
                         "per_device": dev, "per_user": dev / int(b)})
    return rows


DEFINITIONS = [
    ("crossover batch", "sequences",
     "the first batch size at which the fastest AR point's median committed tok/s reaches the diffusion point's "
     "(ratio AR / diffusion crosses 1), interpolated in log2(batch) and log(ratio); 95% percentile bootstrap over "
     f"the repetitions ({N_BOOT} resamples), with the share of resamples that cross; otherwise 'no crossover in "
     "the swept range' or 'AR is ahead at every swept batch' (and where AR leads at small batches and diffusion "
     "overtakes it, that batch, said so)"),
    ("tok/s per user", "tok/s",
     "committed tok/s / batch size: the useful tokens of one sequence / the e2e of the call that produced it"),
]
