"""Seeds and batch invariance, from the point records.

Seeds: a suite's `seeds: [..]` (or `run --seeds N`) repeats each stochastic decoder once per seed (the
point's params carry `seed`). Per operating point this gives accuracy and speed per seed and, over seeds,
mean with the between-seed standard deviation (n = seeds): one seed hides how much a sampler's accuracy
moves. Batch invariance: with `measure.batch_invariance: true` every point at batch B > 1 also runs each of
its B prompts alone (batch 1, same seed, untimed) and stores how many sequences came out token-identical
and the share of positions that agree; a deterministic decoder should give identical tokens.
"""

from __future__ import annotations

import math

from dgbench.analysis.points import (SEED_PARAM, accuracy_of, match_key, match_label, median_of, ok_points,
                                     op_label)


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return math.nan, math.nan
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def seed_groups(points: list[dict]) -> list[dict]:
    """Per operating point repeated over seeds: per-seed values and mean +- between-seed sd."""
    groups: dict[tuple, list[dict]] = {}
    for p in ok_points(points):
        if SEED_PARAM in (p.get("params") or {}):
            groups.setdefault((match_key(p), op_label(p, with_seed=False)), []).append(p)
    out = []
    for (key, label), ps in groups.items():
        ps = sorted(ps, key=lambda p: p["params"][SEED_PARAM])
        per_seed = [{"seed": p["params"][SEED_PARAM], "tok_s": median_of(p, "committed_tok_s"),
                     "accuracy": accuracy_of(p)} for p in ps]
        speed = _mean_sd([s["tok_s"] for s in per_seed])
        acc = _mean_sd([s["accuracy"] for s in per_seed if s["accuracy"] is not None])
        out.append({"point": label, "match": dict(key), "match_label": match_label(key), "n_seeds": len(ps), "per_seed": per_seed,
                    "tok_s_mean": speed[0], "tok_s_sd": speed[1],
                    "accuracy_mean": acc[0], "accuracy_sd": acc[1]})
    return out


def seed_line(g: dict) -> str:
    where = g["match_label"]
    per = ", ".join(f"seed {s['seed']}: {s['tok_s']:.3g} tok/s" + (f", {100 * s['accuracy']:.1f}%"
                                                                  if s["accuracy"] is not None else "")
                    for s in g["per_seed"])
    acc = (f"; accuracy {100 * g['accuracy_mean']:.1f}% +- {100 * g['accuracy_sd']:.1f} pp"
           if not math.isnan(g["accuracy_mean"]) else "")
    return (f"seeds {g['point']} at {where}: {g['tok_s_mean']:.3g} +- {g['tok_s_sd']:.2g} tok/s{acc} "
            f"(mean +- between-seed sd, n={g['n_seeds']} seeds) [{per}]")


def invariance_rows(points: list[dict]) -> list[dict]:
    rows = []
    for p in ok_points(points):
        inv = p.get("batch_invariance")
        if isinstance(inv, dict) and inv.get("rows"):
            rows.append({"point": op_label(p), "match": dict(match_key(p)), "match_label": match_label(match_key(p)),
                         **inv})
    return rows


def invariance_line(r: dict) -> str:
    where = r["match_label"]
    kind = "stochastic" if r.get("stochastic") else "deterministic"
    verdict = ("identical tokens" if r["identical_rows"] == r["rows"] else
               f"{r['identical_rows']}/{r['rows']} sequences identical")
    flag = " (NOT batch-invariant)" if not r.get("stochastic") and r["identical_rows"] != r["rows"] else ""
    return (f"batch invariance {r['point']} ({kind}) at {where}: batch {r['batch']} vs batch 1: {verdict}, "
            f"{100 * r['token_agreement']:.1f}% of {r['positions']} positions agree{flag}")


DEFINITIONS = [
    ("between-seed spread", "same as the metric",
     "sample standard deviation over seeds of a per-seed value (median tok/s, accuracy); shown as mean +- sd with "
     "n = seeds"),
    ("batch invariance", "fraction",
     "each prompt of a batch-B point generated alone at batch 1 with the same seed: sequences whose tokens are "
     "identical / B, and positions that agree / all generated positions"),
]
